"""Mixture-density head, VAR control and the held-out realism protocol (issue 20 part 3)."""

import math

import numpy as np
import pytest
import torch

from wormlab import posture as P
from wormlab.posture._heldout import (
    between_worm_control,
    diagnose,
    fit_var,
    generate_var,
    heldout_realism,
    var_generator,
    worm_folds,
)
from wormlab.posture._lstm import PostureLSTM, generate, load_lstm, train_lstm
from wormlab.posture._mdn import mdn_mean, mdn_nll, mdn_sample, mdn_split


def _raw(logits, mu, sd):
    """Pack mixture parameters (K,), (K, C), (K, C) into one read-out vector."""
    return torch.cat([torch.as_tensor(logits, dtype=torch.float64),
                      torch.as_tensor(mu, dtype=torch.float64).reshape(-1),
                      torch.log(torch.as_tensor(sd, dtype=torch.float64)).reshape(-1)])


W, MU, SD = [0.3, 0.7], [[-2.0, 1.0], [1.5, -0.5]], [[0.5, 0.2], [0.3, 0.8]]


def _mixture_samples(n, seed=0):
    rng = np.random.default_rng(seed)
    k = rng.choice(2, size=n, p=W)
    return np.asarray(MU)[k] + np.asarray(SD)[k] * rng.standard_normal((n, 2))


def test_mdn_nll_equals_the_exact_mixture_density():
    x = _mixture_samples(50)
    raw = _raw(np.log(W), MU, SD).expand(len(x), -1)
    got = float(mdn_nll(raw, torch.from_numpy(x), 2, 2))
    dens = sum(
        w * np.prod(np.exp(-0.5 * ((x - np.asarray(m)) / np.asarray(s)) ** 2)
                    / (np.asarray(s) * math.sqrt(2 * math.pi)), axis=1)
        for w, m, s in zip(W, MU, SD)
    )
    assert got == pytest.approx(-np.log(dens).mean() / 2, rel=1e-10)
    # and the mean is the weighted mean of the component means
    np.testing.assert_allclose(mdn_mean(raw[:1], 2, 2)[0].numpy(),
                               np.asarray(W) @ np.asarray(MU), atol=1e-12)
    with pytest.raises(ValueError, match="expected 10"):
        mdn_split(raw[:, :-1], 2, 2)


