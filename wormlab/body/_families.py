"""Activation families for training and evaluating the surrogate (DD017).

Each sample is a JSON-able spec ``{"family", "params", "seed"}``; :func:`make_activation`
turns it deterministically into a (T, 95) activation series, so a stored spec reproduces
its input exactly.

- ``nominal``: Sibernetic's crawling muscle wave (openworm/sibernetic ``main_sim.py``,
  ``parallel_waves``: ``((sin(phase)+1)/2)**2`` with an amplitude taper 1 -> 0.6 along the
  body, 2.97 pi phase over the body, ventral in antiphase) at ElegansBot's demo period
  1.6 s; used when no circuit output is available.
- ``group_scaled``: the nominal wave with one muscle group (:data:`GROUPS`) scaled 0.5x-2x.
- ``sinusoid``: dorsal/ventral antiphase sinusoids ``a*(1 +/- sin(2 pi (x/lambda - d f t)))/2``
  over a grid of frequency, wavelength, amplitude and direction d (+1 forward, -1 backward).
- ``single_muscle``: one muscle oscillating ``a*(1-cos(2 pi f t))/2``, all others 0.
"""

from __future__ import annotations

import itertools

import numpy as np

from wormlab.body._muscles import GROUPS, MUSCLES, N_MUSCLES, group_mask, muscle_table

FAMILIES = ("nominal", "group_scaled", "sinusoid", "single_muscle")

# Sinusoid grid (forward and backward).
FREQS_HZ = (0.3, 0.5, 0.7, 0.9, 1.2)
WAVELENGTHS_BL = (0.5, 0.75, 1.0, 1.5)
AMPLITUDES = (0.4, 0.7, 1.0)
DIRECTIONS = (1, -1)


def _row_x() -> np.ndarray:
    """Body position of each muscle's row (0 head .. ~1 tail), in body lengths."""
    return (muscle_table()["row"] - 0.5) / 24.0


def travelling_wave(T: int, frame_dt_s: float = 0.04, freq_hz: float = 0.625,
                    wavelength_bl: float = 1.0, amplitude: float = 1.0, direction: int = 1,
                    phase0: float = 0.0, B: int = 1):
    """Sinusoidal dorsal/ventral travelling wave as a torch tensor (T, B, 95)."""
    import torch

    a = sinusoid_activation(T, frame_dt_s, freq_hz, wavelength_bl, amplitude, direction, phase0)
    return torch.from_numpy(np.repeat(a[:, None], B, axis=1))


def sinusoid_activation(T, frame_dt_s, freq_hz, wavelength_bl, amplitude, direction=1,
                        phase0=0.0) -> np.ndarray:
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 (forward) or -1 (backward), got {direction}")
    if freq_hz < 0 or wavelength_bl <= 0 or amplitude < 0:
        raise ValueError("need freq_hz >= 0, wavelength_bl > 0, amplitude >= 0")
    t = np.arange(T)[:, None] * frame_dt_s
    x = _row_x()[None, :]
    ph = 2 * np.pi * (x / wavelength_bl - direction * freq_hz * t) + phase0
    dorsal = muscle_table()["dorsal"][None, :]
    s = np.where(dorsal, 1.0, -1.0) * np.sin(ph)
    return (amplitude * 0.5 * (1 + s)).astype(np.float32)


def nominal_activation(T, frame_dt_s, period_s=1.6, phase0=0.0) -> np.ndarray:
    t = np.arange(T)[:, None] * frame_dt_s
    row = muscle_table()["row"]
    half = (row - 1) // 2  # Sibernetic drives 12 row pairs
    pos = np.linspace(0, 2.97 * np.pi, 12)[half][None, :]
    taper = np.linspace(1, 0.6, 12)[half][None, :]
    dorsal = muscle_table()["dorsal"][None, :]
    ph = pos - 2 * np.pi * t / period_s + phase0 + np.where(dorsal, 0.0, np.pi)
    return (taper * ((np.sin(ph) + 1) / 2) ** 2).astype(np.float32)


