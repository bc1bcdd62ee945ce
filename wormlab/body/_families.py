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
- ``random``: a generic family for training the surrogate on the physics rather than on one
  pattern: a mixture of 1-3 travelling waves (frequency 0.2-1.5 Hz, wavelength 0.4-2.5 body
  lengths, forward or backward, sinusoidal or Sibernetic's squared half-rectified shape), a
  slow amplitude envelope, a dorsal/ventral bias (turning), an optional localised oscillating
  bump (1-4 rows wide), smooth random per-quadrant gains along the body and per-muscle gains.
- ``perturbed``: deliberately out-of-range inputs used only to train and calibrate the
  surrogate's error head (never its FNO, never evaluation): waves up to 3 Hz and down to 0.25
  body lengths, abrupt switches between two waves, iid per-muscle gains and temporal noise.
"""

from __future__ import annotations

import itertools

import numpy as np

from wormlab.body._muscles import GROUPS, MUSCLES, N_MUSCLES, group_mask, muscle_table

FAMILIES = ("nominal", "group_scaled", "sinusoid", "single_muscle", "random", "perturbed")

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
    if fam in ("random", "perturbed"):
        return random_activation(p, T, frame_dt_s)
    raise ValueError(f"unknown activation family {fam!r}; choose from {', '.join(FAMILIES)}")


def _wave(x, t, f, w, d, ph, shape):
    """(T, 95) dorsal wave and ventral antiphase, values in [0, 1]."""
    p = 2 * np.pi * (x / w - d * f * t) + ph
    dorsal = muscle_table()["dorsal"][None, :]
    s = np.sin(p + np.where(dorsal, 0.0, np.pi))
    return ((s + 1) / 2) ** 2 if shape == "squared" else (s + 1) / 2


def random_activation(p: dict, T: int, frame_dt_s: float) -> np.ndarray:
    """(T, 95) activation of a ``random`` / ``perturbed`` spec (all randomness is in ``p``)."""
    t = np.arange(T)[:, None] * frame_dt_s
    tab = muscle_table()
    x = _row_x()[None, :]
    a = np.zeros((T, N_MUSCLES))
    for k, wv in enumerate(p["waves"]):
        one = wv["amp"] * _wave(x, t, wv["freq_hz"], wv["wavelength_bl"], wv["direction"],
                                wv["phase0"], wv["shape"])
        if "switch_s" in p and len(p["waves"]) > 1:  # abrupt switch between two waves
            on = (t < p["switch_s"]) if k == 0 else (t >= p["switch_s"])
            one = one * on
        a += one
    env = p.get("envelope")
    if env:
        a *= 1 + env["depth"] * np.sin(2 * np.pi * env["freq_hz"] * t + env["phase0"])
    bias = p.get("dv_bias", 0.0)
    a += np.where(tab["dorsal"], bias, -bias)[None, :]
    bump = p.get("bump")
    if bump:
        prof = np.exp(-0.5 * ((tab["row"] - bump["row"]) / bump["width_rows"]) ** 2)
        side = tab["dorsal"] if bump["dorsal"] else ~tab["dorsal"]
        osc = 0.5 * (1 - np.cos(2 * np.pi * bump["freq_hz"] * t + bump["phase0"]))
        a += bump["amp"] * osc * (prof * side)[None, :]
    # smooth gains along the body per quadrant (cosine basis, log-normal) and per muscle
    g = np.zeros(N_MUSCLES)
    names = tab["name"]
    for q, coef in p["quadrant_gain"].items():
        m = np.array([n.startswith(q) for n in names])
        xb = (tab["row"][m] - 0.5) / 24.0
        g[m] = sum(c * np.cos(np.pi * i * xb) for i, c in enumerate(coef))
    a *= np.exp(g + np.asarray(p["muscle_log_gain"]))[None, :]
    noise = p.get("noise")
    if noise:
        r = np.random.default_rng(noise["seed"]).normal(size=(T, N_MUSCLES))
        a += noise["sigma"] * r
    return np.clip(a, 0.0, 1.0).astype(np.float32)


def _random_params(rng: np.random.Generator, perturbed: bool) -> dict:
    n = int(rng.integers(1, 4)) if not perturbed else int(rng.integers(1, 3))
    fmax = 3.0 if perturbed else 1.5
    wmin = 0.25 if perturbed else 0.4
    waves = []
    for _ in range(n):
        waves.append({"freq_hz": float(rng.uniform(0.2, fmax)),
                      "wavelength_bl": float(np.exp(rng.uniform(np.log(wmin), np.log(2.5)))),
                      "direction": int(rng.choice((1, -1))),
                      "amp": float(rng.uniform(0.15, 1.0) / (1 if perturbed else np.sqrt(n))),
                      "phase0": float(rng.uniform(0, 2 * np.pi)),
                      "shape": str(rng.choice(("sine", "squared")))})
    sig_q = 0.6 if perturbed else 0.3
    p = {"waves": waves,
         "quadrant_gain": {q: [float(v) for v in rng.normal(0, sig_q, 3) / [1, 2, 3]]
                           for q in ("MDL", "MDR", "MVL", "MVR")},
         "muscle_log_gain": [float(v) for v in rng.normal(0, 0.5 if perturbed else 0.1,
                                                          N_MUSCLES)],
         "dv_bias": float(rng.normal(0, 0.1)) if rng.random() < 0.4 else 0.0}
    if rng.random() < 0.4:
        p["envelope"] = {"depth": float(rng.uniform(0.1, 0.6)),
                         "freq_hz": float(rng.uniform(0.1, 0.5)),
                         "phase0": float(rng.uniform(0, 2 * np.pi))}
    if rng.random() < 0.3:
        p["bump"] = {"row": float(rng.uniform(1, 24)), "width_rows": float(rng.uniform(1, 4)),
                     "dorsal": bool(rng.random() < 0.5), "amp": float(rng.uniform(0.2, 0.8)),
                     "freq_hz": float(rng.uniform(0.2, 1.5)),
                     "phase0": float(rng.uniform(0, 2 * np.pi))}
    if perturbed:
        if n > 1:
            p["switch_s"] = float(rng.uniform(1.0, 3.0))
        if rng.random() < 0.5:
            p["noise"] = {"sigma": float(rng.uniform(0.02, 0.15)),
                          "seed": int(rng.integers(2**31))}
    return p


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
    for fam in FAMILIES[:4]:
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
    # the generic families draw from their own streams, so adding them leaves the specs of
    # the original four families unchanged
    for k, fam in enumerate(("random", "perturbed")):
        n = int(n_per_family.get(fam, 0))
        if n < 0:
            raise ValueError(f"negative count for {fam}")
        r = np.random.default_rng([int(seed), 1000 + k])
        for i in range(n):
            specs.append({"id": f"{fam}-{i:05d}", "family": fam,
                          "params": _random_params(r, fam == "perturbed"), "seed": int(seed)})
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
