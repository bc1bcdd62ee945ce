"""Interpretable cells: which LSTM cells track curvature, speed or reversals?

Following the Brown-lab LSTM paper: correlate each cell's memory ``c`` (and hidden state ``h``)
with a behavioural signal, raw and after a mean filter (paper: 200 frames at 10 fps). The null
is built by circularly shifting the behaviour within each worm (keeps its autocorrelation):
a cell passes when its |r| exceeds the (1 - alpha) quantile of the maximum |r| over ALL cells
under the null (family-wise control) and ``min_abs_r``.
"""

from __future__ import annotations

import numpy as np

from wormlab.posture._config import CellsConfig


def mean_filter(x: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average along axis 0 (edges use the available frames)."""
    x = np.asarray(x, dtype=float)
    if frames <= 1:
        return x
    k = np.ones(frames)
    num = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 0, x)
    den = np.convolve(np.ones(len(x)), k, mode="same")
    return num / (den.reshape(-1, *([1] * (x.ndim - 1))))


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, np.inf)


def cell_correlations(
    activity: list[np.ndarray],
    behaviour: list[np.ndarray],
    config: CellsConfig | None = None,
    smooth: bool = False,
    seed: int = 0,
) -> dict:
    """Correlate every cell with a behaviour, against a circular-shift null.

    Args:
        activity: per worm, (T_i, N) cell activity (e.g. memory of all layers, flattened).
        behaviour: per worm, (T_i,) signal (speed, curvature, reversal state 0/1).
        smooth: apply the ``smooth_frames`` mean filter to both before correlating.
    Returns:
        dict with ``r`` (N,), ``threshold`` (the null's max-|r| quantile), ``passed`` (indices
        sorted by |r|), ``null_max`` (n_shuffles,).
    """
    cfg = config or CellsConfig()
    if len(activity) != len(behaviour):
        raise ValueError("activity and behaviour must list the same worms")
    acts, behs = [], []
    for a, b in zip(activity, behaviour):
        a, b = np.asarray(a, float), np.asarray(b, float)
        if a.ndim != 2 or b.shape != (len(a),):
            raise ValueError(f"activity (T, N) and behaviour (T,) disagree: {a.shape}, {b.shape}")
        if smooth:
            a, b = mean_filter(a, cfg.smooth_frames), mean_filter(b, cfg.smooth_frames)
        acts.append(a)
        behs.append(b)
    z = _zscore(np.concatenate(acts))
    T = len(z)

    def corr(bs):
        bz = _zscore(np.concatenate(bs))
        return z.T @ bz / T

    r = corr(behs)
    rng = np.random.default_rng(seed)
    null = np.empty(cfg.n_shuffles)
    for i in range(cfg.n_shuffles):
        shifted = [np.roll(b, rng.integers(len(b) // 10, len(b) - len(b) // 10 + 1)) for b in behs]
        null[i] = np.nanmax(np.abs(corr(shifted)))
    thr = float(np.quantile(null, 1 - cfg.alpha))
    ok = np.flatnonzero((np.abs(r) > thr) & (np.abs(r) >= cfg.min_abs_r))
    ok = ok[np.argsort(-np.abs(r[ok]))]
    return {"r": r, "threshold": thr, "passed": ok, "null_max": null}


def cell_names(layers: int, hidden: int, kind: str = "c") -> list[str]:
    return [f"{kind}{layer}.{i}" for layer in range(layers) for i in range(hidden)]
