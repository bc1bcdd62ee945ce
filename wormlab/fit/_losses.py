"""Losses that stay meaningful on a chaotic network.

The circuit amplifies perturbations (sensitivities ~1e4 at 100 ms, ~1e17 at 1 s, DATA.md), so
a loss on one long trace has useless gradients. These losses work on short windows and on
statistics that do not depend on exact spike timing:

* :func:`trace_mse` on short windows, driven by :func:`windowed_run` (truncated multiple
  shooting: the state is carried from window to window but the gradient is cut at the window
  boundaries, so each window's gradient has a short horizon);
* :func:`correlation_mse` between Pearson correlation matrices (the whole-brain recordings'
  statistic; Zhao et al. 2024 report 0.076 on 136 neurons);
* :func:`response_amplitude` (mean depolarisation after a pulse, the atlas' statistic);
* :func:`spectral_period_loss` (share of the power away from a target period: smooth in the
  period, unlike a threshold-crossing period).

All take time-first tensors ``(T, B, K)`` and return one value per batch member ``(B,)``.
"""

from __future__ import annotations

import math

import torch


def _check(x: torch.Tensor, name: str, dims: int = 3) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != dims:
        raise ValueError(f"{name} must be a {dims}-d tensor (T, B, K), got "
                         f"{tuple(getattr(x, 'shape', ()))}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or Inf")


def trace_mse(sim: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference (unit²) per batch member: ``sim`` (T, B, K), ``target`` (T, K)
    or (T, B, K)."""
    _check(sim, "sim")
    if target.dim() == 2:
        target = target.unsqueeze(1)
    if target.shape[0] != sim.shape[0] or target.shape[-1] != sim.shape[-1]:
        raise ValueError(f"target shape {tuple(target.shape)} does not match sim "
                         f"{tuple(sim.shape)} (time and channels)")
    return ((sim - target.to(sim)) ** 2).mean((0, 2))


def pearson_corr(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Pearson correlation matrices ``(B, K, K)`` of ``x`` (T, B, K) over time."""
    _check(x, "x")
    xc = x - x.mean(0, keepdim=True)
    cov = torch.einsum("tbi,tbj->bij", xc, xc) / x.shape[0]
    sd = torch.sqrt(torch.diagonal(cov, dim1=1, dim2=2).clamp_min(0) + eps)
    return cov / (sd.unsqueeze(2) * sd.unsqueeze(1))


def correlation_mse(sim: torch.Tensor, target_corr: torch.Tensor) -> torch.Tensor:
    """MSE over the off-diagonal entries between the Pearson correlation matrix of ``sim``
    (T, B, K) and ``target_corr`` (K, K) (e.g. of a recording's identified neurons)."""
    c = pearson_corr(sim)
    K = c.shape[-1]
    if target_corr.shape != (K, K):
        raise ValueError(f"target_corr must be ({K}, {K}), got {tuple(target_corr.shape)}")
    if not bool(torch.isfinite(target_corr).all()):
        raise ValueError("target_corr holds NaN or Inf (a constant trace?)")
    off = ~torch.eye(K, dtype=torch.bool, device=c.device)
    return ((c - target_corr.to(c)) ** 2)[:, off].mean(-1)


def response_amplitude(v: torch.Tensor, baseline_steps: int) -> torch.Tensor:
    """Mean change after the first ``baseline_steps`` samples relative to their mean, per
    batch member and channel ``(B, K)`` (units of ``v``): a smooth stand-in for the atlas'
    response amplitude (mean ΔF/F after the stimulation)."""
    _check(v, "v")
    if not 0 < baseline_steps < v.shape[0]:
        raise ValueError(f"baseline_steps must be in (0, {v.shape[0]}), got {baseline_steps}")
    base = v[:baseline_steps].mean(0)
    return v[baseline_steps:].mean(0) - base


def spectral_period_loss(x: torch.Tensor, dt_s: float, period_s: float,
                         rel_width: float = 0.2) -> torch.Tensor:
    """1 − (power within ±``rel_width`` of 1/``period_s``) / (total power), per batch member
    and channel ``(B, K)``; ``x`` (T, B, K) sampled every ``dt_s``. 0 for a pure oscillation at
    the target period (mean removed, Hann window)."""
    _check(x, "x")
    if not (dt_s > 0 and period_s > 0):
        raise ValueError("dt_s and period_s must be > 0")
    T = x.shape[0]
    if T * dt_s < 2 * period_s:
        raise ValueError(f"{T * dt_s:.3g} s of data hold fewer than two periods of {period_s} s")
    w = torch.hann_window(T, periodic=False, dtype=x.dtype, device=x.device)
    xc = (x - x.mean(0, keepdim=True)) * w[:, None, None]
    p = torch.fft.rfft(xc, dim=0).abs() ** 2  # (F, B, K)
    f = torch.fft.rfftfreq(T, d=dt_s).to(x)
    f0 = 1.0 / period_s
    band = ((f >= f0 * (1 - rel_width)) & (f <= f0 * (1 + rel_width))).to(x)
    total = p[1:].sum(0) + 1e-30
    return 1.0 - (p * band[:, None, None]).sum(0) / total


def windowed_run(simulate_window, y0: torch.Tensor, n_windows: int, loss_fn) -> tuple:
    """Truncated multiple shooting: run ``n_windows`` consecutive windows; window k starts from
    window k−1's final state *detached*, so each window's gradient has a one-window horizon.

    Args:
        simulate_window: ``f(y0, k) -> Result`` simulating window k from state ``y0``.
        y0: initial state (B, S, N).
        loss_fn: ``g(result, k) -> (B,)`` loss of window k.

    Returns:
        (mean loss over windows (B,), final state detached).
    """
    if n_windows < 1:
        raise ValueError(f"n_windows must be >= 1, got {n_windows}")
    total, y = 0.0, y0
    for k in range(n_windows):
        res = simulate_window(y.detach(), k)
        total = total + loss_fn(res, k)
        y = res.y_final
    return total / n_windows, y.detach()


def clip_gradients(params, max_norm: float) -> float:
    """Clip the global gradient norm of ``params`` to ``max_norm``; returns the norm before."""
    if not math.isfinite(max_norm) or max_norm <= 0:
        raise ValueError(f"max_norm must be a finite number > 0, got {max_norm}")
    return float(torch.nn.utils.clip_grad_norm_(list(params), max_norm))
