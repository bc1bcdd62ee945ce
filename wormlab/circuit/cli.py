"""``wormlab circuit ...``: simulate the C1 network or produce a NEURON reference from the shell.

    wormlab circuit simulate --duration-ms 100 --record AVAL AVBL --out traces.csv
    wormlab circuit reference --kind Full --duration-ms 100 [--method fixed]
"""

from __future__ import annotations

import argparse
import json


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wormlab circuit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("simulate", help="run the torch model, write voltages (CSV)")
    s.add_argument("--source", default="c302", choices=["c302", "connectome"])
    s.add_argument("--dataset", default="cook2019")
    s.add_argument("--nml", default="", help="a c302 *.net.nml (default: cached C1 Full)")
    s.add_argument("--duration-ms", type=float, default=100.0)
    s.add_argument("--dt-ms", type=float, default=0.1)
    s.add_argument("--solver", default="rk4_fused")
    s.add_argument("--stimulus", default="c302", help="'c302' or 'none'")
    s.add_argument("--record", nargs="*", default=None)
    s.add_argument("--out", default="", help="CSV path (atomic); default prints a summary")
    r = sub.add_parser("reference", help="c302 + NEURON reference traces (cached)")
    r.add_argument("--kind", default="Full", choices=["Full", "IClamp"])
    r.add_argument("--duration-ms", type=float, default=100.0)
    r.add_argument("--dt-ms", type=float, default=0.05)
    r.add_argument("--method", default="cvode", choices=["cvode", "fixed"])
    r.add_argument("--refresh", action="store_true")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "simulate":
        import torch

        from wormlab import circuit
        from wormlab.runs import atomic_path

        net = circuit.build_network(source=args.source, dataset=args.dataset,
                                    nml_path=args.nml)
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
