"""Worms -> per-worm normalised features -> windows of T timesteps, and leak-free splits.

Shapes are time-first inside a worm: traces (T, N); a window set holds X (M, T, N, F) with F = 1
(trace) or 2 (trace, derivative), both min-max normalised to [0, 1] per neuron per worm as in
Wang et al. 2021 (Front. Artif. Intell. 4:618372).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from wormlab.behaviour._config import DataConfig
from wormlab.behaviour._labels import CLASSES, flavell_labels, kato_labels


@dataclass
class Worm:
    """The behaviour component's view of one recording.

    Attributes:
        worm_id: unique id, e.g. ``kato2015/worm0`` or ``flavell2023/2022-07-26-31``.
        dataset: ``kato2015`` | ``flavell2023`` (decides the label rule).
        traces: (T, N) float activity.
        names: (N,) identified neuron name or ``None`` for an unidentified ROI.
        fps: frames per second.
        states: (T,) Kato state names per frame, or ``None``.
        behaviour: per-frame kinematics (``reversal``, ``curvature``, ``velocity``, ...).
    """

    worm_id: str
    dataset: str
    traces: np.ndarray
    names: tuple
    fps: float
    states: np.ndarray | None = None
    behaviour: dict = field(default_factory=dict)

    def __post_init__(self):
        self.traces = np.asarray(self.traces, dtype=np.float64)
        if self.traces.ndim != 2:
            raise ValueError(f"{self.worm_id}: traces must be (T, N), got {self.traces.shape}")
        if len(self.names) != self.traces.shape[1]:
            raise ValueError(f"{self.worm_id}: {len(self.names)} names for "
                             f"{self.traces.shape[1]} trace columns")
        if not self.fps > 0:
            raise ValueError(f"{self.worm_id}: fps must be positive, got {self.fps}")
        if self.states is not None and len(self.states) != self.n_frames:
            raise ValueError(f"{self.worm_id}: {len(self.states)} states for {self.n_frames} frames")
        for k, v in self.behaviour.items():
            if len(v) != self.n_frames:
                raise ValueError(f"{self.worm_id}: behaviour {k!r} has {len(v)} frames, "
                                 f"traces {self.n_frames}")

    @property
    def n_frames(self) -> int:
        return self.traces.shape[0]

    def identified(self) -> list[str]:
        return [n for n in self.names if is_identified(n)]

    def column(self, name: str) -> int:
        try:
            return list(self.names).index(name)
        except ValueError:
            raise KeyError(f"{self.worm_id} has no neuron {name!r}") from None


def is_identified(name) -> bool:
    """A usable identity: not None/empty, not a bare ROI number, no '?' (uncertain NeuroPAL)."""
    return bool(name) and not str(name).isdigit() and "?" not in str(name)


def labels(worm: Worm, cfg: DataConfig) -> np.ndarray:
    """Per-frame class indices (T,) int64 for ``cfg.task`` (-1 = not a target)."""
    if worm.states is not None:
        return kato_labels(worm.states, cfg.task)
    if "reversal" in worm.behaviour:
        curv = worm.behaviour.get("curvature")
        if curv is None:
            curv = np.zeros(worm.n_frames)
        return flavell_labels(worm.behaviour["reversal"], curv, worm.fps, cfg.task,
                              cfg.turn_quantile, cfg.turn_after_s)
    raise ValueError(f"{worm.worm_id}: no behaviour labels (neither Kato states nor reversal "
                     "flags)")


def resample(worm: Worm, fps: float) -> Worm:
    """Linear interpolation of traces and kinematics; nearest frame for states and flags."""
    if fps <= 0 or abs(fps - worm.fps) < 1e-9:
        return worm
    t_old = np.arange(worm.n_frames) / worm.fps
    t_new = np.arange(0.0, t_old[-1] + 1e-9, 1.0 / fps)
    nearest = np.clip(np.rint(t_new * worm.fps).astype(int), 0, worm.n_frames - 1)
    traces = np.stack([np.interp(t_new, t_old, c) for c in worm.traces.T], axis=1)
    beh = {}
    for k, v in worm.behaviour.items():
        v = np.asarray(v)
        beh[k] = v[nearest] if v.dtype.kind in "biu" else np.interp(t_new, t_old, v)
    states = None if worm.states is None else np.asarray(worm.states)[nearest]
    return Worm(worm.worm_id, worm.dataset, traces, worm.names, fps, states, beh)


def shared_names(worms, cfg: DataConfig) -> list[str]:
    """Neurons used for a set of worms: ``cfg.neurons`` (checked) or every identified name
    present in all of them, minus ``cfg.exclude``; sorted for a fixed node order."""
    worms = list(worms)
    if cfg.neurons:
        for w in worms:
            missing = [n for n in cfg.neurons if n not in w.names]
            if missing:
                raise ValueError(f"neuron(s) {missing} requested but absent from {w.worm_id}")
        names = [n for n in cfg.neurons if n not in cfg.exclude]
    else:
        common = set.intersection(*(set(w.identified()) for w in worms)) if worms else set()
        names = sorted(common - set(cfg.exclude))
    if not names:
        ids = ", ".join(w.worm_id for w in worms)
        raise ValueError(f"no identified neuron is shared by the worms {ids} "
                         f"(after excluding {list(cfg.exclude)})")
    return names


def minmax(a: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
    """Per-column min-max to [0, 1] using rows ``fit`` (bool mask) for the range; clipped."""
    ref = a if fit is None else a[fit]
    lo, hi = np.nanmin(ref, axis=0), np.nanmax(ref, axis=0)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    return np.clip((a - lo) / span, 0.0, 1.0)


def features(worm: Worm, names, *, derivatives: bool = True,
             fit: np.ndarray | None = None) -> np.ndarray:
    """(T, N, F) float32 in [0, 1]: trace (and derivative) of ``names``, normalised per worm.

    ``fit`` (bool (T,)) restricts the frames that set the min/max (used by within-worm splits
    so test frames do not shape the scaling); ``None`` = all frames of this worm, the paper's
    per-worm normalisation (it uses no labels).
    """
    cols = [worm.column(n) for n in names]
    x = worm.traces[:, cols]
    if np.isnan(x).any():  # short gaps in imaging: carry the last value
        x = x.copy()
        for j in range(x.shape[1]):
            c = x[:, j]
            ok = ~np.isnan(c)
            if not ok.any():
                raise ValueError(f"{worm.worm_id}: neuron {names[j]} is NaN in every frame")
            idx = np.where(ok, np.arange(len(c)), 0)
            np.maximum.accumulate(idx, out=idx)
            c = c[idx]
            c[: np.argmax(ok)] = c[np.argmax(ok)]
            x[:, j] = c
    parts = [minmax(x, fit)]
    if derivatives:
        parts.append(minmax(np.gradient(x, axis=0), fit))
    return np.stack(parts, axis=-1).astype(np.float32)


def ends_within(mask: np.ndarray, window: int) -> np.ndarray:
    """Window end frames e whose whole window [e-window+1, e] lies in ``mask``."""
    mask = np.asarray(mask, dtype=bool)
    if len(mask) < window:
        return np.zeros(0, dtype=np.int64)
    c = np.concatenate([[0], np.cumsum(mask)])
    e = np.arange(window - 1, len(mask))
    full = (c[e + 1] - c[e + 1 - window]) == window
    return e[full].astype(np.int64)


def window_frames(ends, window: int) -> np.ndarray:
    """Every frame touched by windows ending at ``ends`` (sorted unique)."""
    ends = np.asarray(ends, dtype=np.int64)
    if ends.size == 0:
        return ends
    return np.unique((ends[:, None] - np.arange(window)[None, :]).ravel())


def pair_features(feat: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
    """Per-worm pairwise activity statistics (N, N, 8) for the static edge encoder.

    For receiver i and sender j: correlation of traces, of derivatives, lag-1 cross-correlation
    both ways (x_j(t) vs x_i(t+1) and reverse) and mean/std of each neuron's trace.
    """
    x = feat if fit is None else feat[fit]
    tr = x[..., 0].astype(np.float64)
    de = x[..., -1].astype(np.float64)

    def corr(a, b):
        a = (a - a.mean(0)) / (a.std(0) + 1e-8)
        b = (b - b.mean(0)) / (b.std(0) + 1e-8)
        return (a.T @ b) / len(a)

    n = tr.shape[1]
    c_tr = corr(tr, tr)
    c_de = corr(de, de)
    lag_ji = corr(tr[1:], tr[:-1])  # [i, j]: x_i(t+1) vs x_j(t)
    lag_ij = lag_ji.T
    mu, sd = tr.mean(0), tr.std(0)
    out = np.stack([c_tr, c_de, lag_ji, lag_ij,
                    np.broadcast_to(mu[:, None], (n, n)), np.broadcast_to(sd[:, None], (n, n)),
                    np.broadcast_to(mu[None, :], (n, n)), np.broadcast_to(sd[None, :], (n, n))],
                   axis=-1)
    return np.nan_to_num(out).astype(np.float32)


@dataclass
class WindowSet:
    """Windows from one or more worms, ready for a model.

    X (M, T, N, F) float32; y (M,) int64; worm (M,) index into ``worm_ids``; ends (M,) end
    frame of each window in its worm; ctx (W, N, N, 8) per-worm pair features.
    """

    X: np.ndarray
    y: np.ndarray
    worm: np.ndarray
    ends: np.ndarray
    worm_ids: list
    names: list
    classes: tuple
    ctx: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx) -> WindowSet:
        return WindowSet(self.X[idx], self.y[idx], self.worm[idx], self.ends[idx],
                         self.worm_ids, self.names, self.classes, self.ctx)


def build_windows(worms, ends: dict, names, cfg: DataConfig, *,
                  fit: dict | None = None, require_label: bool = True) -> WindowSet:
    """Windows ending at ``ends[worm_id]`` for each worm, targets = label of the last frame.

    Args:
        worms: the worms (any order); only those with an entry in ``ends`` are used.
        ends: worm_id -> candidate window end frames.
        names: neuron order (N nodes).
        fit: worm_id -> bool (T,) frames that set the normalisation (default all frames).
        require_label: drop windows whose target is -1.
    """
    xs, ys, ws, es, ctxs, ids = [], [], [], [], [], []
    for w in worms:
        if w.worm_id not in ends:
            continue
        f_mask = None if fit is None else fit.get(w.worm_id)
        feat = features(w, names, derivatives=cfg.derivatives, fit=f_mask)
        lab = labels(w, cfg)
        e = np.asarray(ends[w.worm_id], dtype=np.int64)
        e = e[e >= cfg.window - 1]
        if require_label:
            e = e[lab[e] >= 0]
        k = len(ids)
        ids.append(w.worm_id)
        ctxs.append(pair_features(feat, f_mask))
        if len(e):
            idx = e[:, None] - np.arange(cfg.window - 1, -1, -1)[None, :]
            xs.append(feat[idx])
            ys.append(lab[e])
            ws.append(np.full(len(e), k))
            es.append(e)
    n, f = len(names), 2 if cfg.derivatives else 1
    if xs:
        X, y = np.concatenate(xs), np.concatenate(ys)
        worm, e_all = np.concatenate(ws), np.concatenate(es)
    else:
        X = np.zeros((0, cfg.window, n, f), np.float32)
        y = worm = e_all = np.zeros(0, np.int64)
    ctx = np.stack(ctxs) if ctxs else np.zeros((0, n, n, 8), np.float32)
    return WindowSet(X, y.astype(np.int64), worm.astype(np.int64), e_all.astype(np.int64),
                     ids, list(names), CLASSES[cfg.task], ctx)


# ---------------------------------------------------------------------------------------------
# splits

@dataclass
class Split:
    """Which frames of which worm are train / validation / test window ends.

    ``fit`` gives, per worm, the frames allowed to set its normalisation. A training window
    never touches a test frame (``check_no_leak``).
    """

    name: str
    train: dict
    val: dict
    test: dict
    fit: dict
    window: int
    test_worms: tuple = ()
    within_worm: bool = False

    def worm_ids(self) -> list[str]:
        return sorted(set(self.train) | set(self.val) | set(self.test))


def _carve_val(mask: np.ndarray, frac: float, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Split allowed frames into (train, val) masks: val = the last ``frac`` of the allowed
    frames, separated from training by ``gap`` frames."""
    idx = np.flatnonzero(mask)
    n_val = int(np.ceil(frac * len(idx))) if frac > 0 else 0
    val = np.zeros_like(mask)
    train = mask.copy()
    if n_val:
        v = idx[-n_val:]
        val[v] = True
        train[v] = False
        start = v[0]
        train[max(0, start - gap):start] = False
    return train, val


