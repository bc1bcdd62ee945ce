"""Input-current shapes: primitives with explicit parameters and a library of >= 40 recipes.

Mestre et al. (2021) drove PLML, PLMR, AVBL, AVBR with 40 current shapes for 500 ms. Ours are
built from primitives (step, ramp, pulses, sine, chirp, noise, exponential, Gaussian bump,
staircase, sawtooth, square) and combinations of them. Amplitudes are in nA; the default peak
of 0.008 nA (8 pA) was measured to drive the c302 C1 network (NEURON, dt 0.05 ms) into its
spiking regime without numerical blow-up, which starts between 10 and 20 pA of constant current
on all four forward-crawling inputs (docs/rom.md).
"""

from __future__ import annotations

import numpy as np

DEFAULT_AMPLITUDE_NA = 0.008


def _window(t, start, stop):
    return ((t >= start) & (t < stop)).astype(float)


def step(t_ms, start_ms=50.0, stop_ms=450.0):
    """1 between ``start_ms`` and ``stop_ms``, else 0."""
    return _window(t_ms, start_ms, stop_ms)


def ramp(t_ms, start_ms=50.0, stop_ms=450.0, up=True):
    """Linear ramp 0 -> 1 (or 1 -> 0 with ``up=False``) inside the window."""
    x = np.clip((t_ms - start_ms) / max(stop_ms - start_ms, 1e-9), 0, 1)
    return (x if up else 1 - x) * _window(t_ms, start_ms, stop_ms)


def triangle(t_ms, start_ms=50.0, stop_ms=450.0):
    x = np.clip((t_ms - start_ms) / max(stop_ms - start_ms, 1e-9), 0, 1)
    return (1 - np.abs(2 * x - 1)) * _window(t_ms, start_ms, stop_ms)


def pulses(t_ms, start_ms=50.0, stop_ms=450.0, period_ms=50.0, width_ms=10.0):
    """Rectangular pulse train of ``width_ms`` every ``period_ms`` inside the window."""
    phase = np.mod(t_ms - start_ms, period_ms)
    return (phase < width_ms) * _window(t_ms, start_ms, stop_ms)


def sine(t_ms, start_ms=0.0, stop_ms=500.0, freq_hz=5.0, phase=0.0, offset=0.5):
    """``offset + 0.5 sin(2 pi f t + phase)`` inside the window (in [offset-0.5, offset+0.5])."""
    s = offset + 0.5 * np.sin(2 * np.pi * freq_hz * t_ms / 1000.0 + phase)
    return s * _window(t_ms, start_ms, stop_ms)


def chirp(t_ms, start_ms=0.0, stop_ms=500.0, f0_hz=1.0, f1_hz=40.0):
    """Sine sweeping linearly from ``f0_hz`` to ``f1_hz``, in [0, 1]."""
    d = max(stop_ms - start_ms, 1e-9) / 1000.0
    tt = np.clip(t_ms - start_ms, 0, None) / 1000.0
    ph = 2 * np.pi * (f0_hz * tt + 0.5 * (f1_hz - f0_hz) / d * tt**2)
    return (0.5 + 0.5 * np.sin(ph)) * _window(t_ms, start_ms, stop_ms)


def square(t_ms, start_ms=0.0, stop_ms=500.0, freq_hz=4.0):
    return (np.sin(2 * np.pi * freq_hz * t_ms / 1000.0) >= 0) * _window(t_ms, start_ms, stop_ms)


def sawtooth(t_ms, start_ms=0.0, stop_ms=500.0, period_ms=100.0):
    return np.mod(t_ms - start_ms, period_ms) / period_ms * _window(t_ms, start_ms, stop_ms)


def exp_decay(t_ms, start_ms=50.0, stop_ms=500.0, tau_ms=80.0):
    return np.exp(-np.clip(t_ms - start_ms, 0, None) / tau_ms) * _window(t_ms, start_ms, stop_ms)


def exp_rise(t_ms, start_ms=50.0, stop_ms=500.0, tau_ms=80.0):
    x = 1 - np.exp(-np.clip(t_ms - start_ms, 0, None) / tau_ms)
    return x * _window(t_ms, start_ms, stop_ms)


