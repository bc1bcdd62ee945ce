"""wormlab.fit core: losses (exact on constructed cases, gradients = finite differences),
the bounded transform, Adam / CMA-ES / hybrid, resume after a kill, ground-truth recovery."""

import json
import math

import numpy as np
import pytest
import torch

from wormlab import circuit
from wormlab.fit import _fit as F
from wormlab.fit import _losses as L

CELLS = ("AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "DB1")
STIM = {"AVAL": 0.006, "AVBL": 0.006, "PVCL": 0.006}


# ----------------------------------------------------------------------------- losses
def test_losses_are_exact_on_constructed_cases():
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    a = torch.stack([torch.sin(2 * math.pi * 5 * t), torch.cos(2 * math.pi * 5 * t),
                     -torch.sin(2 * math.pi * 5 * t)], -1)  # (T, 3)
    x = a.unsqueeze(1)  # (T, 1, 3)
    assert float(L.trace_mse(x, a)) == 0.0
    assert torch.allclose(L.trace_mse(x + 2.0, a), torch.tensor([4.0], dtype=torch.float64))
    c = L.pearson_corr(x)[0]
    assert torch.allclose(c[0, 2], torch.tensor(-1.0, dtype=torch.float64), atol=1e-9)
    assert float(L.correlation_mse(x, torch.as_tensor(np.corrcoef(a.T.numpy())))) < 1e-18
    # correlation MSE of a known target: off-diagonal entries 0 vs the true ones
    want = ((c - torch.eye(3, dtype=c.dtype)) ** 2)[~torch.eye(3, dtype=torch.bool)].mean()
    assert torch.allclose(L.correlation_mse(x, torch.eye(3, dtype=torch.float64))[0], want)
    v = torch.cat([torch.zeros(10, 1, 2), torch.ones(10, 1, 2) * torch.tensor([3.0, -1.0])])
    assert torch.equal(L.response_amplitude(v, 10)[0], torch.tensor([3.0, -1.0]))
    # a pure 50 s oscillation: zero spectral loss at 50 s, large at 20 s
    ts = torch.arange(0, 400, 0.5, dtype=torch.float64)
    osc = torch.sin(2 * math.pi * ts / 50.0)[:, None, None]
    assert float(L.spectral_period_loss(osc, 0.5, 50.0)) < 0.02
    assert float(L.spectral_period_loss(osc, 0.5, 20.0)) > 0.9


def test_loss_errors_are_clear():
    with pytest.raises(ValueError, match="NaN"):
        L.trace_mse(torch.full((3, 1, 2), float("nan")), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="does not match"):
        L.trace_mse(torch.zeros(3, 1, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="fewer than two periods"):
        L.spectral_period_loss(torch.zeros(10, 1, 1), 1.0, 50.0)
    with pytest.raises(ValueError, match="max_norm"):
        L.clip_gradients([torch.zeros(1, requires_grad=True)], float("nan"))


@pytest.mark.parametrize("which", ["trace", "corr", "amplitude", "spectral"])
def test_loss_gradients_match_finite_differences(which):
    """Each loss differentiated through a short circuit run equals central differences of
    the same objective (a channel density of the sub-circuit)."""
    net = circuit.build_network(cells=CELLS)
    target = circuit.simulate(net, STIM, 6.0).v_mV.detach()[:, 0]

    def objective(g):
        r = circuit.simulate(net, STIM, 6.0, params={"g_ca": g})
        v = r.v_mV
        if which == "trace":
            return L.trace_mse(v, target + 1.0)[0]
        if which == "corr":
            return L.correlation_mse(v, torch.eye(len(CELLS), dtype=v.dtype))[0]
        if which == "amplitude":
            return L.response_amplitude(v, 10).sum()
        return L.spectral_period_loss(v, 1e-4, 2e-3).mean()

    g0 = net.params["g_ca"].detach().clone()
    g = g0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(g), g)
    h = 1e-6 * float(g0[0])
    e = torch.zeros_like(g0)
    e[0] = h
    with torch.no_grad():
        fd = (float(objective(g0 + e)) - float(objective(g0 - e))) / (2 * h)
    assert abs(fd) > 1e-9, "insensitive objective: the check would be vacuous"
    assert abs(float(grad[0]) - fd) <= 0.01 * abs(fd), (float(grad[0]), fd)


# ----------------------------------------------------------------------------- bounds
def test_transform_keeps_every_value_inside_its_bounds():
    net = circuit.build_network(cells=CELLS)
    for name in ("g_ca", "e_kslow", "tau_n", "scale_q", "h_k", "w_syn"):
        x = net.params[name].detach()
        z = F.to_unconstrained(net, name, x)
        assert torch.allclose(F.from_unconstrained(net, name, z), x, rtol=1e-6, atol=1e-12), name
        for big in (-1e4, 1e4):
            y = F.from_unconstrained(net, name, torch.full_like(z, big))
            lo, hi = net.bounds(name)
            a = y.abs() if name in ("scale_q", "h_k") else y
            assert bool(((a >= lo) & (a <= hi)).all()), (name, big, y)
        if name in ("scale_q", "h_k"):  # sign fixed
            assert bool((torch.sign(F.from_unconstrained(net, name, z * 0 + 50.0))
                         == torch.sign(x)).all())


def test_adam_pushed_against_a_bound_stays_inside(tmp_path):
    """A loss that rewards an ever larger conductance drives g_ca to the 100 mS/cm^2 DD017
    bound but never past it."""
    net = circuit.build_network(cells=CELLS)
    z = F.to_unconstrained(net, "g_ca", net.params["g_ca"].detach()).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        (-F.from_unconstrained(net, "g_ca", z).sum()).backward()
        opt.step()
    x = F.from_unconstrained(net, "g_ca", z).detach()
    assert float(x.max()) <= 100.0 and float(x.min()) > 99.0


# ----------------------------------------------------------------------------- fits
def _cfg(tmp_path, **kw):
    params = kw.pop("parameters", ("g_ca", "e_leak"))
    target = kw.pop("target", None)
    factors = ((1.25, 0.85)[:len(params)] if target is None
               else tuple(target.get("perturb", {}).get(p, 1.0) for p in params))
    return F.recovery_config(params, factors, name="t", out_dir=str(tmp_path / "run"), **kw)


@pytest.mark.slow
def test_ground_truth_recovery_with_adam(tmp_path):
    """Perturb g_ca (x1.25) and e_leak (x0.85) of a 6-neuron circuit, fit them back from the
    perturbed start on 2 x 3 ms windows (multiple shooting from the true states). Measured:
    loss 4.4 -> 5e-7, g_ca within 0.02 %, e_leak within 0.14 % (30 Adam epochs). (g_ca with
    g_kslow instead are nearly degenerate on such short windows: 4-10 % off at a 2,400x lower
    loss, so that pair is not used to test recovery.)"""
    cfg = _cfg(tmp_path)
    res, fitted = F.run_fit(cfg, show_progress=False)
    summary = json.loads((tmp_path / "run" / "result.json").read_text())
    start = summary["history"][0]["loss"]
    assert res.loss < 1e-4 * start, (res.loss, start)
    assert max(summary["rel_err"].values()) < 0.01, summary["rel_err"]
    t = fitted.parameter_table()
    assert t.loc["g_ca", "provenance"] == "fitted" and t.loc["g_leak", "provenance"] != "fitted"
    assert fitted.provenance["g_ca"]["run_id"] == res.run_id


def test_cma_population_with_a_diverging_member_and_resume(tmp_path):
    """CMA-ES evaluates its population as one batch; a member that diverges is scored as
    failed (not a crash); a killed run resumes to the same state as an uninterrupted one."""
    cfg = _cfg(tmp_path, optimiser="cma", max_evals=24, cma_popsize=6, cma_sigma0=2.0,
               parameters=("g_ca",), target={"kind": "ground_truth",
                                             "perturb": {"g_ca": 1.1}})
    obj = F.Objective(cfg)
    Z = np.stack([obj.flatten(obj.z_from_x(obj.start)).numpy(),
                  np.full(obj.sizes[0], 8.0)])  # the second: g_ca ~ 100 mS/cm^2, diverges
    f = obj.loss_np(Z)
    assert np.isfinite(f[0]) and f[0] < F.FAILED_LOSS and f[1] == F.FAILED_LOSS
    full = F.fit_cma(obj, cfg, out=tmp_path / "full", show_progress=False)
    part = F.fit_cma(obj, cfg, out=tmp_path / "part", max_evals=12, show_progress=False)
    assert part.evals == 12
    resumed = F.fit_cma(obj, cfg, out=tmp_path / "part", show_progress=False)
    assert resumed.evals == full.evals == 24
    assert resumed.loss == full.loss
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


def test_discarded_windows_are_simulated_but_not_scored(tmp_path):
    """``discard_windows=d``: the first d windows carry the state forward but add nothing to
    the loss, which is the mean over the remaining windows. Checked against an independent
    one-window objective: 3 L(n=3, d=0) - 2 L(n=3, d=1) must be window 0's own loss."""
    kw = dict(parameters=("g_ca",), shooting="carry",
              target={"kind": "ground_truth", "perturb": {"g_ca": 1.2}})

    def loss(**o):
        obj = F.Objective(_cfg(tmp_path, **kw, **o))
        return float(obj.loss_np(obj.flatten(obj.z_from_x(obj.start)).numpy()[None])[0])

    l0 = loss(n_windows=1)
    full, skip1, skip2 = (loss(n_windows=3, discard_windows=d) for d in (0, 1, 2))
    assert l0 > 0 and skip1 != full
    assert 3 * full - 2 * skip1 == pytest.approx(l0, rel=1e-9)
    assert 2 * skip1 - skip2 == pytest.approx((3 * full - l0 - skip2), rel=1e-9)
    with pytest.raises(ValueError, match="discard_windows must be in"):
        _cfg(tmp_path, n_windows=2, discard_windows=2)


def test_adam_resumes_bitwise(tmp_path):
    cfg = _cfg(tmp_path, max_epochs=6, parameters=("g_ca",), lr_decay=0.9,
               target={"kind": "ground_truth", "perturb": {"g_ca": 1.2}})
    obj = F.Objective(cfg)
    full = F.fit_adam(obj, cfg, out=tmp_path / "a", show_progress=False)
    F.fit_adam(obj, cfg, out=tmp_path / "b", max_epochs=3, show_progress=False)
    resumed = F.fit_adam(obj, cfg, out=tmp_path / "b", show_progress=False)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert torch.equal(resumed.params["g_ca"], full.params["g_ca"])


def test_hybrid_runs_cma_then_adam(tmp_path):
    cfg = _cfg(tmp_path, optimiser="hybrid", max_evals=24, cma_popsize=6, max_epochs=5,
               parameters=("g_ca",), target={"kind": "ground_truth",
                                             "perturb": {"g_ca": 1.3}})
    res, _ = F.run_fit(cfg, show_progress=False)
    phases = [h["phase"] for h in res.history]
    assert phases[:2] == ["cma", "cma"] and phases[-1] == "adam"
    assert res.loss <= min(h["loss"] for h in res.history if h["phase"] == "cma") + 1e-12


def test_fit_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown field 'optimizer'"):
        F.FitConfig.from_dict({"optimizer": "adam"})
    with pytest.raises(ValueError, match="optimiser 'sgd'"):
        F.FitConfig(optimiser="sgd")
    with pytest.raises(ValueError, match="only for ground_truth"):
        F.FitConfig(target={"kind": "correlation"}, shooting="target")
    with pytest.raises(KeyError, match="unknown parameters.*did you mean"):
        F.Objective(_cfg(tmp_path, parameters=("g_caa",), target={"kind": "ground_truth"}))
    with pytest.raises(KeyError, match="unknown cell"):
        F.Objective(_cfg(tmp_path, record=("AVAX",)))
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ValueError, match="not valid yml"):
        F.FitConfig.load(bad)


