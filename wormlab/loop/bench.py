"""``wormlab bench loop``: the sensory closed loop per simulated second, one trial and a batch
of trials, with the anchors measured in the same run: the crawl loop without the sensory part
(same body, same circuit minus the sensory cells) and ElegansBot alone. The FNO surrogate is
not in the loop (it maps a whole 4 s window, not one 40 ms frame): reported as such, not
timed."""

from __future__ import annotations

import os
import time


def run(quick: bool = False) -> dict:
    """Measure and return the benchmark dict. ``quick``: 0.4 s runs, batch 2 (tests)."""
    import numpy as np
    import torch

    from wormlab.loop._arena import load_arena
    from wormlab.loop._closed import ClosedLoopConfig, run_closed_loop
    from wormlab.paths import package_data
    from wormlab.worm._config import read_crawl_params
    from wormlab.worm._loop import LoopConfig, run_loop
    from wormlab.worm.bench import _elegansbot_alone

    dur = 0.4 if quick else 5.0
    batch = 2 if quick else 8
    arena_path = package_data("loop", "arenas", "nacl_local.yml")
    arena = load_arena(arena_path)
    params = read_crawl_params(package_data("worm", "data", "crawl_params.json"))
    out: dict = {"simulated_s": dur, "frame_s": 0.04, "arena": str(arena_path),
                 "modality": "nacl", "body": "ElegansBot, dt 1e-4 s",
                 "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                 "load_avg_at_start": os.getloadavg()[0]}
    cfg = ClosedLoopConfig(duration_s=dur, adapt_s=0.4)
    t0 = time.perf_counter()
    r1 = run_closed_loop(arena, [[0.0, 0.0]], [0.0], params=params, config=cfg)
    w1 = time.perf_counter() - t0
    out["transducer"] = f"wormlab.sensory.load_transducer('nacl') -> {r1.sensory_neurons}"
    out["loop_wall_s_per_simulated_s_one_trial"] = w1 / dur
    out["simulated_s_per_wall_s_one_trial"] = dur / w1
    rng = np.random.default_rng(0)
    starts = rng.uniform(-800, 800, (batch, 2))
    t0 = time.perf_counter()
    run_closed_loop(arena, starts, rng.uniform(0, 2 * np.pi, batch), params=params, config=cfg)
    wb = time.perf_counter() - t0
    out["batch"] = batch
    out["loop_wall_s_per_trial_per_simulated_s_batched"] = wb / dur / batch
    out["trial_simulated_s_per_wall_s_batched"] = dur * batch / wb
    t0 = time.perf_counter()
    run_loop(params, LoopConfig(duration_s=dur, warmup_ms=200.0))
    out["anchor_crawl_loop_without_sensory_wall_s_per_simulated_s"] = (
        (time.perf_counter() - t0) / dur)
    out["anchor_elegansbot_alone_wall_s_per_simulated_s"] = (
        _elegansbot_alone(dur, 0.04, 1e-4) / dur)
    out["loop_surrogate"] = {"available": False,
                             "reason": "the body surrogate maps a whole 4 s activation window "
                                       "to kinematics; a per-frame closed loop through it is "
                                       "not built (docs/sensory.md)"}
    out["load_avg_at_end"] = os.getloadavg()[0]
    return out