def gaussian(t_ms, center_ms=250.0, width_ms=40.0):
    return np.exp(-0.5 * ((t_ms - center_ms) / width_ms) ** 2)


def staircase(t_ms, start_ms=50.0, stop_ms=450.0, n_steps=4, up=True):
    x = np.clip((t_ms - start_ms) / max(stop_ms - start_ms, 1e-9), 0, 1 - 1e-12)
    lvl = (np.floor(x * n_steps) + 1) / n_steps
    if not up:
        lvl = 1 - lvl + 1 / n_steps
    return lvl * _window(t_ms, start_ms, stop_ms)


def noise(t_ms, start_ms=0.0, stop_ms=500.0, tau_ms=10.0, seed=0):
    """Ornstein-Uhlenbeck (low-pass) noise rescaled to [0, 1] inside the window."""
    rng = np.random.default_rng(seed)
    dt = float(np.median(np.diff(t_ms))) if len(t_ms) > 1 else 1.0
    a = np.exp(-dt / tau_ms)
    x = np.empty(len(t_ms))
    x[0] = rng.normal()
    e = rng.normal(size=len(t_ms)) * np.sqrt(1 - a * a)
    for i in range(1, len(t_ms)):
        x[i] = a * x[i - 1] + e[i]
    x = (x - x.min()) / max(x.max() - x.min(), 1e-12)
    return x * _window(t_ms, start_ms, stop_ms)


PRIMITIVES = {
    "step": step, "ramp": ramp, "triangle": triangle, "pulses": pulses, "sine": sine,
    "chirp": chirp, "square": square, "sawtooth": sawtooth, "exp_decay": exp_decay,
    "exp_rise": exp_rise, "gaussian": gaussian, "staircase": staircase, "noise": noise,
}


def make_current(kind: str, t_ms, amplitude_nA: float = DEFAULT_AMPLITUDE_NA, **params):
    """One current waveform: ``amplitude_nA * PRIMITIVES[kind](t_ms, **params)`` in nA.

    Raises:
        KeyError: for an unknown ``kind`` (naming the available ones).
    """
    if kind not in PRIMITIVES:
        raise KeyError(f"unknown current shape {kind!r}; available: {sorted(PRIMITIVES)}")
    t_ms = np.asarray(t_ms, dtype=float)
    return amplitude_nA * PRIMITIVES[kind](t_ms, **params)


# Recipes: name -> function(t_ms, rng) -> unit waveform (peak about 1, may dip to -0.5).
def _r(kind, **kw):
    return lambda t, rng: PRIMITIVES[kind](t, **kw)


