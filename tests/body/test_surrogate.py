"""FNO surrogate: representation, training on a tiny real (ElegansBot) set, checkpoints,
error estimate + fallback, gradients into muscle activations, WCON."""

import warnings

import numpy as np
import pytest
import torch

from wormlab import body
from wormlab.body._surrogate import _tensors

TINY = body.SurrogateConfig(hidden_channels=8, n_modes=6, n_layers=2, epochs=30,
                            batch_size=4, lr=5e-3, val_fraction=0.15,
                            train_families=("sinusoid", "random"),
                            errorhead_families=("perturbed",))
TINY_ENSEMBLE = body.SurrogateConfig(hidden_channels=8, n_modes=6, n_layers=2, n_ensemble=2,
                                     error_head=False, epochs=30, batch_size=4, lr=5e-3,
                                     val_fraction=0.15, train_families=("sinusoid", "random"),
                                     errorhead_families=("perturbed",))


@pytest.fixture(scope="module")
def tiny_data():
    specs = body.sample_specs({"sinusoid": 10, "random": 8, "perturbed": 8,
                               "single_muscle": 2}, seed=3)
    sims = [body.simulate_spec(s, 26, body.PhysicsConfig(), body.MuscleConfig()) for s in specs]
    data = {k: np.stack([x[k] for x in sims]) for k in ("activation", "com_um", "tangent_rad")}
    data["family"] = np.array([s["family"] for s in specs])
    return data


@pytest.fixture(scope="module")
def tiny(tiny_data):
    splits = body.split_data(tiny_data, TINY)
    torch.manual_seed(0)
    model, hist = body.train_surrogate(splits, TINY, 0.04, 1000.0, progress=False)
    return splits, model, hist


@pytest.mark.parametrize("rep", ["body_frame", "lab_delta"])
def test_channels_round_trip_exactly(rep):
    tr = body.simulate(body.travelling_wave(26, 0.04, amplitude=0.8, direction=-1))
    ch = body.trajectory_to_channels(tr.com_um, tr.tangent_rad, rep)
    back = body.channels_to_trajectory(torch.from_numpy(ch).double(), 0.04, 1000.0,
                                       representation=rep)
    assert np.allclose(back.com_um.numpy(), tr.com_um, atol=1e-3)
    assert np.allclose(back.tangent_rad.numpy(), tr.tangent_rad, atol=1e-5)
    with pytest.raises(ValueError, match="representation"):
        body.trajectory_to_channels(tr.com_um, tr.tangent_rad, "polar")


def test_body_frame_channels_are_rotation_invariant():
    """Rotating the whole trajectory about the origin leaves the body-frame COM steps, heading
    increments (after frame 0) and joint angles unchanged: what the FNO must learn is local."""
    tr = body.simulate(body.travelling_wave(26, 0.04, amplitude=0.8))
    a = 0.7
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    ch = body.trajectory_to_channels(tr.com_um, tr.tangent_rad)
    ch2 = body.trajectory_to_channels(tr.com_um @ rot.T, tr.tangent_rad + a)
    assert np.allclose(ch[1:], ch2[1:], atol=1e-3)
    assert np.isclose(ch2[0, 0, 2] - ch[0, 0, 2], a, atol=1e-5)


def test_fft_length_is_fast_and_long_enough():
    from wormlab.body._surrogate import fft_length

    assert fft_length(101, 0.25) == 128 and fft_length(51, 0.25) == 64
    for T in range(2, 300):
        n = fft_length(T, 0.25)
        assert n >= T * 1.25 - 1e-9 and n < T * 1.25 * 2
        while n % 2 == 0:
            n //= 2
        while n % 3 == 0:
            n //= 3
        assert n == 1


def test_command_features_match_a_time_first_reference():
    """The (B, 24, T) fast path of command_features equals the plain time-first formulas."""
    from wormlab.body._surrogate import BANDS_HZ, command_features, fft_length

    g = torch.Generator().manual_seed(0)
    j = torch.randn(101, 5, 24, generator=g, dtype=torch.float64) * 0.3 + 0.1
    got = command_features(j, 0.04)
    mean, std = j.mean(0), j.std(0)
    n = fft_length(101, 0.0)
    spec = torch.fft.rfft(j - mean, n=n, dim=0).abs().pow(2).sum(-1)  # (F, B)
    f = torch.fft.rfftfreq(n, 0.04)
    bands = [torch.log(1e-6 + spec[(f >= lo) & (f < hi)].sum(0) / 101)
             for lo, hi in zip(BANDS_HZ[:-1], BANDS_HZ[1:])]
    want = torch.cat([mean, std, torch.stack(bands, -1),
                      torch.log(1e-6 + (torch.diff(j, dim=-1) ** 2).mean((0, 2)))[:, None],
                      torch.log(1e-6 + (torch.diff(j, dim=0) ** 2).mean((0, 2)))[:, None],
                      j.abs().amax((0, 2))[:, None], mean.abs().mean(-1, keepdim=True),
                      std.mean(-1, keepdim=True)], -1)
    assert got.shape == (5, 58)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_predict_shares_the_commands_with_the_fno_input(tiny):
    model = tiny[1]
    act = torch.rand(26, 3, 95)
    with torch.no_grad():
        pred, est = model.predict(act)
        ch = model.member_channels(act)
        traj = model.to_trajectory(ch.mean(0))
        est2 = model.calibration * model.raw_estimate(act, ch, traj)
    torch.testing.assert_close(pred.points_um, traj.points_um)
    torch.testing.assert_close(est, est2)


