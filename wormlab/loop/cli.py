"""``wormlab loop ...``: the sensory closed loop (issue 18).

    wormlab loop run ARENA [--modality nacl] [--trials 4] [--duration 10] [--ablate ASEL,ASER]
                     [--params FILE] [--pathway FILE] [--path-syn-scale 1] [--seed 0] --out DIR
        B trials from random starts near the centre; writes DIR/run.wcon (tracks, mm, arena
        frame), DIR/trials.npz (time-first: head/COM um, stimulus in the field's unit,
        transducer current nA, sensory V mV) and DIR/summary.json.
    wormlab loop taxis [--arena FILE] [--modality nacl] [--trials 50] [--duration 20]
                       [--chunk 10] [--conditions gradient,no_gradient,ablate:ASEL+ASER]
                       [--path-syn-scale 1] [--out DIR] [--json]
        The taxis experiment (Dask over chunks of trials, resumable): chemotaxis index,
        change of the sensed value, fraction ending closer, bearing, per condition and the
        gradient against each control; writes DIR/taxis.json. ``--pathway FILE``: the
        sensory pathway's parameters (e.g. the taxis fit's best point) instead of c302's.
    wormlab loop fit-taxis [--arena FILE] [--modality nacl] [--starts 3] [--duration 12]
                           [--generations 15] [--popsize 8] [--from PATHWAY] [--seed 1000]
                           [--out DIR]
        CMA-ES of the sensory pathway's class-level parameters (synaptic half-activation
        and slope, stage and per-sensory-neuron scales, head stretch gain) through the
        closed loop, scored by how much closer to the peak the worms end with the gradient
        than without it (resumable); writes DIR/fit.json and DIR/pathway.json (the best
        point, for ``taxis --pathway``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="wormlab loop", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="a batch of closed-loop trials in an arena")
    r.add_argument("arena", help="arena YAML file (docs/sensory.md)")
    r.add_argument("--modality", default="nacl")
    r.add_argument("--trials", type=int, default=4)
    r.add_argument("--duration", type=float, default=10.0, help="seconds per trial")
    r.add_argument("--start-radius", type=float, default=1000.0, help="um around the centre")
    r.add_argument("--ablate", default="", help="comma-separated cells to silence")
    r.add_argument("--params", default="", help="crawl parameter file (default: shipped)")
    r.add_argument("--path-syn-scale", type=float, default=1.0,
                   help="scale of the sensory pathway's synapses (c302 = 1)")
    r.add_argument("--pathway", default="", help="pathway file (default: c302's pathway)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True)
    t = sub.add_parser("taxis", help="taxis indices over many trials against controls")
    t.add_argument("--arena", default="wormlab/loop/arenas/nacl_local.yml")
    t.add_argument("--modality", default="nacl")
    t.add_argument("--trials", type=int, default=50)
    t.add_argument("--duration", type=float, default=20.0)
    t.add_argument("--chunk", type=int, default=10)
    t.add_argument("--conditions", default="gradient,no_gradient,ablate:ASEL+ASER")
    t.add_argument("--zone-radius", type=float, default=2500.0, help="um")
    t.add_argument("--path-syn-scale", type=float, default=1.0,
                   help="scale of the sensory pathway's synapses (c302 = 1)")
    t.add_argument("--params", default="")
    t.add_argument("--pathway", default="", help="pathway file (default: c302's pathway)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="data/cache/loop/taxis")
    t.add_argument("--json", action="store_true")
    f = sub.add_parser("fit-taxis", help="evolve the sensory pathway's parameters for taxis")
    f.add_argument("--arena", default="wormlab/loop/arenas/nacl_spot.yml")
    f.add_argument("--modality", default="nacl")
    f.add_argument("--starts", type=int, default=3, help="trials per candidate")
    f.add_argument("--duration", type=float, default=12.0, help="seconds per trial")
    f.add_argument("--from", dest="start", default="",
                   help="pathway file to start from (default: c302's values)")
    f.add_argument("--generations", type=int, default=15)
    f.add_argument("--popsize", type=int, default=8)
    f.add_argument("--seed", type=int, default=1000)
    f.add_argument("--out", default="data/cache/loop/fit_taxis")
    return ap


def _positive(name, v):
    if not v > 0:
        raise ValueError(f"--{name} must be > 0, got {v}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from wormlab.loop._arena import ArenaError, load_arena
    from wormlab.runs import configure_torch

    configure_torch()
    try:
        if args.cmd == "run":
            return _run(args, load_arena)
        if args.cmd == "fit-taxis":
            return _fit(args, load_arena)
        from wormlab.loop._experiment import TaxisConfig, run_taxis

        for n in ("trials", "duration", "chunk", "zone_radius"):
            _positive(n.replace("_", "-"), getattr(args, n))
        load_arena(args.arena)  # fail early on a bad file
        cfg = TaxisConfig(arena=args.arena, modality=args.modality, n_trials=args.trials,
                          duration_s=args.duration, chunk=args.chunk,
                          conditions=tuple(c for c in args.conditions.split(",") if c),
                          zone_radius_um=args.zone_radius, params=args.params,
                          path_syn_scale=args.path_syn_scale, pathway=args.pathway,
                          seed=args.seed, out=args.out)
        rep = run_taxis(cfg)
        if args.json:
            print(json.dumps(rep, indent=1, default=float))
        else:
            for c, m in rep["conditions"].items():
                ci = m["chemotaxis_index"]
                vc = m["value_change"]
                print(f"{c:>24}: CI {ci['ci']:+.2f} [{ci['ci_low']:+.2f}, {ci['ci_high']:+.2f}]"
                      f" (A={ci['A']}, C={ci['C']}, N={ci['N']}); change "
                      f"{vc['mean']:+.2f} {vc['unit']} [{vc['low']:+.2f}, {vc['high']:+.2f}]")
            print(f"[wormlab loop] wrote {Path(args.out) / 'taxis.json'}")
        return 0
    except (ArenaError, ValueError, KeyError, FileNotFoundError, NotImplementedError) as exc:
        print(f"wormlab loop: error: {exc}", file=sys.stderr)
        return 2


def _fit(args, load_arena) -> int:
    from wormlab.loop._fit import TaxisFitConfig, fit_taxis

    for n in ("starts", "duration", "generations"):
        _positive(n, getattr(args, n))
    if args.popsize < 2:
        raise ValueError(f"--popsize must be >= 2, got {args.popsize}")
    load_arena(args.arena)
    rep = fit_taxis(TaxisFitConfig(arena=args.arena, modality=args.modality,
                                   n_starts=args.starts, duration_s=args.duration,
                                   generations=args.generations, popsize=args.popsize,
                                   start=args.start, seed=args.seed, out=args.out))
    b, s = rep["best"], rep["start"]
    print(json.dumps({"start_score_um": s["score_um"], "best_score_um": b["score_um"],
                      "best": b["values"], "best_speed_um_s": b["speed_um_s"]}, indent=1))
    print(f"[wormlab loop] wrote {Path(args.out) / 'fit.json'} and pathway.json")
    return 0


def _run(args, load_arena) -> int:

    from wormlab.body._wcon import write_wcon
    from wormlab.loop._closed import ClosedLoopConfig, run_closed_loop
    from wormlab.loop._experiment import TaxisConfig, pathway_and_params, trial_starts
    from wormlab.runs import atomic_dir

    for n in ("trials", "duration", "start_radius"):
        _positive(n.replace("_", "-"), getattr(args, n))
    arena = load_arena(args.arena)
    B = args.trials
    starts, heads = trial_starts(TaxisConfig(n_trials=B, start_radius_um=args.start_radius,
                                             seed=args.seed))
    params, pathway = pathway_and_params(args.pathway, args.params, args.modality)
    cfg = ClosedLoopConfig(modality=args.modality, duration_s=args.duration,
                           ablate=tuple(c for c in args.ablate.split(",") if c), seed=args.seed,
                           path_syn_scale=args.path_syn_scale)
    res = run_closed_loop(arena, starts, heads, params=params, config=cfg, progress=True,
                          pathway=pathway)
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        write_wcon(tmp / "run.wcon", res.trajectory(),
                   ids=[f"wormlab-loop-{args.modality}-{b}" for b in range(B)],
                   metadata={"wormlab": {"command": "wormlab loop run", "arena": arena.name,
                                         "modality": args.modality,
                                         "ablate": list(cfg.ablate),
                                         "pathway": args.pathway or "c302",
                                         "note": "simulated worm (closed loop), not a recording"}})
        np.savez(tmp / "trials.npz", **res.arrays())
        summary = {"arena": arena.name, "modality": args.modality, "units": res.units,
                   "trials": B, "duration_s": args.duration, "ablate": list(cfg.ablate),
                   "sensory_neurons": res.sensory_neurons, "wall_s": res.wall_s,
                   "stimulus_start": res.stimulus[0].tolist(),
                   "stimulus_end": res.stimulus[-1].tolist(),
                   "net_displacement_um": np.linalg.norm(res.com_um[-1] - res.com_um[0],
                                                         axis=-1).tolist(),
                   "diverged": res.diverged.tolist()}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"[wormlab loop] wrote {out}/run.wcon, trials.npz, summary.json")
    return 0
