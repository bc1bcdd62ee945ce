"""``wormlab fit ...``: fit the circuit, score a parameter file, export it to NeuroML.

    wormlab fit run CONFIG                     fit (resumable: re-running continues the run)
    wormlab fit score PARAMS                   validation scorecard of a parameter file
        [--smoke] [--intestine] [--json OUT]
    wormlab fit polarity CONFIG                synaptic scales and signs with the transmitter
                                               penalty (resumable)
    wormlab fit export PARAMS --neuroml DIR    c302-style NeuroML of a parameter file
        [--name NAME] [--run-neuron MS]        (and re-run it in NEURON for MS ms)

PARAMS is a parameter file written by ``wormlab.fit.save_params`` (JSON, versioned).
Exit codes: 0 ok, 2 bad input or a part not available yet.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wormlab fit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="fit the circuit as CONFIG says (resumable)")
    r.add_argument("config")
    pp = sub.add_parser("polarity", help="fit synaptic scales and signs to a recording's "
                        "correlations with the transmitter penalty (resumable)")
    pp.add_argument("config")
    s = sub.add_parser("score", help="validation scorecard of a parameter file")
    s.add_argument("params")
    s.add_argument("--json", default=None, metavar="OUT",
                   help="also write the scorecard rows as JSON to OUT (atomic)")
    s.add_argument("--smoke", action="store_true", help="the small, fast scorecard")
    s.add_argument("--intestine", action="store_true",
                   help="also score the intestinal oscillator's period (its own default "
                        "20-cell network: 300 s at dt 100 ms, first 100 s dropped)")
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


def _cmd_polarity(args) -> int:
    if not Path(args.config).exists():
        return _err(f"config file not found: {args.config}")
    from wormlab.fit._polarity import run_polarity_fit

    try:
        res = run_polarity_fit(args.config)
    except (ValueError, KeyError, FileNotFoundError) as exc:  # PolarityError, ParamsFileError
        return _err(str(exc).strip("'\""))
    b = res["best"]
    f, d = res["flipped_vs_c302"], res["disagree_with_transmitter"]
    print(f"polarity {res['name']}: best loss {b['loss']:.6g} at epoch {b['epoch']} "
          f"(start {res['history'][0]['loss']:.6g}); {f['count']} of {f['of']} pairs flipped vs "
          f"c302, {d['count']} of {d['of']} disagree with their transmitter -> "
          f"{res['out_dir']}/polarity.csv, polarity_result.json")
    for line in f["pairs"]:
        print("  flipped:", line)
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
    kw = {"smoke": bool(getattr(args, "smoke", False))}
    if getattr(args, "intestine", False):
        kw["intestine"] = _intestine_period
    card = scorecard(net, **kw)
    import pandas as pd

    with pd.option_context("display.max_columns", None, "display.width", 200,
                           "display.max_colwidth", 40):
        print(card)
    if getattr(args, "json", None):
        from wormlab.runs import emit_json

        rows = json.loads(card.to_json(orient="records"))
        emit_json({"params": str(args.params), "smoke": kw["smoke"], "rows": rows}, args.json,
                  echo=False)
        print(f"wrote {args.json}")
    return 0


def _intestine_period(net) -> float:
    """Period (s) of the intestinal oscillator (``net`` is not used: the oscillator is a
    separate 20-cell network whose parameters no neuronal fit changes)."""
    import torch

    from wormlab.circuit._intestine import measured_period_s, simulate_intestine

    with torch.no_grad():
        tr = simulate_intestine(300, dt_ms=100)
    return float(measured_period_s(tr, 100, skip_s=100))


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
    return {"run": _cmd_run, "score": _cmd_score, "export": _cmd_export,
            "polarity": _cmd_polarity}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
