"""The motor sub-circuit, its connection groups and the proprioceptive field."""

import numpy as np
import pytest
import torch

from wormlab import worm
from wormlab.worm import _motor as worm_motor
from wormlab.worm._motor import motor_class


@pytest.fixture(scope="module")
def net():
    return worm.build_motor_network()


def test_cells_are_command_motor_and_muscles(net):
    names = net.names
    assert len(names) == 10 + 10 + 69 + 95
    assert set(worm.HEAD_MOTOR) <= set(names)
    assert {"AVBL", "AVAR", "DB1", "VB11", "DA9", "VA12", "DD6", "VD13", "AS11", "MDL01"} <= set(
        names)


def test_neuron_rows_follow_the_connectome_head_to_tail(net):
    rows = worm.neuron_rows(net)
    for cls, n in (("DB", 7), ("VB", 11), ("DA", 9), ("VA", 12), ("VD", 13)):
        r = [rows[f"{cls}{k}"] for k in range(1, n + 1)]
        assert all(1.0 <= x <= 24.0 for x in r)
        assert r[-1] > r[0] + 8, (cls, r)  # posterior members sit further back
        assert np.corrcoef(np.arange(n), r)[0, 1] > 0.9, (cls, r)


def test_connection_groups_respect_transmitter_identity(net):
    g = worm.connection_groups(net)
    names = net.names
    pre = [names[i] for i in net.syn_pre[g["syn_nmj_exc"]].tolist()]
    assert pre and all(motor_class(n) in ("DA", "DB", "VA", "VB", "AS")
                       or n in worm.HEAD_MOTOR for n in pre)
    assert set(worm.HEAD_MOTOR) <= set(pre)  # every head motor neuron drives head muscles
    pre = [names[i] for i in net.syn_pre[g["syn_nmj_inh"]].tolist()]
    assert pre and all(motor_class(n) in ("DD", "VD") for n in pre)
    # inhibitory NMJs use the inhibitory (negative reversal) synapse type
    e = net.params["e_syn"].detach()[net.syn_type[g["syn_nmj_inh"]]]
    assert torch.all(e < -50)
    pairs = {tuple(sorted((names[a], names[b]))) for a, b in zip(
        net.gap_a[g["gap_cmd_mn"]].tolist(), net.gap_b[g["gap_cmd_mn"]].tolist())}
    assert any(p[0].startswith("AVB") and p[1][:2] in ("DB", "VB") for p in pairs)
    assert not (g["syn_nmj_exc"] & g["syn_nmj_inh"]).any()


def test_proprioceptive_field_sign_offset_and_interpolation(net):
    rows = worm.neuron_rows(net)
    off = torch.tensor([0.0, 2.5])
    tB, MB = worm.proprioceptive_matrix(net, off, "B")
    tA, MA = worm.proprioceptive_matrix(net, off, "A")
    assert set(motor_class(n) for n in tB) == {"DB", "VB"}
    assert set(motor_class(n) for n in tA) == {"DA", "VA"}
    kappa = torch.arange(24, dtype=torch.float64)  # curvature = joint index: M @ kappa = field
    for targets, M, sgn in ((tB, MB, -1), (tA, MA, +1)):
        got = M @ kappa  # (2, K)
        for k, n in enumerate(targets):
            s = 1.0 if n.startswith("D") else -1.0
            for b, o in enumerate(off.tolist()):
                field = min(max(rows[n] + sgn * o, 1.0), 24.0)
                assert got[b, k].item() == pytest.approx(s * (field - 1.0), abs=1e-9)
        assert torch.allclose(M.abs().sum(-1), torch.ones(2, len(targets), dtype=M.dtype))


def test_head_motor_neurons_cover_the_head_and_sense_their_own_bend(net):
    """Without SMB/SMD/URA no cell drives rows 1-4; their field is their own row, signed by
    their dorsal/ventral innervation."""
    from wormlab.body._muscles import muscle_table

    rows = dict(zip(muscle_table()["name"], muscle_table()["row"]))
    g = worm.connection_groups(net)
    post = [net.names[i] for i in net.syn_post[g["syn_nmj_exc"]].tolist()]
    pre = [net.names[i] for i in net.syn_pre[g["syn_nmj_exc"]].tolist()]
    head_rows = {rows[m] for a, m in zip(pre, post) if a in worm.HEAD_MOTOR}
    vnc_rows = {rows[m] for a, m in zip(pre, post) if a not in worm.HEAD_MOTOR}
    assert {1, 2, 3, 4} <= head_rows and min(vnc_rows) >= 5
    names, M = worm.head_matrix(net)
    assert names == list(worm.HEAD_MOTOR) and M.shape == (10, 24)
    pos = worm.neuron_rows(net)
    for k, n in enumerate(names):
        assert M[k].abs().sum() == pytest.approx(abs(M[k].sum()))  # one sign per neuron
        j = torch.nonzero(M[k]).flatten().tolist()
        assert all(abs(x + 1 - pos[n]) < 1.0 for x in j), (n, j, pos[n])
    sign = dict(zip(names, M.sum(1).tolist()))
    assert sign["URADL"] == pytest.approx(1.0) and sign["URAVL"] == pytest.approx(-1.0)
    assert sign["SMBVL"] == pytest.approx(-1.0) and 0 < sign["SMDDL"] < 1


