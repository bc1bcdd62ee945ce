"""Interpretable cells: which LSTM cells track curvature, speed or reversals?

Following the Brown-lab LSTM paper: correlate each cell's memory ``c`` (and hidden state ``h``)
with a behavioural signal, raw and after a mean filter (paper: 200 frames at 10 fps = 20 s; the
filter is defined in seconds, see :class:`CellsConfig`). The null
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


def smoothing_frames(config: CellsConfig, fps: float | None) -> int:
    """Mean-filter length in frames: ``smooth_frames`` if set, else ``smooth_s`` x ``fps``."""
    if config.smooth_frames is not None:
        if config.smooth_frames < 1:
            raise ValueError(f"smooth_frames must be >= 1, got {config.smooth_frames}")
        return int(config.smooth_frames)
    if fps is None or not fps > 0:
        raise ValueError(
            f"smoothing is defined in seconds (smooth_s={config.smooth_s}); pass the frame rate "
            "fps (> 0) or set CellsConfig.smooth_frames"
        )
    return max(1, int(round(config.smooth_s * fps)))


def cell_correlations(
    activity: list[np.ndarray],
    behaviour: list[np.ndarray],
    config: CellsConfig | None = None,
    smooth: bool | int = False,
    seed: int = 0,
    fps: float | list[float] | None = None,
) -> dict:
    """Correlate every cell with a behaviour, against a circular-shift null.

    Args:
        activity: per worm, (T_i, N) cell activity (e.g. memory of all layers, flattened).
        behaviour: per worm, (T_i,) signal (speed, curvature, reversal state 0/1).
        smooth: ``True``: apply the config's mean filter (``smooth_s`` x ``fps`` frames, or
            ``smooth_frames``) to both before correlating; an int: a filter of that many frames.
        fps: frame rate (one for all worms, or one per worm), needed when the filter is
            defined in seconds.
    Returns:
        dict with ``r`` (N,), ``threshold`` (the null's max-|r| quantile), ``passed`` (indices
        sorted by |r|), ``null_max`` (n_shuffles,), ``smooth_frames`` (filter length per worm).
    """
    cfg = config or CellsConfig()
    if len(activity) != len(behaviour):
        raise ValueError("activity and behaviour must list the same worms")
    fps_list = list(fps) if isinstance(fps, (list, tuple, np.ndarray)) else [fps] * len(activity)
    if len(fps_list) != len(activity):
        raise ValueError(f"{len(fps_list)} frame rates for {len(activity)} worms")
    if smooth is True:
        n_smooths = [smoothing_frames(cfg, f) for f in fps_list]
    else:
        n_smooths = [int(smooth) if smooth else 0] * len(activity)
    acts, behs = [], []
    for a, b, n_smooth in zip(activity, behaviour, n_smooths):
        a, b = np.asarray(a, float), np.asarray(b, float)
        if a.ndim != 2 or b.shape != (len(a),):
            raise ValueError(f"activity (T, N) and behaviour (T,) disagree: {a.shape}, {b.shape}")
        if n_smooth > 1:
            a, b = mean_filter(a, n_smooth), mean_filter(b, n_smooth)
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
    return {"r": r, "threshold": thr, "passed": ok, "null_max": null, "smooth_frames": n_smooths}


def cell_names(layers: int, hidden: int, kind: str = "c") -> list[str]:
    return [f"{kind}{layer}.{i}" for layer in range(layers) for i in range(hidden)]
