"""Generative LSTM of posture (Brown lab 2017 bioRxiv: 4 x 260 LSTM, dropout 0.2, window 50).

Input: a ``(T, C)`` shape series (eigenworm amplitudes + change of mean angle). The network maps
the previous ``window`` frames to the next one (MSE on channel-standardised values). Training
is resumable (safetensors checkpoint + JSON state written atomically each epoch); generation is
seeded with real frames and runs autoregressively, optionally with Gaussian noise scaled by each
channel's one-step residual standard deviation.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wormlab.posture._config import GenerateConfig, LSTMConfig
from wormlab.runs import atomic_path, progress, remove_orphan_tmp


class PostureLSTM(nn.Module):
    """Stacked LSTM (one ``nn.LSTM`` per layer, dropout after each) + linear read-out.

    Tensors are time-first: x (T, B, C) -> y (T, B, out_features), y[t] predicting x[t + 1].
    ``head="mse"``: out_features = C, the point prediction. ``head="mdn"``: a mixture density
    read-out with K = ``n_components`` diagonal Gaussians, out_features = K + 2 K C (see
    :func:`wormlab.posture._mdn.mdn_split`); :meth:`point` gives the mixture mean.
    """

    def __init__(
        self,
        n_channels: int,
        layers: int = 4,
        hidden: int = 260,
        dropout: float = 0.2,
        head: str = "mse",
        n_components: int = 5,
    ):
        super().__init__()
        if layers < 1 or hidden < 1 or n_channels < 1:
            raise ValueError("layers, hidden and n_channels must be >= 1")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if head not in ("mse", "mdn"):
            raise ValueError(f"head must be 'mse' or 'mdn', got {head!r}")
        if head == "mdn" and n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        self.n_channels, self.n_layers, self.hidden = n_channels, layers, hidden
        self.head, self.n_components = head, (n_components if head == "mdn" else 0)
        self.out_features = (
            n_channels if head == "mse" else n_components * (1 + 2 * n_channels)
        )
        self.lstms = nn.ModuleList(
            nn.LSTM(n_channels if i == 0 else hidden, hidden) for i in range(layers)
        )
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, self.out_features)
        self.register_buffer("mu", torch.zeros(n_channels))
        self.register_buffer("sd", torch.ones(n_channels))
        self.register_buffer("resid_sd", torch.ones(n_channels))

    def forward(self, x: torch.Tensor, state: list | None = None, return_state: bool = False):
        assert x.dim() == 3 and x.shape[-1] == self.n_channels, x.shape
        new_state = []
        h = x
        for i, lstm in enumerate(self.lstms):
            h, st = lstm(h, None if state is None else state[i])
            new_state.append(st)
            h = self.drop(h)
        y = self.out(h)
        return (y, new_state) if return_state else y

    def point(self, y: torch.Tensor) -> torch.Tensor:
        """Point prediction (..., C) from the read-out: itself (mse) or the mixture mean (mdn)."""
        if self.head == "mse":
            return y
        from wormlab.posture._mdn import mdn_mean

        return mdn_mean(y, self.n_components, self.n_channels)

    @torch.no_grad()
    def trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run statefully over a long (T, B, C) standardised input, step by step.

        Returns hidden ``h`` and memory ``c`` of every cell at every step, each
        (T, B, layers, hidden), and the predictions ``y`` (T, B, C).
        """
        self.eval()
        T, B, _ = x.shape
        hs = torch.empty(T, B, self.n_layers, self.hidden)
        cs = torch.empty_like(hs)
        ys = torch.empty(T, B, self.out_features)
        state = None
        for t in range(T):
            y, state = self.forward(x[t : t + 1], state, return_state=True)
            ys[t] = y[0]
            for i, (h, c) in enumerate(state):
                hs[t, :, i] = h[0]
                cs[t, :, i] = c[0]
        return {"h": hs, "c": cs, "y": ys}


@dataclass
class TrainResult:
    model: PostureLSTM
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epochs_done: int = 0
    best_epoch: int | None = None
    seconds: float = 0.0
    stopped_early: bool = False

    def summary(self) -> dict:
        return {
            "epochs": self.epochs_done,
            "final_train_mse": self.train_loss[-1] if self.train_loss else None,
            "final_val_mse": self.val_loss[-1] if self.val_loss else None,
            "best_val_mse": min(self.val_loss) if self.val_loss else None,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "seconds": self.seconds,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            # the *_mse fields hold the training loss: MSE (mse head) or NLL/channel (mdn head)
            "loss": "mse" if self.model.head == "mse" else "nll_per_channel",
        }


