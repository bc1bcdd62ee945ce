"""Frame decoders: per-worm z-scored traces (+ derivative, + optional lags) -> a scikit-learn
classifier per frame, and ``best``: the candidate chosen by leave-one-worm-out cross-validation
on the training worms only.

Why a second family next to the window models of ``_models.py``: on unseen Flavell worms a
class-balanced logistic regression on per-worm z-scored traces and derivatives of the current
frame beats every window model (docs/behaviour.md, "Issue 20: frame decoders"). The
derivative is the central difference (``np.gradient``) like the window models' features, so a
frame's features use the next frame (0.6 s at 1.67 fps): ``derivative="backward"`` models are
strictly causal and are scored separately.

Per-worm normalisation uses all frames of that worm and no labels (the paper's protocol for
the window models too), so a test worm is normalised with its own frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from wormlab.behaviour._config import DataConfig
from wormlab.behaviour._data import Worm, labels
from wormlab.behaviour._labels import CLASSES


@dataclass(frozen=True)
class FrameSpec:
    """One frame-decoder candidate.

    Attributes:
        kind: ``logreg`` (class-balanced L2 logistic regression) or ``hgb`` (class-balanced
            histogram gradient boosting, depth 3, 200 rounds, lr 0.05).
        c: inverse L2 strength of ``logreg``.
        derivative: ``central`` (uses frame t+1, like the window models) or ``backward``
            (x_t - x_{t-1}: causal).
        lags: extra copies of the features delayed by these many frames (causal context).
        scales: extra differences over k frames per neuron, each z-scored: ``x[t+k] - x[t-k]``
            (``central``) or ``x[t] - x[t-k]`` (``backward``); a central scale k reads k
            frames ahead.
        neurons: ``shared`` (the names the caller passes: identified in every worm) or
            ``union`` (identified in >= ``union_frac`` of the *training* worms, chosen at fit
            time; a worm lacking one gets zeros there, i.e. its per-worm mean).
        union_frac: see ``neurons``.
        threshold: ``fixed`` (argmax, i.e. 0.5 for two classes) or ``inner`` (two-class
            tasks: the probability cut-off with the best mean balanced accuracy over an
            inner leave-one-worm-out of the training worms, chosen at fit time).
    """

    kind: str = "logreg"
    c: float = 0.003
    derivative: str = "central"
    lags: tuple[int, ...] = ()
    scales: tuple[int, ...] = ()
    neurons: str = "shared"
    union_frac: float = 0.75
    threshold: str = "fixed"

    def __post_init__(self):
        if self.kind not in ("logreg", "hgb"):
            raise ValueError(f"frame decoder kind must be 'logreg' or 'hgb', got {self.kind!r}")
        if self.derivative not in ("central", "backward"):
            raise ValueError(f"derivative must be 'central' or 'backward', got {self.derivative!r}")
        if not self.c > 0:
            raise ValueError(f"c must be positive, got {self.c}")
        if any(int(k) < 1 for k in self.lags):
            raise ValueError(f"lags must be >= 1 frame, got {self.lags}")
        if self.neurons not in ("shared", "union"):
            raise ValueError(f"neurons must be 'shared' or 'union', got {self.neurons!r}")
        if not 0 < self.union_frac <= 1:
            raise ValueError(f"union_frac must be in (0, 1], got {self.union_frac}")
        if self.threshold not in ("fixed", "inner"):
            raise ValueError(f"threshold must be 'fixed' or 'inner', got {self.threshold!r}")
        if any(int(k) < 2 for k in self.scales):
            raise ValueError(f"scales must be >= 2 frames (1 is the derivative), got "
                             f"{self.scales}")

    @property
    def causal(self) -> bool:
        return self.derivative == "backward"

    @property
    def lookahead_frames(self) -> int:
        """How many frames after t the features of frame t read (0 = causal)."""
        return 0 if self.causal else max((1, *self.scales))


FRAME_MODELS: dict[str, FrameSpec] = {
    "logreg": FrameSpec("logreg", 0.003),
    "logreg_c0.001": FrameSpec("logreg", 0.001),
    "logreg_c0.03": FrameSpec("logreg", 0.03),
    "logreg_c1": FrameSpec("logreg", 1.0),
    "logreg_lags": FrameSpec("logreg", 0.003, lags=(1, 2, 4, 7)),
    "hgb": FrameSpec("hgb"),
    "logreg_ms": FrameSpec("logreg", 0.003, scales=(2,)),
    "logreg_ms_thr": FrameSpec("logreg", 0.003, scales=(2,), threshold="inner"),
    "logreg_ms_union": FrameSpec("logreg", 0.003, scales=(2,), neurons="union"),
    "logreg_ms_union_thr": FrameSpec("logreg", 0.003, scales=(2,), neurons="union",
                                     threshold="inner"),
    "logreg_causal": FrameSpec("logreg", 0.01, derivative="backward"),
    "logreg_causal_lags": FrameSpec("logreg", 0.003, derivative="backward", lags=(1, 2, 4, 7)),
    "logreg_causal_ms": FrameSpec("logreg", 0.003, derivative="backward", scales=(2,)),
    "logreg_causal_ms_union_thr": FrameSpec("logreg", 0.003, derivative="backward",
                                            scales=(2,), neurons="union", threshold="inner"),
}

# what ``--model best`` chooses among (``best_causal``: the causal ones)
BEST_CANDIDATES = ("logreg", "logreg_c0.03", "logreg_lags", "hgb", "logreg_ms",
                   "logreg_ms_thr", "logreg_ms_union", "logreg_ms_union_thr")
BEST_CAUSAL_CANDIDATES = ("logreg_causal", "logreg_causal_lags", "logreg_causal_ms",
                          "logreg_causal_ms_union_thr")


def _spec(model) -> FrameSpec:
    if isinstance(model, FrameSpec):
        return model
    if model not in FRAME_MODELS:
        raise ValueError(f"unknown frame decoder {model!r}; choose one of: "
                         f"{', '.join(FRAME_MODELS)}")
    return FRAME_MODELS[model]


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 1e-12, sd, 1.0)


def frame_features(worm: Worm, names, spec: FrameSpec) -> np.ndarray:
    """(T, D) float64 features of one worm: z-scored traces of ``names``, their z-scored
    derivative and differences over each of ``spec.scales`` ((2 + len(scales)) N), then the
    same delayed by each lag (frames before the first repeat frame 0). NaN gaps carry the
    last value (as :func:`wormlab.behaviour.features`). With ``spec.neurons == "union"`` a
    name the worm lacks gives zero columns; otherwise it is an error naming the worm."""
    from wormlab.behaviour._data import features

    names = list(names)
    have = [n for n in names if n in worm.names]
    if spec.neurons == "union" and len(have) < len(names):
        x = np.zeros((worm.n_frames, len(names)))
        if have:
            idx = [names.index(n) for n in have]
            x[:, idx] = _z(features(worm, have, derivatives=False)[..., 0].astype(np.float64))
    else:
        x = features(worm, names, derivatives=False)[..., 0].astype(np.float64)  # NaN-filled
        x = _z(x)
    if spec.derivative == "central":
        d = np.gradient(x, axis=0)
    else:
        d = np.diff(x, axis=0, prepend=x[:1])
    diffs = [_z(d)]
    for k in spec.scales:
        g = np.zeros_like(x)
        if spec.derivative == "central":
            if len(x) > 2 * k:
                g[k:-k] = x[2 * k:] - x[:-2 * k]
                g[:k], g[-k:] = g[k], g[-k - 1]
        elif len(x) > k:
            g[k:] = x[k:] - x[:-k]
        diffs.append(_z(g))
    f = np.concatenate([x, *diffs], axis=1)
    parts = [f]
    for k in spec.lags:
        g = np.empty_like(f)
        g[k:] = f[:-k] if k < len(f) else f[:0]
        g[:k] = f[0]
        parts.append(g)
    return np.concatenate(parts, axis=1)


def _classifier(spec: FrameSpec, seed: int):
    if spec.kind == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=spec.c, class_weight="balanced", max_iter=3000)
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_depth=3,
                                          class_weight="balanced", random_state=seed)


class FrameDecoder:
    """A frame decoder fitted on whole worms: ``FrameDecoder("logreg", names, cfg).fit(worms)``.

    ``first_frame`` (default ``cfg.window - 1``) drops each worm's first frames from fitting
    and scoring, so scores cover the same frames as the window models' (a window of T frames
    first ends at frame T-1).
    """

    def __init__(self, model, names, cfg: DataConfig, *, seed: int = 0,
                 first_frame: int | None = None):
        self.spec = _spec(model)
        self.model_name = model if isinstance(model, str) else "custom"
        self.names, self.cfg, self.seed = list(names), cfg, seed
        self.classes = CLASSES[cfg.task]
        self.first_frame = cfg.window - 1 if first_frame is None else first_frame
        self.clf = None
        self.threshold = None  # two-class probability cut-off when spec.threshold == "inner"

    def _xy(self, worm: Worm):
        x = frame_features(worm, self.names, self.spec)
        y = labels(worm, self.cfg)
        keep = np.arange(worm.n_frames) >= self.first_frame
        return x, y, keep & (y >= 0)

    def scored_labels(self, worm: Worm) -> np.ndarray:
        """Labels of the frames this decoder fits on and scores (first_frame on, label >= 0)."""
        _, y, m = self._xy(worm)
        return y[m]

    def fit(self, worms):
        worms = list(worms)
        if not worms:
            raise ValueError("no training worms")
        if self.spec.neurons == "union":
            self.names = union_names(worms, self.spec.union_frac)
        if self.spec.threshold == "inner" and len(self.classes) == 2:
            self.threshold = inner_threshold(self.spec, worms, self.cfg, self.names,
                                             seed=self.seed, first_frame=self.first_frame)
        xs, ys = [], []
        for w in worms:
            x, y, m = self._xy(w)
            xs.append(x[m])
            ys.append(y[m])
        y = np.concatenate(ys)
        if len(y) == 0:
            raise ValueError("no labelled training frames (check the task's labels)")
        present = np.unique(y)
        if len(present) < 2:
            ids = ", ".join(w.worm_id for w in worms)
            raise ValueError(f"training worms {ids} hold only class "
                             f"{self.classes[int(present[0])]!r} for task {self.cfg.task!r}")
        self.clf = _classifier(self.spec, self.seed).fit(np.concatenate(xs), y)
        return self

    def predict_worm(self, worm: Worm) -> tuple[np.ndarray, np.ndarray]:
        """(y_true, y_pred) over the scored frames of one worm."""
        if self.clf is None:
            raise RuntimeError("frame decoder is not trained")
        x, y, m = self._xy(worm)
        if not m.any():
            return y[:0], y[:0]
        if self.threshold is not None:
            p = self.clf.predict_proba(x[m])[:, list(self.clf.classes_).index(1)]
            return y[m], (p > self.threshold).astype(np.int64)
        return y[m], self.clf.predict(x[m]).astype(np.int64)

    def proba_worm(self, worm: Worm) -> tuple[np.ndarray, np.ndarray]:
        """(y_true, P(class 1)) over the scored frames of one worm (two-class tasks)."""
        if self.clf is None:
            raise RuntimeError("frame decoder is not trained")
        x, y, m = self._xy(worm)
        return y[m], self.clf.predict_proba(x[m])[:, list(self.clf.classes_).index(1)]

    def evaluate(self, worms) -> dict:
        """Pooled and per-worm metrics, as :meth:`Decoder.evaluate`."""
        from wormlab.behaviour._train import metrics

        n = len(self.classes)
        per, yt, yp = {}, [], []
        for w in worms:
            t, p = self.predict_worm(w)
            yt.append(t)
            yp.append(p)
            if len(t):
                per[w.worm_id] = metrics(t, p, n)
        out = metrics(np.concatenate(yt), np.concatenate(yp), n)
        out["per_worm"] = per
        return out


def union_names(worms, frac: float = 0.75) -> list[str]:
    """Identified names present in at least ``ceil(frac * len(worms))`` of ``worms``, sorted."""
    import math

    worms = list(worms)
    count: dict[str, int] = {}
    for w in worms:
        for n in set(w.identified()):
            count[n] = count.get(n, 0) + 1
    need = max(1, math.ceil(frac * len(worms)))
    names = sorted(n for n, k in count.items() if k >= need)
    if not names:
        ids = ", ".join(w.worm_id for w in worms)
        raise ValueError(f"no identified neuron is present in >= {need} of the worms {ids}")
    return names


THRESHOLDS = np.round(np.linspace(0.2, 0.8, 25), 3)


def inner_threshold(spec: FrameSpec, worms, cfg: DataConfig, names=None, *, seed: int = 0,
                    first_frame: int | None = None) -> float:
    """The two-class probability cut-off (from :data:`THRESHOLDS`) with the best mean balanced
    accuracy over leave-one-worm-out on ``worms`` (the training worms); 0.5 with < 2 worms.
    ``names``: the neurons of a ``shared`` spec (default: shared by ``worms``); ``union``
    specs recompute theirs from each inner training set. Ties go to the cut-off nearest 0.5."""
    from dataclasses import replace

    from wormlab.behaviour._data import shared_names
    from wormlab.behaviour._train import metrics

    worms = list(worms)
    if len(worms) < 2:
        return 0.5
    plain = replace(spec, threshold="fixed")
    total = np.zeros(len(THRESHOLDS))
    for held in worms:
        rest = [w for w in worms if w is not held]
        use = (union_names(rest, spec.union_frac) if spec.neurons == "union"
               else names if names is not None else shared_names(worms, cfg))
        dec = FrameDecoder(plain, use, cfg, seed=seed, first_frame=first_frame)
        try:
            dec.fit(rest)
        except ValueError:  # e.g. the remaining worms hold one class only
            continue
        y, p = dec.proba_worm(held)
        if len(y):
            total += [metrics(y, (p > t).astype(np.int64), 2)["balanced_accuracy"]
                      for t in THRESHOLDS]
    best = np.flatnonzero(total >= total.max() - 1e-12)
    return float(THRESHOLDS[best[np.argmin(np.abs(THRESHOLDS[best] - 0.5))]])


def select_frame_model(train_worms, names, cfg: DataConfig, candidates=BEST_CANDIDATES, *,
                       seed: int = 0) -> dict:
    """Choose a frame decoder by leave-one-worm-out CV over ``train_worms`` only.

    Each candidate is fitted on all training worms but one and scored (balanced accuracy) on
    that one; the candidate with the highest mean wins (ties: the earlier in ``candidates``).
    No other worm is touched, so a test worm cannot influence the choice.

    Returns:
        ``{"chosen", "candidates", "inner": {candidate: {held_out_worm: balanced_acc}},
        "inner_mean": {candidate: mean}}``.
    """
    train_worms = list(train_worms)
    if len(train_worms) < 2:
        raise ValueError(f"--model best needs >= 2 training worms for inner leave-one-worm-out "
                         f"cross-validation, got {len(train_worms)}")
    candidates = list(candidates)
    if not candidates:
        raise ValueError("no candidate frame decoders to choose from")
    for c in candidates:
        _spec(c)
    inner: dict[str, dict[str, float]] = {c: {} for c in candidates}
    for held in train_worms:
        rest = [w for w in train_worms if w is not held]
        for c in candidates:
            dec = FrameDecoder(c, names, cfg, seed=seed).fit(rest)
            res = dec.evaluate([held])
            if held.worm_id in res["per_worm"]:
                inner[c][held.worm_id] = res["per_worm"][held.worm_id]["balanced_accuracy"]
    mean = {c: float(np.mean(list(v.values()))) if v else float("nan")
            for c, v in inner.items()}
    chosen = max(candidates, key=lambda c: (np.nan_to_num(mean[c], nan=-1.0),
                                            -candidates.index(c)))
    return {"chosen": chosen, "candidates": candidates, "inner": inner, "inner_mean": mean,
            "spec": asdict(FRAME_MODELS[chosen])}


def frame_lwo(worms, models, cfg: DataConfig, *, seed: int = 0, progress_bar: bool = True,
              extra_train=(), candidates=None) -> list[dict]:
    """Leave-one-worm-out over ``worms`` for frame decoders (and ``best``): one row per
    (test worm, model) with balanced accuracy, accuracy and the majority-class baseline.

    ``best`` runs its own inner selection on the training worms of each split. Neurons = the
    identified names shared by all ``worms`` (or ``cfg.neurons``). ``extra_train`` worms are
    added to every training set (never tested). ``candidates`` overrides what ``best``
    chooses among (default :data:`BEST_CANDIDATES`, or :data:`BEST_CAUSAL_CANDIDATES` for
    ``best_causal``).
    """
    from wormlab.behaviour._data import shared_names
    from wormlab.behaviour._train import majority_baseline
    from wormlab.runs import progress

    worms = list(worms)
    names = shared_names(worms, cfg)
    rows = []
    bar = progress(worms, desc="frame lwo", disable=None if progress_bar else True)
    for test in bar:
        train = [w for w in worms if w is not test] + list(extra_train)
        probe = FrameDecoder("logreg", names, cfg, seed=seed)
        ytr = np.concatenate([probe.scored_labels(w) for w in train])
        yte = probe.scored_labels(test)
        maj = majority_baseline(ytr, yte, len(probe.classes))
        for m in models:
            sel = None
            name = m
            if m in ("best", "best_causal"):
                cands = candidates or (BEST_CAUSAL_CANDIDATES if m == "best_causal"
                                       else BEST_CANDIDATES)
                sel = select_frame_model(train, names, cfg, cands, seed=seed)
                name = sel["chosen"]
            res = FrameDecoder(name, names, cfg, seed=seed).fit(train).evaluate([test])
            row = {"test": test.worm_id, "model": m, "balanced_accuracy":
                   res["balanced_accuracy"], "accuracy": res["accuracy"],
                   "majority_accuracy": maj["accuracy"], "n": res["n"],
                   "n_neurons": len(names)}
            if sel is not None:
                row["chosen"] = sel["chosen"]
                row["inner_mean"] = sel["inner_mean"]
            rows.append(row)
    return rows


def frames_table(rows, extra: dict | None = None) -> str:
    """Markdown table of :func:`frame_lwo` rows: balanced accuracy per unseen worm (columns)
    for each model (rows), with mean, min and max; the majority-class baseline's accuracy
    (its balanced accuracy is 0.5) as the last row. ``extra`` = ``{model: {worm: value}}``
    rows from elsewhere (e.g. the window models on the same splits)."""
    rows = list(rows)
    if not rows:
        raise ValueError("no rows to tabulate")
    worms = sorted({r["test"] for r in rows})
    table: dict[str, dict[str, float]] = {}
    for r in rows:
        table.setdefault(r["model"], {})[r["test"]] = r["balanced_accuracy"]
    for k, v in (extra or {}).items():
        table[k] = dict(v)
    maj = {r["test"]: r["majority_accuracy"] for r in rows}
    short = [w.split("/")[-1] for w in worms]
    out = ["| model | " + " | ".join(short) + " | mean | min | max |",
           "|---" * (len(worms) + 4) + "|"]

    def line(name, vals):
        v = [vals.get(w) for w in worms]
        got = [x for x in v if x is not None]
        cells = ["" if x is None else f"{x:.3f}" for x in v]
        stats = [f"{np.mean(got):.3f}", f"{min(got):.3f}", f"{max(got):.3f}"] if got else [""] * 3
        return f"| {name} | " + " | ".join(cells + stats) + " |"

    for name in sorted(table, key=lambda k: -np.mean(list(table[k].values()))):
        out.append(line(name, table[name]))
    out.append(line("majority class (accuracy; balanced = 0.5)", maj))
    return "\n".join(out)