def test_training_loss_falls_and_splits(tiny):
    splits, model, hist = tiny
    assert len(splits["general"]) == 2 and set(splits["general"].family) == {"single_muscle"}
    assert set(splits["calib"].family) == {"perturbed"} and len(splits["calib"]) == 8
    assert set(splits["train"].family) <= {"sinusoid", "random"}
    # (the training loss ramps the midline term in, so compare validation losses, which
    # always use the full loss)
    assert min(hist["val_loss"]) < 0.8 * hist["val_loss"][0]
    assert hist["val_loss"][hist["best_epoch"]] == min(hist["val_loss"])
    assert hist["calibration"]["factor"] > 0
    assert hist["calibration"]["n_held_out"] == len(splits["val"]) + len(splits["calib"])


def test_surrogate_input_is_the_joint_command_map(tiny):
    """The FNO sees the 24 ElegansBot joint commands made by the documented muscle map."""
    _, model, _ = tiny
    act = 0.1 + 0.8 * torch.rand(26, 2, 95, dtype=torch.float64)  # +-0.1 below stays >= 0
    assert torch.allclose(model.commands(act).double(), body.joint_commands(act), atol=1e-6)
    # two activations with the same joint commands give the same prediction
    tab = body.muscle_table()
    same = act.clone()
    d = np.flatnonzero(tab["dorsal"] & (tab["row"] == 5))
    same[..., d[0]] += 0.1
    same[..., d[1]] -= 0.1
    with torch.no_grad():
        assert torch.allclose(model(act).com_um, model(same).com_um, atol=1e-4)


def test_forward_shapes_and_every_parameter_gets_gradient(tiny):
    _, model, _ = tiny
    act = torch.rand(26, 3, 95)
    traj, est = model.predict(act)
    assert traj.com_um.shape == (26, 3, 2) and traj.points_um.shape == (26, 3, 26, 2)
    assert est.shape == (3,) and torch.all(est >= 0)
    model.zero_grad()
    body.forward_speed(model(act)).sum().backward()
    for name, p in model.named_parameters():
        if name.startswith("head."):  # the error head is not part of the trajectory
            continue
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


def test_error_head_calibration_and_evaluate(tiny):
    splits, model, hist = tiny
    cal = hist["calibration"]
    assert cal["method"] == "error_head"
    # the factor is the 80th percentile of measured / out-of-fold estimate
    assert cal["oof_bounds_frac"] >= 0.8 - 1e-9
    r = body.evaluate(model, splits["val"])
    assert r["n"] == len(splits["val"])
    assert np.all(np.isfinite(r["per_sample"]["body_rmse_pct"]))
    assert np.all(r["per_sample"]["estimate_pct"] > 0)
    # the per-sample speed errors (behind the report's per-family medians) give the median
    v = r["per_sample"]["forward_speed_err_pct"]
    ok = np.abs(r["per_sample"]["forward_speed_true_um_s"]) >= 20.0
    assert np.array_equal(np.isfinite(v), ok) and r["n_speed"] == ok.sum()
    if ok.any():
        assert r["forward_speed_err_pct_median"] == pytest.approx(float(np.median(v[ok])))