def make_activation(spec: dict, T: int, frame_dt_s: float) -> np.ndarray:
    """(T, 95) float32 activation of one sample spec."""
    fam, p = spec["family"], spec.get("params", {})
    if fam == "nominal":
        return nominal_activation(T, frame_dt_s, p.get("period_s", 1.6), p.get("phase0", 0.0))
    if fam == "group_scaled":
        a = nominal_activation(T, frame_dt_s, p.get("period_s", 1.6), p.get("phase0", 0.0))
        return (a * np.where(group_mask(p["group"]), p["scale"], 1.0)[None]).astype(np.float32)
    if fam == "sinusoid":
        return sinusoid_activation(T, frame_dt_s, p["freq_hz"], p["wavelength_bl"],
                                   p["amplitude"], p["direction"], p.get("phase0", 0.0))
    if fam == "single_muscle":
        i = MUSCLES.index(p["muscle"])
        t = np.arange(T) * frame_dt_s
        a = np.zeros((T, N_MUSCLES), np.float32)
        a[:, i] = p["amplitude"] * 0.5 * (1 - np.cos(2 * np.pi * p["freq_hz"] * t))
        return a
    raise ValueError(f"unknown activation family {fam!r}; choose from {', '.join(FAMILIES)}")


def sample_specs(n_per_family: dict, seed: int = 0) -> list[dict]:
    """Deterministic list of sample specs (ids ``family-00000``) for the requested counts.

    ``sinusoid`` walks the full grid (shuffled) with a random phase; further samples draw
    off-grid parameters uniformly within the grid's range.
    """
    bad = set(n_per_family) - set(FAMILIES)
    if bad:
        raise ValueError(f"unknown families {sorted(bad)}; choose from {', '.join(FAMILIES)}")
    rng = np.random.default_rng(seed)
    specs: list[dict] = []
    for fam in FAMILIES:
        n = int(n_per_family.get(fam, 0))
        if n < 0:
            raise ValueError(f"negative count for {fam}")
        grid = list(itertools.product(FREQS_HZ, WAVELENGTHS_BL, AMPLITUDES, DIRECTIONS))
        order = rng.permutation(len(grid))
        for i in range(n):
            if fam == "nominal":
                p = {"period_s": float(rng.uniform(1.2, 2.2)),
                     "phase0": float(rng.uniform(0, 2 * np.pi))}
            elif fam == "group_scaled":
                p = {"group": GROUPS[int(rng.integers(len(GROUPS)))],
                     "scale": float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))),
                     "period_s": float(rng.uniform(1.2, 2.2)),
                     "phase0": float(rng.uniform(0, 2 * np.pi))}
            elif fam == "sinusoid":
                if i < len(grid):
                    f, w, a, d = grid[order[i]]
                else:
                    f = float(rng.uniform(min(FREQS_HZ), max(FREQS_HZ)))
                    w = float(rng.uniform(min(WAVELENGTHS_BL), max(WAVELENGTHS_BL)))
                    a = float(rng.uniform(min(AMPLITUDES), max(AMPLITUDES)))
                    d = int(rng.choice(DIRECTIONS))
                p = {"freq_hz": float(f), "wavelength_bl": float(w), "amplitude": float(a),
                     "direction": int(d), "phase0": float(rng.uniform(0, 2 * np.pi))}
            else:
                p = {"muscle": MUSCLES[int(rng.integers(N_MUSCLES))],
                     "amplitude": float(rng.uniform(0.5, 1.0)),
                     "freq_hz": float(rng.uniform(0.3, 1.2))}
            specs.append({"id": f"{fam}-{i:05d}", "family": fam, "params": p,
                          "seed": int(seed)})
    return specs


def control_activation(T: int, frame_dt_s: float, mode: str = "sinusoid", freq_hz: float = 0.6,
                       wavelength_bl: float = 0.75, amplitude: float = 0.8, direction: int = 1,
                       group: str = "dorsal", scale: float = 1.0):
    """The widget's activation (T, 1, 95) torch tensor: a sinusoid from the wave controls, or the
    nominal wave with one muscle ``group`` scaled by ``scale``."""
    import torch

    if mode == "sinusoid":
        a = sinusoid_activation(T, frame_dt_s, freq_hz, wavelength_bl, amplitude, direction)
    elif mode == "group_scaled":
        a = make_activation({"family": "group_scaled", "params": {
            "group": group, "scale": scale, "period_s": 1.0 / max(freq_hz, 1e-3)}},
            T, frame_dt_s)
    else:
        raise ValueError(f"mode must be 'sinusoid' or 'group_scaled', got {mode!r}")
    return torch.from_numpy(a)[:, None]
