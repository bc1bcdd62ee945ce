"""Training and evaluation: classification (NLL) and multi-step forecasting (MSE, scheduled
sampling), Adam with LR decay on plateau and a best-validation checkpoint; seeded."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from wormlab.behaviour._config import BehaviourConfig
from wormlab.behaviour._data import WindowSet, ends_within, features, pair_features
from wormlab.behaviour._models import TORCH_MODELS, SVMDecoder, build_model
from wormlab.runs import progress, seed_everything

# ---------------------------------------------------------------------------------------------
# metrics

def metrics(y_true, y_pred, n_classes: int) -> dict:
    """accuracy, balanced accuracy (mean recall over classes present in ``y_true``) and the
    confusion matrix (rows true, columns predicted)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    support = cm.sum(1)
    recall = np.diag(cm)[support > 0] / support[support > 0]
    n = len(y_true)
    return {"accuracy": float(np.diag(cm).sum() / n) if n else float("nan"),
            "balanced_accuracy": float(recall.mean()) if recall.size else float("nan"),
            "confusion": cm.tolist(), "n": int(n)}


def majority_baseline(train_y, test_y, n_classes: int) -> dict:
    """Metrics of always predicting the most frequent training class."""
    maj = int(np.bincount(train_y, minlength=n_classes).argmax())
    return metrics(test_y, np.full(len(test_y), maj), n_classes)


# ---------------------------------------------------------------------------------------------
# classification

class _EpochKeeper:
    """End-of-epoch bookkeeping shared by the classifier and forecaster fits: LR decay on
    plateau, loss history, best-validation weights (in memory) and early stopping."""

    def __init__(self, model, opt, sched, history, patience: int, tol: float):
        self.model, self.opt, self.sched, self.history = model, opt, sched, history
        self.patience, self.tol = patience, tol
        self.best, self.best_state, self.stale = float("inf"), None, 0

    def end_epoch(self, epoch: int, train_loss: float, val_loss: float) -> bool:
        """Record one epoch; True when training should stop early."""
        self.sched.step(val_loss)
        self.history.train_loss.append(train_loss)
        self.history.val_loss.append(val_loss)
        self.history.lr.append(self.opt.param_groups[0]["lr"])
        if val_loss < self.best - self.tol:
            self.best, self.stale = val_loss, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.history.best_epoch = epoch
        else:
            self.stale += 1
        return self.stale >= self.patience

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()


@dataclass
class History:
    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    best_epoch: int = -1