def _should_stop(val_loss: list[float], patience: int) -> bool:
    """Early stopping: the best validation loss is ``patience`` or more epochs old."""
    if patience <= 0 or not val_loss or not np.all(np.isfinite(val_loss)):
        return False
    return len(val_loss) - 1 - int(np.argmin(val_loss)) >= patience


def _windows(series: list[np.ndarray], length: int) -> np.ndarray:
    out = [
        np.lib.stride_tricks.sliding_window_view(s, (length, s.shape[1]))[:, 0]
        for s in series
        if len(s) >= length
    ]
    if not out:
        raise ValueError(f"no series is at least {length} frames long")
    return np.concatenate(out).astype(np.float32)


def _split(series: list[np.ndarray], val_fraction: float, window: int):
    train, val = [], []
    for s in series:
        n_val = int(round(len(s) * val_fraction))
        if n_val >= window + 1 and len(s) - n_val >= window + 1:
            train.append(s[:-n_val])
            val.append(s[-n_val:])
        else:
            train.append(s)
    return train, val


def _loss(model: PostureLSTM, xb: torch.Tensor, loss_on: str) -> torch.Tensor:
    # xb: (B, window + 1, C) -> time-first
    x = xb[:, :-1].transpose(0, 1)
    tgt = xb[:, 1:].transpose(0, 1)
    y = model(x)
    if model.head == "mdn":  # negative log-likelihood per channel (nats)
        from wormlab.posture._mdn import mdn_nll

        k, c = model.n_components, model.n_channels
        if loss_on == "last":
            return mdn_nll(y[-1], tgt[-1], k, c)
        return mdn_nll(y, tgt, k, c)
    if loss_on == "last":
        return ((y[-1] - tgt[-1]) ** 2).mean()
    return ((y - tgt) ** 2).mean()


