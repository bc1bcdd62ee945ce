"""Determinism and input sensitivity of a generator: the predictability floor of any ROM.

If the simulated network is deterministic but chaotic, two stimuli that differ by far less
than anything a model could resolve (amplitude x 1.001, or a 0.5 ms shift) give output traces
that drift apart. The RMSE between such a pair is a floor on the test RMSE that no
reduced-order model can beat on that data, whatever its size or training. Comparing it with the
spread of the outputs across stimuli (the RMSE of the mean predictor) tells how much of the
output is a *function of the input* at all.

All functions work on any ``simulate(t_ms, currents (T, B, M)) -> volts (T, B, K)`` callable,
so they apply to NEURON, the circuit, or a trained ROM alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PERTURBATIONS = ("repeat", "scale", "shift", "zero")


def perturb(t_ms, currents, kind: str, value: float = 0.0) -> np.ndarray:
    """A perturbed copy of ``currents (T, B, M)`` sampled at ``t_ms``.

    Args:
        kind: ``"repeat"`` (identical copy), ``"scale"`` (multiply by ``value``, e.g. 1.001),
            ``"shift"`` (delay by ``value`` ms, linear interpolation, zero before the start)
            or ``"zero"`` (no input at all).
    Raises:
        ValueError: for an unknown ``kind`` or badly shaped inputs.
    """
    t_ms = np.asarray(t_ms, dtype=float)
    cur = np.asarray(currents, dtype=float)
    if cur.ndim != 3 or cur.shape[0] != len(t_ms):
        raise ValueError(f"currents must be (T={len(t_ms)}, B, M); got {cur.shape}")
    if kind == "repeat":
        return cur.copy()
    if kind == "scale":
        return cur * float(value)
    if kind == "zero":
        return np.zeros_like(cur)
    if kind == "shift":
        out = np.empty_like(cur)
        for b in range(cur.shape[1]):
            for m in range(cur.shape[2]):
                out[:, b, m] = np.interp(t_ms - float(value), t_ms, cur[:, b, m], left=0.0)
        return out
    raise ValueError(f"unknown perturbation {kind!r}; choose one of {PERTURBATIONS}")


def trace_rmse(a, b, *, skip: int = 0) -> np.ndarray:
    """RMSE per sequence between two ``(T, B, K)`` arrays over steps ``skip:`` and outputs."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"need two (T, B, K) arrays of one shape; got {a.shape} and {b.shape}")
    return np.sqrt(((a[skip:] - b[skip:]) ** 2).mean(axis=(0, 2)))


def spread_rmse(v, *, skip: int = 0) -> float:
    """RMSE of the constant-mean predictor over a set of traces (per output channel mean)."""
    v = np.asarray(v, dtype=float)[skip:]
    return float(np.sqrt(((v - v.mean(axis=(0, 1), keepdims=True)) ** 2).mean()))


def sensitivity(
    simulate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    t_ms,
    currents,
    *,
    scale: float = 1.001,
    shift_ms: float = 0.5,
    skip: int = 0,
    every: int = 1,
) -> dict:
    """Measure determinism and input sensitivity of ``simulate`` on a batch of stimuli.

    Runs the batch five times: as given, again (determinism), scaled by ``scale``, delayed by
    ``shift_ms``, and with all inputs at zero. ``every`` subsamples the compared traces.

    Returns a JSON-able dict (mV for voltage outputs): ``spread`` (mean-predictor RMSE across
    the batch), and for each perturbation the mean and max per-sequence RMSE against the
    unperturbed traces, plus ``floor_fraction`` = scale/shift RMSE divided by ``spread``
    (about 0: the map is smooth; about 1.4: the perturbed traces are as far apart as two
    unrelated stimuli).
    """
    t_ms = np.asarray(t_ms, dtype=float)
    base = np.asarray(simulate(t_ms, currents))[::every]
    out = {"n": int(base.shape[1]), "scale": scale, "shift_ms": shift_ms,
           "spread": spread_rmse(base, skip=skip),
           "peak": [float(x) for x in base[skip:].max(axis=(0, 2))]}
    for kind, value in (("repeat", 0.0), ("scale", scale), ("shift", shift_ms), ("zero", 0.0)):
        v = np.asarray(simulate(t_ms, perturb(t_ms, currents, kind, value)))[::every]
        d = trace_rmse(base, v, skip=skip)
        out[kind] = {"mean": float(d.mean()), "max": float(d.max()),
                     "per_sequence": [float(x) for x in d]}
    for kind in ("scale", "shift"):
        out[f"{kind}_floor_fraction"] = out[kind]["mean"] / max(out["spread"], 1e-12)
    return out


def generator_sensitivity(cfg, indices=None, *, n: int = 8, scale: float = 1.001,
                          shift_ms: float = 0.5, compare_dt_ms: float = 0.5) -> dict:
    """:func:`sensitivity` of the generator ``cfg`` (a ``GenerateConfig``) on its own stimuli.

    Args:
        indices: which sequences of the stimulus library to use (default: ``n`` spread evenly
            over the library of ``cfg.n_sequences``).
        compare_dt_ms: traces are compared at this step (a multiple of the finest one).
    """
    from wormlab.rom._generate import simulate, stimuli

    names, t_ms, cur = stimuli(cfg)
    if indices is None:
        indices = np.unique(np.linspace(0, len(names) - 1, min(n, len(names))).round().astype(int))
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < len(names)]
    if bad:
        raise ValueError(f"stimulus indices {bad} outside 0..{len(names) - 1}")
    fine = float(t_ms[1] - t_ms[0])
    every = int(round(compare_dt_ms / fine))
    out = sensitivity(lambda t, c: simulate(cfg, t, c), t_ms, cur[:, indices], scale=scale,
                      shift_ms=shift_ms, every=max(every, 1))
    out.update(backend=cfg.backend, amplitude_nA=cfg.amplitude_nA,
               names=[names[i] for i in indices], compare_dt_ms=compare_dt_ms)
    return out
