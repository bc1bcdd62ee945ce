"""Activation data for the SAE: time-block splits and deterministic batch iterators."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    """Frame indices of a time-block train/validation split."""

    train: np.ndarray
    val: np.ndarray
    val_blocks: tuple[tuple[int, int], ...]  # [start, stop) frames of each validation block
    gap: int

    def describe(self) -> str:
        blocks = ", ".join(f"{a}-{b}" for a, b in self.val_blocks)
        return (f"time-block split: {len(self.train)} train / {len(self.val)} val frames; "
                f"val blocks [{blocks}], {self.gap}-frame gaps dropped around them")


def time_block_split(
    n_frames: int, *, n_blocks: int = 10, val_fraction: float = 0.2, gap: int = 0, seed: int = 0
) -> Split:
    """Split ``n_frames`` into ``n_blocks`` contiguous blocks and hold out whole blocks.

    Random frames would leak: neighbouring frames of a calcium trace are nearly identical
    (GCaMP decay ~1 s at ~3 fps). ``gap`` frames of training data on each side of every
    validation block are dropped as well.
    """
    if n_blocks < 2:
        raise ValueError(f"n_blocks must be >= 2, got {n_blocks}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    if n_frames < 2 * n_blocks:
        raise ValueError(f"{n_frames} frames are too few for {n_blocks} blocks")
    edges = np.linspace(0, n_frames, n_blocks + 1).round().astype(int)
    n_val = min(n_blocks - 1, max(1, int(round(val_fraction * n_blocks))))
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n_blocks, size=n_val, replace=False))
    is_val = np.zeros(n_frames, dtype=bool)
    drop = np.zeros(n_frames, dtype=bool)
    blocks = []
    for b in chosen:
        a, z = int(edges[b]), int(edges[b + 1])
        is_val[a:z] = True
        drop[max(0, a - gap):a] = True
        drop[z:z + gap] = True
        blocks.append((a, z))
    train = np.flatnonzero(~is_val & ~drop)
    val = np.flatnonzero(is_val)
    if len(train) == 0:
        raise ValueError("no training frames left: reduce gap or val_fraction")
    return Split(train, val, tuple(blocks), int(gap))


class FrameBatches:
    """Deterministic, endless mini-batches of frames (shuffled each epoch).

    An iterable of ``(batch_size, N)`` tensors; ``seed`` fixes the order, so iterating again
    gives the same batches (what resuming relies on). :meth:`skip` jumps ahead cheaply.
    """

    def __init__(self, x: torch.Tensor | np.ndarray, batch_size: int = 256, seed: int = 0):
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32)
        if x.ndim != 2 or x.shape[0] < 1:
            raise ValueError(f"frames must be (T, N), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("frames contain NaN/inf; fill gaps first (Recording.fill_nan)")
        self.x = x
        self.batch_size = int(min(batch_size, x.shape[0]))
        self.seed = seed
        self._skip = 0

    def skip(self, n_batches: int) -> FrameBatches:
        out = FrameBatches(self.x, self.batch_size, self.seed)
        out._skip = n_batches
        return out

    def __iter__(self) -> Iterator[torch.Tensor]:
        T = self.x.shape[0]
        per_epoch = T // self.batch_size
        epoch, start = divmod(self._skip, per_epoch)
        while True:
            perm = np.random.default_rng([self.seed, epoch]).permutation(T)
            for b in range(start, per_epoch):
                yield self.x[perm[b * self.batch_size:(b + 1) * self.batch_size]]
            start = 0
            epoch += 1
