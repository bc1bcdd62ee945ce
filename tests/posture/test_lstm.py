import numpy as np
import pytest
import torch

from wormlab import posture as P
from wormlab.posture._lstm import PostureLSTM, generate, load_lstm, stability, train_lstm


def _series(seed=0, n=3, T=300):
    recs = [P.synthetic_recording(T, 20, 10.0, seed=seed + i) for i in range(n)]
    basis = P.fit_pca(np.concatenate([P.split_mean_angle(r.angles)[0] for r in recs]), 4)
    return [P.shape_series(r.angles, basis) for r in recs]


def test_forward_shapes_and_every_parameter_gets_gradient():
    m = PostureLSTM(5, layers=3, hidden=8, dropout=0.2)
    x = torch.randn(50, 4, 5)
    y = m(x)
    assert y.shape == (50, 4, 5)
    y.pow(2).mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    tr = m.trace(x[:7])
    assert tr["h"].shape == (7, 4, 3, 8) and tr["c"].shape == (7, 4, 3, 8)
    # the stepwise trace matches the batched forward in eval mode
    m.eval()
    np.testing.assert_allclose(tr["y"].numpy(), m(x[:7]).detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError):
        PostureLSTM(5, dropout=1.0)


def test_training_reduces_loss_and_is_deterministic():
    ser = _series(T=600)
    cfg = P.LSTMConfig(
        layers=2, hidden=16, dropout=0.1, epochs=4, batch_size=32, lr=3e-3, val_fraction=0.2
    )
    a = train_lstm(ser, cfg, seed=1, max_steps_per_epoch=15)
    b = train_lstm(ser, cfg, seed=1, max_steps_per_epoch=15)
    assert np.isfinite(a.val_loss).all()
    assert a.val_loss[-1] < 0.7 * a.val_loss[0]
    assert a.train_loss == b.train_loss


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    ser = _series(T=200)
    full = P.LSTMConfig(layers=1, hidden=8, dropout=0.0, epochs=3, batch_size=32)
    part = P.LSTMConfig(layers=1, hidden=8, dropout=0.0, epochs=3, batch_size=32)
    ref = train_lstm(ser, full, seed=0, max_steps_per_epoch=5)
    ck = tmp_path / "m"
    import json

    train_lstm(ser, part, seed=0, checkpoint=ck, max_steps_per_epoch=5)
    meta = json.loads(ck.with_suffix(".json").read_text())
    assert meta["epochs_done"] == 3
    np.testing.assert_allclose(meta["train_loss"], ref.train_loss, rtol=1e-6)
    again = train_lstm(ser, part, seed=0, checkpoint=ck, max_steps_per_epoch=5)
    assert again.epochs_done == 3 and again.train_loss == meta["train_loss"]  # nothing redone
    m = load_lstm(ck)
    x = torch.randn(10, 2, ser[0].shape[1])
    ref.model.eval()
    np.testing.assert_allclose(m(x).detach().numpy(), ref.model(x).detach().numpy(), atol=1e-6)


def test_resume_after_interruption(tmp_path):
    ser = _series(T=200)
    cfg3 = P.LSTMConfig(layers=2, hidden=8, dropout=0.2, epochs=3, batch_size=32)
    ref = train_lstm(ser, cfg3, seed=0, max_steps_per_epoch=5)
    import json

    # a run killed after epoch 1: a 1-epoch checkpoint whose state says 3 epochs were planned
    first = tmp_path / "first"
    train_lstm(
        ser,
        P.LSTMConfig(layers=2, hidden=8, dropout=0.2, epochs=1, batch_size=32),
        seed=0,
        checkpoint=first,
        max_steps_per_epoch=5,
    )
    meta = json.loads(first.with_suffix(".json").read_text())
    meta["config"]["epochs"] = 3
    first.with_suffix(".json").write_text(json.dumps(meta))
    resumed = train_lstm(ser, cfg3, seed=0, checkpoint=first, max_steps_per_epoch=5)
    np.testing.assert_allclose(resumed.train_loss, ref.train_loss, rtol=1e-5)


@pytest.mark.slow
def test_generation_is_stable_over_9000_frames():
    ser = _series(T=400)
    res = train_lstm(
        ser,
        P.LSTMConfig(layers=2, hidden=16, epochs=3, batch_size=32),
        seed=0,
        max_steps_per_epoch=20,
    )
    for noise in (0.0, 1.0):
        g = generate(res.model, ser[0][:50], P.GenerateConfig(n_frames=9000, noise=noise))
        assert g.shape == (9000, ser[0].shape[1])
        st = stability(g, np.concatenate(ser))
        assert st["finite"] and st["stable"], st
    # same seed -> identical; window mode also runs
    g1 = generate(res.model, ser[0][:50], P.GenerateConfig(n_frames=30, noise=1.0), seed=3)
    g2 = generate(res.model, ser[0][:50], P.GenerateConfig(n_frames=30, noise=1.0), seed=3)
    np.testing.assert_array_equal(g1, g2)
    gw = generate(res.model, ser[0][:50], P.GenerateConfig(n_frames=30, mode="window"))
    assert np.isfinite(gw).all()


def test_stability_flags_blow_up_and_collapse():
    real = np.random.default_rng(0).standard_normal((500, 3))
    assert stability(real * 100, real)["stable"] is False
    assert stability(np.full((2000, 3), np.nan), real)["stable"] is False
    assert stability(np.zeros((2000, 3)), real)["collapsed"] is True
    assert stability(real, real)["stable"] is True


def test_keep_best_and_noise_calibration(tmp_path):
    from wormlab.posture._lstm import calibrate_noise

    ser = _series(T=600)
    cfg = P.LSTMConfig(
        layers=1, hidden=8, dropout=0.0, epochs=4, batch_size=32, lr=3e-2, val_fraction=0.2
    )
    res = train_lstm(ser, cfg, seed=0, checkpoint=tmp_path / "m", max_steps_per_epoch=10)
    assert res.best_epoch == int(np.argmin(res.val_loss)) + 1
    m = load_lstm(tmp_path / "m")  # best weights by default
    assert m.loaded_from == "m.best.safetensors"
    x = torch.randn(20, 2, ser[0].shape[1])
    res.model.eval()
    np.testing.assert_allclose(m(x).detach().numpy(), res.model(x).detach().numpy(), atol=1e-6)
    # the noise unit is the one-step residual s.d. on the held-out tails, < 1 after learning
    sd = calibrate_noise(m, ser, cfg.window, cfg.val_fraction)
    np.testing.assert_allclose(sd, res.model.resid_sd.numpy(), rtol=1e-5)
    assert np.all(sd > 0) and sd.mean() < 1.0
