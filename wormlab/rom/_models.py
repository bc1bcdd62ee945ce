"""One recurrent layer (RNN, LSTM or GRU) + dense readout, as in Mestre et al. (2021).

The model carries its own normalisation (per-channel mean and sd of the training inputs and
outputs) as buffers, so it takes and returns physical units and a checkpoint is self-contained.
Checkpoints are safetensors files with the architecture and column names in the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from wormlab.runs import atomic_path

CELLS: dict[str, type[nn.Module]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RomModel(nn.Module):
    """Recurrent reduced-order model: ``x (T, B, M) -> y (T, B, K)`` in physical units.

    Args:
        kind: ``"rnn"`` (tanh Elman), ``"lstm"`` or ``"gru"`` (registry :data:`CELLS`).
        n_inputs, n_hidden, n_outputs: sizes M, H, K.
    """

    def __init__(self, kind: str, n_inputs: int, n_hidden: int, n_outputs: int):
        super().__init__()
        if kind not in CELLS:
            raise ValueError(f"unknown model {kind!r}; available: {sorted(CELLS)}")
        if min(n_inputs, n_hidden, n_outputs) < 1:
            raise ValueError(
                f"sizes must be >= 1 (inputs {n_inputs}, hidden {n_hidden}, outputs {n_outputs})"
            )
        self.kind, self.n_inputs, self.n_hidden, self.n_outputs = kind, n_inputs, n_hidden, n_outputs
        self.cell = CELLS[kind](n_inputs, n_hidden)  # time-first (T, B, M)
        self.readout = nn.Linear(n_hidden, n_outputs)
        self.register_buffer("x_mean", torch.zeros(n_inputs))
        self.register_buffer("x_std", torch.ones(n_inputs))
        self.register_buffer("y_mean", torch.zeros(n_outputs))
        self.register_buffer("y_std", torch.ones(n_outputs))
        self.meta: dict = {}

    def set_normalisation(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Per-channel mean/sd from training tensors ``x (T, B, M)``, ``y (T, B, K)``."""
        self.x_mean.copy_(x.mean(dim=(0, 1)))
        self.x_std.copy_(x.std(dim=(0, 1)).clamp_min(1e-12))
        self.y_mean.copy_(y.mean(dim=(0, 1)))
        self.y_std.copy_(y.std(dim=(0, 1)).clamp_min(1e-12))

    def forward_normalised(self, xn: torch.Tensor, return_hidden: bool = False):
        """Normalised inputs -> normalised outputs (and hidden states ``(T, B, H)``)."""
        if xn.ndim != 3 or xn.shape[-1] != self.n_inputs:
            raise ValueError(f"expected inputs (T, B, {self.n_inputs}), got {tuple(xn.shape)}")
        hs, _ = self.cell(xn)
        yn = self.readout(hs)
        return (yn, hs) if return_hidden else yn

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        if x.ndim != 3 or x.shape[-1] != self.n_inputs:
            raise ValueError(f"expected inputs (T, B, {self.n_inputs}), got {tuple(x.shape)}")
        xn = (x - self.x_mean) / self.x_std
        out = self.forward_normalised(xn, return_hidden)
        yn, hs = out if return_hidden else (out, None)
        y = yn * self.y_std + self.y_mean
        return (y, hs) if return_hidden else y

    @torch.no_grad()
    def predict(self, x) -> torch.Tensor:
        """Inference on ``x (T, B, M)`` (array or tensor) in physical units."""
        x = torch.as_tensor(x, dtype=self.readout.weight.dtype)
        return self(x)

    def describe(self) -> str:
        return f"{self.kind.upper()}-{self.n_hidden}"


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model(model: RomModel, path) -> Path:
    """Write ``model`` as safetensors (weights + buffers) with JSON metadata (atomic)."""
    from safetensors.torch import save_file

    meta = {
        "kind": model.kind, "n_inputs": model.n_inputs, "n_hidden": model.n_hidden,
        "n_outputs": model.n_outputs, "extra": model.meta,
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"wormlab_rom": json.dumps(meta)})
    return path


def load_model(path) -> RomModel:
    """Read a checkpoint written by :func:`save_model` (no pickle involved)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    with safe_open(str(path), framework="pt") as f:
        raw = (f.metadata() or {}).get("wormlab_rom")
    if raw is None:
        raise ValueError(f"{path}: not a wormlab.rom checkpoint (no 'wormlab_rom' metadata)")
    meta = json.loads(raw)
    model = RomModel(meta["kind"], meta["n_inputs"], meta["n_hidden"], meta["n_outputs"])
    model.load_state_dict(load_file(str(path)))
    model.meta = meta.get("extra", {})
    return model
