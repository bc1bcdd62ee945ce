"""The generic training family (random) and the error-head family (perturbed); spec stability;
submission order of a stoppable run; circuit-driven activations."""

import numpy as np
import pytest
import torch

from wormlab import body


def test_random_and_perturbed_are_deterministic_bounded_and_varied():
    specs = body.sample_specs({"random": 6, "perturbed": 4}, seed=5)
    again = body.sample_specs({"random": 6, "perturbed": 4}, seed=5)
    assert specs == again
    acts = [body.make_activation(s, 51, 0.04) for s in specs]
    for a, s in zip(acts, specs, strict=True):
        assert a.shape == (51, 95) and a.dtype == np.float32
        assert a.min() >= 0 and a.max() <= 1
        assert np.array_equal(a, body.make_activation(s, 51, 0.04))
        assert a.std(0).mean() > 0.01  # time-varying
    assert len({a.tobytes() for a in acts}) == len(acts)
    # perturbed reaches beyond the training range (faster waves, shorter wavelengths)
    fr = [w["freq_hz"] for s in body.sample_specs({"perturbed": 60}) for w in s["params"]["waves"]]
    assert max(fr) > 1.5


def test_adding_generic_families_leaves_original_specs_unchanged():
    base = body.sample_specs({"nominal": 3, "group_scaled": 4, "sinusoid": 5,
                              "single_muscle": 2}, seed=0)
    more = body.sample_specs({"nominal": 3, "group_scaled": 4, "sinusoid": 5,
                              "single_muscle": 2, "random": 7, "perturbed": 2}, seed=0)
    assert more[:len(base)] == base
    with pytest.raises(ValueError, match="negative"):
        body.sample_specs({"random": -1})


def test_interleave_puts_generalisation_first_and_mixes_the_rest():
    from wormlab.body.cli import interleave

    specs = body.sample_specs({"nominal": 4, "group_scaled": 3, "sinusoid": 8,
                               "single_muscle": 2, "random": 16}, seed=0)
    order = interleave(specs)
    assert sorted(s["id"] for s in order) == sorted(s["id"] for s in specs)
    assert {s["family"] for s in order[:5]} == {"group_scaled", "single_muscle"}
    head = [s["family"] for s in order[5:5 + 14]]  # first half of the rest: all families
    assert {"nominal", "sinusoid", "random"} <= set(head)


def test_finished_specs_lists_only_matching_shards(tmp_path, client):
    from wormlab.body._generate import finished_specs

    specs = body.sample_specs({"random": 3}, seed=1)
    res = body.generate(tmp_path / "d.h5", body.DataConfig(duration_s=0.2), specs=specs,
                        scheduler=client, max_samples=2)
    assert not res["complete"]
    done = finished_specs(tmp_path / "d.h5", specs)
    assert len(done) == 2 and all(s in specs for s in done)


def test_travelling_wave_score_separates_wave_from_standing_pattern():
    from wormlab.body._circuit import travelling_wave_score

    wave = body.sinusoid_activation(101, 0.04, 0.6, 0.75, 1.0)
    t = np.arange(101)[:, None] * 0.04
    standing = (0.5 * (1 + np.sin(2 * np.pi * 0.6 * t)) * np.ones((1, 95))
                * np.where(body.muscle_table()["dorsal"], 1, 0)[None]).astype(np.float32)
    sw, ss = travelling_wave_score(wave), travelling_wave_score(standing)
    assert sw["top_mode_var_frac"] > 0.9 and sw["phase_fit_r2"] > 0.9
    # 0.75 body lengths over 24 rows: 2 pi / (0.75 * 24) rad per row
    assert np.isclose(abs(sw["phase_slope_rad_per_row"]), 2 * np.pi / 18, rtol=0.1)
    assert abs(ss["phase_slope_rad_per_row"]) < 0.05


@pytest.mark.slow
def test_circuit_muscle_calcium_on_frame_grid():
    """The real c302 C1 circuit, 3 frames of 40 ms after a 20 ms warm-up, batch of 2."""
    from wormlab.body._circuit import circuit_activations

    r = circuit_activations(3, 0.04, avb_nA=(0.002, 0.005), warmup_ms=20.0, progress=False)
    assert r["activation"].shape == (3, 2, 95) and r["ca_mM"].shape == (3, 2, 95)
    a = r["activation"]
    assert torch.all(a >= 0) and torch.all(a <= 1) and float(r["ca_mM"].max()) > 0
    # Sibernetic's coupling written out with its constant (openworm/sibernetic main_sim.py):
    # min(1, ca / 4e-7 mM); not the library's own function, so a changed scale is caught
    want = torch.clamp(r["ca_mM"].clamp_min(0) / 4e-7, max=1.0).float()
    assert torch.allclose(a, want)


def test_circuit_activations_apply_sibernetic_scaling_to_the_circuit_calcium(monkeypatch):
    """Fast: the circuit run replaced by known calcium (mM); the activations must be
    min(1, ca / 4e-7) of exactly that calcium, per frame and drive, negatives clamped."""
    from wormlab.body import _circuit

    ca = torch.tensor([-1e-9, 0.0, 1e-7, 2e-7, 3e-7, 4e-7, 8e-7], dtype=torch.float64)
    ca = ca.reshape(7, 1, 1).expand(7, 2, 95).clone()
    ca[:, 1] *= 0.5  # second drive: half the calcium

    def fake(T, frame_dt_s, stim, warmup_ms, progress, batch):
        assert (T, batch) == (7, 2)
        return {"ca_mM": ca, "v_mV": torch.zeros_like(ca), "t_s": np.arange(T) * frame_dt_s,
                "wall_s": 0.0}

    monkeypatch.setattr(_circuit, "circuit_muscle_calcium", fake)
    r = _circuit.circuit_activations(7, 0.04, avb_nA=(0.002, 0.005), progress=False)
    a = r["activation"][:, :, 0]
    assert torch.allclose(a[:, 0], torch.tensor([0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]))
    assert torch.allclose(a[:, 1], torch.tensor([0.0, 0.0, 0.125, 0.25, 0.375, 0.5, 1.0]))
    assert r["avb_nA"] == [0.002, 0.005] and torch.equal(r["ca_mM"], ca)
