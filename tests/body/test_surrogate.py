"""FNO surrogate: representation, training on a tiny real (ElegansBot) set, checkpoints,
error estimate + fallback, gradients into muscle activations, WCON."""

import warnings

import numpy as np
import pytest
import torch

from wormlab import body
from wormlab.body._surrogate import _tensors

TINY = body.SurrogateConfig(hidden_channels=8, n_modes=6, n_layers=2, n_ensemble=2, epochs=30,
                            batch_size=4, lr=5e-3, val_fraction=0.15,
                            train_families=("sinusoid",))


@pytest.fixture(scope="module")
def tiny():
    specs = body.sample_specs({"sinusoid": 14, "single_muscle": 2}, seed=3)
    sims = [body.simulate_spec(s, 26, body.PhysicsConfig(), body.MuscleConfig()) for s in specs]
    data = {k: np.stack([x[k] for x in sims]) for k in ("activation", "com_um", "tangent_rad")}
    data["family"] = np.array([s["family"] for s in specs])
    splits = body.split_data(data, TINY)
    torch.manual_seed(0)
    model, hist = body.train_surrogate(splits, TINY, 0.04, 1000.0, progress=False)
    return splits, model, hist


def test_channels_round_trip_exactly():
    tr = body.simulate(body.travelling_wave(26, 0.04, amplitude=0.8))
    ch = body.trajectory_to_channels(tr.com_um, tr.tangent_rad)
    back = body.channels_to_trajectory(torch.from_numpy(ch).double(), 0.04, 1000.0)
    assert np.allclose(back.com_um.numpy(), tr.com_um, atol=1e-3)
    assert np.allclose(back.tangent_rad.numpy(), tr.tangent_rad, atol=1e-5)


def test_training_loss_falls_and_splits(tiny):
    splits, model, hist = tiny
    assert len(splits["general"]) == 2 and set(splits["general"].family) == {"single_muscle"}
    assert hist["train_loss"][-1] < 0.5 * hist["train_loss"][0]
    assert min(hist["val_loss"]) < hist["val_loss"][0]
    assert hist["calibration"]["factor"] > 0


def test_forward_shapes_and_every_parameter_gets_gradient(tiny):
    _, model, _ = tiny
    act = torch.rand(26, 3, 95)
    traj, est = model.predict(act)
    assert traj.com_um.shape == (26, 3, 2) and traj.points_um.shape == (26, 3, 26, 2)
    assert est.shape == (3,) and torch.all(est >= 0)
    model.zero_grad()
    body.forward_speed(model(act)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    with pytest.raises(ValueError, match=r"\(T, B, 95\)"):
        model(torch.rand(26, 3, 94))


def test_checkpoint_round_trip_safetensors(tiny, tmp_path):
    _, model, hist = tiny
    path = body.save_surrogate(model, tmp_path / "m.safetensors", hist)
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    m2, h2 = body.load_surrogate(path)
    act = torch.rand(26, 2, 95)
    assert torch.equal(model.member_channels(act), m2.member_channels(act))
    assert h2["best_epoch"] == hist["best_epoch"]
    for k, v in _tensors(model).items():
        assert torch.equal(v, _tensors(m2)[k]), k
    with pytest.raises(FileNotFoundError):
        body.load_surrogate(tmp_path / "missing.safetensors")


def test_fallback_to_physics_above_threshold(tiny):
    splits, model, _ = tiny
    act = splits["test"].act()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, info = body.predict_with_fallback(model, act, threshold_pct=1e9)
    assert not info["fallback"].any() and out.source == "surrogate"
    with pytest.warns(body.SurrogateFallbackWarning, match="falling back"):
        out, info = body.predict_with_fallback(model, act, threshold_pct=0.0)
    assert info["fallback"].all() and set(info["source"]) == {"elegansbot"}
    phys = body.simulate(act)
    assert np.allclose(out.com_um, phys.com_um)
    # the trigger uses the calibrated estimate: inflate it and the default 15 % fires
    est = info["estimate_pct"]
    model.calibration.mul_(1e6)
    try:
        with pytest.warns(body.SurrogateFallbackWarning):
            _, info2 = body.predict_with_fallback(model, act)
        assert np.all(info2["fallback"] == (info2["estimate_pct"] > 15.0))
        assert np.allclose(info2["estimate_pct"], est * 1e6, rtol=1e-4)
    finally:
        model.calibration.div_(1e6)


def test_error_estimate_tracks_physics_error(tiny):
    splits, model, _ = tiny
    r = body.evaluate(model, splits["val"])
    assert r["n"] == len(splits["val"])
    assert np.all(np.isfinite(r["per_sample"]["body_rmse_pct"]))
    # calibrated on val at the 80th percentile: it bounds the error on >= 80 % of val samples
    assert r["error_estimate_bounds_frac"] >= 0.8 - 1e-9


def test_speed_gradient_into_muscle_groups(tiny):
    _, model, _ = tiny
    act = body.travelling_wave(26, 0.04, amplitude=0.8).float()
    g = body.speed_gradient(model, act, groups=("dorsal", "ventral", "head"))
    assert set(g) == {"dorsal", "ventral", "head"}
    assert all(np.isfinite(v) for v in g.values()) and any(abs(v) > 0 for v in g.values())
    # matches a finite difference through the surrogate
    mask = torch.from_numpy(body.group_mask("head")).float()
    eps = 1e-2
    with torch.no_grad():
        up = body.forward_speed(model(act * (1 + eps * mask))).mean()
        dn = body.forward_speed(model(act * (1 - eps * mask))).mean()
    assert np.isclose(g["head"], float(up - dn) / (2 * eps), rtol=0.05, atol=1e-2)


def test_wcon_round_trip(tiny, tmp_path):
    splits, model, _ = tiny
    act = splits["test"].act()
    phys = body.simulate(act)
    with torch.no_grad():
        pred, _ = model.predict(act)
    for tr, name in ((phys, "physics"), (pred, "surrogate")):
        path = body.write_wcon(tmp_path / f"{name}.wcon", tr)
        back = body.read_wcon(path)
        tr = tr.numpy()
        assert len(back) == act.shape[1]
        rec = back[f"{tr.source}-0"]
        assert np.allclose(rec["points_um"], tr.points_um[:, 0], atol=1e-2)
        assert np.allclose(rec["com_um"], tr.com_um[:, 0], atol=1e-2)
        assert np.allclose(rec["t_s"], tr.t_s)
    (tmp_path / "bad.wcon").write_text('{"data": []}')
    with pytest.raises(ValueError, match="units"):
        body.read_wcon(tmp_path / "bad.wcon")
