"""Circuit-driven activations: muscle calcium of :mod:`wormlab.circuit` (c302 C1, 302 neurons +
95 muscles) -> :func:`wormlab.body.calcium_to_activation` -> the body (issue 7, items 1 and 3).

:func:`circuit_muscle_calcium` runs the circuit in frame-long segments (continuing from the
final state, ``y0``) and reads the muscle cells' calcium-pool state after each segment, so the
(T, B, 95) calcium trace is sampled on the body's frame grid. The default stimulus is a
forward-locomotion drive: a constant current into the forward command interneurons AVBL/AVBR
plus c302's own posterior-touch input (PLML/PLMR offset current). All of it is **synthetic**.
"""

from __future__ import annotations

import numpy as np
import torch

from wormlab.body._muscles import MUSCLES


def forward_stimulus(avb_nA: float = 0.003, plm_nA: float = 0.005, start_ms: float = 0.0):
    """AVBL/AVBR step (forward command interneurons) + PLML/PLMR step (posterior touch)."""
    from wormlab.circuit import Stimulus

    return (Stimulus.step(["AVBL", "AVBR"], avb_nA, start_ms=start_ms)
            + Stimulus.step(["PLML", "PLMR"], plm_nA, start_ms=start_ms))


def circuit_muscle_calcium(T: int, frame_dt_s: float = 0.04, stimulus=None, net=None,
                           dt_ms: float = 0.1, warmup_ms: float = 0.0, compile: bool = False,
                           progress: bool = False) -> dict:
    """Simulate the circuit and return muscle calcium on the frame grid.

    Returns ``{"ca_mM": (T, 1, 95) tensor in connectome.MUSCLES order, "t_s": (T,),
    "v_mV": (T, 1, 95) muscle voltages, "wall_s"}``. Frame 0 is the state after
    ``warmup_ms`` (the initial transient is discarded).
    """
    import time

    from wormlab.circuit import STATE_NAMES, build_network, simulate

    net = net if net is not None else build_network()
    stim = forward_stimulus() if stimulus is None else stimulus
    missing = [m for m in MUSCLES if m not in net.index]
    if missing:
        raise ValueError(f"the circuit has no muscle cells {missing[:5]}...")
    idx = torch.tensor([net.index[m] for m in MUSCLES])
    ica, iv = STATE_NAMES.index("ca"), STATE_NAMES.index("v")
    t0 = time.perf_counter()
    y = None
    if warmup_ms > 0:
        with torch.no_grad():
            y = simulate(net, stim, warmup_ms, dt_ms, record=[], compile=compile).y_final
    seg = frame_dt_s * 1000.0
    ca, v = [], []
    it = range(T)
    if progress:
        from wormlab.runs import progress as bar
        it = bar(it, desc="circuit frames", total=T)
    for k in it:
        if k > 0:
            with torch.no_grad():
                y = simulate(net, _shift(stim, warmup_ms + (k - 1) * seg), seg, dt_ms,
                             record=[], y0=y, compile=compile).y_final
        state = y if y is not None else net.initial_state(1)
        ca.append(state[:, ica, idx].clone())
        v.append(state[:, iv, idx].clone())
    return {"ca_mM": torch.stack(ca).double(), "v_mV": torch.stack(v).double(),
            "t_s": np.arange(T) * frame_dt_s, "wall_s": time.perf_counter() - t0}


def _shift(stim, offset_ms: float):
    """The stimulus as seen by a run that starts at ``offset_ms`` (pulses moved earlier)."""
    from wormlab.circuit import Pulse, Stimulus

    if stim.waveforms:
        raise ValueError("segmented circuit runs support pulse stimuli only")
    return Stimulus(pulses=[Pulse(p.target, p.delay_ms - offset_ms, p.duration_ms, p.amplitude_nA)
                            for p in stim.pulses])