def test_cli_fit_run_from_yaml_resumes(tmp_path, capsys):
    """``wormlab fit run CONFIG`` fits, writes the registry file and the result; running it
    again continues from the checkpoint (no epoch is redone)."""
    from wormlab.cli import main
    from wormlab.fit import load_params

    cfg = tmp_path / "fit.yml"
    cfg.write_text(f"""
name: cli
network: {{cells: [AVAL, AVAR, AVBL, PVCL]}}
parameters: [g_ca]
target: {{kind: ground_truth, perturb: {{g_ca: 1.2}}}}
stimulus: {{AVAL: 0.006, PVCL: 0.006}}
window_ms: 2.0
n_windows: 1
max_epochs: 3
learning_rate: 0.1
out_dir: {tmp_path / "run"}
""")
    assert main(["fit", "run", str(cfg)]) == 0
    assert "fit " in capsys.readouterr().out
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert len(result["history"]) == 3
    net = load_params(tmp_path / "run" / "params.json")
    assert net.provenance["g_ca"]["provenance"] == "fitted"
    assert torch.allclose(net.params["g_ca"], torch.tensor(result["params"]["g_ca"],
                                                           dtype=net.params["g_ca"].dtype))
    assert main(["fit", "run", str(cfg)]) == 0  # resumed: still 3 epochs in the history
    assert len(json.loads((tmp_path / "run" / "result.json").read_text())["history"]) == 3
    cfg.write_text(cfg.read_text().replace("perturb: {g_ca: 1.2}", "perturb: {g_ca: 80.0}"))
    assert main(["fit", "run", str(cfg)]) == 2  # a start outside the bounds
    assert "g_ca" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_autofit_quick():
    """``wormlab bench autofit --quick``: the three optimisers on one budget, Dask vs
    in-process population throughput."""
    from wormlab.fit import bench

    out = bench.run(quick=True)
    for opt in ("adam", "cma", "hybrid"):
        r = out[opt]
        assert math.isfinite(r["final_loss"]) and r["final_loss"] <= r["start_loss"], opt
        assert r["evals"] > 0 and r["evals_per_s"] > 0
        assert r["wall_s"] < 3 * out["budget_s_per_optimiser"] + 30
    assert out["population_evals_per_s_inprocess"] > 0 and out["population_evals_per_s_dask2"] > 0
    assert out["dask_max_rel_diff_vs_inprocess"] < 1e-9
