"""Gradient saliency of a trained ROM: how much each input current moves each output.

Beyond Mestre et al. (2021), who removed inputs (No-AVB, No-PLM) and retrained. Here the
saliency of input ``m`` for output ``k`` is the mean over sequences of
``sum_t' |d (sum_t y_k(t)) / d x_m(t')| / T`` on z-scored inputs and outputs (so inputs with
different current scales are comparable), i.e. the total absolute sensitivity of the output
trace to the input trace.
"""

from __future__ import annotations

import numpy as np
import torch

from wormlab.rom._models import RomModel


def gradient_saliency(model: RomModel, inputs) -> np.ndarray:
    """Saliency matrix ``(M, K)`` for inputs ``(T, B, M)`` in physical units.

    Returns:
        Non-negative array; entry ``[m, k]`` is the mean absolute gradient described above.
    """
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    if x.ndim != 3 or x.shape[-1] != model.n_inputs:
        raise ValueError(f"inputs must be (T, B, {model.n_inputs}), got {tuple(x.shape)}")
    xn = ((x - model.x_mean) / model.x_std).detach().requires_grad_(True)
    was_training = model.training
    model.eval()
    yn = model.forward_normalised(xn)
    out = np.zeros((model.n_inputs, model.n_outputs))
    for k in range(model.n_outputs):
        (g,) = torch.autograd.grad(yn[..., k].sum(), xn, retain_graph=k < model.n_outputs - 1)
        out[:, k] = g.abs().sum(0).mean(0).numpy() / x.shape[0]
    model.train(was_training)
    return out
