"""SAE on LSTM hidden states, bootstrap sampling noise, early stopping, smoothing in seconds."""

import numpy as np
import pytest

from wormlab import posture as P
from wormlab.posture._lstm import _should_stop, generate, train_lstm


@pytest.fixture(scope="module")
def tiny():
    """A tiny LSTM (2 x 16) trained briefly on labelled synthetic worms (10 fps)."""
    recs = [P.synthetic_recording(600, 20, 10.0, seed=i) for i in range(3)]
    cfg = P.PostureConfig(
        dataset="synthetic", shape=P.ShapeConfig(basis="pca", n_modes=4, n_segments=20)
    )
    data = P.prepare(cfg, recordings=recs)
    lcfg = P.LSTMConfig(layers=2, hidden=16, epochs=3, batch_size=32, lr=3e-3)
    res = train_lstm(data.series, lcfg, seed=0, max_steps_per_epoch=15)
    return res.model, data


def test_stacked_states_selects_layers_and_checks_input():
    rng = np.random.default_rng(0)
    traces = [{"h": rng.standard_normal((10, 3 * 4)), "c": rng.standard_normal((10, 12))}]
    states, names = P.stacked_states(traces, 3, 4, "h", layers=(2,))
    assert states[0].shape == (10, 4) and names == ["h2.0", "h2.1", "h2.2", "h2.3"]
    np.testing.assert_array_equal(states[0], traces[0]["h"][:, 8:])
    with pytest.raises(ValueError, match="out of range"):
        P.stacked_states(traces, 3, 4, "h", layers=(3,))
    with pytest.raises(ValueError, match="state"):
        P.stacked_states(traces, 3, 4, "x")


def test_sae_on_hidden_states_reconstructs_and_finds_a_reversal_feature(tiny):
    model, data = tiny
    hc = P.HiddenSAEConfig(
        n_steps=300, n_perm=100, expansion=2.0, cells=P.CellsConfig(n_shuffles=20)
    )
    hs = P.fit_hidden_sae(model, data, hc)
    assert hs.states[0].shape == (600, 32)  # all layers' h stacked
    assert sum(m.sum() for m in hs.is_val) == 3 * 60  # last 10% of each worm held out
    m = hs.val_metrics
    assert m.variance_explained > 0.8, m.describe()  # held-out frames
    assert m.l0 < 0.6 * hs.sae.config.n_units  # sparse code
    out = P.interpret_hidden_sae(hs, data, top=3)
    assert set(out["selectivity"]) == {"reversal", "fast forward", "high curvature"}
    # the synthetic worm reverses by a tail-to-head wave: some feature must be selective
    rev = out["selectivity"]["reversal"]["sae"]
    assert rev["best_q"] < 0.05 and rev["best_d"] >= 0.8, rev
    assert {"sae", "cells", "pca"} <= set(out["selectivity"]["reversal"])
    assert "speed/sae/smoothed" in out["correlation"]
    f = int(rev["best"][1:])
    cells = P.feature_decoder_cells(hs, f, k=3)
    assert len(cells) == 3 and all(n.startswith("h") for n, _ in cells)


def test_bootstrap_noise_needs_calibration_and_is_seeded(tiny):
    model, data = tiny
    seed = data.series[0][:50]
    cfg = P.GenerateConfig(n_frames=100, noise=1.0, noise_kind="bootstrap")
    if hasattr(model, "resid_pool"):
        del model.resid_pool
    with pytest.raises(ValueError, match="calibrate_noise"):
        generate(model, seed, cfg)
    sd = P.calibrate_noise(model, data.series)
    assert sd.shape == (5,) and np.all(sd > 0)
    assert model.resid_pool.shape[1] == 5
    a = generate(model, seed, cfg, seed=3)
    b = generate(model, seed, cfg, seed=3)
    c = generate(model, seed, cfg, seed=4)
    clean = generate(model, seed, P.GenerateConfig(n_frames=100, noise=0.0))
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all() and not np.allclose(a, c) and not np.allclose(a, clean)
    with pytest.raises(ValueError, match="noise_kind"):
        generate(model, seed, P.GenerateConfig(n_frames=5, noise_kind="laplace"))


def test_parse_noises():
    assert P.parse_noises("gaussian:0, bootstrap:1.5") == [("gaussian", 0.0), ("bootstrap", 1.5)]
    for bad in ("uniform:1", "gaussian", "gaussian:x", "bootstrap:-1", ""):
        with pytest.raises(ValueError):
            P.parse_noises(bad)


def test_early_stopping_rule():
    assert not _should_stop([1.0, 0.9, 0.95], 2)
    assert _should_stop([1.0, 0.9, 0.95, 0.96], 2)
    assert not _should_stop([1.0, 0.9, 0.95, 0.96], 0)  # off
    assert not _should_stop([], 3)


