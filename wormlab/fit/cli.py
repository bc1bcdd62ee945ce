"""``wormlab fit ...``: fit the circuit, score a parameter file, export it to NeuroML.

    wormlab fit run CONFIG                     fit (resumable: re-running continues the run)
    wormlab fit score PARAMS                   validation scorecard of a parameter file
    wormlab fit export PARAMS --neuroml DIR    c302-style NeuroML of a parameter file
        [--name NAME] [--run-neuron MS]        (and re-run it in NEURON for MS ms)

PARAMS is a parameter file written by ``wormlab.fit.save_params`` (JSON, versioned).
Exit codes: 0 ok, 2 bad input or a part not available yet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wormlab fit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="fit the circuit as CONFIG says (resumable)")
    r.add_argument("config")
    s = sub.add_parser("score", help="validation scorecard of a parameter file")
    s.add_argument("params")
    e = sub.add_parser("export", help="write a parameter file as c302-style NeuroML")
    e.add_argument("params")
    e.add_argument("--neuroml", required=True, metavar="DIR", help="output directory")
    e.add_argument("--name", default=None, help="NeuroML network id (default <source>_fit)")
    e.add_argument("--run-neuron", type=float, default=0.0, metavar="MS",
                   help="also run the export in NEURON (CVODE) for MS ms and report V ranges")
    return p


def _err(msg: str) -> int:
    print(f"wormlab fit: error: {msg}", file=sys.stderr)
    return 2


def _lazy(name: str):
    """``wormlab.fit.<name>`` or None while the part that provides it is not merged."""
    import wormlab.fit as fit

    return getattr(fit, name, None)


def _cmd_run(args) -> int:
    if not Path(args.config).exists():
        return _err(f"config file not found: {args.config}")
    run_fit = _lazy("run_fit")
    if run_fit is None:
        return _err("'wormlab fit run' is not available yet (wormlab.fit.run_fit is missing)")
    try:
        res, fitted = run_fit(args.config)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        return _err(str(exc).strip("'\""))
    print(f"fit {res.run_id}: loss {res.loss:.6g} after {res.evals} evaluations in "
          f"{res.wall_s:.1f} s; fitted {', '.join(res.params)} -> parameter file in the run "
          "folder (params.json, result.json)")
    return 0


def _load(path: str):
    from wormlab.fit._registry import load_params

    return load_params(path)


def _cmd_score(args) -> int:
    if not Path(args.params).exists():
        return _err(f"parameter file not found: {args.params}")
    scorecard = _lazy("scorecard")
    if scorecard is None:
        return _err("'wormlab fit score' is not available yet (wormlab.fit.scorecard is "
                    "missing)")
    try:
        net = _load(args.params)
    except ValueError as exc:
        return _err(str(exc))
    print(scorecard(net))
    return 0


def _cmd_export(args) -> int:
    from wormlab.fit._neuroml import NeuroMLExportError, export_neuroml, run_neuroml

    if not Path(args.params).exists():
        return _err(f"parameter file not found: {args.params}")
    out = Path(args.neuroml)
    if out.exists() and not out.is_dir():
        return _err(f"--neuroml {out} exists and is not a directory")
    try:
        net = _load(args.params)
        path = export_neuroml(net, out, name=args.name)
    except (ValueError, FileNotFoundError) as exc:  # ParamsFileError, NeuroMLExportError
        kind = "cannot export" if isinstance(exc, NeuroMLExportError) else "bad parameter file"
        return _err(f"{kind}: {exc}")
    print(f"wrote {path} ({net.n_cells} cells, {len(net.params['w_syn'])} chemical and "
          f"{len(net.params['w_gap'])} electrical connections)")
    if args.run_neuron > 0:
        ref = run_neuroml(path, args.run_neuron)
        rng = ref.v_mV.max(0) - ref.v_mV.min(0)
        print(f"NEURON CVODE {args.run_neuron} ms: {len(ref.names)} cells, V range "
              f"{rng.min():.3g}..{rng.max():.3g} mV, NEURON wall {ref.wall_s:.3g} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return {"run": _cmd_run, "score": _cmd_score, "export": _cmd_export}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
