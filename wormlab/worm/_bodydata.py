"""Body-surrogate training data from the crawling worm's own muscle activations (issue 17,
item 5).

The body surrogate (``wormlab.body``) was trained on activation families of the body
component's generator (waves, random mixtures); the fitted circuit's activations are stronger
and faster and lie outside them (the surrogate missed the loop's physics by 32 % forward and
43 % backward). This module makes samples of the family ``crawl``: closed-loop runs of the
motor circuit (physics body) with crawl parameters scattered around a parameter set, forward
and backward, from seeded initial bends; every ``window_s`` window of their muscle
activation (after ``skip_s``) is replayed open loop through ElegansBot **from a straight
body**, exactly as the generator's samples are made, and written as a store in the generator's
HDF5 format (shards first, so a killed run resumes). All of it is **synthetic**.

Split by run, never by window: the windows of one run overlap in time, so the ``val`` and
``test`` runs are chosen whole (:func:`crawl_heldout`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from wormlab.worm._loop import PARAMS, LoopConfig, check_params, run_loop

FAMILY = "crawl"


@dataclasses.dataclass(frozen=True)
class CrawlDataConfig:
    """Which crawls become body samples.

    Args:
        n_sets: parameter sets per direction (each run forward *and* backward).
        spread: log-normal s.d. of the multiplicative scatter of every parameter that is
            positive in the base set (signed ones get ``spread`` x |value| additive noise);
            0 keeps the base set (then only the initial bends differ).
        duration_s: closed-loop run length (s); ``skip_s``: initial transient left out.
        window_s / stride_s: sample length and spacing (s).
        batch: members per closed-loop batch.
        seed: scatter and initial bends (bend seeds ``1000 + seed * 10_000 + run``, never the
            seeds 0-5 that the crawl's own checks use).
    """

    n_sets: int = 24
    spread: float = 0.1
    duration_s: float = 10.0
    skip_s: float = 1.0
    window_s: float = 4.0
    stride_s: float = 1.0
    batch: int = 8
    seed: int = 0


def scattered_params(base: dict[str, float], n: int, spread: float, seed: int
                     ) -> dict[str, torch.Tensor]:
    """``n`` parameter sets around ``base`` (values clipped into :data:`PARAMS` bounds);
    member 0 is ``base`` itself."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, (d, lo, hi, _, _) in PARAMS.items():
        v = float(base.get(k, d))
        z = rng.standard_normal(n)
        z[0] = 0.0
        x = v * np.exp(spread * z) if v > 0 else v + spread * abs(v) * z
        out[k] = torch.as_tensor(np.clip(x, lo, hi), dtype=torch.float64)
    return check_params(out)


def _windows(T: int, frame_dt_s: float, cfg: CrawlDataConfig) -> list[int]:
    w = int(round(cfg.window_s / frame_dt_s))
    s0 = int(round(cfg.skip_s / frame_dt_s))
    step = max(1, int(round(cfg.stride_s / frame_dt_s)))
    return list(range(s0, T - w, step))


def _specs(cfg: CrawlDataConfig, T: int, frame_dt_s: float, base_name: str) -> list[dict]:
    starts = _windows(T, frame_dt_s, cfg)
    specs = []
    for d, direction in enumerate(("forward", "backward")):
        for i in range(cfg.n_sets):
            run = d * cfg.n_sets + i
            for j, s in enumerate(starts):
                specs.append({"id": f"crawl-s{cfg.seed}-{run:04d}-{j:02d}", "family": FAMILY,
                              "params": {"run": run, "set": i, "direction": direction,
                                         "start_frame": s, "base": base_name,
                                         "bend_seed": 1000 + cfg.seed * 10_000 + run,
                                         "config": dataclasses.asdict(cfg)},
                              "seed": cfg.seed})
    return specs


def crawl_body_store(store: str | Path, base: dict[str, float], cfg: CrawlDataConfig = CrawlDataConfig(),
                     base_name: str = "shipped", progress: bool = True) -> dict:
    """Write the ``crawl`` store (see the module docstring). Returns a summary: samples,
    runs, wall seconds, and the runs' speeds (um/s) per direction. Resumes from the shards of
    a killed run (a run whose windows are all present is not simulated again)."""
    from wormlab.body._config import DataConfig, MuscleConfig, PhysicsConfig
    from wormlab.body._generate import _shard_done, consolidate, package_versions
    from wormlab.body._physics import forward_speed, simulate
    from wormlab.runs import atomic_path
    from wormlab.runs import progress as _progress

    if cfg.n_sets < 1 or cfg.batch < 1:
        raise ValueError("n_sets and batch must be >= 1")
    if cfg.window_s + cfg.skip_s > cfg.duration_s:
        raise ValueError(f"window_s + skip_s ({cfg.window_s} + {cfg.skip_s} s) exceed "
                         f"duration_s {cfg.duration_s} s")
    physics, muscle = PhysicsConfig(), MuscleConfig()
    lc0 = LoopConfig(duration_s=cfg.duration_s)
    if abs(lc0.frame_dt_s - physics.frame_dt_s) > 1e-12 or lc0.joint_gain_rad != muscle.joint_gain_rad:
        raise ValueError("the loop's frame step / joint gain differ from the body generator's")
    T_loop = int(round(cfg.duration_s / lc0.frame_dt_s)) + 1
    n_windows = len(_windows(T_loop, lc0.frame_dt_s, cfg))
    specs = _specs(cfg, T_loop, lc0.frame_dt_s, base_name)
    w = int(round(cfg.window_s / physics.frame_dt_s))
    store = Path(store)
    parts = store.with_name(store.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    sets = scattered_params(base, cfg.n_sets, cfg.spread, cfg.seed)
    versions = package_versions()
    by_run: dict[int, list[dict]] = {}
    for s in specs:
        by_run.setdefault(s["params"]["run"], []).append(s)
    todo = [r for r, ss in by_run.items() if not all(_shard_done(parts, s) for s in ss)]
    speeds: dict[str, list[float]] = {"forward": [], "backward": []}
    wall = {"loop_s": 0.0, "physics_s": 0.0}
    batches = [todo[i:i + cfg.batch] for i in range(0, len(todo), cfg.batch)]
    for runs in _progress(batches, desc="crawl runs", disable=not progress or None):
        for direction in ("forward", "backward"):
            rs = [r for r in runs if by_run[r][0]["params"]["direction"] == direction]
            if not rs:
                continue
            idx = [by_run[r][0]["params"]["set"] for r in rs]
            p = {k: v[idx] for k, v in sets.items()}
            lc = dataclasses.replace(lc0, direction=direction, on_diverge="mark",
                                     bend_seeds=tuple(by_run[r][0]["params"]["bend_seed"]
                                                      for r in rs))
            res = run_loop(p, lc, record=("AVBL",))
            wall["loop_s"] += res.wall_s
            v = np.asarray(forward_speed(res.trajectory, skip_s=cfg.skip_s))
            speeds[direction] += [float(x) for x in v]
            for b, r in enumerate(rs):
                if res.diverged is not None and bool(res.diverged[b]):
                    raise RuntimeError(f"crawl run {r} ({direction}, set {idx[b]}) diverged; "
                                       "lower spread")
                ss = by_run[r]
                acts = np.stack([res.activation[s["params"]["start_frame"]:
                                                 s["params"]["start_frame"] + w + 1, b]
                                 for s in ss], 1)
                t0 = time.perf_counter()
                tr = simulate(torch.from_numpy(acts.astype(np.float64)), physics, muscle)
                wall["physics_s"] += time.perf_counter() - t0
                pvals = {k: float(sets[k][idx[b]]) for k in sets}
                for j, s in enumerate(ss):
                    meta = dict(s, versions=versions, physics=dataclasses.asdict(physics),
                                muscle=dataclasses.asdict(muscle), crawl_params=pvals,
                                loop_speed_um_s=float(v[b]))
                    with atomic_path(parts / f"{s['id']}.npz") as tmp, open(tmp, "wb") as fh:
                        np.savez(fh, meta=np.array(json.dumps(meta, sort_keys=True)),
                                 activation=acts[:, j].astype(np.float32),
                                 com_um=tr.com_um[:, j].astype(np.float32),
                                 tangent_rad=tr.tangent_rad[:, j].astype(np.float32))
    consolidate(store, specs, parts, DataConfig(duration_s=cfg.window_s), physics, muscle)
    return {"store": str(store), "samples": len(specs), "runs": len(by_run),
            "runs_simulated": len(todo), "windows_per_run": n_windows,
            "wall_s": wall, "loop_speed_um_s": speeds}


def crawl_heldout(store: str | Path, val_fraction: float = 0.15, seed: int = 0) -> dict:
    """``{"val": ids, "test": ids}`` of the ``crawl`` samples, whole runs per split, the same
    fraction of forward and backward runs in each."""
    from wormlab.body._generate import load_store

    d = load_store(store, families=(FAMILY,))
    runs: dict[tuple, list[str]] = {}
    for i, m in zip(d["id"], d["meta"]):
        runs.setdefault((m["params"]["direction"], m["params"]["run"]), []).append(str(i))
    rng = np.random.default_rng(seed)
    out = {"val": [], "test": []}
    for direction in ("forward", "backward"):
        keys = sorted(k for k in runs if k[0] == direction)
        keys = [keys[i] for i in rng.permutation(len(keys))]
        n = max(1, int(round(val_fraction * len(keys))))
        if 2 * n >= len(keys):
            raise ValueError(f"too few {direction} runs ({len(keys)}) for val and test splits")
        for k in keys[:n]:
            out["val"] += runs[k]
        for k in keys[n:2 * n]:
            out["test"] += runs[k]
    return out