def test_mdn_fit_recovers_a_known_gaussian_mixture():
    torch.manual_seed(0)
    x = torch.from_numpy(_mixture_samples(4000, seed=1)).float()
    true_nll = float(mdn_nll(_raw(np.log(W), MU, SD).float().expand(len(x), -1), x, 2, 2))
    # start with the components near the data but wrong weights / widths
    raw = torch.nn.Parameter(_raw([0.0, 0.0], [[-1.0, 0.0], [1.0, 0.0]], [[1.0, 1.0]] * 2).float())
    opt = torch.optim.Adam([raw], lr=0.05)
    for _ in range(600):
        loss = mdn_nll(raw.expand(len(x), -1), x, 2, 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    logw, mu, sd = mdn_split(raw.detach(), 2, 2)
    order = torch.argsort(mu[:, 0])
    np.testing.assert_allclose(logw.exp()[order].numpy(), W, atol=0.03)
    np.testing.assert_allclose(mu[order].numpy(), MU, atol=0.06)
    np.testing.assert_allclose(sd[order].numpy(), SD, atol=0.06)
    assert float(loss.detach()) == pytest.approx(true_nll, abs=0.01)  # at the data's own likelihood


def test_mdn_sampling_moments_temperature_and_seed():
    raw = _raw(np.log(W), MU, SD).float().expand(20000, -1)
    a = mdn_sample(raw, 2, 2, 1.0, torch.Generator().manual_seed(3))
    b = mdn_sample(raw, 2, 2, 1.0, torch.Generator().manual_seed(3))
    c = mdn_sample(raw, 2, 2, 1.0, torch.Generator().manual_seed(4))
    assert a.shape == (20000, 2) and torch.equal(a, b) and not torch.equal(a, c)
    x = _mixture_samples(200000, seed=5)
    np.testing.assert_allclose(a.mean(0).numpy(), x.mean(0), atol=0.05)
    np.testing.assert_allclose(a.std(0).numpy(), x.std(0), atol=0.05)
    # temperature 0: only component means come out, in the mixture's proportions
    z = mdn_sample(raw, 2, 2, 0.0, torch.Generator().manual_seed(3)).numpy()
    assert set(map(tuple, np.unique(z.round(5), axis=0))) == {tuple(m) for m in MU}
    assert (z[:, 0] > 0).mean() == pytest.approx(W[1], abs=0.02)
    with pytest.raises(ValueError, match="temperature"):
        mdn_sample(raw, 2, 2, -1.0)


def _series(n=3, T=300, seed=0):
    recs = [P.synthetic_recording(T, 20, 10.0, seed=seed + i) for i in range(n)]
    basis = P.fit_pca(np.concatenate([P.split_mean_angle(r.angles)[0] for r in recs]), 4)
    return [P.shape_series(r.angles, basis) for r in recs]


def test_mdn_lstm_shapes_gradients_training_generation_and_reload(tmp_path):
    m = PostureLSTM(5, layers=2, hidden=8, dropout=0.1, head="mdn", n_components=3)
    x = torch.randn(20, 4, 5)
    y = m(x)
    assert y.shape == (20, 4, 3 * (1 + 2 * 5)) and m.point(y).shape == (20, 4, 5)
    mdn_nll(y[:-1], x[1:], 3, 5).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert m.trace(x[:3])["y"].shape == (3, 4, 33)

    ser = _series(T=400)
    cfg = P.LSTMConfig(layers=1, hidden=16, dropout=0.0, epochs=4, batch_size=32, lr=3e-3,
                       val_fraction=0.2, head="mdn", n_components=3)
    res = train_lstm(ser, cfg, seed=0, checkpoint=tmp_path / "m", max_steps_per_epoch=10)
    assert res.val_loss[-1] < res.val_loss[0] and res.summary()["loss"] == "nll_per_channel"
    seeds = np.stack([s[:50] for s in ser])
    gc = P.GenerateConfig(n_frames=30, noise=0.5, noise_kind="mdn")
    a = generate(res.model, seeds, gc, seed=1)
    assert a.shape == (3, 30, ser[0].shape[1]) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, generate(res.model, seeds, gc, seed=1))
    assert not np.array_equal(a, generate(res.model, seeds, gc, seed=2))
    back = load_lstm(tmp_path / "m")
    assert back.head == "mdn" and back.n_components == 3
    np.testing.assert_array_equal(generate(back, seeds, gc, seed=1), a)
    # the point-prediction kinds still work on an mdn model; mdn sampling needs an mdn head
    assert np.isfinite(generate(back, seeds, P.GenerateConfig(n_frames=5), seed=0)).all()
    mse = PostureLSTM(ser[0].shape[1], layers=1, hidden=4)
    with pytest.raises(ValueError, match="mixture-density head"):
        generate(mse, seeds, gc)
    with pytest.raises(ValueError, match="head must be"):
        PostureLSTM(5, head="gmm")


def test_var_recovers_a_known_process_and_is_seeded():
    rng = np.random.default_rng(0)
    a = np.array([[0.8, 0.1], [-0.2, 0.5]])
    x = np.zeros((5000, 2))
    for t in range(1, len(x)):
        x[t] = a @ x[t - 1] + rng.standard_normal(2) * [1.0, 0.5]
    m = fit_var([x[:2500], x[2500:]], order=1, ridge=0.0)
    # standardised coefficients -> raw units: A_raw = diag(sd) A_std^T diag(1/sd)
    got = (m.sd[:, None] * m.coef.T) / m.sd[None, :]
    np.testing.assert_allclose(got, a, atol=0.03)
    g1 = generate_var(m, x[None, :5], 200, seed=1)
    assert g1.shape == (1, 200, 2)
    np.testing.assert_array_equal(g1, generate_var(m, x[None, :5], 200, seed=1))
    assert not np.array_equal(g1, generate_var(m, x[None, :5], 200, seed=2))
    long = generate_var(m, x[None, :5], 20000, noise_kind="bootstrap", seed=0)[0]
    np.testing.assert_allclose(long.std(0), x.std(0), rtol=0.1)
    with pytest.raises(ValueError, match="order"):
        fit_var([x], order=0)
    with pytest.raises(ValueError, match="noise_kind"):
        generate_var(m, x[None, :5], 10, noise_kind="mdn")


def test_diagnose_names_a_planted_roughness_factor():
    rng = np.random.default_rng(0)
    real = [rng.standard_normal((500, 3)) for _ in range(2)]
    gen = [s.copy() for s in (rng.standard_normal((500, 3)) for _ in range(2))]
    for g in gen:
        g[:, 1] *= 2.0  # channel 1 twice as rough
    fr = np.concatenate([P.window_features(s, 50) for s in real])
    fg = np.concatenate([P.window_features(s, 50) for s in gen])
    d = diagnose(fr, fg, P.window_feature_names(3))
    top = {r["feature"] for r in d["rows"][:2]}
    assert top == {"std[1]", "mad[1]"}
    assert d["max_abs_off"] == pytest.approx(1.0, abs=0.15) and d["n_failing"] >= 2
    same = diagnose(fr, np.concatenate([P.window_features(s, 50) for s in
                                        (rng.standard_normal((500, 3)) for _ in range(2))]),
                    P.window_feature_names(3))
    assert same["max_abs_off"] < 0.5