class Decoder:
    """One trained behaviour decoder (any model in :data:`MODELS`), with its neuron order."""

    def __init__(self, cfg: BehaviourConfig, names, classes):
        self.cfg, self.names, self.classes = cfg, list(names), tuple(classes)
        self.model = None
        self.history = History()

    @property
    def is_torch(self) -> bool:
        return self.cfg.model.name in TORCH_MODELS

    def fit(self, train: WindowSet, val: WindowSet | None = None, *, verbose: bool = True):
        if len(train) == 0:
            raise ValueError("no training windows (check the split and the labels of the task)")
        if list(train.names) != self.names:
            raise ValueError("training windows use a different neuron order than the decoder")
        seed_everything(self.cfg.train.seed)
        if not self.is_torch:
            self.model = SVMDecoder(self.cfg.model, self.cfg.train.seed).fit(train.X, train.y)
            return self
        _, t, n, f = train.X.shape
        self.model = build_model(self.cfg.model, n, f, t, len(self.classes), self.names)
        self._train_torch(train, val, verbose)
        return self

    def _loss(self, ws: WindowSet, weight) -> float:
        self.model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for xb, cb, yb in _batches(ws, 512, None):
                total += F.cross_entropy(self.model(xb, cb), yb, weight=weight,
                                         reduction="sum").item()
                count += len(yb)
        return total / max(count, 1)

    def _train_torch(self, train: WindowSet, val: WindowSet | None, verbose: bool) -> None:
        tc = self.cfg.train
        opt = torch.optim.Adam(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=tc.lr_factor,
                                                           patience=tc.lr_patience)
        weight = None
        if tc.class_weighted:
            cnt = np.bincount(train.y, minlength=len(self.classes)).astype(float)
            weight = torch.tensor(np.where(cnt > 0, cnt.sum() / np.maximum(cnt, 1), 0.0)
                                  / len(self.classes), dtype=torch.float32)
        gen = torch.Generator().manual_seed(tc.seed)
        use_val = val is not None and len(val) > 0
        keeper = _EpochKeeper(self.model, opt, sched, self.history, tc.early_stop, tol=1e-6)
        bar = progress(range(tc.epochs), desc=f"train {self.cfg.model.name}", leave=False,
                       disable=None if verbose else True)
        for epoch in bar:
            self.model.train()
            tot, cnt = 0.0, 0
            for xb, cb, yb in _batches(train, tc.batch_size, gen):
                opt.zero_grad()
                loss = F.cross_entropy(self.model(xb, cb), yb, weight=weight)
                loss.backward()
                opt.step()
                tot += loss.item() * len(yb)
                cnt += len(yb)
            tr_loss = tot / cnt
            v_loss = self._loss(val, weight) if use_val else tr_loss
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(train=f"{tr_loss:.3f}", val=f"{v_loss:.3f}")
            if keeper.end_epoch(epoch, tr_loss, v_loss):
                break
        keeper.restore_best()

    def predict(self, ws: WindowSet) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("decoder is not trained")
        if len(ws) == 0:
            return np.zeros(0, np.int64)
        if not self.is_torch:
            return self.model.predict(ws.X)
        return self.predict_proba(ws).argmax(1)

    def predict_proba(self, ws: WindowSet) -> np.ndarray:
        if not self.is_torch:
            raise ValueError("the SVM gives labels, not probabilities")
        self.model.eval()
        out = []
        with torch.no_grad():
            for xb, cb, _ in _batches(ws, 512, None):
                out.append(torch.softmax(self.model(xb, cb), -1).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)))

    def evaluate(self, ws: WindowSet) -> dict:
        """Overall and per-worm metrics on a window set."""
        pred = self.predict(ws)
        out = metrics(ws.y, pred, len(self.classes))
        out["per_worm"] = {}
        for k, wid in enumerate(ws.worm_ids):
            m = ws.worm == k
            if m.any():
                out["per_worm"][wid] = metrics(ws.y[m], pred[m], len(self.classes))
        return out

    def edges(self, ws: WindowSet, worm: int = 0) -> np.ndarray:
        """Mean inferred w_ij (N, N, receiver x sender) over one worm's windows (and steps)."""
        if not self.is_torch or self.model.edges_mode in ("none",):
            raise ValueError(f"model {self.cfg.model.name!r} has no inferred edges")
        sel = ws.subset(np.flatnonzero(ws.worm == worm))
        if self.model.edges_mode in ("static", "fixed"):
            x = torch.as_tensor(ws.X[:1]) if len(ws) else torch.zeros(1, 1, len(self.names), 1)
            with torch.no_grad():
                return self.model.edge_weights(x, torch.as_tensor(ws.ctx[worm:worm + 1]))[0].numpy()
        acc, cnt = 0.0, 0
        with torch.no_grad():
            for xb, cb, _ in _batches(sel, 256, None):
                w = self.model.edge_weights(xb, cb)
                acc = acc + w.sum(dim=(0, 1))
                cnt += w.shape[0] * w.shape[1]
        return (acc / max(cnt, 1)).numpy()

    # -- checkpoints: safetensors weights + JSON metadata (no pickle) ----------------------
    def save(self, path) -> None:
        """Write the trained torch decoder to ``path`` (safetensors, atomic)."""
        import json

        from safetensors.torch import save_file

        from wormlab.runs import atomic_path

        if not self.is_torch or self.model is None:
            raise ValueError("only trained torch decoders are saved (the SVM is refitted)")
        meta = {"config": json.dumps(self.cfg.to_dict()), "names": json.dumps(self.names),
                "classes": json.dumps(list(self.classes)),
                "n_feat": str(self.model.f), "window": str(self.model.t)}
        state = {k: v.contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata=meta)

    @classmethod
    def load(cls, path) -> Decoder:
        """Read a decoder written by :meth:`save` (safetensors; pickles are refused unread).

        Errors name the file and the problem: truncated or foreign file, a missing or
        malformed metadata field, weights that do not fit the stored config."""
        from wormlab.io import CheckpointError, meta_json, read_safetensors

        what = "behaviour decoder checkpoint"
        state, meta = read_safetensors(path, what)
        if "config" not in meta:
            raise CheckpointError(f"{path} is not a behaviour decoder checkpoint (no metadata)")
        for k in ("names", "classes", "n_feat", "window"):
            if k not in meta:
                raise CheckpointError(f"{path}: {what} metadata lacks the field {k!r}")
        try:
            cfg = BehaviourConfig.from_dict(meta_json(meta, "config", path, what))
            dec = cls(cfg, meta_json(meta, "names", path, what),
                      meta_json(meta, "classes", path, what))
            n_feat, window = int(meta["n_feat"]), int(meta["window"])
        except CheckpointError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: malformed {what} metadata ({exc})") from None
        dec.model = build_model(cfg.model, len(dec.names), n_feat, window, len(dec.classes),
                                dec.names)
        try:
            dec.model.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: {what} weights do not fit its config: "
                                  f"{' '.join(str(exc).split())[:300]}") from None
        dec.model.eval()
        return dec


