"""Realism of generated posture: feature distributions and a classifier two-sample test.

Features come from the same pipeline for real and generated series: amplitudes -> tangent angles
-> RFT kinematics (signed speed, curvature, reversals) and per-mode power spectra. The
classifier two-sample test (Lopez-Paz & Oquab 2017) asks a random forest to tell windows of
set A from set B under stratified cross-validation: ~50% means indistinguishable.
"""

from __future__ import annotations

import numpy as np
from scipy import signal, stats

from wormlab.posture._config import KinematicsConfig
from wormlab.posture._kinematics import kinematics
from wormlab.posture._shape import Basis, angles_from_series


def series_kinematics(
    series: np.ndarray, basis: Basis, fps: float, config: KinematicsConfig | None = None
):
    """Kinematics of a (T, k + 1) shape series via its reconstructed tangent angles."""
    return kinematics(angles_from_series(series, basis), fps, config)


def mode_spectra(
    series: list[np.ndarray], fps: float, nperseg: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density of every channel, averaged over series: (freqs, (C, F))."""
    out = []
    for s in series:
        n = min(nperseg, len(s))
        f, p = signal.welch(s, fs=fps, nperseg=n, axis=0)
        out.append(p.T)
    return f, np.mean(out, axis=0)


def feature_distributions(
    real: list[np.ndarray],
    generated: list[np.ndarray],
    basis: Basis,
    fps: float,
    config: KinematicsConfig | None = None,
) -> dict:
    """Compare per-frame speed and curvature, reversal rate and mode spectra (real vs generated).

    Returns per-feature KS statistic and Wasserstein distance (in the feature's unit), the
    reversal rates (per minute), and spectra for plotting.
    """

    def collect(sers):
        ks = [series_kinematics(s, basis, fps, config) for s in sers]
        return {
            "speed_mm_s": np.concatenate([k.speed for k in ks]),
            "curvature_rad_per_L": np.concatenate([k.curvature for k in ks]),
            "reversal_rate_per_min": float(np.mean([k.reversal_rate_per_min for k in ks])),
            "reversal_fraction": float(np.mean(np.concatenate([k.reversal for k in ks]))),
            "turn_fraction": float(np.mean(np.concatenate([k.turn for k in ks]))),
        }

    a, b = collect(real), collect(generated)
    out: dict = {"real": {}, "generated": {}, "compare": {}}
    for key in ("speed_mm_s", "curvature_rad_per_L"):
        out["real"][key] = {"mean": float(a[key].mean()), "std": float(a[key].std())}
        out["generated"][key] = {"mean": float(b[key].mean()), "std": float(b[key].std())}
        out["compare"][key] = {
            "ks": float(stats.ks_2samp(a[key], b[key]).statistic),
            "wasserstein": float(stats.wasserstein_distance(a[key], b[key])),
        }
    for key in ("reversal_rate_per_min", "reversal_fraction", "turn_fraction"):
        out["real"][key] = a[key]
        out["generated"][key] = b[key]
    f, pr = mode_spectra(real, fps)
    _, pg = mode_spectra(generated, fps)
    out["spectra"] = {"freq_hz": f.tolist(), "real": pr.tolist(), "generated": pg.tolist()}
    # log-spectral distance per mode (dB, RMS over frequencies)
    lsd = np.sqrt(np.mean((10 * np.log10((pg + 1e-12) / (pr + 1e-12))) ** 2, axis=1))
    out["compare"]["log_spectral_distance_db"] = lsd.round(3).tolist()
    out["samples"] = {"real": a, "generated": b}
    return out


def window_features(series: np.ndarray, window: int = 50, step: int | None = None) -> np.ndarray:
    """Summary features of non-overlapping windows of a (T, C) series: (n_windows, F).

    Per channel: mean, std, mean |diff|, lag-1 and lag-5 autocorrelation, and the fraction of
    power in 4 frequency bands (FFT of the window).
    """
    s = np.asarray(series, dtype=float)
    step = step or window
    feats = []
    for a in range(0, len(s) - window + 1, step):
        w = s[a : a + window]
        wc = w - w.mean(0)
        var = (wc**2).mean(0) + 1e-12
        ac1 = (wc[1:] * wc[:-1]).mean(0) / var
        ac5 = (wc[5:] * wc[:-5]).mean(0) / var
        p = np.abs(np.fft.rfft(wc, axis=0)) ** 2
        bands = np.array_split(p[1:], 4, axis=0)
        bp = np.stack([b.sum(0) for b in bands]) / (p[1:].sum(0) + 1e-12)
        feats.append(
            np.concatenate(
                [w.mean(0), w.std(0), np.abs(np.diff(w, axis=0)).mean(0), ac1, ac5, bp.ravel()]
            )
        )
    return np.asarray(feats)


def window_feature_names(n_channels: int) -> list[str]:
    """Names of the :func:`window_features` columns, e.g. ``"mad[6]"`` (channel 6)."""
    names = []
    for stat in ("mean", "std", "mad", "ac1", "ac5"):
        names += [f"{stat}[{c}]" for c in range(n_channels)]
    for b in range(4):
        names += [f"band{b}[{c}]" for c in range(n_channels)]
    return names


def feature_separability(a: np.ndarray, b: np.ndarray, names: list[str], top: int = 10):
    """Which window features tell set ``b`` from set ``a``: per-feature ROC AUC (0.5 = none),
    sorted by |AUC - 0.5|, with the medians of both sets: ``[(name, auc, med_a, med_b)]``."""
    from sklearn.metrics import roc_auc_score

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape[1] != b.shape[1] or a.shape[1] != len(names):
        raise ValueError(f"{a.shape[1]} / {b.shape[1]} features for {len(names)} names")
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    auc = np.array([roc_auc_score(y, np.r_[a[:, j], b[:, j]]) for j in range(a.shape[1])])
    order = np.argsort(-np.abs(auc - 0.5))[:top]
    return [
        (names[j], round(float(auc[j]), 3), float(np.median(a[:, j])), float(np.median(b[:, j])))
        for j in order
    ]


def classifier_two_sample_test(
    a: np.ndarray, b: np.ndarray, seed: int = 0, folds: int = 5, n_trees: int = 200
) -> dict:
    """Cross-validated accuracy of a random forest telling rows of ``a`` from rows of ``b``.

    Classes are balanced by subsampling the larger set. Returns accuracy (mean over folds),
    its fold std, n per class, and a one-sided binomial p-value against chance (0.5).
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be (n, F) with the same F, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    if n < 2 * folds:
        raise ValueError(f"need at least {2 * folds} rows per set, got {n}")
    a = a[rng.choice(len(a), n, replace=False)]
    b = b[rng.choice(len(b), n, replace=False)]
    x = np.concatenate([a, b])
    y = np.r_[np.zeros(n), np.ones(n)]
    clf = RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    pred = cross_val_predict(clf, x, y, cv=cv)
    correct = pred == y
    per_fold = [correct[test].mean() for _, test in cv.split(x, y)]
    k = int(correct.sum())
    return {
        "accuracy": float(correct.mean()),
        "fold_std": float(np.std(per_fold)),
        "n_per_class": int(n),
        "p_value_vs_chance": float(stats.binomtest(k, len(y), 0.5, alternative="greater").pvalue),
    }


def real_vs_real_test(features: np.ndarray, seed: int = 0, repeats: int = 10, **kw) -> dict:
    """Control: split one set's windows randomly in two halves and run the same test (~50%).

    With few windows a single split scatters widely (cross-validation on exchangeable labels is
    even biased slightly below 50%), so the accuracy is averaged over ``repeats`` random splits;
    every split's accuracy is returned too.
    """
    f = np.asarray(features, float)
    half = len(f) // 2
    accs = []
    for r in range(repeats):
        idx = np.random.default_rng([seed, r]).permutation(len(f))
        res = classifier_two_sample_test(
            f[idx[:half]], f[idx[half : 2 * half]], seed=seed + r, **kw
        )
        accs.append(res["accuracy"])
    return {
        "accuracy": float(np.mean(accs)),
        "split_accuracies": [round(a, 4) for a in accs],
        "n_per_class": res["n_per_class"],
        "repeats": repeats,
    }
