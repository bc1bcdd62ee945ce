"""A plain reference trainer for the ROMs: the simplest correct recipe, written out in full.

Issue 20: the main trainer (:mod:`wormlab.rom._train`) must be at least as good as this. It
shares nothing with the trainer except the split: full batch (all training sequences in one
Adam step per epoch), inputs and outputs z-scored with the training-set mean and sd per
column, mean-squared-error loss, Adam at a fixed learning rate, no gradient clipping, no
schedule, zero initial hidden state, and the weights of the best validation epoch kept.
With the same ``seed`` the initial weights equal the trainer's (cell first, then readout,
right after ``torch.manual_seed(seed)``), so the two differ only in how they train.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from wormlab.rom._format import SequenceSet
from wormlab.rom._models import CELLS


def plain_baseline(data: SequenceSet, split: dict[str, list[int]], *, kind: str = "gru",
                   hidden: int = 8, epochs: int = 1000, lr: float = 1e-2, seed: int = 0
                   ) -> dict:
    """Train one ``kind``-``hidden`` model the plain way; RMSEs in the data's output unit.

    Args:
        split: ``{"train": [...], "val": [...], "test": [...]}`` sequence indices
            (see :func:`wormlab.rom.split_indices`).
    Returns:
        ``{"train_rmse", "val_rmse", "test_rmse"`` (data unit), ``"*_nrmse"`` (outputs divided
        by the training sd), ``"best_epoch", "seconds", "unit"}``.
    """
    if kind not in CELLS:
        raise ValueError(f"unknown model {kind!r}; available: {sorted(CELLS)}")
    if hidden < 1 or epochs < 1 or lr <= 0:
        raise ValueError(f"need hidden >= 1, epochs >= 1, lr > 0; got {hidden}, {epochs}, {lr}")
    t0 = time.perf_counter()
    xy = {k: (torch.as_tensor(data.inputs[:, v], dtype=torch.float32),
              torch.as_tensor(data.outputs[:, v], dtype=torch.float32)) for k, v in split.items()}
    xtr, ytr = xy["train"]
    xm, xs = xtr.mean(dim=(0, 1)), xtr.std(dim=(0, 1))
    ym, ys = ytr.mean(dim=(0, 1)), ytr.std(dim=(0, 1))
    xs = torch.where(xs > 0, xs, torch.ones_like(xs))  # a constant column carries nothing
    ys = torch.where(ys > 0, ys, torch.ones_like(ys))
    torch.manual_seed(seed)
    cell = CELLS[kind](xtr.shape[-1], hidden)
    readout = torch.nn.Linear(hidden, ytr.shape[-1])
    params = list(cell.parameters()) + list(readout.parameters())
    opt = torch.optim.Adam(params, lr=lr)

    def predict_z(x):  # data-unit inputs -> z-scored outputs
        return readout(cell((x - xm) / xs)[0])

    def loss(k):
        x, y = xy[k]
        return (predict_z(x) - (y - ym) / ys).pow(2).mean()

    best, best_epoch, best_state = float("inf"), -1, None
    for epoch in range(epochs):
        opt.zero_grad()
        loss("train").backward()
        opt.step()
        with torch.no_grad():
            val = float(loss("val"))
        if val < best:
            best, best_epoch = val, epoch
            best_state = copy.deepcopy((cell.state_dict(), readout.state_dict()))
    cell.load_state_dict(best_state[0])
    readout.load_state_dict(best_state[1])
    out: dict = {}
    with torch.no_grad():
        for k, (x, y) in xy.items():
            z = predict_z(x)
            out[f"{k}_rmse"] = float((z * ys + ym - y).pow(2).mean().sqrt())
            out[f"{k}_nrmse"] = float((z - (y - ym) / ys).pow(2).mean().sqrt())
    return dict(out, best_epoch=best_epoch, seconds=time.perf_counter() - t0,
                unit=data.output_unit)


def baseline_runs(data: SequenceSet, split: dict[str, list[int]], *, runs: int = 1,
                  seed: int = 0, **kw) -> dict:
    """``runs`` plain baselines (init seeds ``seed + r``): mean and sd of every RMSE, per-run
    values under ``runs`` (same keys as :func:`wormlab.rom.repeated_runs`)."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    res = [plain_baseline(data, split, seed=seed + r, **kw) for r in range(runs)]
    out: dict = {}
    for k in [k for k in res[0] if k.endswith("rmse")]:
        vals = np.array([r[k] for r in res])
        out[k] = float(vals.mean())
        out[f"{k}_sd"] = float(vals.std(ddof=1)) if runs > 1 else 0.0
    out["model"] = f"{kw.get('kind', 'gru').upper()}-{kw.get('hidden', 8)}"
    out["runs"] = res
    out["output_unit"] = data.output_unit
    return out