def _batches(ws: WindowSet, size: int, gen: torch.Generator | None):
    n = len(ws)
    order = torch.randperm(n, generator=gen).numpy() if gen is not None else np.arange(n)
    ctx = torch.as_tensor(ws.ctx)
    for i in range(0, n, size):
        idx = order[i:i + size]
        yield (torch.as_tensor(ws.X[idx]), ctx[torch.as_tensor(ws.worm[idx])],
               torch.as_tensor(ws.y[idx]))


def train_and_evaluate(cfg: BehaviourConfig, train: WindowSet, val: WindowSet,
                       test: WindowSet, *, verbose: bool = False) -> tuple[Decoder, dict]:
    """Fit a decoder and score it on ``test`` (with the majority-class baseline alongside)."""
    dec = Decoder(cfg, train.names, train.classes).fit(train, val, verbose=verbose)
    res = dec.evaluate(test)
    res["majority"] = majority_baseline(train.y, test.y, len(train.classes))
    res["best_epoch"] = dec.history.best_epoch
    return dec, res


# ---------------------------------------------------------------------------------------------
# forecasting: X_{t+1} = X_t + f(X_t), scheduled sampling, MSE per step


@dataclass
class ForecastSet:
    """Sequences (M, window + horizon, N, 1) of normalised traces and per-worm pair features."""

    seq: np.ndarray
    worm: np.ndarray
    ctx: np.ndarray
    worm_ids: list
    names: list


def forecast_set(worms, ends: dict, names, window: int, horizon: int,
                 stride: int = 1) -> ForecastSet:
    """Sequences starting at the windows whose last input frame is in ``ends[worm_id]`` and
    whose whole horizon lies in the same allowed frames."""
    seqs, ws, ctxs, ids = [], [], [], []
    length = window + horizon
    for w in worms:
        if w.worm_id not in ends:
            continue
        feat = features(w, names, derivatives=False)
        allowed = np.zeros(w.n_frames, bool)
        e = np.asarray(ends[w.worm_id], dtype=np.int64)
        allowed[e] = True  # window ends; a full sequence needs `length` consecutive ones
        last = ends_within(allowed, length)[::stride]  # last frame of the sequence
        k = len(ids)
        ids.append(w.worm_id)
        ctxs.append(pair_features(feat))
        if len(last):
            idx = last[:, None] - np.arange(length - 1, -1, -1)[None, :]
            seqs.append(feat[idx])
            ws.append(np.full(len(last), k))
    n = len(names)
    seq = np.concatenate(seqs) if seqs else np.zeros((0, length, n, 1), np.float32)
    worm = np.concatenate(ws) if ws else np.zeros(0, np.int64)
    return ForecastSet(seq, worm.astype(np.int64), np.stack(ctxs), ids, list(names))


