"""Strain classification from posture time series (UCR "Worms": first-eigenworm, 900 samples).

Methods (all fitted on training series only):
- ``lstm``: the Brown-lab paper's protocol -- an LSTM trained to predict the next sample, the
  10/50/90th percentiles of every hidden unit's activation over a worm's series as features,
  recursive feature elimination (linear SVM ranking) to 30 features, then 1-nearest neighbour.
- ``features``: hand-made features (moments, percentiles, autocorrelation, band powers, ...)
  + random forest.
- ``rocket``: random convolutional kernels (ROCKET, Dempster et al. 2020; re-implemented
  here in NumPy) + ridge classifier -- a strong classifier applied directly to the series.
- ``nn``: 1-nearest neighbour, Euclidean (the UCR archive's reference baseline).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from wormlab.posture._config import LSTMConfig

METHODS = ("rocket", "features", "lstm", "nn")


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


# ----------------------------------------------------------------------------- ROCKET
@dataclass
class Rocket:
    """Random convolutional kernels (Dempster et al. 2020): PPV and max of each kernel's output."""

    n_kernels: int = 2000
    seed: int = 0

    def fit(self, X: np.ndarray) -> Rocket:
        rng = np.random.default_rng(self.seed)
        L = X.shape[1]
        self.kernels_ = []
        for _ in range(self.n_kernels):
            length = int(rng.choice([7, 9, 11]))
            w = rng.normal(size=length)
            w -= w.mean()
            b = rng.uniform(-1, 1)
            dil = int(2 ** rng.uniform(0, np.log2((L - 1) / (length - 1))))
            pad = ((length - 1) * dil) // 2 if rng.integers(2) else 0
            self.kernels_.append((w, b, dil, pad))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        n, L = X.shape
        out = np.empty((n, 2 * len(self.kernels_)))
        for k, (w, b, dil, pad) in enumerate(self.kernels_):
            xp = np.pad(X, ((0, 0), (pad, pad))) if pad else X
            span = (len(w) - 1) * dil
            m = xp.shape[1] - span
            conv = np.full((n, m), b)
            for j, wj in enumerate(w):
                conv += wj * xp[:, j * dil : j * dil + m]
            out[:, 2 * k] = (conv > 0).mean(1)
            out[:, 2 * k + 1] = conv.max(1)
        return out


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


def make_classifier(method: str, seed: int = 0):
    """An object with fit(X, y) / predict(X) for (n, L) series."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if method == "rocket":

        class _R:
            def fit(self, X, y):
                self.r = Rocket(seed=seed).fit(X)
                self.c = make_pipeline(StandardScaler(), RidgeClassifierCV(np.logspace(-3, 3, 13)))
                self.c.fit(self.r.transform(X), y)
                return self

            def predict(self, X):
                return self.c.predict(self.r.transform(X))

        return _R()
    if method == "features":
        return make_pipeline(
            FunctionTransformer(hand_features),
            RandomForestClassifier(500, random_state=seed, n_jobs=1),
        )
    if method == "lstm":
        return LSTMProtocol(seed=seed)
    if method == "nn":
        return KNeighborsClassifier(n_neighbors=1)
    raise ValueError(f"unknown method {method!r}; choices: {', '.join(METHODS)}")


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {str(int(c)): float((y_pred[y_true == c] == c).mean()) for c in np.unique(y_true)}


def fit_predict(method: str, Xtr, ytr, Xte, seed: int = 0) -> np.ndarray:
    from wormlab.runs import seed_everything

    seed_everything(seed)
    return np.asarray(make_classifier(method, seed).fit(Xtr, ytr).predict(Xte))


def classify_files(train: str, test: str, method: str = "rocket", seed: int = 0) -> dict:
    """Fit on the ``--train`` UCR file only; report accuracy on the ``--test`` file."""
    from wormlab.posture._data import read_ucr

    Xtr, ytr = read_ucr(train)
    Xte, yte = read_ucr(test)
    if Xtr.shape[1] != Xte.shape[1]:
        raise ValueError(f"train series have length {Xtr.shape[1]}, test {Xte.shape[1]}")
    if len(np.unique(ytr)) < 2:
        raise ValueError(f"{train}: needs at least two classes")
    t0 = time.perf_counter()
    pred = fit_predict(method, Xtr, ytr, Xte, seed)
    return {
        "method": method,
        "accuracy": float((pred == yte).mean()),
        "per_class_accuracy": per_class_accuracy(yte, pred),
        "n_train": int(len(ytr)),
        "n_test": int(len(yte)),
        "seconds": time.perf_counter() - t0,
    }


def holdout_split(y: np.ndarray, test_fraction: float = 0.3, seed: int = 0):
    """Stratified train/test indices (our own split: only the UCR training split exists here)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    return train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)


def strain_benchmark(
    X: np.ndarray,
    y: np.ndarray,
    methods=METHODS,
    folds: int = 5,
    seed: int = 0,
    show_progress: bool = False,
    done: dict | None = None,
    on_method=None,
) -> dict:
    """Accuracy table: stratified k-fold CV and a 70/30 stratified hold-out, per method.

    ``done``: results of methods already computed (skipped; makes long runs resumable);
    ``on_method(result_so_far)`` is called after every method (e.g. to save it atomically).
    """
    from sklearn.model_selection import StratifiedKFold

    from wormlab.runs import progress

    tr, te = holdout_split(y, 0.3, seed)
    out = dict(done or {})
    protocol = {
        "folds": folds,
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
        accs, pcs = [], []
        for a, b in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
            p = fit_predict(m, X[a], y[a], X[b], seed)
            accs.append(float((p == y[b]).mean()))
            pcs.append(per_class_accuracy(y[b], p))
        p = fit_predict(m, X[tr], y[tr], X[te], seed)
        out[m] = {
            "cv_accuracy_mean": float(np.mean(accs)),
            "cv_accuracy_std": float(np.std(accs)),
            "cv_fold_accuracies": accs,
            "holdout_accuracy": float((p == y[te]).mean()),
            "holdout_per_class": per_class_accuracy(y[te], p),
            "seconds": time.perf_counter() - t0,
        }
        out["_protocol"] = protocol
        if on_method:
            on_method(out)
    out["_protocol"] = protocol
    return out
