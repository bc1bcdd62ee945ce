"""``wormlab sensory``: check | train | references | atlas.

* ``wormlab sensory check [--json] [--modality M ...] [--out FILE]``: re-simulates every
  shipped transducer through the circuit and prints the per-modality held-out metrics
  (measured now, not read from the metadata).
* ``wormlab sensory train MODALITY [--seed S] [--out DIR] [--epochs N]``: (re)trains one
  modality (resumes from its checkpoint in data/cache/sensory/train) and writes
  ``transducer_<modality>.safetensors`` + ``.json`` to DIR (default: the shipped folder).
* ``wormlab sensory references [--write]``: list (or regenerate) the reference curves.
* ``wormlab sensory atlas [--json] [--out FILE]``: propagation from each sensory neuron in c302
  C1 vs the Randi 2023 atlas (needs ``wormlab[atlas]`` or its extracted cache).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys


def _summary(ev: dict) -> dict:
    """The metrics of :func:`wormlab.sensory.evaluate` without the traces."""
    return {k: v for k, v in ev.items() if k != "sim"}


def _cmd_check(args) -> int:
    from wormlab.runs import configure_torch, emit_json
    from wormlab.sensory import MODALITIES, evaluate, load_references, load_transducer

    configure_torch()
    refs = load_references()
    out = {}
    for m in args.modality or MODALITIES:
        try:
            t = load_transducer(m)
        except FileNotFoundError as exc:
            out[m] = {"error": str(exc)}
            continue
        out[m] = _summary(evaluate(t, refs[m], compile=not args.no_compile))
    if args.json or args.out:
        emit_json(out, args.out, echo=args.json)
    if not args.json:
        for m, ev in out.items():
            if "error" in ev:
                print(f"{m:12s} {ev['error']}")
                continue
            print(f"{m:12s} held-out {', '.join(r for r in ev['protocols'] if ev['protocols'][r]['split'] == 'heldout')}: "
                  f"max |peak error| {ev['heldout_max_abs_peak_error_pct']:.1f} %, "
                  f"max |time-to-peak error| {ev['heldout_max_abs_time_to_peak_error_s']:.2f} s,"
                  f" NRMSE {ev['heldout_mean_nrmse']:.3f}, goal (+-20 %) "
                  f"{'met' if ev['goal_met'] else 'NOT met'}")
    return 0


def _cmd_train(args) -> int:
    from wormlab.runs import configure_torch
    from wormlab.sensory import (
        TrainConfig,
        evaluate,
        load_references,
        save_transducer,
        sensory_cells,
        train,
    )
    from wormlab.sensory._transducer import CIRCUIT_DT_MS, SOLVER

    configure_torch()
    refs = load_references()
    if args.modality not in refs:
        print(f"wormlab sensory: unknown modality {args.modality!r}; choose from "
              f"{sorted(refs)}", file=sys.stderr)
        return 2
    kw = {"modality": args.modality, "seed": args.seed}
    if args.epochs is not None:
        kw["epochs"] = args.epochs
    if args.lr is not None:
        kw["lr"] = args.lr
    cfg = TrainConfig(**kw)
    ref = refs[args.modality]
    model, hist = train(cfg, ref)
    ev = _summary(evaluate(model, ref, compile=cfg.compile))
    meta = {"modality": args.modality, "neurons": ref.neurons, "units": ref.units,
            "normalisation": model.normalisation, "frame_dt_ms": model.frame_dt_ms,
            "tag": "ml", "reference_kind": ref.kind,
            "circuit": {"network": "c302 C1 Full sub-circuit: the modality's neurons and their "
                                   "direct chemical/gap partners",
                        "cells": sensory_cells(ref.neurons), "solver": SOLVER,
                        "dt_ms": CIRCUIT_DT_MS, "readout": "V (mV), affine to dF/F"},
            "split": {"train": ref.train, "heldout": ref.heldout},
            "config": dataclasses.asdict(cfg), "seed": cfg.seed, "history": hist,
            "metrics": ev,
            "command": f"wormlab sensory train {args.modality} --seed {args.seed}"
                       + (f" --epochs {args.epochs}" if args.epochs is not None else "")
                       + (f" --lr {args.lr}" if args.lr is not None else "")}
    path = save_transducer(model, meta, args.out)
    print(f"{args.modality}: held-out max |peak error| "
          f"{ev['heldout_max_abs_peak_error_pct']:.1f} %, NRMSE {ev['heldout_mean_nrmse']:.3f}"
          f" -> {path}")
    return 0


def _cmd_references(args) -> int:
    from wormlab.sensory import load_references, write_references

    if args.write:
        print(write_references())
    for m, r in load_references().items():
        print(f"{m:12s} {', '.join(r.neurons):30s} {r.units:6s} train {r.train} held-out "
              f"{r.heldout} [{r.kind}]")
    return 0


def _cmd_atlas(args) -> int:
    from wormlab.runs import configure_torch, emit_json
    from wormlab.sensory._atlas import atlas_propagation

    configure_torch()
    out = atlas_propagation()
    if args.json or args.out:
        emit_json(out, args.out, echo=args.json)
    if not args.json:
        for n, x in out["per_neuron"].items():
            print(f"{n:6s} {x['modality']:12s} r = {x['r']:.3f} over {x['n_pairs']} atlas pairs")
        print(f"all    r = {out['all']['r']:.3f} over {out['all']['n_pairs']} pairs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wormlab sensory", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="re-measure the shipped transducers' held-out metrics")
    c.add_argument("--json", action="store_true")
    c.add_argument("--out", default=None, help="also write the JSON here (atomically)")
    c.add_argument("--modality", action="append", default=None)
    c.add_argument("--no-compile", action="store_true",
                   help="eager circuit steps (slower; no torch.compile)")
    c.set_defaults(func=_cmd_check)
    t = sub.add_parser("train", help="(re)train one modality's transducer")
    t.add_argument("modality")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="output folder (default: wormlab/sensory/data)")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--lr", type=float, default=None, help="stage B learning rate")
    t.set_defaults(func=_cmd_train)
    r = sub.add_parser("references", help="list (or --write) the reference curves")
    r.add_argument("--write", action="store_true")
    r.set_defaults(func=_cmd_references)
    a = sub.add_parser("atlas", help="propagation from the sensory neurons vs Randi 2023")
    a.add_argument("--json", action="store_true")
    a.add_argument("--out", default=None)
    a.set_defaults(func=_cmd_atlas)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