def _rollout(model, seq, ctx, window: int, horizon: int, p_feedback: float,
             gen: torch.Generator | None = None) -> torch.Tensor:
    """Predictions (B, horizon, N, 1); inputs after step 1 are own predictions with probability
    ``p_feedback`` per sample (scheduled sampling; 1 = pure rollout)."""
    x = seq[:, :window]
    w = model.static_weights(x, ctx)  # per-worm edges: once per rollout, not once per step
    preds = []
    for k in range(horizon):
        nxt = model.step(x, ctx, w)
        preds.append(nxt)
        truth = seq[:, window + k]
        if p_feedback >= 1:
            feed = nxt
        elif p_feedback <= 0:
            feed = truth
        else:
            use = torch.rand(len(nxt), generator=gen) < p_feedback
            feed = torch.where(use[:, None, None], nxt, truth)
        x = torch.cat([x[:, 1:], feed[:, None]], 1)
    return torch.stack(preds, 1)


class Forecaster:
    """A graph/MLP model trained to roll neural activity forward (MSE per step 1..horizon)."""

    def __init__(self, cfg: BehaviourConfig, names):
        if cfg.model.name not in TORCH_MODELS:
            raise ValueError(f"forecasting supports {', '.join(TORCH_MODELS)}; "
                             f"not {cfg.model.name!r}")
        self.cfg, self.names = cfg, list(names)
        tc = cfg.train
        seed_everything(tc.seed)
        self.model = build_model(cfg.model, len(self.names), 1, tc.forecast_window, 1,
                                 self.names)
        self.history = History()

    def fit(self, train: ForecastSet, val: ForecastSet | None = None, *, verbose: bool = True):
        tc = self.cfg.train
        if len(train.seq) == 0:
            raise ValueError("no forecasting sequences in the training worms")
        opt = torch.optim.Adam(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=tc.lr_factor,
                                                           patience=tc.lr_patience)
        gen = torch.Generator().manual_seed(tc.seed)
        keeper = _EpochKeeper(self.model, opt, sched, self.history, tc.early_stop, tol=1e-7)
        seq_all, ctx_all = torch.as_tensor(train.seq), torch.as_tensor(train.ctx)
        bar = progress(range(tc.epochs), desc=f"forecast {self.cfg.model.name}", leave=False,
                       disable=None if verbose else True)
        for epoch in bar:
            p = tc.ss_max * epoch / max(tc.epochs - 1, 1)
            self.model.train()
            order = torch.randperm(len(seq_all), generator=gen)
            tot, cnt = 0.0, 0
            for i in range(0, len(order), tc.batch_size):
                idx = order[i:i + tc.batch_size]
                seq = seq_all[idx]
                ctx = ctx_all[torch.as_tensor(train.worm)[idx]]
                pred = _rollout(self.model, seq, ctx, tc.forecast_window, tc.horizon, p, gen)
                loss = F.mse_loss(pred, seq[:, tc.forecast_window:])
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                opt.step()
                tot += loss.item() * len(idx)
                cnt += len(idx)
            tr = tot / cnt
            v = float(np.mean(self.mse_per_step(val))) if val is not None and len(val.seq) else tr
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(train=f"{tr:.4f}", val=f"{v:.4f}", p=f"{p:.2f}")
            if keeper.end_epoch(epoch, tr, v):
                break
        keeper.restore_best()
        return self

    def mse_per_step(self, fs: ForecastSet) -> np.ndarray:
        """Pure-rollout MSE at steps 1..horizon, averaged over sequences and neurons."""
        tc = self.cfg.train
        self.model.eval()
        acc, cnt = np.zeros(tc.horizon), 0
        with torch.no_grad():
            for i in range(0, len(fs.seq), 256):
                seq = torch.as_tensor(fs.seq[i:i + 256])
                ctx = torch.as_tensor(fs.ctx)[torch.as_tensor(fs.worm[i:i + 256])]
                pred = _rollout(self.model, seq, ctx, tc.forecast_window, tc.horizon, 1.0)
                err = ((pred - seq[:, tc.forecast_window:]) ** 2).mean(dim=(2, 3))
                acc += err.sum(0).numpy()
                cnt += len(seq)
        return acc / max(cnt, 1)


def persistence_mse(fs: ForecastSet, window: int, horizon: int) -> np.ndarray:
    """Baseline MSE per step of predicting X_{t+k} = X_t (no change)."""
    last = fs.seq[:, window - 1:window]
    return ((fs.seq[:, window:window + horizon] - last) ** 2).mean(axis=(0, 2, 3))