def test_error_head_flags_out_of_distribution_input(tiny):
    """An input unlike anything in training (white noise: iid uniform activation per muscle
    and frame) has a larger novelty score than held-out in-distribution inputs; the novelty
    terms can only raise the estimate; and at the default 15 % threshold the fail-safe sends
    that input to the physics, with a warning, and returns the physics trajectory."""
    splits, model, _ = tiny
    g = torch.Generator().manual_seed(0)
    ood = torch.rand(26, 2, 95, generator=g)
    ind = splits["test"].act()

    def head_inputs(act):
        ch = model.member_channels(act)
        tr = model.to_trajectory(ch.mean(0))
        return model.head.inputs(model.head_features(act, ch.mean(0), tr))

    with torch.no_grad():
        x_ood, x_ind = head_inputs(ood), head_inputs(ind)
        assert x_ood[:, -2].min() > x_ind[:, -2].max()  # kNN distance to training inputs
        lifted = x_ood.clone()
        lifted[:, -2:] += 1.0
        assert torch.all(model.head.from_inputs(lifted) >= model.head.from_inputs(x_ood))
    with pytest.warns(body.SurrogateFallbackWarning):
        out, info = body.predict_with_fallback(model, ood)
    assert info["fallback"].all() and np.all(info["estimate_pct"] > 15.0)
    assert np.allclose(out.com_um, body.simulate(ood).com_um)


def test_ensemble_spread_estimate_still_available(tiny_data):
    splits = body.split_data(tiny_data, TINY_ENSEMBLE)
    model, hist = body.train_surrogate(splits, TINY_ENSEMBLE, 0.04, 1000.0, progress=False)
    assert model.head is None and hist["calibration"]["method"] == "ensemble_spread"
    r = body.evaluate(model, splits["val"])
    assert r["error_estimate_bounds_frac"] >= 0.8 - 1e-9  # calibrated on val at q = 0.8
    with pytest.raises(ValueError, match="n_ensemble"):
        body.SurrogateConfig(n_ensemble=1, error_head=False)


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


def _mean_rel_speed_err(model, split, floor=20.0):
    with torch.no_grad():
        v = body.forward_speed(model(split.act())).numpy()
    t = body.forward_speed(split.trajectory(model.frame_dt_s, model.body_length_um))
    return float(np.mean(np.abs(v - t) / np.maximum(np.abs(t), floor)))


def test_fine_tune_from_checkpoint_with_speed_loss(tiny, tmp_path):
    import dataclasses

    from wormlab.body._surrogate import _loss, _targets

    splits, model, hist = tiny
    start = body.save_surrogate(model, tmp_path / "start.safetensors", hist)
    cfg = dataclasses.replace(TINY, epochs=10, lr=2e-3, speed_loss_weight=1.0)
    _, h = body.train_surrogate(splits, cfg, 0.04, 1000.0, progress=False, init=start)
    # it started from the checkpoint: epoch -1 is the checkpoint's validation loss under the
    # new objective (speed term included)
    val = splits["val"]
    ch, pts, v = _targets(val, slice(None), cfg.representation, 1000.0, 0.04)
    with torch.no_grad():
        start_val = float(_loss(model, val.act(), ch, pts, cfg, target_speed=v))
        base_val = float(_loss(model, val.act(), ch, pts, TINY, target_speed=v))
    assert h["init"]["val_loss"] == pytest.approx(start_val, rel=1e-5)
    assert start_val > base_val  # the speed term is counted
    assert h["init"]["checkpoint"] == str(start)
    # ... and the speed term does its job on the data it is trained on (selected on the
    # training set too: 3 validation samples are too few to pick an epoch reliably)
    # and compared with the same fine-tune without it
    sel = dict(splits, val=splits["train"])
    err = {}
    for w in (0.0, 3.0):
        c = dataclasses.replace(cfg, epochs=15, lr=3e-3, speed_loss_weight=w)
        tuned, h = body.train_surrogate(sel, c, 0.04, 1000.0, progress=False, init=start)
        assert h["best_epoch"] >= 0
        err[w] = _mean_rel_speed_err(tuned, splits["train"])
    assert err[3.0] < 0.8 * _mean_rel_speed_err(model, splits["train"])
    assert err[3.0] < 0.8 * err[0.0]


def test_fine_tune_keeps_the_start_when_nothing_improves(tiny, tmp_path):
    import dataclasses

    splits, model, hist = tiny
    start = body.save_surrogate(model, tmp_path / "start.safetensors", hist)
    cfg = dataclasses.replace(TINY, epochs=2, lr=0.0)
    tuned, h = body.train_surrogate(splits, cfg, 0.04, 1000.0, progress=False, init=start)
    assert h["best_epoch"] == -1
    for k, val in _tensors(model).items():
        if not k.startswith("head."):  # the error head is refitted after training
            assert torch.equal(val, _tensors(tuned)[k]), k


def test_fine_tune_refuses_another_architecture(tiny, tmp_path):
    import dataclasses

    splits, model, hist = tiny
    start = body.save_surrogate(model, tmp_path / "start.safetensors", hist)
    with pytest.raises(ValueError, match="hidden_channels"):
        body.train_surrogate(splits, dataclasses.replace(TINY, hidden_channels=16), 0.04,
                             1000.0, progress=False, init=start)
    with pytest.raises(ValueError, match="body_length_um"):
        body.train_surrogate(splits, TINY, 0.04, 900.0, progress=False, init=start)
    with pytest.raises(ValueError, match="speed_loss_weight"):
        body.SurrogateConfig(speed_loss_weight=-1.0)


