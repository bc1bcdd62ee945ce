"""Circuit core v2: mechanism plug-ins, parameter metadata, SimConfig/SOLVERS, any-state
recording, the discrete adjoint, populations on Dask."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from wormlab import circuit

DATA = Path(__file__).parent / "data"
SUB = ["AVAL", "AVAR", "AVBL", "DA1", "DB1", "VA1", "DD1", "MDL07", "MDL08", "MVL07"]


@pytest.fixture(scope="module")
def sub(c302_spec, make_sub):
    return make_sub(c302_spec, SUB)


def _stim():
    return circuit.Stimulus.step(["AVAL", "DB1", "DA1"], 0.008, start_ms=0.5)


# ----------------------------------------------------------------------------- regression
@pytest.mark.slow
def test_refactored_core_reproduces_previous_traces(full_net):
    """C1 Full through the mechanism-assembled core equals the traces the pre-v2 core wrote
    (tests/circuit/data/c1_traces_v1.npz, float64): RK4 0-120 ms with c302's stimulus on from
    50 ms, exp2, and a perturbed batch of 2, all cells, to 1e-10 mV."""
    ref = np.load(DATA / "c1_traces_v1.npz")
    assert list(ref["names"]) == full_net.names
    with torch.no_grad():
        r = circuit.simulate(full_net, "c302", 120.0, 0.1, record_every=20)
        assert np.abs(r.v_mV[:, 0].numpy() - ref["rk4_v_mV"]).max() <= 1e-10
        assert np.abs(r.y_final[0].numpy() - ref["rk4_y_final"]).max() <= 1e-10
        # the stimulus was flowing: PLM depolarised by > 1 mV after 50 ms
        plm = full_net.names.index("PLML")
        assert ref["rk4_v_mV"][-1, plm] - ref["rk4_v_mV"][25, plm] > 1.0
        r = circuit.simulate(full_net, "c302", 20.0, 0.05, solver="exp2", record_every=20)
        assert np.abs(r.v_mV[:, 0].numpy() - ref["exp2_v_mV"]).max() <= 1e-10
        pn = full_net.perturbed(2, 0.1, seed=1)
        stim = circuit.Stimulus.step(["AVBL", "AVBR"], 0.004, start_ms=5.0)
        r = circuit.simulate(pn, stim, 30.0, 0.1, record_every=10)
        assert np.abs(r.v_mV.numpy() - ref["batch_v_mV"]).max() <= 1e-10


def test_state_layout_comes_from_the_mechanisms(sub):
    assert sub.state_names == ("v", "n", "p", "q", "e", "f", "ca", "s")
    assert circuit.STATE_NAMES == sub.state_names[:-1]
    gates = [g.state for m in sub.cell_mechanisms for g in m.gates]
    assert list(sub.state_names[1:1 + len(gates)]) == gates
    with pytest.raises(KeyError, match="did you mean"):
        sub.state_index("caa")


# ----------------------------------------------------------------------------- plug-ins
def test_extra_k_current_plugs_in_without_touching_the_simulator(c302_spec, make_sub, sub):
    net = make_sub(c302_spec, SUB, mechanisms=("k_extra",))  # by registered name
    assert net.state_names == ("v", "n", "p", "q", "e", "f", "m", "ca", "s")
    netc = circuit.build_network(circuit.subset_spec(c302_spec, SUB),
                                 mechanisms=[circuit.ExtraK(where=("AVA",))])
    mask = netc.mask_k_extra
    assert [netc.names[i] for i in mask.nonzero().flatten()] == ["AVAL", "AVAR"]
    with torch.no_grad():
        base = circuit.simulate(sub, _stim(), 20.0)
        off = circuit.simulate(netc, _stim(), 20.0,
                               params={"g_kextra": torch.zeros_like(netc.params["g_kextra"])})
        on = circuit.simulate(netc, _stim(), 20.0, record=["AVAL", "DB1", "m:AVAL", "m:DB1"])
    # switched off it changes nothing; on, it hyperpolarises AVA (E_K = -60 mV)
    assert torch.allclose(off.v_mV, base.v_mV, rtol=0, atol=1e-12)
    d_aval = (on.trace("AVAL") - base.trace("AVAL")).mean()
    assert d_aval < -0.5, f"extra K+ on AVA should lower its V, changed by {float(d_aval)}"
    # its gate follows dm/dt = (m_inf(V) - m)/tau_m: check one step of the recorded traces
    m, v = on.trace("AVAL", "m")[:, 0].double(), on.trace("AVAL")[:, 0].double()
    m_inf = torch.sigmoid((v + 20.0) / 5.0)
    dm = (m[1:] - m[:-1]) / 0.1
    assert torch.allclose(dm, ((m_inf[:-1] + m_inf[1:]) / 2 - (m[:-1] + m[1:]) / 2) / 10.0,
                          rtol=0.05, atol=1e-5)


@dataclass(frozen=True)
class _Clock(circuit.Mechanism):
    """A custom state with dx/dt = 1 / tau_clock: x(t) = t / tau_clock exactly."""

    name: str = "clock"
    params: tuple = (circuit.Param("tau_clock", "ms", "time_constant", default=2.0,
                                   source="test", provenance="mechanistic-default"),)
    states: tuple = ("clock",)

    def derivative(self, P, S, v, aux):
        return {"clock": torch.ones_like(v) / P["tau_clock"]}


def test_custom_state_mechanism_and_its_gradient(c302_spec, make_sub):
    net = make_sub(c302_spec, ["AVAL", "AVAR"], mechanisms=[_Clock(where=("AVAL",))])
    assert "clock" in net.state_names
    res = circuit.simulate(net, None, 5.0, record=["clock:AVAL", "clock:AVAR", "AVAL"])
    t = res.t_ms
    assert torch.allclose(res.trace("AVAL", "clock")[:, 0].detach(), t / 2.0, atol=1e-12)
    assert float(res.trace("AVAR", "clock").abs().max()) == 0.0  # masked: not on AVAR
    res.states["clock"].sum().backward()
    g = net.params["tau_clock"].grad
    # d/dtau sum_t t/tau = -sum_t t / tau^2, one group (type) of neurons
    assert torch.allclose(g, torch.tensor([-(t / 4.0).sum()], dtype=g.dtype), rtol=1e-9)
    with pytest.raises(NotImplementedError, match="linear form"):
        circuit.simulate(net, None, 1.0, solver="expeuler")


def test_mechanism_errors_are_clear(c302_spec, make_sub):
    with pytest.raises(KeyError, match="unknown mechanism 'k_extr'.*did you mean"):
        make_sub(c302_spec, ["AVAL"], mechanisms=("k_extr",))
    with pytest.raises(KeyError, match="matches no cell"):
        make_sub(c302_spec, ["AVAL"], mechanisms=[circuit.ExtraK(where=("XYZ",))])
    dup = circuit.ExtraK(name="k_extra2")  # same parameter names as k_extra
    with pytest.raises(ValueError, match="already declared"):
        make_sub(c302_spec, ["AVAL"], mechanisms=[circuit.ExtraK(), dup])
    with pytest.raises(ValueError, match="unknown kind"):
        circuit.Param("x", "mV", "voltage")


# ----------------------------------------------------------------------------- metadata
def test_parameter_table_has_units_bounds_sharing_provenance(full_net):
    t = full_net.parameter_table()
    assert set(t.index) == set(full_net.params)
    assert t[["unit", "kind", "sharing", "provenance", "source"]].notna().all().all()
    # DD017 ranges
    assert tuple(t.loc["g_ca", ["lower", "upper"]]) == (0.0, 100.0)
    assert tuple(t.loc["e_kslow", ["lower", "upper"]]) == (-100.0, 80.0)
    assert tuple(t.loc["tau_n", ["lower", "upper"]]) == (0.01, 10_000.0)
    assert t.loc["h_ca_half", "lower"] == 0.0 and t.loc["h_ca_half", "open_lower"]
    assert t.loc["w_syn", "sharing"] == "connection"
    assert t.loc["g_syn", "sharing"] == "synapse_type"
    assert t.loc["g_leak", "sharing"].startswith("cell (type: 2 groups)")
    # c302's C1 values are inside the bounds, and all are c302 defaults
    assert t["in_bounds"].all(), t[~t["in_bounds"]]
    assert set(t["provenance"]) == {"c302-default"}
    # a value pushed outside is flagged, and provenance can be set
    net = circuit.build_network(full_net.spec)
    with torch.no_grad():
        net.params["tau_n"][0] = 20_000.0
    assert not bool(net.within_bounds("tau_n")[0])
    net.set_provenance("g_ca", "fitted", loss="corr", run_id="r1")
    assert net.parameter_table().loc["g_ca", "provenance"] == "fitted"
    with pytest.raises(ValueError, match="provenance"):
        net.set_provenance("g_ca", "guessed")


# ----------------------------------------------------------------------------- config
def test_simconfig_and_solver_registry(sub):
    cfg = circuit.SimConfig()
    assert cfg.dt_ms == circuit.DEFAULT_DT_MS == 0.1 and cfg.solver == "rk4_fused"
    assert circuit.SimConfig.from_dict(cfg.to_dict()) == cfg
    assert set(circuit.SOLVERS) >= {"rk4_fused", "exp2", "expeuler", "dopri5", "rk4"}
    with pytest.raises(ValueError, match="unknown solver 'rk5'"):
        circuit.SimConfig(solver="rk5")
    with pytest.raises(ValueError, match="dt_ms"):
        circuit.SimConfig(dt_ms=-0.1)
    with pytest.raises(ValueError, match="unknown field 'dtt_ms'"):
        circuit.SimConfig.from_dict({"dtt_ms": 0.1})
    with pytest.raises(TypeError, match="unknown options"):
        circuit.simulate(sub, None, 1.0, recrd=["AVAL"])
    with torch.no_grad():
        a = circuit.simulate(sub, _stim(), 5.0, config=circuit.SimConfig(record_every=5))
        b = circuit.simulate(sub, _stim(), 5.0, config={"record_every": 5, "dtype": "float32"})
    assert a.v_mV.shape == (11, 1, len(SUB)) and a.info["dt_ms"] == 0.1
    assert b.v_mV.dtype == torch.float32
    assert torch.allclose(a.v_mV.float(), b.v_mV, atol=1e-3)


def test_device_path(sub):
    """CPU CI exercises the device plumbing (``device=`` in SimConfig moves net and data)."""
    with torch.no_grad():
        r = circuit.simulate(sub, _stim(), 2.0, device="cpu", dtype=torch.float32)
    assert r.info["device"] == "cpu" and r.v_mV.device.type == "cpu"
    if torch.cuda.is_available():  # pragma: no cover - only on a GPU machine
        with torch.no_grad():
            g = circuit.simulate(sub, _stim(), 2.0, device="cuda")
        assert torch.allclose(g.v_mV.cpu(), circuit.simulate(sub, _stim(), 2.0).v_mV.detach(),
                              atol=1e-6)


# ----------------------------------------------------------------------------- recording
def test_record_any_state_by_name(sub):
    with torch.no_grad():
        r = circuit.simulate(sub, _stim(), 10.0, record={"v": ["AVAL", "MDL07"],
                                                         "ca": ["MDL07", "MDL08"],
                                                         "n": None, "s": ["DB1"]})
        r2 = circuit.simulate(sub, _stim(), 10.0, record=["AVAL", "ca:MDL07", "s:DB1"])
    y = r.y_final[0]
    assert r.v_mV.shape == (101, 1, 2) and r.names == ["AVAL", "MDL07"]
    assert r.states["ca"].shape == (101, 1, 2) and r.states["n"].shape == (101, 1, len(SUB))
    i = sub.index
    assert float(r.trace("MDL07", "ca")[-1, 0]) == float(y[sub.state_index("ca"), i["MDL07"]])
    assert float(r.trace("DB1", "s")[-1, 0]) == float(y[sub.state_index("s"), i["DB1"]])
    assert torch.equal(r.states["n"][-1, 0], y[sub.state_index("n")])
    assert float(r.trace("MDL07", "ca").max()) > 0  # muscle calcium next to V
    assert torch.equal(r2.trace("MDL07", "ca"), r.trace("MDL07", "ca"))
    assert list(r.to_frame(state="ca").columns) == ["MDL07", "MDL08"]
    with pytest.raises(KeyError, match="unknown state 'cal'"):
        circuit.simulate(sub, None, 1.0, record=["cal:AVAL"])
    with pytest.raises(KeyError, match="unknown cell 'AVAX'"):
        circuit.simulate(sub, None, 1.0, record={"ca": ["AVAX"]})


# ----------------------------------------------------------------------------- gradients
def _grads(net, stim, mode, duration_ms, **kw):
    net.zero_grad(set_to_none=True)
    r = circuit.simulate(net, stim, duration_ms, gradient=mode,
                         record=["AVAL", "DB1", "ca:MDL07", "n:AVAL"], record_every=5, **kw)
    loss = ((r.v_mV + 40.0) ** 2).mean() + 1e4 * r.states["ca"].mean() + r.y_final[:, 0].mean()
    loss.backward()
    assert r.info["gradient"] == mode
    return {k: p.grad.clone() for k, p in net.params.items()}


def test_adjoint_equals_autograd_subcircuit(sub):
    ga = _grads(sub, _stim(), "autograd", 10.0)
    gj = _grads(sub, _stim(), "adjoint", 10.0)
    gs = _grads(sub, _stim(), "adjoint", 10.0, adjoint_memory_mb=1e-3)  # segments recomputed
    for k in ga:
        scale = float(ga[k].abs().max()) or 1.0
        assert float((ga[k] - gj[k]).abs().max()) <= 1e-9 * scale, k
        assert float((ga[k] - gs[k]).abs().max()) <= 1e-9 * scale, k


def test_adjoint_gradient_of_the_stimulus(sub):
    """Gradients flow into a learned stimulus waveform (for the sensory front-end)."""
    u = torch.full((50, 1, 1), 0.006, dtype=torch.float64)

    def run(mode):
        x = u.clone().requires_grad_(True)
        stim = circuit.Stimulus.waveform(["AVAL"], x, 0.1)
        r = circuit.simulate(sub, stim, 5.0, record=["AVAL", "AVAR"], gradient=mode)
        (g,) = torch.autograd.grad(r.v_mV.mean(), x)
        return g

    ga, gj = run("autograd"), run("adjoint")
    assert float(ga.abs().max()) > 0
    assert torch.allclose(ga, gj, rtol=1e-9, atol=1e-15)


@pytest.mark.slow
def test_adjoint_equals_autograd_full_network_50ms(full_net):
    ga = _grads(full_net, "c302", "autograd", 50.0)
    gj = _grads(full_net, "c302", "adjoint", 50.0)
    for k in ga:
        scale = float(ga[k].abs().max()) or 1.0
        assert float((ga[k] - gj[k]).abs().max()) <= 1e-9 * scale, k


# parameter family -> (name, which element): every family of the issue
FAMILIES = [
    ("channel density", "g_kslow", 0), ("reversal potential", "e_kfast", 0),
    ("time constant", "tau_q", 0), ("Ca pool time constant", "tau_ca", 0),
    ("Ca pool rho", "rho_ca", 0), ("synaptic weight", "w_syn", "DB1->MDL07"),
    ("synaptic conductance", "g_syn", "type of DB1->MDL07"), ("synaptic rate", "syn_k", 0),
    ("synaptic slope", "syn_delta", 0), ("synaptic threshold", "syn_vth", 0),
    ("gap weight", "w_gap", "first"), ("gap conductance", "g_gap", 0),
    ("muscle Ca density", "g_ca", "muscle"), ("muscle leak", "g_leak", "muscle"),
]


@pytest.mark.parametrize("family,name,which", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_adjoint_vs_finite_differences_every_family(sub, family, name, which):
    net = sub
    if which == "DB1->MDL07":
        idx = int(((net.syn_pre == net.index["DB1"]) & (net.syn_post == net.index["MDL07"]))
                  .nonzero()[0])
    elif which == "type of DB1->MDL07":
        c = int(((net.syn_pre == net.index["DB1"]) & (net.syn_post == net.index["MDL07"]))
                .nonzero()[0])
        idx = int(net.syn_type[c])
    elif which == "first":
        idx = 0
    elif which == "muscle":
        idx = net.group_names.index("GenericMuscleCell")
    else:
        idx = which
    stim = _stim()
    base = {k: v.detach().clone() for k, v in net.params.items()}

    def loss(p):
        r = circuit.simulate(net, stim, 8.0, params=p, record=["AVAL", "DB1", "MDL07",
                                                                "ca:MDL07"])
        return r.v_mV.mean() + 1e5 * r.states["ca"].mean()

    p = {k: v.clone().requires_grad_(k == name) for k, v in base.items()}
    out = loss(p)
    (g,) = torch.autograd.grad(out, p[name])
    x0 = float(base[name][idx])
    h = 1e-5 * abs(x0) if x0 != 0 else 1e-7
    vals = []
    for sgn in (1, -1):
        q = {k: v.clone() for k, v in base.items()}
        q[name][idx] = x0 + sgn * h
        with torch.no_grad():
            vals.append(float(loss(q)))
    fd = (vals[0] - vals[1]) / (2 * h)
    ad = float(g[idx])
    assert abs(fd) > 1e-9, f"{family}: loss insensitive, the check would be vacuous"
    assert abs(ad - fd) <= 0.01 * abs(fd), f"{family} ({name}[{idx}]): adjoint {ad} vs FD {fd}"


# ----------------------------------------------------------------------------- populations
def test_population_in_process_equals_dask(sub):
    gen = torch.Generator().manual_seed(0)
    n = 5
    # small perturbations: +5 % neuron g_ca already makes RK4 at 0.1 ms diverge on this
    # strongly driven sub-circuit (see test_diverging_run_is_named)
    pop = {"g_ca": sub.params["g_ca"].detach() * (1 + 0.01 * torch.rand(n, 2, generator=gen,
                                                                       dtype=torch.float64)),
           "w_syn": sub.params["w_syn"].detach() * torch.exp(
               0.05 * torch.randn(n, sub.params["w_syn"].numel(), generator=gen,
                                  dtype=torch.float64))}
    cfg = circuit.SimConfig(record=("AVAL", "ca:MDL07"), record_every=10)
    here = circuit.simulate_population(sub, pop, _stim(), 10.0, config=cfg, batch_size=2)
    dask = circuit.simulate_population(sub, pop, _stim(), 10.0, config=cfg, batch_size=2,
                                       scheduler="local", n_workers=2)
    assert here["v"].shape == (11, n, 1) and here["ca"].shape == (11, n, 1)
    for k in here:
        assert np.array_equal(here[k], dask[k]), k
    # member 0 equals a plain simulate with its parameters
    single = circuit.build_network(sub.spec)
    with torch.no_grad():
        for k, v in pop.items():
            single.params[k].copy_(v[0])
        r = circuit.simulate(single, _stim(), 10.0, config=cfg)
    assert np.allclose(here["v"][:, 0], r.v_mV[:, 0].numpy(), rtol=0, atol=1e-9)
    assert np.isfinite(here["v"]).all() and np.abs(here["v"]).max() < 200
    with pytest.raises(ValueError, match="shape"):
        circuit.simulate_population(sub, {"g_ca": torch.ones(3, 5)}, None, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        circuit.simulate_population(sub, {"g_ca": torch.full((3, 2), float("nan"))}, None, 1.0)


def test_diverging_run_is_named(sub):
    """+20 % neuron Ca density diverges with RK4 at 0.1 ms within 10 ms (V -> 1e280 mV, still
    finite): the blow-up check names it instead of returning absurd traces."""
    g = sub.params["g_ca"].detach() * torch.tensor([1.2, 1.0], dtype=torch.float64)
    with torch.no_grad(), pytest.raises(circuit.CircuitBlowUpError, match="diverging.*cell"):
        circuit.simulate(sub, _stim(), 10.0, params={"g_ca": g}, check_every=20)
    with torch.no_grad():  # a smaller step integrates the same parameters
        r = circuit.simulate(sub, _stim(), 10.0, 0.025, params={"g_ca": g})
    assert float(r.v_mV.abs().max()) < 200


def test_population_on_a_scheduler_address(sub):
    """Any running ``distributed`` scheduler, given by address, gives the in-process result."""
    from dask.distributed import LocalCluster

    pop = {"g_ca": sub.params["g_ca"].detach() * torch.tensor([[1.0, 1.0], [1.01, 0.99],
                                                                [0.99, 1.0]],
                                                               dtype=torch.float64)}
    here = circuit.simulate_population(sub, pop, _stim(), 5.0, batch_size=2, reduce=_mean_v)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        there = circuit.simulate_population(sub, pop, _stim(), 5.0, batch_size=2,
                                            scheduler=cluster.scheduler_address,
                                            reduce=_mean_v)
    assert here.shape == (3,) and np.array_equal(here, there)
    assert len(set(here.round(9))) == 3  # the members differ


def _mean_v(res):
    """A per-member loss computed where the member ran (picklable: module level)."""
    return res.v_mV.mean((0, 2)).numpy()
