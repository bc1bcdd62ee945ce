"""SAE quality metrics on held-out frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wormlab.sae._model import SparseAutoencoder


@dataclass(frozen=True)
class Metrics:
    """Reconstruction and sparsity of an SAE on a set of frames.

    variance_explained: 1 - SSE / SST in normalised units (each input weighted by its
        normalisation; with z-scoring every neuron counts equally).
    variance_explained_raw: the same in data units.
    l0: mean number of active units per frame.
    dead_units: units that never fire on these frames (and their count, ``n_dead``).
    per_input_mse: ``(n_inputs,)`` mean squared error per input, normalised units.
    per_input_r2: ``(n_inputs,)`` 1 - MSE / variance per input.
    """

    variance_explained: float
    variance_explained_raw: float
    l0: float
    n_dead: int
    dead_units: tuple[int, ...]
    mse: float
    per_input_mse: np.ndarray
    per_input_r2: np.ndarray
    n_frames: int

    def as_dict(self) -> dict:
        return {"variance_explained": self.variance_explained,
                "variance_explained_raw": self.variance_explained_raw, "l0": self.l0,
                "n_dead": self.n_dead, "mse": self.mse, "n_frames": self.n_frames}

    def describe(self) -> str:
        return (f"variance explained {self.variance_explained:.3f} (data units "
                f"{self.variance_explained_raw:.3f}), L0 {self.l0:.2f}, dead units "
                f"{self.n_dead}, MSE {self.mse:.4f} on {self.n_frames} frames")


@torch.no_grad()
def evaluate(sae: SparseAutoencoder, x: torch.Tensor | np.ndarray, batch: int = 4096) -> Metrics:
    """Metrics of ``sae`` on frames ``x`` ``(T, n_inputs)`` (data units)."""
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32)
    if x.ndim != 2 or x.shape[1] != sae.config.n_inputs:
        raise ValueError(f"frames must be (T, {sae.config.n_inputs}), got {tuple(x.shape)}")
    xhs, acts, xns = [], [], []
    for i in range(0, x.shape[0], batch):
        xh, a, _, xn = sae(x[i:i + batch])
        xhs.append(xh)
        acts.append(a)
        xns.append(xn)
    xh, a, xn = torch.cat(xhs), torch.cat(acts), torch.cat(xns)
    err = (xn - xh).pow(2)
    sst = (xn - xn.mean(0)).pow(2)
    ve = 1.0 - float(err.sum() / sst.sum().clamp_min(1e-12))
    raw = sae.denormalise(xh)
    ve_raw = 1.0 - float((x - raw).pow(2).sum() / (x - x.mean(0)).pow(2).sum().clamp_min(1e-12))
    per_mse = err.mean(0)
    per_r2 = 1.0 - per_mse / sst.mean(0).clamp_min(1e-12)
    fired = (a > 0).any(0)
    dead = tuple(int(i) for i in torch.nonzero(~fired).flatten())
    return Metrics(
        variance_explained=ve,
        variance_explained_raw=ve_raw,
        l0=float((a > 0).float().sum(1).mean()),
        n_dead=len(dead),
        dead_units=dead,
        mse=float(err.mean()),
        per_input_mse=per_mse.numpy(),
        per_input_r2=per_r2.numpy(),
        n_frames=int(x.shape[0]),
    )
