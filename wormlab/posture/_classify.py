"""Strain classification from posture time series (UCR "Worms": first-eigenworm, 900 samples).

Methods (all fitted on training series only; the registry is ``CLASSIFIERS``):
- aeon (Middlehurst et al. 2024, JMLR "aeon: a Python toolkit for learning from time series"):
  ``minirocket`` (Dempster et al. 2021), ``multirocket`` (Tan et al. 2022), ``hydra`` and
  ``multirocket-hydra`` (Dempster et al. 2023), ``quant`` (Dempster et al. 2024), and
  ``ensemble``: a majority vote of minirocket, hydra and quant (ties go to the first member).
- ``rocket``: ROCKET (Dempster et al. 2020), aeon's RocketClassifier (10,000 kernels + ridge).
  It replaced our NumPy re-implementation (2,000 kernels), which scored lower than MiniRocket
  in the 5 x 5 CV (0.716 vs 0.738; docs/posture.md section 6).
- ``lstm``: the Brown-lab paper's protocol -- an LSTM trained to predict the next sample, the
  10/50/90th percentiles of every hidden unit's activation over a worm's series as features,
  recursive feature elimination (linear SVM ranking) to 30 features, then 1-nearest neighbour.
- ``features``: hand-made features (moments, percentiles, autocorrelation, band powers, ...)
  + random forest.
- ``nn``: 1-nearest neighbour, Euclidean (the UCR archive's reference baseline).
- ``best``: picks one of ``BEST_CANDIDATES`` by stratified CV on the training series only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from wormlab.posture._config import LSTMConfig


# ----------------------------------------------------------------------------- hand features
def hand_features(X: np.ndarray) -> np.ndarray:
    """(n, L) series -> (n, F) hand-made features (no learning)."""
    X = np.asarray(X, dtype=float)
    from scipy import stats

    xc = X - X.mean(1, keepdims=True)
    sd = X.std(1) + 1e-12
    d = np.diff(X, axis=1)
    feats = [X.mean(1), X.std(1), stats.skew(X, axis=1), stats.kurtosis(X, axis=1)]
    feats += list(np.percentile(X, [5, 25, 50, 75, 95], axis=1))
    feats += [np.abs(d).mean(1), d.std(1), np.abs(np.diff(d, axis=1)).mean(1)]
    feats.append((np.diff(np.sign(xc), axis=1) != 0).mean(1))  # zero-crossing rate
    for lag in (1, 2, 5, 10, 20, 50):
        feats.append((xc[:, lag:] * xc[:, :-lag]).mean(1) / sd**2)
    p = np.abs(np.fft.rfft(xc, axis=1)) ** 2
    edges = np.unique(np.geomspace(1, p.shape[1], 9).astype(int))
    tot = p[:, 1:].sum(1) + 1e-12
    for a, b in zip(edges[:-1], edges[1:]):
        feats.append(p[:, a:b].sum(1) / tot)
    feats += [(xc > sd[:, None]).mean(1), (xc < -sd[:, None]).mean(1)]
    return np.stack(feats, axis=1)


# ----------------------------------------------------------------------------- LSTM protocol
def lstm_percentile_features(model, X: np.ndarray, percentiles=(10, 50, 90)) -> np.ndarray:
    """Per series: the given percentiles of every hidden unit (all layers) over time."""
    import torch

    x = (torch.as_tensor(X.T[..., None], dtype=torch.float32) - model.mu) / model.sd  # (L, n, 1)
    h = model.trace(x)["h"]  # (L, n, layers, hidden)
    h = h.reshape(h.shape[0], h.shape[1], -1).numpy()
    return np.concatenate([np.percentile(h, p, axis=0) for p in percentiles], axis=1)


@dataclass
class LSTMProtocol:
    """Paper protocol: unsupervised next-step LSTM -> percentiles -> RFE(30) -> 1-NN."""

    lstm: LSTMConfig = LSTMConfig(layers=2, hidden=64, dropout=0.2, epochs=4, batch_size=64)
    steps_per_epoch: int = 60
    n_features: int = 30
    seed: int = 0

    def fit(self, X: np.ndarray, y: np.ndarray) -> LSTMProtocol:
        from sklearn.feature_selection import RFE
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC

        from wormlab.posture._lstm import train_lstm

        self.train_ = train_lstm(
            [x[:, None] for x in X],
            self.lstm,
            seed=self.seed,
            max_steps_per_epoch=self.steps_per_epoch,
        )
        self.model_ = self.train_.model
        f = lstm_percentile_features(self.model_, X)
        n_feat = min(self.n_features, f.shape[1])
        self.clf_ = make_pipeline(
            StandardScaler(),
            RFE(
                LinearSVC(C=0.1, max_iter=5000, random_state=self.seed),
                n_features_to_select=n_feat,
                step=0.1,
            ),
            KNeighborsClassifier(n_neighbors=1),
        )
        self.clf_.fit(f, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.clf_.predict(lstm_percentile_features(self.model_, X))


class AeonClassifier:
    """Adapter: (n, L) series -> aeon's (n, 1, L) collections; fit(X, y) / predict(X)."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X: np.ndarray, y: np.ndarray) -> AeonClassifier:
        self.estimator.fit(np.asarray(X, dtype=float)[:, None, :], np.asarray(y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.predict(np.asarray(X, dtype=float)[:, None, :]))


class VoteEnsemble:
    """Majority vote of several classifiers; a tie goes to the earliest member's label."""

    def __init__(self, members: list):
        self.members = members

    def fit(self, X: np.ndarray, y: np.ndarray) -> VoteEnsemble:
        for m in self.members:
            m.fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        votes = np.stack([np.asarray(m.predict(X)) for m in self.members])  # (members, n)
        out = votes[0].copy()
        for i in range(votes.shape[1]):
            labels, counts = np.unique(votes[:, i], return_counts=True)
            top = labels[counts == counts.max()]
            if len(top) == 1:
                out[i] = top[0]
            else:  # tie: first member (in order) whose vote is among the top labels
                out[i] = next(v for v in votes[:, i] if v in top)
        return out


def _aeon(name: str, seed: int):
    from aeon.classification.convolution_based import (
        HydraClassifier,
        MiniRocketClassifier,
        MultiRocketClassifier,
        MultiRocketHydraClassifier,
        RocketClassifier,
    )
    from aeon.classification.interval_based import QUANTClassifier

    make = {
        "minirocket": lambda: MiniRocketClassifier(random_state=seed, n_jobs=1),
        "multirocket": lambda: MultiRocketClassifier(random_state=seed, n_jobs=1),
        "hydra": lambda: HydraClassifier(random_state=seed, n_jobs=1),
        "multirocket-hydra": lambda: MultiRocketHydraClassifier(random_state=seed, n_jobs=1),
        "quant": lambda: QUANTClassifier(random_state=seed),
        "rocket": lambda: RocketClassifier(random_state=seed, n_jobs=1),
    }
    return AeonClassifier(make[name]())


def _features(seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    return make_pipeline(
        FunctionTransformer(hand_features),
        RandomForestClassifier(500, random_state=seed, n_jobs=1),
    )


def _nn(seed: int):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=1)


ENSEMBLE_MEMBERS = ("minirocket", "hydra", "quant")

# One registry: name -> factory(seed) -> object with fit(X, y) / predict(X) on (n, L) series.
CLASSIFIERS = {
    "minirocket": lambda seed: _aeon("minirocket", seed),
    "multirocket": lambda seed: _aeon("multirocket", seed),
    "hydra": lambda seed: _aeon("hydra", seed),
    "multirocket-hydra": lambda seed: _aeon("multirocket-hydra", seed),
    "quant": lambda seed: _aeon("quant", seed),
    "ensemble": lambda seed: VoteEnsemble([_aeon(m, seed) for m in ENSEMBLE_MEMBERS]),
    "rocket": lambda seed: _aeon("rocket", seed),
    "features": _features,
    "lstm": lambda seed: LSTMProtocol(seed=seed),
    "nn": _nn,
}
# ``best`` chooses among these by CV on the training file: the cheap ones (seconds per fit).
BEST_CANDIDATES = ("minirocket", "quant")
METHODS = (*CLASSIFIERS, "best")
DEFAULT_METHOD = "minirocket"
# The default strain table (``lstm`` and nested ``best`` cost minutes per fold on 2 cores).
TABLE_METHODS = ("minirocket", "quant", "hydra", "ensemble", "rocket", "features", "nn")


def check_method(method: str) -> str:
    """Return ``method`` or raise ValueError listing the valid names."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    return method


class BestByCV:
    """Pick the candidate with the highest stratified k-fold CV accuracy on the training set.

    Ties go to the earlier candidate. ``cv_scores_`` and ``chosen_`` record the choice.
    """

    def __init__(self, candidates=BEST_CANDIDATES, folds: int = 5, seed: int = 0):
        for c in candidates:
            if c not in CLASSIFIERS:
                raise ValueError(f"unknown candidate {c!r}; valid: {', '.join(CLASSIFIERS)}")
        self.candidates, self.folds, self.seed = tuple(candidates), folds, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> BestByCV:
        from sklearn.model_selection import StratifiedKFold

        folds = min(self.folds, int(np.bincount(np.unique(y, return_inverse=True)[1]).min()))
        if folds < 2:
            raise ValueError("best: every class needs at least 2 training series for CV")
        split = list(StratifiedKFold(folds, shuffle=True, random_state=self.seed).split(X, y))
        self.cv_scores_ = {}
        for c in self.candidates:
            accs = [
                float((CLASSIFIERS[c](self.seed).fit(X[a], y[a]).predict(X[b]) == y[b]).mean())
                for a, b in split
            ]
            self.cv_scores_[c] = float(np.mean(accs))
        self.chosen_ = max(self.candidates, key=lambda c: self.cv_scores_[c])  # first on ties
        self.model_ = CLASSIFIERS[self.chosen_](self.seed).fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X)


def make_classifier(method: str, seed: int = 0):
    """An object with fit(X, y) / predict(X) for (n, L) series."""
    check_method(method)
    if method == "best":
        return BestByCV(seed=seed)
    return CLASSIFIERS[method](seed)


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy per true class, keyed by the data's own label (``"1"``, ``"N2"``)."""
    y_true = np.asarray(y_true)
    key = (lambda c: str(int(c))) if y_true.dtype.kind in "iuf" else str
    return {key(c): float((y_pred[y_true == c] == c).mean()) for c in np.unique(y_true)}


def fit_predict(method: str, Xtr, ytr, Xte, seed: int = 0, info: dict | None = None) -> np.ndarray:
    """Fit ``method`` on (Xtr, ytr), predict Xte. ``info`` (a dict) receives what ``best`` chose."""
    from wormlab.runs import seed_everything

    seed_everything(seed)
    model = make_classifier(method, seed).fit(Xtr, ytr)
    if info is not None and isinstance(model, BestByCV):
        info.update(chosen=model.chosen_, candidate_cv_accuracy=model.cv_scores_)
    return np.asarray(model.predict(Xte))


def classify_files(train: str, test: str, method: str = DEFAULT_METHOD, seed: int = 0) -> dict:
    """Fit on the ``--train`` UCR file only; report accuracy on the ``--test`` file."""
    from wormlab.posture._data import read_ucr

    check_method(method)
    Xtr, ytr = read_ucr(train)
    Xte, yte = read_ucr(test)
    if Xtr.shape[1] != Xte.shape[1]:
        raise ValueError(
            f"{train}: series have length {Xtr.shape[1]}, but {test}: length {Xte.shape[1]}"
        )
    if len(np.unique(ytr)) < 2:
        raise ValueError(f"{train}: needs at least two classes")
    if (ytr.dtype.kind == "U") != (yte.dtype.kind == "U"):
        raise ValueError(f"{train} and {test}: one has numeric class labels, the other text")
    # the classifiers see class indices; text labels ("N2") come back as they were
    classes = np.unique(np.concatenate([ytr, yte]))
    t0 = time.perf_counter()
    info: dict = {}
    pred = classes[fit_predict(method, Xtr, np.searchsorted(classes, ytr), Xte, seed, info=info)]
    return {
        "method": method,
        **info,
        "accuracy": float((pred == yte).mean()),
        "per_class_accuracy": per_class_accuracy(yte, pred),
        "n_train": int(len(ytr)),
        "n_test": int(len(yte)),
        "seed": seed,
        "seconds": time.perf_counter() - t0,
    }


def holdout_split(y: np.ndarray, test_fraction: float = 0.3, seed: int = 0):
    """Stratified train/test indices (our own split: only the UCR training split exists here)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    return train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)


def corrected_interval(fold_accuracies, folds: int, level: float = 0.95) -> tuple[float, float]:
    """Interval for the mean accuracy of repeated k-fold CV, corrected for overlapping folds.

    The corrected resampled t interval (Nadeau & Bengio 2003, Machine Learning 52:239; as used
    by Bouckaert & Frank 2004): variance factor ``1/J + n_test/n_train`` with J = folds x
    repeats and n_test/n_train = 1/(k-1), t with J-1 degrees of freedom. A plain t interval
    over the J correlated folds would be far too narrow. Clipped to [0, 1].
    """
    from scipy import stats

    a = np.asarray(fold_accuracies, dtype=float)
    J = len(a)
    if J < 2 or folds < 2:
        raise ValueError(f"need at least 2 folds and 2 fold results, got folds={folds}, J={J}")
    half = stats.t.ppf(0.5 + level / 2, J - 1) * np.sqrt((1 / J + 1 / (folds - 1)) * a.var(ddof=1))
    m = float(a.mean())
    return max(0.0, m - float(half)), min(1.0, m + float(half))


def repeated_cv(
    X: np.ndarray,
    y: np.ndarray,
    method: str,
    folds: int = 5,
    repeats: int = 5,
    seed: int = 0,
) -> dict:
    """Repeated stratified k-fold CV of one method: mean, 95% interval, per-fold accuracies."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    check_method(method)
    rskf = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    accs, chosen = [], []
    t0 = time.perf_counter()
    for a, b in rskf.split(X, y):
        info: dict = {}
        p = fit_predict(method, X[a], y[a], X[b], seed, info=info)
        accs.append(float((p == y[b]).mean()))
        if "chosen" in info:
            chosen.append(info["chosen"])
    lo, hi = corrected_interval(accs, folds)
    out = {
        "cv_accuracy_mean": float(np.mean(accs)),
        "cv_accuracy_ci95": [lo, hi],
        "cv_accuracy_std": float(np.std(accs)),
        "cv_fold_accuracies": accs,
        "cv_seconds": time.perf_counter() - t0,
    }
    if chosen:
        out["chosen_per_fold"] = chosen
    return out


def strain_benchmark(
    X: np.ndarray,
    y: np.ndarray,
    methods=TABLE_METHODS,
    folds: int = 5,
    repeats: int = 1,
    seed: int = 0,
    show_progress: bool = False,
    done: dict | None = None,
    on_method=None,
) -> dict:
    """Accuracy table: repeated stratified k-fold CV (mean, corrected 95% interval) and a 70/30
    stratified hold-out, per method.

    ``repeats`` defaults to 1 to keep existing callers' cost (the notebook's smoke run); the
    ``wormlab posture strains`` CLI uses 5 x 5.
    ``done``: results of methods already computed (skipped; makes long runs resumable);
    ``on_method(result_so_far)`` is called after every method (e.g. to save it atomically).
    """
    from wormlab.runs import progress

    for m in methods:
        check_method(m)
    tr, te = holdout_split(y, 0.3, seed)
    out = dict(done or {})
    protocol = {
        "folds": folds,
        "repeats": repeats,
        "interval": "95% corrected resampled t (Nadeau & Bengio 2003)",
        "holdout_fraction": 0.3,
        "seed": seed,
        "n": int(len(y)),
        "chance_majority": float(np.bincount(y).max() / len(y)),
    }
    if out.get("_protocol", protocol) != protocol:
        out = {}  # computed under another protocol: start again
    for m in progress(methods, desc="methods", disable=not show_progress or None):
        if m in out:
            continue
        t0 = time.perf_counter()
        res = repeated_cv(X, y, m, folds, repeats, seed)
        info: dict = {}
        p = fit_predict(m, X[tr], y[tr], X[te], seed, info=info)
        res.update(
            holdout_accuracy=float((p == y[te]).mean()),
            holdout_per_class=per_class_accuracy(y[te], p),
            **{f"holdout_{k}": v for k, v in info.items()},
            seconds=time.perf_counter() - t0,
        )
        out[m] = res
        out["_protocol"] = protocol
        if on_method:
            on_method(out)
    out["_protocol"] = protocol
    return out