def test_pointwise_convolutions_are_matrix_products_with_the_same_result(tiny):
    import copy

    from wormlab.body._surrogate import PointwiseConv1d, use_pointwise_matmul

    _, model, _ = tiny
    convs = [m for m in model.members.modules() if isinstance(m, torch.nn.Conv1d)]
    assert convs and all(type(m) is PointwiseConv1d for m in convs)
    library = use_pointwise_matmul(copy.deepcopy(model), enable=False)
    assert not any(type(m) is PointwiseConv1d for m in library.modules())
    assert _tensors(library).keys() == _tensors(model).keys()  # same checkpoint layout
    act = torch.rand(26, 3, 95)
    with torch.no_grad():
        torch.testing.assert_close(model.member_channels(act), library.member_channels(act),
                                   rtol=1e-5, atol=1e-5)
    # gradients too (training uses the same layers)
    for conv in (c for c in convs if c.bias is None), (c for c in convs if c.bias is not None):
        conv = next(conv)
        x = torch.randn(2, conv.in_channels, 7, requires_grad=True)
        ref = torch.nn.Conv1d(conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None)
        ref.load_state_dict(conv.state_dict())
        (g1,) = torch.autograd.grad(conv(x).pow(2).sum(), x)
        (g2,) = torch.autograd.grad(ref(x).pow(2).sum(), x)
        torch.testing.assert_close(g1, g2)
        torch.testing.assert_close(conv(x[0]), ref(x[0]))  # unbatched input


def test_fixed_heldout_ids_survive_a_grown_store(tiny_data):
    d = dict(tiny_data, id=np.array([f"{f}-{i:05d}" for i, f in enumerate(tiny_data["family"])]))
    first = body.split_data(d, TINY)
    held = {k: first[k].id.tolist() for k in ("val", "test")}
    # the store grows (new random samples) and is reordered
    new = np.flatnonzero(d["family"] == "random")[:3]
    grown = {k: np.concatenate([d[k], d[k][new]])[::-1]
             for k in ("activation", "com_um", "tangent_rad", "family")}
    grown["id"] = np.concatenate([d["id"], [f"random-{900 + i:05d}" for i in range(3)]])[::-1]
    assert body.split_data(grown, TINY)["test"].id.tolist() != held["test"]  # redrawn: moves
    again = body.split_data(grown, TINY, heldout=held)
    for k in ("val", "test"):
        assert again[k].id.tolist() == held[k]
        assert np.array_equal(again[k].activation, first[k].activation)
    assert sorted(again["train"].id) == sorted(list(first["train"].id)
                                               + [f"random-{900 + i:05d}" for i in range(3)])
    with pytest.raises(ValueError, match="not in the data"):
        body.split_data(grown, TINY, heldout={"val": ["random-77777"], "test": held["test"]})
    with pytest.raises(ValueError, match="outside the training families"):
        body.split_data(grown, TINY, heldout={"val": [d["id"][-1]], "test": held["test"]})
    with pytest.raises(ValueError, match="sample ids"):
        body.split_data(tiny_data, TINY, heldout=held)


def test_training_records_the_heldout_ids(tiny_data, tmp_path):
    import dataclasses

    d = dict(tiny_data, id=np.array([f"{f}-{i:05d}" for i, f in enumerate(tiny_data["family"])]))
    splits = body.split_data(d, TINY)
    model, h = body.train_surrogate(splits, dataclasses.replace(TINY, epochs=1), 0.04, 1000.0,
                                    progress=False)
    assert h["heldout_ids"] == {k: splits[k].id.tolist() for k in ("val", "test")}
    # train/report --heldout read them back from the checkpoint, or from a JSON file
    import json

    from wormlab.body.cli import _heldout

    path = body.save_surrogate(model, tmp_path / "m.safetensors", h)
    assert _heldout(path) == h["heldout_ids"]
    (tmp_path / "ids.json").write_text(json.dumps(h["heldout_ids"]))
    assert _heldout(tmp_path / "ids.json") == h["heldout_ids"]
    (tmp_path / "bad.json").write_text('{"val": []}')
    with pytest.raises(ValueError, match="'val' and 'test'"):
        _heldout(tmp_path / "bad.json")
    body.save_surrogate(model, tmp_path / "old.safetensors", {})
    with pytest.raises(ValueError, match="did not record"):
        _heldout(tmp_path / "old.safetensors")