def kfold_within_worm(worm: Worm, k: int, window: int, val_frac: float = 0.15,
                      gap: int | None = None) -> list[Split]:
    """k contiguous time folds of one worm; ``gap`` frames (default T) around each test fold
    are left out so train/validation windows neither touch nor neighbour test frames."""
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, got {k}")
    gap = window if gap is None else gap
    n = worm.n_frames
    bounds = np.linspace(0, n, k + 1).astype(int)
    out = []
    for i in range(k):
        a, b = bounds[i], bounds[i + 1]
        test_mask = np.zeros(n, bool)
        test_mask[a:b] = True
        allowed = np.ones(n, bool)
        allowed[max(0, a - gap):min(n, b + gap)] = False
        tr, va = _carve_val(allowed, val_frac, gap)
        wid = worm.worm_id
        out.append(Split(f"kfold{k}/{i}", {wid: ends_within(tr, window)},
                         {wid: ends_within(va, window)}, {wid: ends_within(test_mask, window)},
                         {wid: allowed}, window, (wid,), within_worm=True))
    return out


def leave_worms_out(worms, n_test: int, window: int, val_frac: float = 0.15) -> list[Split]:
    """Every combination of ``n_test`` test worms; the others train (last ``val_frac`` of each
    training worm validates). Each worm is normalised with its own frames (paper protocol)."""
    worms = list(worms)
    if not 1 <= n_test < len(worms):
        raise ValueError(f"n_test must be in 1..{len(worms) - 1} for {len(worms)} worms, "
                         f"got {n_test}")
    out = []
    for test in itertools.combinations(worms, n_test):
        test_ids = tuple(w.worm_id for w in test)
        split = Split("lwo/" + "+".join(t.split("/")[-1] for t in test_ids), {}, {}, {}, {},
                      window, test_ids)
        for w in worms:
            full = np.ones(w.n_frames, bool)
            split.fit[w.worm_id] = None
            if w.worm_id in test_ids:
                split.test[w.worm_id] = ends_within(full, window)
            else:
                tr, va = _carve_val(full, val_frac, window)
                split.train[w.worm_id] = ends_within(tr, window)
                split.val[w.worm_id] = ends_within(va, window)
        out.append(split)
    return out