def test_heldout_protocol_separates_bad_generators_and_not_good_ones():
    rng = np.random.default_rng(1)
    a = np.array([[0.9, 0.0], [0.0, 0.6]])
    worms = []
    for _ in range(4):
        x = np.zeros((1000, 2))
        for t in range(1, len(x)):
            x[t] = a @ x[t - 1] + rng.standard_normal(2)
        worms.append(x)
    assert [f.tolist() for f in worm_folds(4, 2, 0)] == [f.tolist() for f in worm_folds(4, 2, 0)]
    with pytest.raises(ValueError, match="n_folds"):
        worm_folds(4, 5)
    fit, sample = var_generator(1)
    res = heldout_realism(worms, fit, sample, [("gaussian", 1.0), ("gaussian", 3.0)],
                          n_folds=2, n_seq=3, n_frames=500, control_repeats=2, n_trees=60)
    assert res["chosen"] == "gaussian:1"  # chosen on the training worms
    assert res["settings"]["gaussian:3"]["heldout_c2st"] > 0.9  # 3x too rough: found
    assert res["heldout_c2st"]["accuracy"] < 0.7  # the true model class: not separable
    # control: the training worms' own windows vs the held-out worms (same process here)
    assert res["other_worms_vs_heldout"]["accuracy"] < 0.7
    assert res["n_real_windows"] == 80


def test_heldout_cli_rejects_bad_settings_before_reading_data(capsys):
    from wormlab.posture.cli import main

    assert main(["heldout", "--model", "mse", "--settings", "mdn:0.5"]) == 2
    assert "mdn sampling needs --model mdn" in capsys.readouterr().err
    assert main(["heldout", "--model", "var", "--settings", "gauss:1"]) == 2
    assert "expected gaussian:SCALE" in capsys.readouterr().err
    assert main(["heldout", "--model", "mdn", "--settings", "mdn:x"]) == 2
    assert "mdn:x" in capsys.readouterr().err


def test_between_worm_control_sees_worms_that_differ():
    rng = np.random.default_rng(2)
    same = [rng.standard_normal((600, 2)) for _ in range(4)]
    differ = [(1 + 3 * i) * rng.standard_normal((600, 2)) for i in range(4)]  # s.d. 1, 4, 7, 10
    a = between_worm_control(same, n_folds=4, n_trees=60)
    b = between_worm_control(differ, n_folds=4, n_trees=60)
    assert len(a["per_fold"]) == 4
    assert a["accuracy"] < 0.7 and b["accuracy"] > 0.8
    # one VAR fitted to a mix of scales generates a single, pooled scale: caught
    fit, sample = var_generator(1)
    res = heldout_realism(differ, fit, sample, [("gaussian", 1.0)], n_folds=4, n_seq=2,
                          n_frames=400, control_repeats=2, n_trees=60)
    assert res["heldout_c2st"]["accuracy"] > 0.75
    assert res["other_worms_vs_heldout"] == b


def test_wrap_heading_removes_2pi_jumps_and_keeps_the_body():
    rec = P.synthetic_recording(200, 20, 10.0, seed=3)
    basis = P.fit_pca(P.split_mean_angle(rec.angles)[0], 4)
    shifted = rec.angles.copy()
    shifted[60:] += 2 * np.pi  # the whole body re-unwrapped one turn up from frame 60 on
    shifted[130:] -= 4 * np.pi
    clean = P.shape_series(rec.angles, basis)
    raw = P.shape_series(shifted, basis)
    wrapped = P.shape_series(shifted, basis, wrap_heading=True)
    assert np.abs(raw[:, -1]).max() > 6  # the jumps show up unwrapped
    np.testing.assert_allclose(wrapped, clean, atol=1e-9)
    np.testing.assert_allclose(raw[:, :-1], clean[:, :-1], atol=1e-9)  # modes untouched
    # the same midline comes back from the wrapped series as from the raw one
    m0 = float(shifted[0].mean())
    np.testing.assert_allclose(P.midline_from_angles(P.angles_from_series(wrapped, basis, m0)),
                               P.midline_from_angles(P.angles_from_series(raw, basis, m0)),
                               atol=1e-9)
    cfg = P.PostureConfig.from_dict({"shape": {"basis": "pca"}})  # older config files
    assert cfg.shape.wrap_heading is False