def train_lstm(
    series: list[np.ndarray],
    config: LSTMConfig | None = None,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    max_steps_per_epoch: int | None = None,
    verbose: bool = False,
) -> TrainResult:
    """Train a :class:`PostureLSTM` on (T, C) series; resumes from ``checkpoint`` if present.

    The last ``val_fraction`` of each series is held out (time split, no window overlap).
    Checkpoint: ``<checkpoint>.safetensors`` (weights, optimiser-free) + ``<checkpoint>.json``.
    """
    import time

    from safetensors.torch import save_file

    from wormlab.io import load_torch_weights, read_safetensors

    cfg = config or LSTMConfig()
    if cfg.loss_on not in ("all", "last"):
        raise ValueError(f"loss_on must be 'all' or 'last', got {cfg.loss_on!r}")
    series = [np.asarray(s, dtype=float) for s in series]
    if not series or any(s.ndim != 2 for s in series):
        raise ValueError("series must be a non-empty list of (T, C) arrays")
    n_ch = series[0].shape[1]
    if any(s.shape[1] != n_ch for s in series):
        raise ValueError("all series must have the same number of channels")
    if any(not np.all(np.isfinite(s)) for s in series):
        raise ValueError("series contain NaN or inf")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if cfg.augment not in ("none", "mirror"):
        raise ValueError(f"augment must be 'none' or 'mirror', got {cfg.augment!r}")
    train_s, val_s = _split(series, cfg.val_fraction, cfg.window)
    cat = np.concatenate(train_s)
    mu, sd = cat.mean(0), cat.std(0) + 1e-8
    norm = lambda s: (s - mu) / sd  # noqa: E731
    if cfg.augment == "mirror":  # amplitudes and heading increments are odd in theta
        train_s = train_s + [-s for s in train_s]
    tr = torch.from_numpy(_windows([norm(s) for s in train_s], cfg.window + 1))
    va = torch.from_numpy(_windows([norm(s) for s in val_s], cfg.window + 1)) if val_s else None
    if cfg.head not in ("mse", "mdn"):
        raise ValueError(f"head must be 'mse' or 'mdn', got {cfg.head!r}")
    model = PostureLSTM(n_ch, cfg.layers, cfg.hidden, cfg.dropout, cfg.head, cfg.n_components)
    model.mu.copy_(torch.from_numpy(mu).float())
    model.sd.copy_(torch.from_numpy(sd).float())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    res = TrainResult(model=model)
    best_state = None
    ck = Path(checkpoint) if checkpoint else None
    if ck:
        remove_orphan_tmp(ck.parent)  # temporaries of a killed run (never a live one's)
    meta_want = {
        "config": asdict(cfg),
        "seed": seed,
        "n_channels": n_ch,
        "n_train_windows": len(tr),
    }
    if ck and ck.with_suffix(".json").exists() and ck.with_suffix(".safetensors").exists():
        meta = json.loads(ck.with_suffix(".json").read_text())
        # a checkpoint written before a config field existed ran with that field's default
        meta["config"] = {**asdict(LSTMConfig()), **meta.get("config", {})}
        weights, wmeta = read_safetensors(ck.with_suffix(".safetensors"),
                                          "posture LSTM checkpoint")
        opt_state = ck.with_suffix(".opt.pt")
        opt_saved = load_torch_weights(opt_state, "optimiser state") if opt_state.exists() else None
        if isinstance(opt_saved, dict) and "epochs_done" in opt_saved:
            opt_epoch, opt_saved = opt_saved["epochs_done"], opt_saved["state"]
        else:  # written before the files were stamped with their epoch
            opt_epoch = meta.get("epochs_done")
        # the files are written one after the other: a kill between two leaves them from
        # different epochs, and such a checkpoint is not resumed (training restarts)
        same_epoch = (int(wmeta.get("epochs_done", meta.get("epochs_done", -1)))
                      == opt_epoch == meta.get("epochs_done"))
        if {k: meta.get(k) for k in meta_want} == meta_want and same_epoch:
            model.load_state_dict(weights)
            res.train_loss, res.val_loss = meta["train_loss"], meta["val_loss"]
            res.epochs_done, res.seconds = meta["epochs_done"], meta["seconds"]
            if opt_saved is not None:
                opt.load_state_dict(opt_saved)
            rng = np.random.default_rng([seed, res.epochs_done])
    bar = progress(
        range(res.epochs_done, cfg.epochs), desc="LSTM epochs", disable=not verbose or None
    )
    for epoch in bar:
        if _should_stop(res.val_loss, cfg.patience):
            res.stopped_early = True
            break
        t0 = time.perf_counter()
        model.train()
        torch.manual_seed(seed * 100_003 + epoch)  # dropout masks: same after a resume
        order = rng.permutation(len(tr))
        n_batches = math.ceil(len(tr) / cfg.batch_size)
        if max_steps_per_epoch:
            n_batches = min(n_batches, max_steps_per_epoch)
        tot = 0.0
        for b in range(n_batches):
            xb = tr[order[b * cfg.batch_size : (b + 1) * cfg.batch_size]]
            loss = _loss(model, xb, cfg.loss_on)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            tot += loss.item()
        res.train_loss.append(tot / n_batches)
        res.val_loss.append(_evaluate(model, va, cfg.loss_on) if va is not None else float("nan"))
        res.epochs_done = epoch + 1
        res.seconds += time.perf_counter() - t0
        rng = np.random.default_rng([seed, res.epochs_done])
        if verbose:
            bar.set_postfix(train=f"{res.train_loss[-1]:.4f}", val=f"{res.val_loss[-1]:.4f}")
        _set_resid_sd(model, va if va is not None else tr[:512])
        best = res.val_loss[-1] <= np.nanmin(res.val_loss) if va is not None else True
        if best and cfg.keep_best:
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if ck:
            ck.parent.mkdir(parents=True, exist_ok=True)
            stamp = {"epochs_done": str(res.epochs_done)}
            with atomic_path(ck.with_suffix(".safetensors")) as tmp:
                save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp),
                          metadata=stamp)
            if best:
                with atomic_path(ck.with_suffix(".best.safetensors")) as tmp:
                    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
            with atomic_path(ck.with_suffix(".opt.pt")) as tmp:
                torch.save({"state": opt.state_dict(), "epochs_done": res.epochs_done}, tmp)
            meta = dict(
                meta_want,
                train_loss=res.train_loss,
                val_loss=res.val_loss,
                epochs_done=res.epochs_done,
                seconds=res.seconds,
            )
            with atomic_path(ck.with_suffix(".json")) as tmp:
                tmp.write_text(json.dumps(meta))
    if _should_stop(res.val_loss, cfg.patience):
        res.stopped_early = True
    if cfg.keep_best and best_state is None and ck and ck.with_suffix(".best.safetensors").exists():
        if res.epochs_done and va is not None:  # resumed after the best epoch: reload it
            best_state = read_safetensors(ck.with_suffix(".best.safetensors"),
                                          "posture LSTM checkpoint")[0]
    if cfg.keep_best and best_state is not None:
        model.load_state_dict(best_state)  # early stopping: the best validation epoch
        res.best_epoch = int(np.nanargmin(res.val_loss)) + 1 if va is not None else res.epochs_done
    model.eval()
    _set_resid_sd(model, va if va is not None else tr[:512])
    return res


