"""Realism on HELD-OUT worms: cross-fitted classifier two-sample test and a per-feature diagnosis.

Protocol (``heldout_realism``): the worms are split into ``n_folds`` groups. For each group a
generator is fitted on the OTHER worms only, then sampled (seeded with real frames of its own
training worms) for every candidate sampling setting. Generated windows of all folds are pooled
and compared with the real windows of the worms each generator never saw (every real window is
held out from exactly one generator). A setting is chosen on the *training* worms only (C2ST of
its generated windows against the training worms' windows, mean over folds); the held-out score of
every setting is reported as well, so the choice can be checked. Classifier two-sample test:
Lopez-Paz & Oquab 2017. Linear VAR baseline: Lutkepohl 2005 (least squares, ridge-regularised).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from wormlab.posture._realism import (
    classifier_two_sample_test,
    real_vs_real_test,
    window_feature_names,
    window_features,
)

Setting = tuple[str, float]  # (noise kind, scale / temperature)


@dataclass
class VARModel:
    """Linear vector autoregression on standardised channels: x[t] = b + sum_i A_i x[t - i] + e."""

    coef: np.ndarray  # (order * C, C): rows = lag-1 channels, then lag-2, ...
    intercept: np.ndarray  # (C,)
    mu: np.ndarray  # (C,) standardisation
    sd: np.ndarray  # (C,)
    resid: np.ndarray  # (N, C) standardised one-step residuals of the fit
    order: int


def _lagged(s: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    t = len(s)
    x = np.concatenate([s[order - i - 1 : t - i - 1] for i in range(order)], axis=1)
    return x, s[order:]


def fit_var(series: list[np.ndarray], order: int = 5, ridge: float = 1e-3) -> VARModel:
    """Least-squares VAR(``order``) over all worms (no lag crosses from one worm to the next)."""
    if order < 1:
        raise ValueError(f"VAR order must be >= 1, got {order}")
    ser = [np.asarray(s, float) for s in series]
    if not ser or any(s.ndim != 2 for s in ser):
        raise ValueError("series must be a non-empty list of (T, C) arrays")
    if all(len(s) <= order for s in ser):
        raise ValueError(f"no series is longer than the VAR order {order}")
    cat = np.concatenate(ser)
    mu, sd = cat.mean(0), cat.std(0) + 1e-8
    pairs = [_lagged((s - mu) / sd, order) for s in ser if len(s) > order]
    x = np.concatenate([p[0] for p in pairs])
    y = np.concatenate([p[1] for p in pairs])
    xa = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    reg = ridge * len(x) * np.eye(xa.shape[1])
    reg[-1, -1] = 0.0  # the intercept is not shrunk
    w = np.linalg.solve(xa.T @ xa + reg, xa.T @ y)
    resid = y - xa @ w
    return VARModel(w[:-1], w[-1], mu, sd, resid, order)


def generate_var(
    model: VARModel,
    seed_frames: np.ndarray,
    n_frames: int,
    noise: float = 1.0,
    noise_kind: str = "gaussian",
    seed: int = 0,
) -> np.ndarray:
    """Run a :class:`VARModel` forward from (B, T >= order, C) real frames: (B, n_frames, C).

    ``gaussian``: residuals drawn from N(0, noise^2 * residual covariance); ``bootstrap``:
    noise x whole residual vectors of the fit, resampled.
    """
    if noise_kind not in ("gaussian", "bootstrap"):
        raise ValueError(f"VAR noise_kind must be 'gaussian' or 'bootstrap', got {noise_kind!r}")
    s = np.asarray(seed_frames, float)
    if s.ndim != 3 or s.shape[1] < model.order or s.shape[2] != len(model.mu):
        raise ValueError(f"seed_frames must be (B, >= {model.order}, {len(model.mu)}), "
                         f"got {s.shape}")
    rng = np.random.default_rng(seed)
    b, c = s.shape[0], s.shape[2]
    hist = [((s[:, -i - 1] - model.mu) / model.sd) for i in range(model.order)]  # lag 1 first
    chol = np.linalg.cholesky(np.cov(model.resid.T) + 1e-9 * np.eye(c))
    out = np.empty((b, n_frames, c))
    for t in range(n_frames):
        nxt = np.concatenate(hist, axis=1) @ model.coef + model.intercept
        if noise_kind == "gaussian":
            nxt = nxt + noise * rng.standard_normal((b, c)) @ chol.T
        else:
            nxt = nxt + noise * model.resid[rng.integers(len(model.resid), size=b)]
        out[:, t] = nxt
        hist = [nxt] + hist[:-1]
    return out * model.sd + model.mu


def var_generator(order: int = 5) -> tuple[Callable, Callable]:
    """(fit, sample) pair for :func:`heldout_realism`: a VAR(``order``) control."""

    def fit(train: list[np.ndarray], seed: int) -> VARModel:
        return fit_var(train, order)

    def sample(model: VARModel, setting: Setting, seeds: np.ndarray, n: int, seed: int):
        return generate_var(model, seeds, n, setting[1], setting[0], seed)

    return fit, sample


def lstm_generator(config, window: int | None = None, verbose: bool = False):
    """(fit, sample) pair for :func:`heldout_realism`: a :class:`PostureLSTM` with ``config``
    (an :class:`LSTMConfig`; ``head="mdn"`` for the mixture read-out), trained with early
    stopping on each training worm's last ``val_fraction``; the noise unit and bootstrap pool
    are calibrated on those same tails."""
    from wormlab.posture._config import GenerateConfig
    from wormlab.posture._lstm import calibrate_noise, generate, train_lstm

    w = window or config.window

    def fit(train: list[np.ndarray], seed: int):
        model = train_lstm(train, config, seed=seed, verbose=verbose).model
        calibrate_noise(model, train, config.window, config.val_fraction)
        return model

    def sample(model, setting: Setting, seeds: np.ndarray, n: int, seed: int):
        kind, scale = setting
        return generate(model, seeds, GenerateConfig(n_frames=n, noise=scale, noise_kind=kind),
                        window=w, seed=seed)

    return fit, sample


def worm_folds(n_worms: int, n_folds: int, seed: int = 0) -> list[np.ndarray]:
    """Split worm indices into ``n_folds`` groups (shuffled with ``seed``)."""
    if not 2 <= n_folds <= n_worms:
        raise ValueError(f"n_folds must be in [2, {n_worms}] for {n_worms} worms, got {n_folds}")
    perm = np.random.default_rng(seed).permutation(n_worms)
    return [np.sort(f) for f in np.array_split(perm, n_folds)]


def _stat_kind(name: str) -> str:
    return name.split("[")[0]


def diagnose(
    real: np.ndarray, gen: np.ndarray, names: list[str], tolerance: float = 0.2
) -> dict[str, Any]:
    """Per-feature comparison of window features, real vs generated.

    ``off``: for scale features (std, mad, band power fractions; all positive) the relative
    difference of the medians, median_gen / median_real - 1; for a channel's window mean the
    difference of medians as a fraction of that channel's median real within-window s.d. (a
    posture offset relative to the typical excursion); for the lag-1/lag-5 autocorrelations
    (already on a [-1, 1] scale) the plain difference of medians. ``auc``: ROC AUC of the feature alone (0.5 = no difference). A feature "fails" when
    abs(off) > ``tolerance``.
    """
    from sklearn.metrics import roc_auc_score

    real, gen = np.asarray(real, float), np.asarray(gen, float)
    y = np.r_[np.zeros(len(real)), np.ones(len(gen))]
    rows = []
    col = {n: j for j, n in enumerate(names)}
    for j, name in enumerate(names):
        mr, mg = float(np.median(real[:, j])), float(np.median(gen[:, j]))
        kind = _stat_kind(name)
        if kind in ("std", "mad") or name.startswith("band"):
            off = mg / mr - 1 if mr > 0 else float("inf")
            unit = "relative"
        elif kind == "mean":
            ref = float(np.median(real[:, col[name.replace("mean", "std", 1)]]))
            off = (mg - mr) / (ref + 1e-12)
            unit = "real within-window s.d."
        else:
            off = mg - mr
            unit = "absolute"
        auc = float(roc_auc_score(y, np.r_[real[:, j], gen[:, j]]))
        rows.append({"feature": name, "median_real": mr, "median_generated": mg,
                     "off": float(off), "off_unit": unit, "auc": auc})
    rows.sort(key=lambda r: -abs(r["off"]))
    return {
        "rows": rows,
        "max_abs_off": abs(rows[0]["off"]),
        "worst": rows[0]["feature"],
        "n_failing": sum(abs(r["off"]) > tolerance for r in rows),
        "tolerance": tolerance,
    }


def between_worm_control(
    series: list[np.ndarray], n_folds: int = 3, window: int = 50, seed: int = 0,
    n_trees: int = 200,
) -> dict[str, Any]:
    """C2ST of each fold's held-out worms against the OTHER worms' real windows (mean over folds).

    The score a generator would get if it copied its training worms perfectly: how far the
    worms differ from each other on these window features. (Pooling over folds, as the
    generated-vs-held-out test does, would put the same real windows in both classes.) Folds as
    in :func:`heldout_realism` with the same ``seed``.
    """
    ser = [np.asarray(s, float) for s in series]
    accs = []
    for test_idx in worm_folds(len(ser), n_folds, seed):
        held = np.concatenate([window_features(ser[i], window) for i in test_idx])
        other = np.concatenate([window_features(s, window) for i, s in enumerate(ser)
                                if i not in set(test_idx)])
        accs.append(classifier_two_sample_test(held, other, seed=seed, n_trees=n_trees)["accuracy"])
    return {"accuracy": float(np.mean(accs)), "per_fold": accs}


def heldout_realism(
    series: list[np.ndarray],
    fit: Callable,
    sample: Callable,
    settings: list[Setting],
    n_folds: int = 3,
    n_seq: int = 4,
    n_frames: int = 1000,
    window: int = 50,
    seed: int = 0,
    control_repeats: int = 10,
    on_fold: Callable | None = None,
    n_trees: int = 200,
) -> dict[str, Any]:
    """Cross-fitted realism of a generator family on held-out worms (see the module docstring).

    Args:
        series: per worm (T, C) shape series.
        fit: ``fit(train_series, seed) -> model``.
        sample: ``sample(model, setting, seed_frames (B, window, C), n_frames, seed)`` ->
            (B, n_frames, C).
        settings: candidate sampling settings ``(kind, scale)``.
        n_seq, n_frames: generated sequences per fold and their length; the first ``window``
            generated frames of each are dropped (they still carry the real seed).
    Returns:
        per setting: held-out C2ST (generated vs held-out real windows), selection C2ST (vs the
        training worms, mean over folds); the chosen setting; two controls: real-vs-real
        (random halves of the held-out windows, ~0.5) and ``other_worms_vs_heldout``
        (:func:`between_worm_control`, per fold); the diagnosis of the chosen setting.
    """
    ser = [np.asarray(s, float) for s in series]
    if n_frames < 2 * window:
        raise ValueError(f"n_frames ({n_frames}) must be at least 2 x window ({window})")
    folds = worm_folds(len(ser), n_folds, seed)

    def c2st(a, b):
        return classifier_two_sample_test(a, b, seed=seed, n_trees=n_trees)

    names = window_feature_names(ser[0].shape[1])
    real_test = []
    gen = {s: [] for s in settings}
    select = {s: [] for s in settings}
    rng = np.random.default_rng(seed)
    for fi, test_idx in enumerate(folds):
        train = [ser[i] for i in range(len(ser)) if i not in set(test_idx)]
        real_test += [window_features(ser[i], window) for i in test_idx]
        f_train = np.concatenate([window_features(s, window) for s in train])
        model = fit(train, seed + fi)
        seeds = []
        for _ in range(n_seq):
            s = train[rng.integers(len(train))]
            a = rng.integers(0, len(s) - window + 1)
            seeds.append(s[a : a + window])
        seeds = np.stack(seeds)
        for st in settings:
            g = np.asarray(sample(model, st, seeds, n_frames, seed + fi))
            if not np.all(np.isfinite(g)):
                raise ValueError(f"setting {st}: generated series are not finite (fold {fi})")
            fg = np.concatenate([window_features(x[window:], window) for x in g])
            gen[st].append(fg)
            select[st].append(c2st(f_train, fg)["accuracy"])
        if on_fold:
            on_fold(fi, model)
    fr = np.concatenate(real_test)
    per = {}
    for st in settings:
        fg = np.concatenate(gen[st])
        per[f"{st[0]}:{st[1]:g}"] = {
            "selection_c2st_train_worms": float(np.mean(select[st])),
            "heldout_c2st": c2st(fr, fg)["accuracy"],
            "n_generated_windows": int(len(fg)),
        }
    chosen = min(settings, key=lambda st: np.mean(select[st]))
    key = f"{chosen[0]}:{chosen[1]:g}"
    fg = np.concatenate(gen[chosen])
    return {
        "settings": per,
        "chosen": key,
        "heldout_c2st": c2st(fr, fg),
        "real_vs_real": real_vs_real_test(fr, seed=seed, repeats=control_repeats,
                                          n_trees=n_trees),
        "other_worms_vs_heldout": between_worm_control(ser, n_folds, window, seed, n_trees),
        "diagnosis": diagnose(fr, fg, names),
        "folds": [f.tolist() for f in folds],
        "n_real_windows": int(len(fr)),
        "window": window,
    }
