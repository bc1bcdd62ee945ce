"""Training loop (any iterator of activation tensors), safe resumable checkpoints."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wormlab.runs import atomic_path, progress
from wormlab.sae._metrics import evaluate
from wormlab.sae._model import SAEConfig, SparseAutoencoder

CHECKPOINT_FORMAT = "wormlab.sae/1"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Args:
        n_steps: optimiser steps (one batch each).
        lr: Adam learning rate.
        l1_warmup_steps: the L1 weight ramps linearly from 0 over these steps (relu).
        resample_every: resample dead units every this many steps (0 = never), except within
            the last ``resample_every // 2`` steps, which are left for the new units to train.
        eval_every: validation metrics every this many steps (needs ``val``).
        checkpoint_every: write the checkpoint every this many steps (needs a path).
        normaliser_batches: when the SAE's normaliser is not fitted yet, fit it on the first
            this many batches of the iterator (they are then trained on as usual).
        seed: seeds the resampling generator (model init has its own seed).
        target_variance_explained: record the wall time at which validation variance
            explained first reaches this (``None``: don't).
    """

    n_steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    l1_warmup_steps: int = 300
    resample_every: int = 1000
    eval_every: int = 250
    checkpoint_every: int = 500
    normaliser_batches: int = 8
    seed: int = 0
    target_variance_explained: float | None = None

    def __post_init__(self):
        if self.n_steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("n_steps >= 0, batch_size >= 1 and lr > 0 are required")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    steps: int
    frames: int
    seconds: float  # wall time of the training calls (summed over resumes)
    history: list[dict] = field(default_factory=list)
    resampled: int = 0
    resumed_from: int = 0
    seconds_to_target: float | None = None

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