RECIPES = {
    "step_long": _r("step", start_ms=50, stop_ms=450),
    "step_early": _r("step", start_ms=20, stop_ms=200),
    "step_late": _r("step", start_ms=250, stop_ms=480),
    "step_short": _r("step", start_ms=200, stop_ms=260),
    "step_half": lambda t, rng: 0.5 * step(t, 100, 400),
    "step_negative": lambda t, rng: -0.5 * step(t, 100, 350),
    "ramp_up": _r("ramp", up=True),
    "ramp_down": _r("ramp", up=False),
    "ramp_fast": _r("ramp", start_ms=100, stop_ms=200),
    "triangle": _r("triangle"),
    "triangle_short": _r("triangle", start_ms=150, stop_ms=300),
    "pulse_single": _r("pulses", start_ms=240, stop_ms=260, period_ms=100, width_ms=20),
    "pulses_slow": _r("pulses", period_ms=100, width_ms=25),
    "pulses_fast": _r("pulses", period_ms=20, width_ms=5),
    "pulses_medium": _r("pulses", period_ms=50, width_ms=10),
    "sine_2hz": _r("sine", freq_hz=2.0),
    "sine_5hz": _r("sine", freq_hz=5.0),
    "sine_10hz": _r("sine", freq_hz=10.0),
    "sine_20hz": _r("sine", freq_hz=20.0),
    "sine_40hz": _r("sine", freq_hz=40.0, offset=0.5),
    "sine_signed": lambda t, rng: sine(t, freq_hz=4.0, offset=0.25) * 1.5 - 0.25,
    "chirp_up": _r("chirp", f0_hz=1.0, f1_hz=40.0),
    "chirp_down": _r("chirp", f0_hz=40.0, f1_hz=1.0),
    "square_4hz": _r("square", freq_hz=4.0),
    "square_12hz": _r("square", freq_hz=12.0),
    "sawtooth_100ms": _r("sawtooth", period_ms=100),
    "sawtooth_250ms": _r("sawtooth", period_ms=250),
    "exp_decay": _r("exp_decay"),
    "exp_rise": _r("exp_rise"),
    "gauss_center": _r("gaussian", center_ms=250, width_ms=40),
    "gauss_double": lambda t, rng: gaussian(t, 150, 25) + gaussian(t, 350, 25),
    "staircase_up": _r("staircase", up=True),
    "staircase_down": _r("staircase", up=False),
    "noise_slow": lambda t, rng: noise(t, tau_ms=30.0, seed=int(rng.integers(2**31))),
    "noise_fast": lambda t, rng: noise(t, tau_ms=3.0, seed=int(rng.integers(2**31))),
    "noise_burst": lambda t, rng: noise(t, 150, 350, tau_ms=8.0, seed=int(rng.integers(2**31))),
    "step_plus_sine": lambda t, rng: 0.6 * step(t, 50, 450) + 0.4 * sine(t, freq_hz=8.0),
    "ramp_plus_noise": lambda t, rng: 0.7 * ramp(t) + 0.3 * noise(t, seed=int(rng.integers(2**31))),
    "step_then_ramp": lambda t, rng: 0.5 * step(t, 50, 250) + ramp(t, 250, 450),
    "pulses_on_step": lambda t, rng: 0.4 * step(t, 50, 450) + 0.6 * pulses(t, period_ms=40,
                                                                          width_ms=8),
    "sine_am": lambda t, rng: sine(t, freq_hz=15.0) * triangle(t, 0, 500),
    "decay_pulses": lambda t, rng: exp_decay(t, 50, 500, 150) * pulses(t, 50, 500, 30, 10),
    "off_on_off": lambda t, rng: step(t, 50, 150) + step(t, 300, 400),
    "inhibit_then_drive": lambda t, rng: -0.5 * step(t, 50, 200) + step(t, 250, 450),
}


def shape_library(
    n: int,
    n_inputs: int,
    t_ms,
    *,
    amplitude_nA: float = DEFAULT_AMPLITUDE_NA,
    seed: int = 0,
    groups: list[list[int]] | None = None,
):
    """``n`` input sequences for ``n_inputs`` neurons; returns ``(names, currents (T, n, M))``.

    Sequence ``i`` uses recipe ``i mod len(RECIPES)`` (so the first 44 are all different);
    every input gets its own peak amplitude (uniform 0.4..1 x ``amplitude_nA``) and a small
    time jitter (0..20 ms), and every third sequence drives only one group of inputs (by
    default the first and second half, e.g. PLM vs AVB), so the model sees inputs in isolation
    and in combination. Deterministic given ``seed``. Values are clipped to
    ``[-0.5, 1] x amplitude_nA``.
    """
    t_ms = np.asarray(t_ms, dtype=float)
    if n < 1 or n_inputs < 1:
        raise ValueError("n and n_inputs must be >= 1")
    rng = np.random.default_rng(seed)
    if groups is None:
        half = max(1, n_inputs // 2)
        groups = [list(range(half)), list(range(half, n_inputs))] if n_inputs > 1 else [[0]]
    keys = list(RECIPES)
    names, out = [], np.zeros((len(t_ms), n, n_inputs))
    for i in range(n):
        key = keys[i % len(keys)]
        active = set(range(n_inputs))
        if i % 3 == 2 and len(groups) > 1:
            active = set(groups[(i // 3) % len(groups)])
        for j in range(n_inputs):
            if j not in active:
                continue
            shift = rng.uniform(0, 20.0)
            amp = rng.uniform(0.4, 1.0) * amplitude_nA
            w = RECIPES[key](t_ms - shift, rng)
            out[:, i, j] = np.clip(amp * w, -0.5 * amplitude_nA, amplitude_nA)
        names.append(f"{i:03d}_{key}")
    return names, out
