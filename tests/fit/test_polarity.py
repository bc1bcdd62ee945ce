"""Synaptic weights and polarities with a transmitter penalty (issue 16 item 4)."""

from __future__ import annotations

import math

import pytest
import torch

from wormlab import circuit
from wormlab.fit import _polarity as P
from wormlab.fit._losses import trace_mse

SMALL = ("AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "DB1", "VB1", "MDL07")
# with GABA (VD, DD) and glutamate (AIB, RIM) neurons
MIXED = ("AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "DB1", "VB1", "DD1", "VD1", "VA1", "DA1",
         "AIBL", "RIML")
STIM = {"AVBL": 8e-3, "AVBR": 8e-3, "PVCL": 4e-3}
REC = ["AVAL", "AVAR", "AVBL", "AVBR", "PVCL"]


@pytest.fixture(scope="module")
def small():
    return P.polarity_network(circuit.build_network(cells=SMALL))


def test_twins_leave_the_traces_bitwise_unchanged(small):
    net = circuit.build_network(cells=SMALL)
    assert small.params["w_syn"].numel() == 2 * net.params["w_syn"].numel()
    with torch.no_grad():
        a = circuit.simulate(net, STIM, 5.0, record=REC).v_mV
        b = circuit.simulate(small, STIM, 5.0, record=REC).v_mV
    assert torch.equal(a, b)
    # the twins carry the opposite synapse type: moving weight onto them changes the traces
    w = small.params["w_syn"].detach().clone()
    C = small.n_original_connections
    w[C:] = w[:C]
    with torch.no_grad():
        c = circuit.simulate(small, STIM, 5.0, record=REC, params={"w_syn": w}).v_mV
    assert (c - a).abs().max() > 0.1


def test_only_the_polarity_parameters_are_fitted(small):
    pol = P.SynapticPolarity(small)
    assert [n for n, _ in pol.named_parameters()] == ["log_m", "a"]
    assert not any(k.startswith("net.") for k in pol.state_dict())


def test_transmitter_mapping_and_penalty_are_exact():
    """Every sign set to +0.5: an ACh pair (expected +1) costs ((0.5 - 1)/2)^2 = 1/16, a GABA
    pair (expected -1) ((0.5 + 1)/2)^2 = 9/16; glutamate pairs are free by default and
    constrained to +1 with glutamate="excitatory"."""
    net = P.polarity_network(circuit.build_network(cells=MIXED))
    pol = P.SynapticPolarity(net)
    t = pol.pairs.set_index(pol.pairs["pre"] + "->" + pol.pairs["post"])
    assert (t.loc["VD->DD", "transmitter"], t.loc["VD->DD", "expected_sign"]) == ("GABA", -1)
    assert (t.loc["AVB->AVA", "transmitter"], t.loc["AVB->AVA", "expected_sign"]) == (
        "Acetylcholine", 1)
    assert (t.loc["AIB->AVA", "transmitter"], t.loc["AIB->AVA", "expected_sign"]) == (
        "Glutamate", 0)
    n_ach = int((pol.pairs["transmitter"] == "Acetylcholine").sum())
    n_gaba = int((pol.pairs["transmitter"] == "GABA").sum())
    n_glu = int((pol.pairs["transmitter"] == "Glutamate").sum())
    assert n_ach and n_gaba and n_glu and n_ach + n_gaba + n_glu == len(pol.pairs)
    with torch.no_grad():
        pol.a.fill_(math.atanh(0.5))
    want = 3.0 * (n_ach / 16 + 9 * n_gaba / 16) / (n_ach + n_gaba)
    assert float(pol.penalty(3.0).detach()) == pytest.approx(want, rel=1e-12)
    exc = P.SynapticPolarity(net, glutamate="excitatory")
    with torch.no_grad():
        exc.a.fill_(math.atanh(0.5))
    want = (n_ach / 16 + n_glu / 16 + 9 * n_gaba / 16) / (n_ach + n_glu + n_gaba)
    assert float(exc.penalty(1.0).detach()) == pytest.approx(want, rel=1e-12)
    # the transmitter report: the GABA pairs disagree with +0.5, nothing else does
    rep = P.flipped_polarities(pol, reference="transmitter")
    assert rep["count"] == n_gaba and rep["of"] == n_ach + n_gaba
    assert all(line.split(" ")[0] in ("VD->DD", "VD->VA") for line in rep["flipped"])
    rep = P.flipped_polarities(pol)  # vs c302's signs: the GABA pairs now excitatory
    assert rep["count"] == n_gaba


@pytest.mark.parametrize("term", ["trace_mse", "penalty"])
def test_gradient_matches_finite_differences(small, term):
    """Each term separately (the penalty's gradient would hide an error in the trace's)."""
    pol = P.SynapticPolarity(small, sign_init=0.9)
    with torch.no_grad():
        pol.a.add_(torch.linspace(-0.4, 0.3, pol.a.numel(), dtype=torch.float64))
        pol.log_m.add_(torch.linspace(0.2, -0.2, pol.a.numel(), dtype=torch.float64))
    with torch.no_grad():
        tgt = circuit.simulate(small, STIM, 5.0, record=REC).v_mV[:, 0]

    def loss():
        if term == "penalty":
            return pol.penalty(3.0)
        r = circuit.simulate(small, STIM, 5.0, record=REC, params=pol(), check_every=0)
        return trace_mse(r.v_mV, tgt).sum()

    pol.zero_grad()
    loss().backward()
    grads = {n: getattr(pol, n).grad for n in ("a", "log_m")}
    h = 1e-5
    names = ("a",) if term == "penalty" else ("a", "log_m")
    for name in names:
        p = getattr(pol, name)
        for i in grads[name].abs().argsort(descending=True)[:2].tolist():  # the largest 2
            with torch.no_grad():
                p[i] += h
                up = float(loss())
                p[i] -= 2 * h
                down = float(loss())
                p[i] += h
            fd = (up - down) / (2 * h)
            assert abs(fd) > 1e-5, (name, i, fd)
            assert float(grads[name][i]) == pytest.approx(fd, rel=1e-4), (name, i)
    if term == "penalty":
        assert grads["log_m"] is None  # the penalty does not depend on the weight scales


@pytest.mark.slow
def test_recovers_a_flipped_polarity_unless_the_penalty_forbids_it(small):
    """Ground truth: c302 with AVB->AVA (27 contacts, cholinergic) made inhibitory. Fitting the
    scales and signs of AVB->AVA and AVA->AVB on one 10 ms window finds the flip (and only it);
    with a strong transmitter penalty the fit keeps AVB->AVA excitatory, as designed.
    Measured: loss 1055 -> 36 mV^2 in 10 Adam epochs, fitted sign of AVB->AVA -0.55."""
    truth = P.SynapticPolarity(small, sign_init=0.9)
    k = int(truth.pairs.index[(truth.pairs["pre"] == "AVB") & (truth.pairs["post"] == "AVA")][0])
    with torch.no_grad():
        truth.a[k] = -truth.a[k]
        tgt = circuit.simulate(small, STIM, 10.0, record=REC, params=truth()).v_mV[:, 0]
    free = ["AVB->AVA", "AVA->AVB"]
    pol = P.SynapticPolarity(small, sign_init=0.9, free=free)
    hist = P.fit_polarity(pol, STIM, 10.0, tgt, REC, epochs=10, lr=0.3)
    assert hist[-1]["loss"] < 0.1 * hist[0]["loss"], [h["loss"] for h in hist]
    rep = P.flipped_polarities(pol)
    assert rep["count"] == 1 and rep["flipped"][0].startswith("AVB->AVA"), rep["flipped"]
    assert P.flipped_polarities(pol, "transmitter")["count"] == 1
    # every pair outside `free` kept its start exactly
    fixed = ~pol.free
    start = P.SynapticPolarity(small, sign_init=0.9)
    assert int(fixed.sum()) == len(pol.pairs) - 2
    assert torch.equal(pol.a.detach()[fixed], start.a.detach()[fixed])
    assert torch.equal(pol.log_m.detach()[fixed], start.log_m.detach()[fixed])

    strict = P.SynapticPolarity(small, sign_init=0.9, free=free)
    P.fit_polarity(strict, STIM, 10.0, tgt, REC, epochs=5, lr=0.3, lam=1e5)
    assert P.flipped_polarities(strict)["count"] == 0
    assert float(strict.sign()[k].detach()) > 0.5


def test_errors_name_the_problem(small):
    net = circuit.build_network(cells=SMALL)
    with pytest.raises(P.PolarityError, match="not a polarity network"):
        P.SynapticPolarity(net)
    with pytest.raises(P.PolarityError, match="already a polarity network"):
        P.polarity_network(small)
    with pytest.raises(P.PolarityError, match="unknown pairs.*'AVA->XYZ'"):
        P.SynapticPolarity(small, free=["AVA->XYZ"])
    with pytest.raises(P.PolarityError, match="glutamate='maybe'"):
        P.SynapticPolarity(small, glutamate="maybe")
    with pytest.raises(P.PolarityError, match="level='cell'"):
        P.SynapticPolarity(small, level="cell")
    with pytest.raises(P.PolarityError, match="reference='x'"):
        P.flipped_polarities(P.SynapticPolarity(small), reference="x")


# ------------------------------------------------------------------ the real-data polarity fit
POLCFG = dict(name="t", cells=list(MIXED), window_ms=5.0, n_windows=2, discard_windows=1,
              lr=0.2, target={"kind": "correlation", "recording": "kato2015", "worm": 0})


def test_polarity_fit_resumes_to_the_uninterrupted_result(tmp_path):
    """3 epochs in one go vs 1 epoch, killed, then resumed to 3: identical history and table."""
    full = P.run_polarity_fit({**POLCFG, "epochs": 3, "out_dir": str(tmp_path / "a")},
                              show_progress=False)
    P.run_polarity_fit({**POLCFG, "epochs": 1, "out_dir": str(tmp_path / "b")},
                       show_progress=False)
    res = P.run_polarity_fit({**POLCFG, "epochs": 3, "out_dir": str(tmp_path / "b")},
                             show_progress=False)
    strip = [{k: v for k, v in h.items() if k != "wall_s"} for h in res["history"]]
    assert strip == [{k: v for k, v in h.items() if k != "wall_s"} for h in full["history"]]
    assert len(strip) == 4 and strip[-1]["loss"] < strip[0]["loss"]
    assert (tmp_path / "a" / "polarity.csv").read_text() == \
        (tmp_path / "b" / "polarity.csv").read_text()
    assert res["constrained_pairs"] > 0 and "kato2015" in res["data"]
    with pytest.raises(P.PolarityError, match="another configuration"):
        P.run_polarity_fit({**POLCFG, "epochs": 3, "lam": 2.0, "out_dir": str(tmp_path / "b")},
                           show_progress=False)


def test_polarity_config_errors_are_clear(tmp_path):
    with pytest.raises(P.PolarityError, match=r"unknown field\(s\) \['epoch'\]"):
        P.run_polarity_fit({"name": "x", "epoch": 3})
    with pytest.raises(P.PolarityError, match="'name' is required"):
        P.run_polarity_fit({})
    with pytest.raises(P.PolarityError, match="discard_windows must be in"):
        P.run_polarity_fit({"name": "x", "n_windows": 2, "discard_windows": 2})
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed")
    with pytest.raises(P.PolarityError, match="bad.yml: cannot read"):
        P.run_polarity_fit(bad)