def cross_dataset(train_worms, test_worms, window: int, val_frac: float = 0.15) -> Split:
    """Train on one set of worms (e.g. Kato), test on another (e.g. Flavell)."""
    train_worms, test_worms = list(train_worms), list(test_worms)
    overlap = {w.worm_id for w in train_worms} & {w.worm_id for w in test_worms}
    if overlap:
        raise ValueError(f"worm(s) {sorted(overlap)} are in both train and test")
    test_ids = tuple(w.worm_id for w in test_worms)
    split = Split("cross/" + "+".join(sorted({w.dataset for w in train_worms})) + "->"
                  + "+".join(sorted({w.dataset for w in test_worms})), {}, {}, {}, {},
                  window, test_ids)
    for w in train_worms:
        tr, va = _carve_val(np.ones(w.n_frames, bool), val_frac, window)
        split.train[w.worm_id] = ends_within(tr, window)
        split.val[w.worm_id] = ends_within(va, window)
        split.fit[w.worm_id] = None
    for w in test_worms:
        split.test[w.worm_id] = ends_within(np.ones(w.n_frames, bool), window)
        split.fit[w.worm_id] = None
    return split


def check_no_leak(split: Split) -> None:
    """Raise if any training/validation window touches a test frame of the same worm, or if
    a test worm of a cross-worm split contributes any training/validation frame."""
    for wid, test_ends in split.test.items():
        test_frames = set(window_frames(test_ends, split.window).tolist())
        for part in ("train", "val"):
            ends = getattr(split, part).get(wid)
            if ends is None:
                continue
            if not split.within_worm and len(ends):
                raise AssertionError(f"{split.name}: test worm {wid} has {part} windows")
            touched = set(window_frames(ends, split.window).tolist())
            bad = touched & test_frames
            if bad:
                raise AssertionError(f"{split.name}: {len(bad)} {part} frames of {wid} are "
                                     f"test frames (e.g. {sorted(bad)[:5]})")


def split_windows(worms, split: Split, cfg: DataConfig, names=None):
    """(train, val, test, names) WindowSets for a split over the neurons shared by its worms."""
    by_id = {w.worm_id: w for w in worms}
    missing = [i for i in split.worm_ids() if i not in by_id]
    if missing:
        raise KeyError(f"split {split.name} needs worms {missing}")
    used = [by_id[i] for i in split.worm_ids()]
    names = list(names) if names is not None else shared_names(used, cfg)
    fit = {k: v for k, v in split.fit.items() if v is not None}
    mk = lambda ends: build_windows(used, ends, names, cfg, fit=fit)  # noqa: E731
    return mk(split.train), mk(split.val), mk(split.test), names