def test_stretch_conductance_holds_a_cell_between_its_reversal_potentials(net):
    """The first crawl version injected proprioception as a current: -2 pA drove an isolated
    VB7 (c302's ~18 GOhm when hyperpolarised) to -300 mV. As a conductance it cannot pass E_K."""
    from wormlab import circuit

    assert "g_stretch_cat" in net.params and net.params["g_stretch_k"].shape == (net.n_cells,)
    b = net.batched(2)
    i = net.index["VB7"]
    with torch.no_grad():  # member 0: a huge K+ stretch conductance; member 1: cation
        b.params["g_stretch_k"][0, i] = 100.0 / float(net.area_um2[i])   # 1 nS
        b.params["g_stretch_cat"][1, i] = 100.0 / float(net.area_um2[i])
        # cut VB7 off from everything, as the AVB ablation left it
        b.params["w_gap"][:, (net.gap_a == i) | (net.gap_b == i)] = 0.0
        b.params["w_syn"][:, net.syn_post == i] = 0.0
    with torch.no_grad():
        r = circuit.simulate(b, None, 400.0, 1.0, solver="exp2", record=["VB7"])
    v = r.trace("VB7")
    assert v[-1, 0] == pytest.approx(worm_motor.E_STRETCH_K_MV, abs=3.0)
    assert v[-1, 1] == pytest.approx(worm_motor.E_STRETCH_CATION_MV, abs=10.0)
    assert float(v.min()) >= worm_motor.E_STRETCH_K_MV - 1.0
    # the same cell under a -2 pA current source leaves the physiological range
    c = net.batched(1)
    with torch.no_grad():
        c.params["w_gap"][:, (net.gap_a == i) | (net.gap_b == i)] = 0.0
        c.params["w_syn"][:, net.syn_post == i] = 0.0
        r2 = circuit.simulate(c, circuit.Stimulus.step("VB7", -0.002), 400.0, 1.0,
                              solver="exp2", record=["VB7"])
    assert float(r2.trace("VB7").min()) < worm_motor.E_STRETCH_K_MV - 20.0


def test_plain_motor_network_has_no_stretch_mechanism():
    plain = worm.build_motor_network(stretch=False)
    assert "g_stretch_cat" not in plain.params and plain.params["c_m"].numel() == 2


def test_adaptation_repolarises_a_depolarised_motor_neuron_slowly(net):
    """A cut-off DB3 held up by a step current: with the slow K+ open (member 1) its V sags
    over a second towards E_K while the gate opens; without it (member 0) V stays up."""
    from wormlab import circuit

    assert net.params["g_adapt"].shape == (net.n_cells,) and float(net.params["g_adapt"].abs().max()) == 0.0
    i = net.index["DB3"]
    b = net.batched(2)
    with torch.no_grad():
        b.params["g_adapt"][1, i] = 100.0 * 0.5 / float(net.area_um2[i])  # 0.5 nS
        b.params["w_gap"][:, (net.gap_a == i) | (net.gap_b == i)] = 0.0
        b.params["w_syn"][:, net.syn_post == i] = 0.0
        r = circuit.simulate(b, circuit.Stimulus.step("DB3", 0.004), 3000.0, 1.0,
                             solver="exp2", record=["DB3"])
    v = r.trace("DB3")
    t = np.asarray(r.t_ms)
    early, late = int(np.searchsorted(t, 150.0)), -1
    assert abs(float(v[early, 0] - v[early, 1])) < 0.5 * abs(float(v[late, 0] - v[late, 1]))
    assert float(v[late, 1]) < float(v[late, 0]) - 5.0  # the adapted cell sits lower
    assert float(v[late, 0]) > -40.0  # the step holds it depolarised without adaptation


def test_loop_adaptation_is_set_on_cholinergic_motor_neurons_only(net):
    from wormlab.worm._loop import _network_params, check_params

    p = check_params({"adapt_a_nS": 0.5, "adapt_b_nS": 0.2, "adapt_tau_ms": 800.0})
    over = _network_params(net, p, worm.connection_groups(net))
    g = over["g_adapt"][0] * net.area_um2.double() / 100.0  # back to nS
    for n, k in net.index.items():
        c = motor_class(n)
        want = 0.5 if c in ("DA", "VA", "AS") else 0.2 if c in ("DB", "VB") else 0.0
        assert float(g[k]) == pytest.approx(want, abs=1e-12), n
        if want:
            assert float(over["tau_adapt"][0, k]) == 800.0
    with pytest.raises(ValueError, match="needs the Adaptation mechanism"):
        plain = worm.build_motor_network(stretch=False)
        _network_params(plain, p, worm.connection_groups(plain))
