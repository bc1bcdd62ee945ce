"""Circuit-driven activations: muscle calcium of :mod:`wormlab.circuit` (c302 C1, 302 neurons +
95 muscles) -> :func:`wormlab.body.calcium_to_activation` -> the body (issue 7, items 1 and 3).

:func:`circuit_muscle_calcium` runs the circuit in one :func:`wormlab.circuit.simulate` call
that records the muscle cells' calcium-pool state (``record={"ca": muscles}``) on a grid holding
every frame time, so the (T, B, 95) calcium trace is sampled on the body's frame grid. The default stimulus is a
forward-locomotion drive: a constant current into the forward command interneurons AVBL/AVBR
plus c302's own posterior-touch input (PLML/PLMR offset current). All of it is **synthetic**.
"""

from __future__ import annotations

import numpy as np
import torch

from wormlab.body._muscles import MUSCLES


def forward_stimulus(avb_nA=0.003, plm_nA=0.005, start_ms: float = 0.0):
    """AVBL/AVBR step (forward command interneurons) + PLML/PLMR step (posterior touch);
    amplitudes in nA, floats or (B,) tensors."""
    from wormlab.circuit import Stimulus

    return (Stimulus.step(["AVBL", "AVBR"], avb_nA, start_ms=start_ms)
            + Stimulus.step(["PLML", "PLMR"], plm_nA, start_ms=start_ms))


def circuit_muscle_calcium(T: int, frame_dt_s: float = 0.04, stimulus=None, net=None,
                           dt_ms: float | None = None, warmup_ms: float = 0.0, compile: bool = False,
                           progress: bool = False, batch: int = 1) -> dict:
    """Simulate the circuit and return muscle calcium on the frame grid.

    Returns ``{"ca_mM": (T, B, 95) tensor in connectome.MUSCLES order, "t_s": (T,),
    "v_mV": (T, B, 95) muscle voltages, "wall_s"}``. Frame 0 is the state after
    ``warmup_ms`` (the initial transient is discarded). ``batch``: B (e.g. with pulse
    amplitudes of shape (B,)).
    """
    import math
    import time

    from wormlab.circuit import DEFAULT_DT_MS, build_network, simulate

    net = net if net is not None else build_network()
    dt_ms = DEFAULT_DT_MS if dt_ms is None else dt_ms
    stim = forward_stimulus() if stimulus is None else stimulus
    missing = [m for m in MUSCLES if m not in net.index]
    if missing:
        raise ValueError(f"the circuit has no muscle cells {missing[:5]}...")
    if T < 1:
        raise ValueError(f"T must be >= 1 frame, got {T}")
    seg_steps = round(frame_dt_s * 1000.0 / dt_ms)
    warm_steps = round(warmup_ms / dt_ms)
    if abs(seg_steps * dt_ms - frame_dt_s * 1000.0) > 1e-9 or abs(
            warm_steps * dt_ms - warmup_ms) > 1e-9:
        raise ValueError(f"frame_dt_s={frame_dt_s} s and warmup_ms={warmup_ms} must be "
                         f"multiples of dt_ms={dt_ms}")
    # one simulate call; record muscle [Ca] and V on a grid that contains every frame time
    every = math.gcd(seg_steps, warm_steps) if warm_steps else seg_steps
    total = warm_steps + (T - 1) * seg_steps
    t0 = time.perf_counter()
    if total == 0:
        y = net.initial_state(batch)
        idx = torch.tensor(net.indices(MUSCLES))
        ca = y[None, :, net.state_index("ca"), idx]
        v = y[None, :, net.state_index("v"), idx]
    else:
        with torch.no_grad():
            res = simulate(net, stim, total * dt_ms, dt_ms, record_every=every,
                           record={"ca": list(MUSCLES), "v": list(MUSCLES)},
                           compile=compile, batch=batch, show_progress=progress)
        pick = torch.arange(warm_steps // every, total // every + 1, seg_steps // every)
        ca, v = res.states["ca"][pick], res.states["v"][pick]
    return {"ca_mM": ca.double(), "v_mV": v.double(),
            "t_s": np.arange(T) * frame_dt_s, "wall_s": time.perf_counter() - t0}


def circuit_activations(T: int, frame_dt_s: float = 0.04, avb_nA=(0.002, 0.003, 0.005),
                        plm_nA: float = 0.005, warmup_ms: float = 200.0,
                        muscle=None, progress: bool = True) -> dict:
    """Muscle activations (T, B, 95) from the circuit's muscle calcium, one sample per AVB
    drive amplitude (one batched circuit run), via :func:`calcium_to_activation`. Also
    returns the calcium, the stimulus parameters and the wall time."""
    from wormlab.body._config import MuscleConfig
    from wormlab.body._muscles import calcium_to_activation

    amps = torch.tensor(avb_nA, dtype=torch.float64)
    stim = forward_stimulus(amps, plm_nA)
    r = circuit_muscle_calcium(T, frame_dt_s, stim, warmup_ms=warmup_ms, progress=progress,
                               batch=len(amps))
    ca = r["ca_mM"].clamp_min(0.0)  # the pool is clamped at 0 in the circuit; guard rounding
    act = calcium_to_activation(ca, muscle or MuscleConfig())
    return {"activation": act.float(), "ca_mM": r["ca_mM"], "v_mV": r["v_mV"],
            "avb_nA": list(map(float, avb_nA)), "plm_nA": float(plm_nA),
            "warmup_ms": float(warmup_ms), "wall_s": r["wall_s"]}


def travelling_wave_score(act: np.ndarray) -> dict:
    """Is a (T, 95) muscle pattern a travelling wave? Dorsal-minus-ventral per row (T, 24):
    share of its variance in the top complex (analytic-signal) mode, the phase slope of that
    mode along the body (rad per row; a travelling wave has a steady slope) and the linear
    fit's R^2 of the unwrapped phase, and the mean activation and its temporal std."""
    from scipy.signal import hilbert

    from wormlab.body._muscles import joint_matrix

    j = np.asarray(act, dtype=np.float64) @ joint_matrix().numpy()  # (T, 24)
    j = j - j.mean(0)
    if np.allclose(j, 0):
        return {"top_mode_var_frac": 0.0, "phase_slope_rad_per_row": 0.0, "phase_fit_r2": 0.0,
                "mean_activation": float(np.mean(act)), "temporal_std": 0.0}
    z = hilbert(j, axis=0)
    u, sv, vh = np.linalg.svd(z, full_matrices=False)
    frac = float(sv[0] ** 2 / (sv**2).sum())
    mode = vh[0].conj()
    amp = np.abs(mode)
    ph = np.unwrap(np.angle(mode))
    x = np.arange(len(ph))
    w = amp / amp.sum()
    A = np.stack([x, np.ones_like(x)], 1) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(A, ph * np.sqrt(w), rcond=None)
    fit = coef[0] * x + coef[1]
    r2 = 1 - np.sum(w * (ph - fit) ** 2) / max(np.sum(w * (ph - np.sum(w * ph)) ** 2), 1e-12)
    return {"top_mode_var_frac": frac, "phase_slope_rad_per_row": float(coef[0]),
            "phase_fit_r2": float(r2), "mean_activation": float(np.mean(act)),
            "temporal_std": float(np.asarray(act).std(0).mean())}