def test_early_stopping_stops_keeps_best_and_resume_does_not_train_on(tmp_path):
    recs = [P.synthetic_recording(400, 20, 10.0, seed=i) for i in range(2)]
    basis = P.fit_pca(np.concatenate([P.split_mean_angle(r.angles)[0] for r in recs]), 4)
    ser = [P.shape_series(r.angles, basis) for r in recs]
    # a learning rate far too high makes validation worse after the first epochs
    cfg = P.LSTMConfig(
        layers=1, hidden=16, dropout=0.0, epochs=12, batch_size=32, lr=0.3, patience=2,
        val_fraction=0.2,
    )
    ck = tmp_path / "lstm"
    r = train_lstm(ser, cfg, seed=0, checkpoint=ck, max_steps_per_epoch=5)
    best = int(np.argmin(r.val_loss))
    assert r.stopped_early and r.epochs_done == best + 1 + cfg.patience < cfg.epochs
    assert r.best_epoch == best + 1
    again = train_lstm(ser, cfg, seed=0, checkpoint=ck, max_steps_per_epoch=5)
    assert again.epochs_done == r.epochs_done and again.val_loss == r.val_loss
    assert again.best_epoch == r.best_epoch
    for k, v in r.model.state_dict().items():  # the resumed call returns the best weights too
        np.testing.assert_array_equal(v.numpy(), again.model.state_dict()[k].numpy())


def test_cell_smoothing_is_defined_in_seconds():
    cfg = P.CellsConfig()
    assert P.smoothing_frames(cfg, 10.0) == 200  # the paper: 200 frames at 10 fps = 20 s
    assert P.smoothing_frames(cfg, 1.67) == 33
    assert P.smoothing_frames(P.CellsConfig(smooth_frames=7), None) == 7
    with pytest.raises(ValueError, match="frame rate"):
        P.smoothing_frames(cfg, None)
    rng = np.random.default_rng(0)
    act = [rng.standard_normal((300, 4)), rng.standard_normal((200, 4))]
    beh = [rng.standard_normal(300), rng.standard_normal(200)]
    res = P.cell_correlations(act, beh, P.CellsConfig(n_shuffles=5), smooth=True, fps=[1.0, 2.0])
    assert res["smooth_frames"] == [20, 40]
    with pytest.raises(ValueError, match="frame rates"):
        P.cell_correlations(act, beh, P.CellsConfig(n_shuffles=5), smooth=True, fps=[1.0])


def test_sae_on_run_writes_results_and_reloads(tmp_path, tiny_posture_run):
    """The CLI path: a run folder (tiny synthetic model) -> sae.json + sae.safetensors."""
    import json

    res = tiny_posture_run(tmp_path)  # trains the LSTM, then P.sae_on_run (40 steps)
    assert (tmp_path / "sae.json").exists() and (tmp_path / "sae.safetensors").exists()
    assert res["n_inputs"] == 8 and res["n_features"] == 8
    assert json.loads((tmp_path / "sae.json").read_text())["config"]["n_steps"] == 40
    _, model, data2, _ = P.load_run(tmp_path, smoke=True)
    hs = P.load_hidden_sae(model, data2, tmp_path)
    assert hs.config == P.HiddenSAEConfig(n_steps=40, n_perm=20)
    assert abs(hs.val_metrics.variance_explained - res["val_metrics"]["variance_explained"]) < 1e-6


def test_mirror_augmentation_keeps_real_standardisation_and_validation():
    recs = [P.synthetic_recording(300, 20, 10.0, seed=i) for i in range(2)]
    basis = P.fit_pca(np.concatenate([P.split_mean_angle(r.angles)[0] for r in recs]), 4)
    ser = [P.shape_series(r.angles, basis) for r in recs]
    base = dict(layers=1, hidden=8, epochs=1, batch_size=32, val_fraction=0.2)
    a = train_lstm(ser, P.LSTMConfig(**base), seed=0, max_steps_per_epoch=2)
    b = train_lstm(ser, P.LSTMConfig(**base, augment="mirror"), seed=0, max_steps_per_epoch=2)
    # same standardisation (real training part only) and the same real validation windows
    np.testing.assert_allclose(a.model.mu.numpy(), b.model.mu.numpy())
    np.testing.assert_allclose(a.model.sd.numpy(), b.model.sd.numpy())
    # the mirror image of a worm is a valid posture series: angles negate exactly
    ang = P.angles_from_series(ser[0], basis)
    np.testing.assert_allclose(P.angles_from_series(-ser[0], basis), -ang, atol=1e-9)
    with pytest.raises(ValueError, match="augment"):
        train_lstm(ser, P.LSTMConfig(**base, augment="flip"), seed=0)
