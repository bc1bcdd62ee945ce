"""Mixture density read-out (Bishop 1994; Graves 2013, handwriting generation).

A read-out vector of length K + 2 K C holds, for K diagonal Gaussian components over C
channels: K mixture logits, K x C means, K x C log standard deviations (in that order).
"""

from __future__ import annotations

import math

import torch

#: log-s.d. bounds: keep the likelihood finite when a component collapses onto few frames
LOG_SD_MIN, LOG_SD_MAX = -7.0, 5.0


def mdn_split(raw: torch.Tensor, k: int, c: int):
    """(..., K + 2KC) -> log mixture weights (..., K), means (..., K, C), s.d. (..., K, C)."""
    if raw.shape[-1] != k * (1 + 2 * c):
        raise ValueError(f"mixture read-out has {raw.shape[-1]} values, expected "
                         f"{k * (1 + 2 * c)} for {k} components x {c} channels")
    lead = raw.shape[:-1]
    logw = torch.log_softmax(raw[..., :k], dim=-1)
    mu = raw[..., k : k + k * c].reshape(*lead, k, c)
    log_sd = raw[..., k + k * c :].reshape(*lead, k, c).clamp(LOG_SD_MIN, LOG_SD_MAX)
    return logw, mu, log_sd.exp()


def mdn_nll(raw: torch.Tensor, target: torch.Tensor, k: int, c: int) -> torch.Tensor:
    """Mean negative log-likelihood of ``target`` (..., C) per channel, in nats."""
    logw, mu, sd = mdn_split(raw, k, c)
    z = (target.unsqueeze(-2) - mu) / sd
    log_comp = (-0.5 * z**2 - sd.log() - 0.5 * math.log(2 * math.pi)).sum(-1)  # (..., K)
    return -torch.logsumexp(logw + log_comp, dim=-1).mean() / c


def mdn_mean(raw: torch.Tensor, k: int, c: int) -> torch.Tensor:
    """Mixture mean (..., C)."""
    logw, mu, _ = mdn_split(raw, k, c)
    return (logw.exp().unsqueeze(-1) * mu).sum(-2)


def mdn_sample(
    raw: torch.Tensor,
    k: int,
    c: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One draw per row of ``raw`` (B, K + 2KC) -> (B, C).

    A component is drawn with the fitted weights, then its Gaussian with every s.d. multiplied
    by ``temperature`` (1 = the fitted density; < 1 = smoother samples, as in Graves 2013's
    sampling bias).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logw, mu, sd = mdn_split(raw, k, c)
    pick = torch.multinomial(logw.exp(), 1, generator=generator)[:, 0]
    rows = torch.arange(raw.shape[0])
    eps = torch.randn(raw.shape[0], c, generator=generator)
    return mu[rows, pick] + temperature * sd[rows, pick] * eps