@torch.no_grad()
def _set_resid_sd(model: PostureLSTM, ref: torch.Tensor, keep_pool: bool = False) -> None:
    """One-step residual s.d. per channel (the noise unit of :func:`generate`), on ``ref``.

    ``keep_pool``: also keep the residual vectors of the last step of every window (target -
    prediction, standardised units) as ``model.resid_pool`` for ``noise_kind="bootstrap"``.
    """
    was = model.training
    model.eval()
    y = model.point(model(ref[:, :-1].transpose(0, 1)))
    res = ref[:, 1:].transpose(0, 1) - y
    r = res.reshape(-1, model.n_channels)
    model.resid_sd.copy_(r.std(0))
    if keep_pool:
        model.resid_pool = res[-1].clone()  # (n_windows, C): one residual per window's last step
    model.train(was)


def calibrate_noise(
    model: PostureLSTM, series: list[np.ndarray], window: int = 50, val_fraction: float = 0.1
) -> np.ndarray:
    """Recompute the residual s.d. on the held-out tail of each series (same split as training).

    Also keeps the held-out residual vectors (``model.resid_pool``) that
    ``GenerateConfig(noise_kind="bootstrap")`` resamples.
    """
    _, val = _split([np.asarray(s, float) for s in series], val_fraction, window)
    ref = val or [np.asarray(s, float) for s in series]
    mu, sd = model.mu.numpy(), model.sd.numpy()
    w = torch.from_numpy(_windows([(s - mu) / sd for s in ref], window + 1))
    _set_resid_sd(model, w, keep_pool=True)
    return model.resid_sd.numpy().copy()


@torch.no_grad()
def _evaluate(model: PostureLSTM, va: torch.Tensor | None, loss_on: str) -> float:
    if va is None or len(va) == 0:
        return float("nan")
    model.eval()
    tot, n = 0.0, 0
    for b in range(0, len(va), 256):
        xb = va[b : b + 256]
        tot += float(_loss(model, xb, loss_on)) * len(xb)
        n += len(xb)
    return tot / n


def load_lstm(checkpoint: str | Path, best: bool = True) -> PostureLSTM:
    """Rebuild a trained model from ``<checkpoint>.json`` + ``.safetensors`` (no pickle).

    ``best``: load the best-validation weights (``.best.safetensors``) when they exist. A
    missing file or field, a truncated or foreign weight file (pickles are refused unread) or
    weights that do not fit raise an error naming the file and the problem.
    """
    from wormlab.io import CheckpointError, read_safetensors

    ck = Path(checkpoint)
    mpath = ck.with_suffix(".json")
    if not mpath.is_file():
        raise FileNotFoundError(f"no posture LSTM checkpoint metadata at {mpath}")
    try:
        meta = json.loads(mpath.read_text())
        c = meta["config"]
        args = (int(meta["n_channels"]), int(c["layers"]), int(c["hidden"]),
                float(c["dropout"]), str(c.get("head", "mse")), int(c.get("n_components", 5)))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{mpath}: not valid JSON ({exc})") from None
    except KeyError as exc:
        raise CheckpointError(f"{mpath}: posture LSTM metadata lacks the field {exc}") from None
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{mpath}: malformed posture LSTM metadata ({exc})") from None
    try:
        model = PostureLSTM(*args)
    except ValueError as exc:
        raise CheckpointError(f"{mpath}: malformed posture LSTM metadata ({exc})") from None
    path = ck.with_suffix(".best.safetensors")
    if not (best and path.exists()):
        path = ck.with_suffix(".safetensors")
    state, _ = read_safetensors(path, "posture LSTM checkpoint")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: posture LSTM weights do not fit {mpath.name}: "
                              f"{' '.join(str(exc).split())[:300]}") from None
    model.loaded_from = path.name
    model.eval()
    return model


