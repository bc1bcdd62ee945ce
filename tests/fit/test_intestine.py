"""Intestinal Ca2+ oscillator (issue 16 item 7): mechanism plug-in, ~50 s period, posterior-to-
anterior wave, robust period estimator, period fit. Coarse dt (400 ms: the period agrees with
50 ms to 1e-3 s, docs/autofit.md) and few cycles keep the file fast."""

import math

import numpy as np
import pytest
import torch

from wormlab import circuit
from wormlab.circuit._intestine import (
    INTESTINE_CELLS,
    IntestinalCa,
    add_intestine,
    fit_period,
    intestine_network,
    measured_period_s,
    oscillation_period_s,
    simulate_intestine,
    wave_direction,
)

DT_MS = 400.0
SMALL = ("AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "DB1", "VB1", "MDL07")


@pytest.fixture(scope="module")
def net():
    return intestine_network()


@pytest.fixture(scope="module")
def default_run(net):
    with torch.no_grad():
        return simulate_intestine(250.0, dt_ms=DT_MS, net=net)


# ------------------------------------------------------------------ spec and plug-in
def test_add_intestine_cells_gaps_and_leak_only_type():
    from wormlab.circuit._intestine import intestine_spec

    spec = intestine_spec()
    assert spec.cells == list(INTESTINE_CELLS) and len(spec.cells) == 20
    ct = spec.cell_types["IntestinalCell"]
    assert ct.g_mS_per_cm2["Leak"] > 0
    assert all(ct.g_mS_per_cm2[k] == 0 for k in ("k_slow", "k_fast", "ca_boyle"))
    assert ct.v_init_mV == ct.erev_mV["Leak"]
    # 9 rings: 4 + 3 + 8 L-R/D-V pairs in ring 1 and to ring 2, 8 L-R, 2 x 7 along the chain
    assert len(spec.gaps) == 8 + 8 + 14
    with pytest.raises(ValueError, match="already has intestinal cells"):
        add_intestine(spec)


def test_mechanism_plugs_into_a_small_circuit():
    spec = circuit.subset_spec(circuit.spec_from_connectome(), list(SMALL))
    spec2 = add_intestine(spec)
    net = circuit.build_network(spec2, mechanisms=[IntestinalCa.for_spec(spec2)])
    plain = circuit.build_network(spec2)
    assert {"ca_int", "h_ip3r", "ip3"} <= set(net.state_names)
    assert net.param_info["int_ip3"].provenance == "mechanistic-default"
    rec = {"v": list(SMALL), "ca_int": ["INT9L", "INT1DL", "AVAL"]}
    a = circuit.simulate(net, "c302", duration_ms=20.0, record=rec)
    b = circuit.simulate(plain, "c302", duration_ms=20.0, record={"v": list(SMALL)})
    # the intestine does not touch the neurons; its Ca moves only in intestinal cells
    torch.testing.assert_close(a.states["v"], b.states["v"], rtol=0, atol=1e-12)
    ca = a.states["ca_int"][:, 0].detach()
    assert float((ca[-1, :2] - ca[0, :2]).abs().min()) > 0
    assert float((ca[-1, 2] - ca[0, 2]).abs()) == 0.0


def test_mechanism_needs_its_neighbour_list():
    from wormlab.circuit._intestine import intestine_spec

    bare = circuit.build_network(intestine_spec(), mechanisms=[IntestinalCa()])
    with pytest.raises(ValueError, match="for_spec"):
        bare.initial_state()
    with pytest.raises(KeyError, match="add_intestine"):
        IntestinalCa.for_spec(circuit.subset_spec(circuit.spec_from_connectome(), ["AVAL"]))


# ------------------------------------------------------------------ behaviour at defaults
def test_period_is_about_50_s_at_defaults(default_run):
    per = measured_period_s(default_run, DT_MS)
    assert abs(per - 50.0) < 10.0  # Thomas 1990: 45-50 s
    assert abs(per - 50.36) < 0.3  # regression: measured at dt 50, 100 and 400 ms
    assert 0.8 < float(default_run.max()) < 1.2  # peak [Ca] ~1 uM
    assert float(default_run[125:].min()) < 0.15  # returns to rest between waves


def test_wave_runs_posterior_to_anterior(default_run):
    w = wave_direction(default_run[125:], DT_MS / 1e3)
    assert w["direction"] == "posterior_to_anterior"
    assert 2.0 < w["lag_s"] < 6.0  # 3-4 s across the intestine (Teramoto & Iwasaki 2006)
    assert np.all(np.diff(w["ring_lag_s"]) < 0)  # each ring after the one behind it


def test_wave_reverses_with_an_anterior_pacemaker(net):
    shape = net.params["int_ip3_grad"].shape
    with torch.no_grad():
        tr = simulate_intestine(250.0, dt_ms=DT_MS, net=net,
                                params={"int_ip3_grad": torch.full(shape, -0.1,
                                                                   dtype=torch.float64)})
    assert wave_direction(tr[125:], DT_MS / 1e3)["direction"] == "anterior_to_posterior"


def test_wave_direction_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\(T, 20\)"):
        wave_direction(np.zeros((100, 19)), 0.1)


# ------------------------------------------------------------------ robust period estimator
@pytest.mark.parametrize("period", [50.0, 47.3, 12.34])
def test_period_estimator_exact_on_sine_and_sawtooth(period):
    t = np.arange(0.0, 300.0, 0.2)
    sine = np.sin(2 * np.pi * t / period + 0.3)
    saw = (t / period) % 1.0
    assert oscillation_period_s(sine, 0.2) == pytest.approx(period, rel=1e-3)
    assert oscillation_period_s(saw, 0.2) == pytest.approx(period, rel=1e-3)


@pytest.mark.parametrize("period", [50.0, 47.3, 12.34])
def test_period_estimator_on_noisy_drifting_data(period):
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 300.0, 0.2)
    sine = np.sin(2 * np.pi * t / period + 0.3) + 0.5 * rng.standard_normal(len(t))
    saw = (t / period) % 1.0 + 0.3 * rng.standard_normal(len(t)) + 0.001 * t
    assert oscillation_period_s(sine, 0.2) == pytest.approx(period, rel=1e-2)
    assert oscillation_period_s(saw, 0.2) == pytest.approx(period, rel=1e-2)


