"""``wormlab bench crawl``: wall time of the closed loop (circuit -> muscles -> body) per
simulated second, forward + backward, with its parts measured alone in the same run as the
anchor: ElegansBot stepping the same frames with a fixed command, and the motor circuit
(exp2 at 1 ms) with the same drive and no body. The surrogate body is not in the loop yet
(reported as such, not timed)."""

from __future__ import annotations

import os
import time


def _elegansbot_alone(duration_s: float, frame_s: float, dt_s: float) -> float:
    import numpy as np
    from elegansbot import Worm

    from wormlab.body._physics import N_RODS

    w = Worm(dt=dt_s, scale_friction=1.0, simTime=None, dt_snapshot=None)
    w.reset()
    w.record_init(simTime=duration_s, dt_snapshot=frame_s)
    cmd = 0.1 * np.sin(np.linspace(0, 2 * np.pi, N_RODS - 1))
    t0 = time.perf_counter()
    for _ in range(int(round(duration_s / frame_s))):
        w.theta_ctrl = cmd
        w.steps()
    return time.perf_counter() - t0


def _circuit_alone(duration_s: float, batch: int) -> float:
    import torch

    from wormlab import circuit
    from wormlab.worm._motor import FORWARD_DRIVE, build_motor_network

    net = build_motor_network().batched(batch)
    stim = circuit.Stimulus.waveform(list(FORWARD_DRIVE),
                                     torch.full((2, batch, len(FORWARD_DRIVE)), 0.003,
                                                dtype=torch.float64), dt_ms=duration_s * 1e3)
    t0 = time.perf_counter()
    with torch.no_grad():
        circuit.simulate(net, stim, duration_s * 1e3, 1.0, solver="exp2", record=None,
                         record_every=40)
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict:
    """Measure and return the benchmark dict. ``quick``: 0.4 s runs (tests)."""
    import torch

    from wormlab.paths import package_data
    from wormlab.worm._config import read_crawl_params
    from wormlab.worm._loop import LoopConfig, run_loop

    dur = 0.4 if quick else 5.0
    shipped = package_data("worm", "data", "crawl_params.json")
    params = read_crawl_params(shipped) if shipped.exists() else {}
    out: dict = {"simulated_s": dur, "frame_s": 0.04, "circuit": "motor sub-circuit of c302 C1 "
                 "(184 cells), exp2 at 1 ms", "body": "ElegansBot, dt 1e-4 s",
                 "params": str(shipped) if params else "defaults",
                 "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                 "load_avg_at_start": os.getloadavg()[0]}
    walls = {}
    for d in ("forward", "backward"):
        t0 = time.perf_counter()
        run_loop(params, LoopConfig(duration_s=dur, direction=d, warmup_ms=0.0))
        walls[d] = time.perf_counter() - t0
    out["loop_physics_wall_s_per_simulated_s"] = {d: w / dur for d, w in walls.items()}
    out["forward_plus_backward_wall_s"] = sum(walls.values())
    B = 8
    t0 = time.perf_counter()
    run_loop({k: [v] * B for k, v in params.items()} if params else
             {"drive_nA": [0.003] * B}, LoopConfig(duration_s=dur, warmup_ms=0.0))
    out["loop_physics_batch8_wall_s_per_member_per_simulated_s"] = (
        (time.perf_counter() - t0) / dur / B)
    out["anchor_elegansbot_alone_wall_s_per_simulated_s"] = (
        _elegansbot_alone(dur, 0.04, 1e-4) / dur)
    out["anchor_circuit_alone_wall_s_per_simulated_s"] = _circuit_alone(dur, 1) / dur
    out["loop_surrogate"] = {"available": False,
                             "reason": "the body surrogate maps a whole activation window to "
                                       "kinematics; a per-frame closed loop through it is not "
                                       "built yet (docs/crawl.md)"}
    out["load_avg_at_end"] = os.getloadavg()[0]
    return out