# ------------------------------------------------------------------ checkpoints (safetensors)
def save_checkpoint(path, sae: SparseAutoencoder, optimizer=None, *, step: int = 0,
                    train_config: TrainConfig | None = None, history=None, generator=None,
                    extra: dict | None = None) -> Path:
    """Write model (+ optimiser, step, history, RNG) to a safetensors file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in sae.state_dict().items()}
    if optimizer is not None:
        names = {id(p): n for n, p in sae.named_parameters()}
        for p, st in optimizer.state.items():
            for k, v in st.items():
                t = v if torch.is_tensor(v) else torch.tensor(v)
                tensors[f"optim.{names[id(p)]}.{k}"] = t.detach().clone().contiguous()
    if generator is not None:
        tensors["rng.resample"] = generator.get_state().clone()
    meta = {
        "format": CHECKPOINT_FORMAT,
        "sae_config": json.dumps(sae.config.to_dict()),
        "train_config": json.dumps(train_config.to_dict() if train_config else None),
        "step": str(int(step)),
        "history": json.dumps(history or []),
        "extra": json.dumps(extra or {}),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_checkpoint(path) -> tuple[SparseAutoencoder, dict]:
    """Read a checkpoint: returns the SAE and a dict (step, history, train_config, optimizer
    tensors, rng state, extra). Only tensors and JSON are read: no pickle (a pickle at ``path``
    is refused unread); a truncated file or a missing/malformed field raises ``ValueError``
    naming the file and the field."""
    from wormlab.io import CheckpointError, meta_json, read_safetensors

    what = "SAE checkpoint"
    path = Path(path)
    tensors, meta = read_safetensors(path, what)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a wormlab SAE checkpoint (format {meta.get('format')!r})")
    try:
        cfg = SAEConfig(**meta_json(meta, "sae_config", path, what))
        tc = meta_json(meta, "train_config", path, what, default=None)
        state = {
            "step": int(meta.get("step", "0")),
            "history": meta_json(meta, "history", path, what, default=[]),
            "train_config": TrainConfig(**tc) if tc else None,
            "optim": {k[6:]: v for k, v in tensors.items() if k.startswith("optim.")},
            "rng": tensors.get("rng.resample"),
            "extra": meta_json(meta, "extra", path, what, default={}),
        }
    except CheckpointError:
        raise
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: malformed {what} metadata ({exc})") from None
    sae = SparseAutoencoder(cfg)
    try:
        sae.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: {what} weights do not fit its config: "
                              f"{' '.join(str(exc).split())[:300]}") from None
    return sae, state


def _restore_optimizer(optimizer, sae: SparseAutoencoder, tensors: dict) -> None:
    params = dict(sae.named_parameters())
    for key, v in tensors.items():
        pname, k = key.rsplit(".", 1)
        st = optimizer.state.setdefault(params[pname], {})
        st[k] = v.clone()


# ------------------------------------------------------------------ training
def _as_batch(b, n_inputs: int) -> torch.Tensor:
    b = torch.as_tensor(b, dtype=torch.float32)
    if b.shape[-1] != n_inputs:
        raise ValueError(f"batch has last dimension {b.shape[-1]}, the SAE expects {n_inputs}")
    b = b.reshape(-1, n_inputs)
    if not torch.isfinite(b).all():
        raise ValueError("batch contains NaN/inf")
    return b


def _resample_now(steps_done: int, cfg: TrainConfig) -> bool:
    """Whether dead units are resampled after ``steps_done`` steps: every ``resample_every``
    steps, but never within the last ``resample_every // 2`` steps (at least 1) of training —
    a unit resampled near the end has no steps left to train and would spoil the final model."""
    if not cfg.resample_every or steps_done % cfg.resample_every:
        return False
    return cfg.n_steps - steps_done >= max(1, cfg.resample_every // 2)


def train(
    sae: SparseAutoencoder,
    batches: Iterable,
    config: TrainConfig | None = None,
    *,
    val: torch.Tensor | np.ndarray | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    show_progress: bool = True,
    callback: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train ``sae`` on ANY iterable of activation tensors ``(..., n_inputs)``.

    Recordings, simulated circuit activity or a model's hidden states all work the same.

    Resuming: when ``checkpoint`` exists and ``resume`` is true, model, Adam state, step,
    history and RNG are restored and the first ``step`` batches are skipped (``.skip(n)`` if
    the iterable has it, else by consuming them), so a re-created deterministic iterator
    continues exactly where the interrupted run stopped.
    """
    cfg = config or TrainConfig()
    n_in = sae.config.n_inputs
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    start, history, seconds, resampled = 0, [], 0.0, 0
    t_target = None
    frames0 = 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        loaded, st = load_checkpoint(checkpoint)
        if loaded.config != sae.config:
            raise ValueError(
                f"checkpoint {checkpoint} has config {loaded.config}, the SAE has {sae.config}"
            )
        sae.load_state_dict(loaded.state_dict())
        _restore_optimizer(opt, sae, st["optim"])
        if st["rng"] is not None:
            gen.set_state(st["rng"])
        start, history = st["step"], st["history"]
        seconds = float(st["extra"].get("seconds", 0.0))
        resampled = int(st["extra"].get("resampled", 0))
        t_target = st["extra"].get("seconds_to_target")
        frames0 = int(st["extra"].get("frames", 0))
    if start:
        batches = batches.skip(start) if hasattr(batches, "skip") else itertools.islice(
            iter(batches), start, None)
    it = iter(batches)
    if not bool(sae.normaliser_fitted) and sae.config.normalise != "none":
        head = [_as_batch(next(it), n_in) for _ in range(max(1, cfg.normaliser_batches))]
        sae.fit_normaliser(torch.cat(head))
        it = itertools.chain(head, it)
    elif not bool(sae.normaliser_fitted):
        sae.fit_normaliser(torch.zeros(2, n_in))
    val_t = None if val is None else torch.as_tensor(np.asarray(val), dtype=torch.float32)
    frames = frames0
    steps_done = start
    last = {}
    sae.train()

    def log(step: int):
        entry = {"step": step, "frames": frames, "seconds": round(seconds, 4), **last}
        if val_t is not None:
            m = evaluate(sae, val_t)
            entry.update({f"val_{k}": v for k, v in m.as_dict().items()})
        history.append(entry)
        if callback is not None:
            callback(step, entry)
        return entry

    kw = {} if show_progress else {"disable": True}
    bar = progress(total=cfg.n_steps, initial=start, desc="SAE", **kw)
    try:
        for step in range(start, cfg.n_steps):
            try:
                b = _as_batch(next(it), n_in)
            except StopIteration:
                break
            t0 = time.perf_counter()
            ramp = 1.0 if cfg.l1_warmup_steps <= 0 else min(1.0, (step + 1) / cfg.l1_warmup_steps)
            loss, parts = sae.loss(b, l1_scale=ramp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            sae.remove_parallel_decoder_grad()
            opt.step()
            sae.normalise_decoder()
            if _resample_now(step + 1, cfg):
                resampled += sae.resample_dead(b, opt, gen)
            seconds += time.perf_counter() - t0
            frames += b.shape[0]
            last = {"loss": float(loss.detach()), **parts}
            done = steps_done = step + 1
            if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.n_steps):
                entry = log(done)
                ve = entry.get("val_variance_explained")
                if (t_target is None and cfg.target_variance_explained is not None
                        and ve is not None and ve >= cfg.target_variance_explained):
                    t_target = seconds
            if checkpoint is not None and cfg.checkpoint_every and (
                    done % cfg.checkpoint_every == 0 or done == cfg.n_steps):
                save_checkpoint(checkpoint, sae, opt, step=done, train_config=cfg,
                                history=history, generator=gen,
                                extra={"seconds": seconds, "resampled": resampled, "frames": frames,
                                       "seconds_to_target": t_target})
            bar.update(1)
    finally:
        bar.close()
    sae.eval()
    return TrainResult(steps=steps_done, frames=frames, seconds=seconds, history=history,
                       resampled=resampled, resumed_from=start, seconds_to_target=t_target)


def save_sae(sae: SparseAutoencoder, path) -> Path:
    """Model only (no optimiser state)."""
    return save_checkpoint(path, sae)


def load_sae(path) -> SparseAutoencoder:
    return load_checkpoint(path)[0]
