"""Determinism / input-sensitivity helper (the predictability floor of a generator)."""

import numpy as np
import pytest
import torch

from wormlab import rom
from wormlab.rom._neuron import neuron_available
from wormlab.rom._sensitivity import perturb, sensitivity, spread_rmse, trace_rmse


def test_perturb_kinds_and_errors():
    t = np.arange(0, 10.0, 0.5)
    cur = np.zeros((len(t), 1, 2))
    cur[4:, 0, 0] = 1.0  # step at 2 ms
    np.testing.assert_array_equal(perturb(t, cur, "repeat"), cur)
    np.testing.assert_allclose(perturb(t, cur, "scale", 1.001), cur * 1.001)
    assert not perturb(t, cur, "zero").any()
    sh = perturb(t, cur, "shift", 0.5)  # one sample later
    np.testing.assert_array_equal(sh[5:, 0, 0], 1.0)
    assert sh[4, 0, 0] == 0.0 and not sh[:, 0, 1].any()
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(t, cur, "warp")
    with pytest.raises(ValueError, match="currents must be"):
        perturb(t, cur[:, 0], "scale", 2.0)


def test_trace_and_spread_rmse():
    a = np.zeros((4, 2, 3))
    b = a.copy()
    b[:, 1] = 2.0
    np.testing.assert_allclose(trace_rmse(a, b), [0.0, 2.0])
    np.testing.assert_allclose(trace_rmse(a, b, skip=2), [0.0, 2.0])
    assert spread_rmse(b) == pytest.approx(1.0)  # half the values 0, half 2
    with pytest.raises(ValueError, match="one shape"):
        trace_rmse(a, b[:, :1])


def test_sensitivity_of_a_smooth_model_is_small():
    torch.manual_seed(0)
    model = rom.RomModel("gru", 2, 4, 3).eval()  # a deterministic, smooth map
    t = np.arange(0, 50.0, 0.5)
    rng = np.random.default_rng(0)
    cur = rng.uniform(0, 1, (len(t), 5, 2))

    def sim(tt, c):
        return model.predict(c).numpy().astype(float)

    r = sensitivity(sim, t, cur, scale=1.001, shift_ms=0.5)
    assert r["repeat"]["max"] == 0.0 and r["n"] == 5 and len(r["peak"]) == 5
    assert 0 < r["scale"]["mean"] < 0.05 * r["spread"]
    assert r["zero"]["mean"] > r["scale"]["mean"]
    assert r["scale_floor_fraction"] == pytest.approx(r["scale"]["mean"] / r["spread"])


@pytest.mark.slow
@pytest.mark.skipif(not neuron_available(), reason="optional NEURON/c302 extra not installed")
def test_neuron_generator_is_deterministic():
    from wormlab.rom._sensitivity import generator_sensitivity

    cfg = rom.GenerateConfig(backend="neuron", n_sequences=3, duration_ms=80.0)
    r = generator_sensitivity(cfg, [0, 1])  # step_long (from 50-70 ms), step_early (20-40 ms)
    assert r["repeat"]["max"] == 0.0  # same stimulus -> bit-identical traces
    assert r["names"] == [rom.stimuli(cfg)[0][i] for i in (0, 1)]
    assert np.isfinite(r["scale"]["mean"]) and r["zero"]["mean"] > 0
    with pytest.raises(ValueError, match="outside"):
        generator_sensitivity(cfg, [5])


@pytest.mark.slow
@pytest.mark.skipif(not neuron_available(), reason="optional NEURON/c302 extra not installed")
def test_sensitivity_cli(capsys, tmp_path):
    import json

    from wormlab.rom.cli import main

    rc = main(["sensitivity", "--backend", "neuron", "--n", "1", "--library", "2",
               "--duration-ms", "20", "--out", str(tmp_path / "s.json")])
    assert rc == 0
    res = json.loads((tmp_path / "s.json").read_text())
    assert res["repeat"]["max"] == 0.0 and res["n"] == 1
    assert json.loads(capsys.readouterr().out)["spread"] == res["spread"]