@torch.no_grad()
def generate(
    model: PostureLSTM,
    seed_frames: np.ndarray,
    config: GenerateConfig | None = None,
    window: int = 50,
    seed: int = 0,
    show_progress: bool = False,
) -> np.ndarray:
    """Autoregressive generation seeded with real frames.

    Args:
        seed_frames: (window, C) or (B, window, C) real frames (raw units).
        config: n_frames to generate, noise (in residual-std units), mode ``window`` (each step
            sees only the previous ``window`` frames, as in training) or ``stateful``,
            noise_kind ``gaussian`` (independent channels) or ``bootstrap`` (held-out residual
            vectors resampled; needs :func:`calibrate_noise`).
    Returns:
        (n_frames, C) or (B, n_frames, C) generated frames (raw units), excluding the seed.
    """
    cfg = config or GenerateConfig()
    if cfg.mode not in ("window", "stateful"):
        raise ValueError(f"mode must be 'window' or 'stateful', got {cfg.mode!r}")
    if cfg.noise_kind not in ("gaussian", "bootstrap", "mdn"):
        raise ValueError(
            f"noise_kind must be 'gaussian', 'bootstrap' or 'mdn', got {cfg.noise_kind!r}"
        )
    if cfg.noise_kind == "mdn" and model.head != "mdn":
        raise ValueError("noise_kind='mdn' samples a mixture-density head; this model's head is "
                         f"{model.head!r} (use gaussian or bootstrap)")
    if cfg.noise < 0:
        raise ValueError(f"noise must be >= 0, got {cfg.noise}")
    pool = getattr(model, "resid_pool", None)
    if cfg.noise > 0 and cfg.noise_kind == "bootstrap" and (pool is None or len(pool) == 0):
        raise ValueError("noise_kind='bootstrap' needs residuals: run calibrate_noise(model, ...)")
    s = np.asarray(seed_frames, dtype=np.float32)
    squeeze = s.ndim == 2
    if squeeze:
        s = s[None]
    if s.ndim != 3 or s.shape[2] != model.n_channels:
        raise ValueError(f"seed_frames must be (B, T, {model.n_channels}), got {seed_frames.shape}")
    if s.shape[1] < 1:
        raise ValueError("need at least one seed frame")
    model.eval()
    g = torch.Generator().manual_seed(seed)
    x = ((torch.from_numpy(s) - model.mu) / model.sd).transpose(0, 1)  # (T, B, C)
    out = torch.empty(cfg.n_frames, x.shape[1], model.n_channels)
    buf = x[-window:].clone()
    state = None
    steps = progress(range(cfg.n_frames), desc="generate", disable=not show_progress or None)
    y_state, state = (None, None)
    if cfg.mode == "stateful":
        y_state, state = model(x, None, return_state=True)
        raw = y_state[-1]
    for t in steps:
        if cfg.mode == "window":
            raw = model(buf)[-1]
        if cfg.noise_kind == "mdn":  # the model's own mixture, s.d. x temperature
            from wormlab.posture._mdn import mdn_sample

            nxt = mdn_sample(raw, model.n_components, model.n_channels, cfg.noise, g)
        else:  # point prediction (mse head, or an mdn head's mixture mean) + residual noise
            nxt = model.point(raw)
            if cfg.noise > 0 and cfg.noise_kind == "bootstrap":
                pick = torch.randint(len(pool), (nxt.shape[0],), generator=g)
                nxt = nxt + cfg.noise * pool[pick]
            elif cfg.noise > 0:
                nxt = nxt + cfg.noise * model.resid_sd * torch.randn(nxt.shape, generator=g)
        out[t] = nxt
        if cfg.mode == "window":
            buf = torch.cat([buf[1:], nxt[None]], 0)
        else:
            y, state = model(nxt[None], state, return_state=True)
            raw = y[-1]
    res = (out * model.sd + model.mu).transpose(0, 1).numpy()
    return res[0] if squeeze else res


def stability(
    generated: np.ndarray, real: np.ndarray, blowup_factor: float = 5.0, tail: int = 1000
) -> dict:
    """Did a long generated series blow up or collapse?

    ``stable``: all finite and every channel's largest excursion from the real mean within
    ``blowup_factor`` x the real one (floored at 5% of the widest real channel).
    ``collapsed``: the last ``tail`` frames' std fell below 10% of the real std in every
    channel (a fixed point). Both are reported, with the ratios.
    """
    g = np.asarray(generated, dtype=float).reshape(-1, np.shape(generated)[-1])
    r = np.asarray(real, dtype=float).reshape(-1, np.shape(real)[-1])
    finite = bool(np.all(np.isfinite(g)))
    mu = r.mean(0)
    rng_r = np.abs(r - mu).max(0)
    # a channel that barely varies in the real data (e.g. a high mode on synthetic data) gets
    # a floor of 5% of the widest channel's excursion, so noise-level values do not count
    den = np.maximum(rng_r, 0.05 * rng_r.max()) + 1e-12
    ratio = np.abs(g - mu).max(0) / den if finite else np.full(g.shape[1], np.inf)
    tail_sd = np.asarray(generated, dtype=float)[..., -tail:, :].reshape(-1, g.shape[1]).std(0)
    sd_ratio = tail_sd / (r.std(0) + 1e-12)
    return {
        "finite": finite,
        "max_abs_ratio": ratio.round(3).tolist(),
        "tail_std_ratio": sd_ratio.round(3).tolist(),
        "stable": bool(finite and np.all(ratio < blowup_factor)),
        "collapsed": bool(np.all(sd_ratio < 0.1)),
    }
