"""``wormlab circuit ...``: simulate the C1 network or produce a NEURON reference from the shell.

    wormlab circuit simulate --duration-ms 100 --record AVAL AVBL --out traces.csv
    wormlab circuit reference --kind Full --duration-ms 100 [--method fixed]
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    from wormlab.circuit._simulate import DEFAULT_DT_MS

    p = argparse.ArgumentParser(prog="wormlab circuit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("simulate", help="run the torch model, write voltages (CSV)")
    s.add_argument("--source", default="c302", choices=["c302", "connectome"])
    s.add_argument("--dataset", default="cook2019")
    s.add_argument("--nml", default="", help="a c302 *.net.nml (default: cached C1 Full)")
    s.add_argument("--duration-ms", type=float, default=100.0)
    s.add_argument("--dt-ms", type=float, default=DEFAULT_DT_MS,
                   help=f"RK4 step, ms (default {DEFAULT_DT_MS}: circuit.DEFAULT_DT_MS)")
    s.add_argument("--solver", default="rk4_fused")
    s.add_argument("--stimulus", default="c302", choices=["c302", "none"])
    s.add_argument("--record", nargs="*", default=None)
    s.add_argument("--out", default="", help="CSV path (atomic); default prints a summary")
    r = sub.add_parser("reference", help="c302 + NEURON reference traces (cached)")
    r.add_argument("--kind", default="Full", choices=["Full", "IClamp"])
    r.add_argument("--duration-ms", type=float, default=100.0)
    r.add_argument("--dt-ms", type=float, default=0.05)
    r.add_argument("--method", default="cvode", choices=["cvode", "fixed"])
    r.add_argument("--refresh", action="store_true")
    return p


def _err(msg: str) -> int:
    print(f"wormlab circuit: error: {msg}", file=sys.stderr)
    return 2


def _check_times(args) -> str | None:
    """A one-line problem with --duration-ms / --dt-ms, or None (checked before any work)."""
    for flag, v in (("--duration-ms", args.duration_ms), ("--dt-ms", args.dt_ms)):
        if not math.isfinite(v) or v <= 0:
            return f"{flag} must be a finite number > 0, got {v}"
    n = round(args.duration_ms / args.dt_ms)
    if n < 1 or abs(n * args.dt_ms - args.duration_ms) > 1e-6 * max(1.0, args.duration_ms):
        return f"--duration-ms {args.duration_ms} is not a multiple of --dt-ms {args.dt_ms}"
    return None


def _check_out(out: str) -> str | None:
    if not out:
        return None
    path = Path(out)
    if path.is_dir():
        return f"--out {out} is a directory; give a CSV file path"
    return None


def _check_record(net, names) -> str | None:
    """Unknown --record names, each with the closest cell names."""
    if names is None:
        return None
    bad = []
    for n in dict.fromkeys(names):
        if n not in net.index:
            close = difflib.get_close_matches(n, net.names, n=3)
            bad.append(f"{n!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    if bad:
        return (f"unknown cell name{'s' if len(bad) > 1 else ''} in --record: {'; '.join(bad)}"
                f" [{net.n_cells} cells, e.g. {', '.join(net.names[:3])}]")
    return None


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    problem = _check_times(args)
    if problem:
        return _err(problem)
    if args.cmd == "simulate":
        import torch

        from wormlab import circuit
        from wormlab.circuit._simulate import FIXED_SOLVERS, ODEINT_SOLVERS
        from wormlab.runs import atomic_path

        solvers = FIXED_SOLVERS + ODEINT_SOLVERS
        if args.solver not in solvers:
            close = difflib.get_close_matches(args.solver, solvers, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return _err(f"unknown --solver {args.solver!r}{hint}; choose from "
                        f"{', '.join(solvers)}")
        problem = _check_out(args.out) or (
            "--record needs at least one cell name (omit it to record every cell)"
            if args.record == [] else None)
        if problem:
            return _err(problem)
        if args.nml and not Path(args.nml).is_file():
            return _err(f"--nml {args.nml}: no such file")
        try:
            net = circuit.build_network(source=args.source, dataset=args.dataset,
                                        nml_path=args.nml)
        except (ValueError, KeyError, OSError) as exc:
            return _err(f"cannot build the network ({exc})")
        problem = _check_record(net, args.record)
        if problem:
            return _err(problem)
        stim = None if args.stimulus == "none" else args.stimulus
        with torch.no_grad():
            res = circuit.simulate(net, stim, args.duration_ms, args.dt_ms, record=args.record,
                                   solver=args.solver, show_progress=True)
        if args.out:
            with atomic_path(args.out) as tmp:
                res.to_frame().to_csv(tmp)
            print(f"wrote {res.v_mV.shape[0]} x {len(res.names)} voltages (mV) to {args.out}")
        else:
            v = res.v_mV[:, 0]
            print(json.dumps({"cells": len(res.names), "samples": int(v.shape[0]),
                              "wall_s": res.info["wall_s"], "v_min_mV": float(v.min()),
                              "v_max_mV": float(v.max())}, indent=1))
        return 0
    from wormlab.circuit import reference

    ref = reference.reference(args.kind, args.duration_ms, args.dt_ms, method=args.method,
                              refresh=args.refresh)
    print(json.dumps({"cells": len(ref.names), "samples": len(ref.t_ms),
                      "neuron_wall_s": ref.wall_s, "nml": str(ref.nml_path)}, indent=1))
    return 0