def test_period_estimator_ignores_a_threshold_confound():
    # a slow baseline drift moves every threshold crossing; the period must not move
    t = np.arange(0.0, 300.0, 0.1)
    x = np.sin(2 * np.pi * t / 50.0) + 0.02 * t
    assert oscillation_period_s(x, 0.1) == pytest.approx(50.0, rel=1e-3)


@pytest.mark.parametrize("trace, match", [
    (np.ones(500), "flat"),
    (np.arange(500.0), "flat"),
    (np.r_[np.sin(np.arange(100) / 3.0), np.nan], "non-finite"),
    (np.sin(2 * np.pi * np.arange(500) / 400.0), "cycles|no oscillation"),
    (np.zeros((10, 2)), "1-D"),
])
def test_period_estimator_rejects_bad_traces(trace, match):
    with pytest.raises(ValueError, match=match):
        oscillation_period_s(trace, 0.1)


# ------------------------------------------------------------------ gradients and fit
def test_gradient_flows_to_intestinal_parameters(net):
    x = net.params["int_ip3"].detach().clone().requires_grad_(True)

    def loss(v):
        tr = simulate_intestine(20.0, dt_ms=DT_MS, net=net, params={"int_ip3": v})
        return tr.mean()

    (g,) = torch.autograd.grad(loss(x), x)
    h = 1e-9  # mM; int_ip3 is 4.2e-4 mM
    with torch.no_grad():
        fd = (loss(x + h) - loss(x - h)) / (2 * h)
    assert torch.isfinite(g).all() and float(g.abs().sum()) > 0
    # share="type": one value per cell type; only the intestinal group matters
    assert float(g.sum()) == pytest.approx(float(fd.sum()) if fd.dim() else float(fd), rel=1e-4)


def test_fit_moves_the_period_to_50_s_from_a_perturbed_start():
    net = intestine_network()
    with torch.no_grad():
        net.params["int_ip3"].fill_(0.5e-3)  # perturbed: +19 %
        start = measured_period_s(simulate_intestine(200.0, dt_ms=DT_MS, net=net), DT_MS)
    assert start < 46.0
    res = fit_period(50.0, net=net, seconds=200.0, dt_ms=DT_MS, tol_s=0.5)
    assert res["converged"] and res["evals"] <= 8
    with torch.no_grad():
        after = measured_period_s(simulate_intestine(200.0, dt_ms=DT_MS, net=net), DT_MS)
    assert abs(after - 50.0) <= 0.5
    assert net.provenance["int_ip3"]["provenance"] == "fitted"
    assert math.isclose(float(net.params["int_ip3"].detach()[0]), res["value"])


def test_fit_rejects_a_bracket_without_the_target(net):
    with pytest.raises(ValueError, match="do not bracket"):
        fit_period(50.0, net=intestine_network(), bracket=(0.5e-3, 0.55e-3), seconds=150.0,
                   dt_ms=DT_MS)
    with pytest.raises(KeyError, match="not a parameter"):
        fit_period(50.0, name="g_leak", net=net)


def test_batched_parameter_sets_run_at_once(default_run):
    net = intestine_network().batched(2)
    with torch.no_grad():
        net.params["int_ip3"][1] = 0.5e-3
        tr = simulate_intestine(250.0, dt_ms=DT_MS, net=net)
    assert tr.shape == (626, 2, 20)
    torch.testing.assert_close(tr[:, 0], default_run)  # set 0 = defaults
    assert measured_period_s(tr[:, 1], DT_MS) < measured_period_s(tr[:, 0], DT_MS) - 4.0
