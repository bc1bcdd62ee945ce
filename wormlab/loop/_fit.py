"""Fit a few sensory-pathway parameters through the closed loop so that taxis emerges
(issue 18 item 5, the optional fit): evolution (CMA-ES, the ``cma`` package) of class-level
parameters of the pathway from the sensory neurons to the motor circuit, scored on the
closed loop itself (transducer -> circuit -> muscles -> ElegansBot body -> field at the head).

Nothing in the score tells the worm where to go: the score of a candidate is how much closer
to the field's peak its worms end **with** the gradient than the same worms (same starts,
headings, initial bends) end **without** it (the field flat at the start's value). The
parameters are the graded synapses' half-activation and slope of the sensory neurons' and
the path interneurons' synapses (c302: 0 mV, 5 mV for every synapse), per-cell weight scales
of the sensory neurons' synapses and two stage scales, plus the head motor neurons' stretch
gain (the head sweep). The wiring, its signs and relative weights stay c302's.

Why evolution and not gradients: the body in the loop is ElegansBot (not differentiable) and
the FNO surrogate maps a whole window, not one 40 ms frame (docs/sensory.md).

Resumable: every generation's samples, scores and summary go to a JSON log; a resumed fit
replays them into a freshly seeded CMA-ES (no pickles).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: searched parameters: name -> (lower, upper, scale) in physical units; ``log``: searched
#: as log10 of the value
#: The ranges are narrower than the parameters' bounds (:data:`PATHWAY_PARAMS`), centred on
#: the working potentials measured stage by stage (docs/sensory.md, "Taxis emerges"): a
#: graded synapse passes a small signal only when its half-activation lies within a few
#: slope factors of the presynaptic cell's working potential (ASER at about -45 mV with the
#: NaCl transducer's baseline current, AIB at -52 to -34 mV depending on ASER's release).
#: Searched over c302's whole range (-70 to 0 mV; a first run of 6 generations) every
#: candidate either passed nothing or drove the interneurons to saturation and stalled the
#: worm.
FIT_SPACE: dict[str, tuple[float, float, str]] = {
    "sensory_vth_mV": (-47.0, -38.0, "lin"),
    "sensory_delta_mV": (0.5, 3.0, "log"),
    "path_vth_mV": (-48.0, -25.0, "lin"),
    "path_delta_mV": (0.5, 3.0, "log"),
    "path_inter_scale": (1e-3, 1.0, "log"),
    "path_out_scale": (0.1, 10.0, "log"),
    "path_command_scale": (1e-3, 1.0, "log"),
    "head_gain_nS_rad": (-0.3, 0.0, "lin"),
}


@dataclass(frozen=True)
class TaxisFitConfig:
    """A taxis fit. Units: um, s.

    ``n_starts`` trials per candidate (starts within ``start_radius_um`` of the plate
    centre, headings uniform; seeded by ``seed`` and never those of :func:`run_taxis`'s
    evaluation, which draws with its own seed from 0); each is run with the gradient and
    flat. ``per_cell``: also fit a weight scale per sensory neuron (``w:<CELL>``).
    The score (um) is the mean of how much closer to the peak a trial ends with the gradient
    than flat, less ``stall_weight`` (um per um/s) times the shortfall of the flat and of
    the gradient trials' mean path speed over their last quarter below ``min_speed_um_s``:
    a worm in a uniform field keeps crawling, and a pathway that stalls worms would win by
    stopping those that do not climb (they end nearer their start, hence nearer the peak
    than worms that wander off), which is not taxis. ``start``: a pathway file as the starting point
    (default: c302's values clipped into the ranges)."""

    arena: str = "wormlab/loop/arenas/nacl_spot.yml"
    modality: str = "nacl"
    n_starts: int = 3
    duration_s: float = 12.0
    start_radius_um: float = 500.0
    generations: int = 15
    popsize: int = 8
    sigma0: float = 0.25
    per_cell: bool = True
    min_speed_um_s: float = 60.0
    stall_weight: float = 5.0
    start: str = ""
    seed: int = 1000
    out: str = "data/cache/loop/fit_taxis"


def _space(cfg: TaxisFitConfig, neurons) -> dict[str, tuple[float, float, str]]:
    space = dict(FIT_SPACE)
    if cfg.per_cell:
        for n in neurons:
            space[f"w:{n}"] = (1e-3, 3.0, "log")
    return space


def decode(u: np.ndarray, space: dict) -> dict[str, float]:
    """Unit-cube point -> physical parameter values (clipped to the bounds)."""
    out = {}
    for x, (k, (lo, hi, kind)) in zip(np.clip(u, 0.0, 1.0), space.items(), strict=True):
        if kind == "log":
            out[k] = float(10 ** (np.log10(lo) + x * (np.log10(hi) - np.log10(lo))))
        else:
            out[k] = float(lo + x * (hi - lo))
    return out


def encode(values: dict[str, float], space: dict) -> np.ndarray:
    u = []
    for k, (lo, hi, kind) in space.items():
        v = values[k]
        if kind == "log":
            u.append((np.log10(v) - np.log10(lo)) / (np.log10(hi) - np.log10(lo)))
        else:
            u.append((v - lo) / (hi - lo))
    return np.clip(np.array(u), 0.0, 1.0)


def c302_values(space: dict) -> dict[str, float]:
    """The starting point: c302's values (the shipped crawl's head gain), clipped into the
    searched ranges."""
    from wormlab.loop._closed import PATHWAY_PARAMS
    from wormlab.paths import package_data
    from wormlab.worm._config import read_crawl_params

    crawl = read_crawl_params(package_data("worm", "data", "crawl_params.json"))
    out = {}
    for k in space:
        if k in PATHWAY_PARAMS:
            out[k] = PATHWAY_PARAMS[k][0]
        elif k == "head_gain_nS_rad":
            out[k] = float(np.asarray(crawl[k]).reshape(-1)[0])
        else:
            out[k] = 1.0
        lo, hi, _ = space[k]
        out[k] = float(min(max(out[k], lo), hi))   # c302's 0 mV lies outside the search
    return out


def split_values(values: dict[str, float]) -> tuple[dict, dict]:
    """(pathway parameters, crawl parameter overrides) of a fitted point."""
    crawl = {k: v for k, v in values.items() if k == "head_gain_nS_rad"}
    return {k: v for k, v in values.items() if k not in crawl}, crawl


def fit_starts(cfg: TaxisFitConfig) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    r = cfg.start_radius_um * np.sqrt(rng.random(cfg.n_starts))
    a = 2 * np.pi * rng.random(cfg.n_starts)
    # headings spread evenly around the circle (random offset): every bearing to the peak
    h = (rng.random() + np.arange(cfg.n_starts) / cfg.n_starts) * 2 * np.pi
    return np.stack([r * np.cos(a), r * np.sin(a)], 1), h


def evaluate(points: list[dict], cfg: TaxisFitConfig, arena=None) -> list[dict]:
    """Score each candidate (a dict of :data:`FIT_SPACE` values) on the fit's trials: one
    closed-loop batch with the gradient and one flat, every candidate x start a member."""
    import torch

    from wormlab.loop._arena import load_arena
    from wormlab.loop._closed import ClosedLoopConfig, run_closed_loop
    from wormlab.loop._experiment import flattened
    from wormlab.paths import package_data
    from wormlab.worm._config import read_crawl_params

    arena = arena if arena is not None else load_arena(cfg.arena)
    flat = flattened(arena)
    starts, heads = fit_starts(cfg)
    K, P = len(heads), len(points)
    crawl = dict(read_crawl_params(package_data("worm", "data", "crawl_params.json")))
    pw_all, head = {}, []
    for pt in points:
        pw, cr = split_values(pt)
        for k, v in pw.items():
            pw_all.setdefault(k, []).extend([v] * K)
        head.extend([cr.get("head_gain_nS_rad", float(np.asarray(
            crawl["head_gain_nS_rad"]).reshape(-1)[0]))] * K)
    crawl["head_gain_nS_rad"] = torch.tensor(head, dtype=torch.float64)
    lc = ClosedLoopConfig(modality=cfg.modality, duration_s=cfg.duration_s, seed=cfg.seed,
                          bend_seeds=tuple(range(cfg.seed, cfg.seed + K)) * P)
    peak = arena.peak_um(cfg.modality)
    runs = {}
    for name, ar in (("gradient", arena), ("flat", flat)):
        runs[name] = run_closed_loop(ar, np.tile(starts, (P, 1)), np.tile(heads, P), crawl,
                                     lc, pathway=pw_all)
    dist = {k: np.linalg.norm(r.com_um[-1] - peak, axis=-1).reshape(P, K)
            for k, r in runs.items()}
    q = max(2, len(runs["flat"].t_s) // 4)
    late_speed = {k: (np.linalg.norm(np.diff(r.com_um[-q:], axis=0), axis=-1).sum(0)
                      / ((q - 1) * lc.frame_dt_s)).reshape(P, K) for k, r in runs.items()}
    path = {k: np.linalg.norm(np.diff(r.com_um, axis=0), axis=-1).sum(0).reshape(P, K)
            for k, r in runs.items()}
    bad = (runs["gradient"].diverged | runs["flat"].diverged).reshape(P, K).any(1)
    out = []
    for i in range(P):
        closer = dist["flat"][i] - dist["gradient"][i]
        late = {k: float(v[i].mean()) for k, v in late_speed.items()}
        slow = cfg.stall_weight * sum(max(0.0, cfg.min_speed_um_s - v) for v in late.values())
        out.append({"score_um": float(-1e4 if bad[i] else closer.mean() - slow),
                    "closer_um": closer.tolist(),
                    "speed_um_s": float(path["gradient"][i].mean() / cfg.duration_s),
                    "late_flat_speed_um_s": late["flat"],
                    "late_gradient_speed_um_s": late["gradient"], "diverged": bool(bad[i])})
    return out


def _key(cfg: TaxisFitConfig) -> str:
    from wormlab.sensory._transducer import weights_path

    d = asdict(cfg)
    d.pop("out")
    d["generations"] = None  # more generations may be asked for on resume
    d["transducer"] = hashlib.sha256(weights_path(cfg.modality).read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def fit_taxis(cfg: TaxisFitConfig = TaxisFitConfig(), progress: bool = True) -> dict:
    """Run (or resume) the CMA-ES fit; returns and writes ``<out>/fit.json`` with the best
    point, its score, the c302 starting point's score and the history."""
    import cma

    from wormlab import sensory
    from wormlab.loop._arena import load_arena

    arena = load_arena(cfg.arena)
    neurons = list(sensory.load_transducer(cfg.modality).neurons)
    space = _space(cfg, neurons)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ck = out / f"state_{_key(cfg)}.json"

    def new_es(x0):
        return cma.CMAEvolutionStrategy(encode(x0, space), cfg.sigma0,
                                        {"bounds": [0.0, 1.0], "popsize": cfg.popsize,
                                         "seed": cfg.seed + 1, "verbose": -9})

    if ck.exists():
        # resume without pickles: a freshly seeded CMA-ES replays every generation's
        # ask/tell from the JSON log (its samples must come out as logged)
        state = json.loads(ck.read_text())
        es = new_es(state["start"]["values"])
        for g, (us, f) in enumerate(zip(state["asked"], state["told"], strict=True)):
            again = np.asarray(es.ask())
            if not np.allclose(again, us, rtol=0, atol=1e-9):
                raise ValueError(f"{ck}: generation {g} does not replay (cma version or "
                                 "options changed?); use another out folder")
            es.tell(list(np.asarray(us)), f)
    else:
        x0 = c302_values(space)
        if cfg.start:
            from wormlab.loop._closed import read_pathway

            pw = read_pathway(cfg.start)
            given = {**pw["pathway"], **pw["crawl"]}
            x0 = {k: float(min(max(given.get(k, v), space[k][0]), space[k][1]))
                  for k, v in x0.items()}
        start = evaluate([x0], cfg, arena)[0]
        es = new_es(x0)
        state = {"history": [], "asked": [], "told": [], "start": {"values": x0, **start},
                 "best": {"values": x0, **start}}
    it = range(len(state["history"]), cfg.generations)
    if progress:
        from wormlab.runs import progress as _p
        it = _p(it, desc="taxis fit (generations)", total=cfg.generations,
                initial=len(state["history"]))
    for g in it:
        t0 = time.perf_counter()
        us = es.ask()
        pts = [decode(u, space) for u in us]
        res = evaluate(pts, cfg, arena)
        told = [-r["score_um"] for r in res]
        es.tell(us, told)
        i = int(np.argmax([r["score_um"] for r in res]))
        state["history"].append({"generation": g, "best_score_um": res[i]["score_um"],
                                 "median_score_um": float(np.median(
                                     [r["score_um"] for r in res])),
                                 "best": {"values": pts[i], **res[i]},
                                 "wall_s": time.perf_counter() - t0})
        state["asked"].append([np.asarray(u).tolist() for u in us])
        state["told"].append(told)
        if res[i]["score_um"] > state["best"]["score_um"]:
            state["best"] = {"values": pts[i], **res[i]}
        tmp = ck.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, ck)
    state["mean"] = decode(np.asarray(es.result.xfavorite), space)
    report = {"config": asdict(cfg), "space": {k: list(v) for k, v in space.items()},
              "start": state["start"], "best": state["best"], "history": state["history"],
              "mean": state["mean"], "sensory_neurons": neurons}
    pw, crawl = split_values(state["best"]["values"])
    pathway = {"modality": cfg.modality, "pathway": pw, "crawl": crawl,
               "score_um": state["best"]["score_um"], "start_score_um": state["start"]["score_um"],
               "fit": {"command": "wormlab loop fit-taxis", "config": asdict(cfg),
                       "generations_run": len(state["history"])},
               "note": "class-level pathway parameters fitted through the closed loop for "
                       "taxis (CMA-ES); c302 wiring, signs and relative weights kept"}
    for name, obj in (("fit.json", report), ("pathway.json", pathway)):
        tmp = out / f"{name}.tmp{os.getpid()}"
        tmp.write_text(json.dumps(obj, indent=1))
        os.replace(tmp, out / name)
    return report
