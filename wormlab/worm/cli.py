"""``wormlab worm ...``: the integrated worm (circuit -> muscles -> body, closed loop).

    wormlab worm run CONFIG [--quiet]        one whole-worm run as CONFIG (YAML) says: WCON,
                                             traces and metrics into its ``out`` folder
    wormlab worm fit CONFIG [--quiet]        CMA-ES fit of the crawl parameters to the crawl
                                             targets, starting from worm.params (resumable:
                                             re-running continues)
    wormlab worm sweep PARAMS --set NAME=V1,V2 [--set ...] [--bend-seeds 0,1,2]
        [--duration S] [--processes N] [--json OUT]
                                             every combination on top of PARAMS, forward and
                                             backward from each initial bend, ranked by the
                                             mean crawl loss, with window speeds
    wormlab worm diagnose [--drive-nA X]     why c302 C1 does not move the body: the muscle
        [--duration-ms T] [--json OUT]       drive chain with numbers (issue 17 item 1)
    wormlab worm export PARAMS OUT_DIR       the crawl circuit as c302-style NeuroML (+ a JSON
        [--check] [--json]                   sidecar of the loop parameters); --check runs it
                                             in NEURON against the torch circuit (item 6)

    wormlab worm body-data OUT.h5 [--params P]  body-surrogate samples of the family ``crawl``:
        [--sets N --spread S --duration S]   the circuit's own activations (scattered
        [--heldout-out FILE]                 parameter sets, forward and backward) replayed
                                             through ElegansBot; --heldout-out writes val/test
                                             ids split by run (for `body.cli train --heldout`)

    wormlab worm ship-params [PARAMS]          register a crawl parameter file (default: the
                                             package's) in data/models; verify reruns 4 s crawls
    wormlab worm ship-surrogate CKPT --store A.h5 B.h5 --train-command "..." --data-command "..."
                                             ship a surrogate fine-tuned on those stores as
                                             data/models/body_surrogate_crawl (crawl test set
                                             shipped beside it; `wormlab models verify`)

Exit codes: 0 ok, 2 bad input or a part not available yet.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wormlab worm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="one whole-worm run from a YAML config")
    r.add_argument("config")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    f = sub.add_parser("fit", help="fit the crawl parameters (CMA-ES, resumable)")
    f.add_argument("config")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    s = sub.add_parser("sweep", help="grid of crawl parameters, several initial bends each")
    s.add_argument("params", help="crawl parameter JSON the grid sits on ('shipped' = the "
                                  "package's)")
    s.add_argument("--set", action="append", required=True, metavar="NAME=V1,V2",
                   help="a parameter and its values (repeat for a grid)")
    s.add_argument("--bend-seeds", default="0,1,2")
    s.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    s.add_argument("--window", type=float, default=5.0, help="seconds per speed window")
    s.add_argument("--processes", type=int, default=1, help="forward/backward in parallel")
    s.add_argument("--json", default=None, metavar="OUT", help="also write the rows to OUT")
    b = sub.add_parser("body-data", help="body-surrogate samples from the circuit's crawls")
    b.add_argument("out", help="HDF5 store to write (shards beside it; a rerun resumes)")
    b.add_argument("--params", default="shipped", help="crawl parameter JSON the scatter sits "
                                                       "on ('shipped' = the package's)")
    b.add_argument("--sets", type=int, default=24, help="parameter sets per direction")
    b.add_argument("--spread", type=float, default=0.1, help="log-normal scatter s.d.")
    b.add_argument("--duration", type=float, default=10.0, help="seconds per closed-loop run")
    b.add_argument("--window", type=float, default=4.0, help="seconds per sample")
    b.add_argument("--stride", type=float, default=1.0, help="seconds between samples")
    b.add_argument("--skip", type=float, default=1.0, help="initial transient left out (s)")
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--heldout-out", default=None, metavar="FILE",
                   help="also write {val, test} ids, whole runs per split, 15%% each")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    ss = sub.add_parser("ship-surrogate", help="ship the crawl-tuned body surrogate")
    ss.add_argument("checkpoint")
    ss.add_argument("--store", nargs="+", required=True, help="the stores it was trained on")
    ss.add_argument("--train-command", required=True, help="the exact training command")
    ss.add_argument("--data-command", action="append", default=[],
                    help="a command that made a store (repeat)")
    ss.add_argument("--name", default="body_surrogate_crawl")
    sp = sub.add_parser("ship-params", help="register a crawl parameter file (data/models)")
    sp.add_argument("params", nargs="?", default="shipped",
                    help="crawl parameter JSON ('shipped' = the package's)")
    sp.add_argument("--name", default="crawl_params")
    d = sub.add_parser("diagnose", help="the muscle-drive chain of c302 C1 with numbers")
    d.add_argument("--drive-nA", type=float, default=0.003)
    d.add_argument("--duration-ms", type=float, default=300.0)
    d.add_argument("--json", default=None, metavar="OUT", help="also write the JSON to OUT")
    e = sub.add_parser("export", help="the crawl circuit as NeuroML (+ loop-parameter sidecar)")
    e.add_argument("params", help="crawl parameter JSON (wormlab worm fit)")
    e.add_argument("out_dir")
    e.add_argument("--name", default="crawl_c1", help="NeuroML network id / file stem")
    e.add_argument("--drive", choices=("forward", "backward", "none"), default="forward",
                   help="tonic drive written as inputs and used by --check")
    e.add_argument("--check", action="store_true",
                   help="run the export in NEURON and the torch circuit on the tonic drive "
                        "and compare V and muscle [Ca] (writes OUT_DIR/neuron_check/)")
    e.add_argument("--duration-ms", type=float, default=1000.0, help="--check: simulated ms")
    e.add_argument("--tol", type=float, default=1e-6, help="--check: NEURON CVODE tolerance")
    e.add_argument("--json", action="store_true", help="print the full result as JSON")
    return p


def _body_data(args, emit_json) -> int:
    from wormlab.worm._bodydata import CrawlDataConfig, crawl_body_store, crawl_heldout
    from wormlab.worm._config import read_crawl_params

    name = args.params
    if args.params == "shipped":
        from wormlab.paths import package_data

        args.params = str(package_data("worm", "data", "crawl_params.json"))
    cfg = CrawlDataConfig(n_sets=args.sets, spread=args.spread, duration_s=args.duration,
                          skip_s=args.skip, window_s=args.window, stride_s=args.stride,
                          batch=args.batch, seed=args.seed)
    res = crawl_body_store(args.out, read_crawl_params(args.params), cfg,
                           base_name=Path(name).name, progress=not args.quiet)
    if args.heldout_out:
        ids = crawl_heldout(args.out, seed=args.seed)
        emit_json(ids, args.heldout_out, echo=False)
        res["heldout"] = {k: len(v) for k, v in ids.items()}
    emit_json(res, None)
    return 0


def _sweep(args, emit_json) -> int:
    from wormlab.worm._config import read_crawl_params
    from wormlab.worm._fit import sweep_crawl

    if args.params == "shipped":
        from wormlab.paths import package_data

        args.params = str(package_data("worm", "data", "crawl_params.json"))
    params = read_crawl_params(args.params)
    grid = {}
    for item in args.set:
        name, sep, vals = item.partition("=")
        try:
            grid[name.strip()] = [float(v) for v in vals.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--set {item!r}: values must be numbers, NAME=V1,V2") from None
        if not sep or not grid[name.strip()]:
            raise ValueError(f"--set {item!r}: expected NAME=V1,V2")
    try:
        seeds = [int(x) for x in args.bend_seeds.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--bend-seeds {args.bend_seeds!r}: comma-separated integers") from None
    rows = sweep_crawl(params, grid, seeds, args.duration, args.window, args.processes)
    emit_json({"params": args.params, "grid": grid, "duration_s": args.duration,
               "window_s": args.window, "rows": rows}, args.json, default=float)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from wormlab.runs import configure_torch, emit_json

    configure_torch()
    try:
        if args.cmd == "run":
            from wormlab.worm._config import load_run_config, run_from_config

            cfg = load_run_config(args.config)
            summary = run_from_config(cfg, progress=not args.quiet)
            print(json.dumps(summary["metrics"], indent=1))
            print(f"[wormlab worm] wrote {cfg.out}/run.wcon, traces.npz, metrics.json")
            return 0
        if args.cmd == "fit":
            from wormlab.worm._config import load_run_config, write_crawl_params
            from wormlab.worm._fit import CrawlFitConfig, fit_crawl

            cfg = load_run_config(args.config)
            from wormlab.worm._config import read_crawl_params

            names = tuple(cfg.parameter_bounds) or CrawlFitConfig().names
            start = read_crawl_params(cfg.params) if cfg.params else {}
            fc = CrawlFitConfig(names=names, start=start, sigma0=cfg.learning_rate,
                                duration_s=cfg.duration_s,
                                generations=cfg.max_epochs, seed=cfg.seed,
                                bend_seeds=cfg.bend_seeds, processes=cfg.processes,
                                bounds={k: list(v) for k, v in cfg.parameter_bounds.items()},
                                metrics=cfg.target_metrics, out=str(Path(cfg.out) / "fit"))
            state = fit_crawl(fc, show_progress=not args.quiet)
            best = state["best"]
            path = write_crawl_params(Path(cfg.out) / "crawl_params.json", best["params"],
                                      loss=best["loss"], config=cfg.source,
                                      generations=len(state["fitness"]))
            print(json.dumps({"loss": best["loss"], "params": best["params"]}, indent=1))
            print(f"[wormlab worm] best parameters -> {path}")
            return 0
        if args.cmd == "sweep":
            return _sweep(args, emit_json)
        if args.cmd == "ship-surrogate":
            from wormlab.worm._ship import ship_crawl_surrogate

            path = ship_crawl_surrogate(args.checkpoint, args.store, command=args.train_command,
                                        data_commands={f"store_{i}": c for i, c in
                                                       enumerate(args.data_command)},
                                        name=args.name)
            m = json.loads(Path(path).read_text())
            emit_json({"model": m["name"], "bytes": m["bytes"], "metrics": m["metrics"]}, None)
            return 0
        if args.cmd == "ship-params":
            import shlex

            from wormlab.worm._ship import ship_crawl_params

            cmd = "wormlab worm ship-params " + " ".join(
                shlex.quote(a) for a in [args.params, "--name", args.name])
            path = ship_crawl_params(None if args.params == "shipped" else args.params,
                                     command=cmd, name=args.name)
            m = json.loads(Path(path).read_text())
            emit_json({"model": m["name"], "metrics": m["metrics"]}, None)
            return 0
        if args.cmd == "body-data":
            return _body_data(args, emit_json)
        if args.cmd == "diagnose":
            from wormlab.worm._diagnose import diagnose_muscle_drive

            out = diagnose_muscle_drive(drive_nA=args.drive_nA, duration_ms=args.duration_ms)
            emit_json(out, args.json)
            return 0
        if args.cmd == "export":
            return _export(args)
    except NotImplementedError as exc:
        print(f"wormlab worm: not available: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"wormlab worm: error: {exc}", file=sys.stderr)
        return 2
    return 2


def _export(args) -> int:
    from wormlab.circuit.reference import NeuronStackMissing
    from wormlab.fit._neuroml import NeuroMLExportError
    from wormlab.runs import emit_json
    from wormlab.worm._export import export_crawl, neuron_check

    drive = None if args.drive == "none" else args.drive
    if args.check and drive is None:
        raise ValueError("--check needs a drive (--drive forward or backward)")
    try:
        path = export_crawl(args.params, args.out_dir, name=args.name, drive=drive)
    except NeuroMLExportError as exc:
        print(f"wormlab worm: cannot export: {exc}", file=sys.stderr)
        return 2
    side = path.with_name(f"{args.name}.loop.json")
    out = {"nml": str(path), "sidecar": str(side)}
    if not args.json:
        print(f"[wormlab worm] wrote {path} (+ cell_C.xml) and {side}")
    if args.check:
        try:
            chk = neuron_check(args.params, args.out_dir, duration_ms=args.duration_ms,
                               direction=drive, tol=args.tol)
        except NeuronStackMissing as exc:
            print(f"wormlab worm: NEURON check skipped: {exc}", file=sys.stderr)
            out["neuron_check"] = {"skipped": str(exc)}
        else:
            report = Path(args.out_dir) / "neuron_check" / "check.json"
            emit_json(chk, report, echo=False)
            out["neuron_check"] = chk
            if not args.json:
                _print_check(chk, report)
    if args.json:
        emit_json(out)
    return 0


def _print_check(chk: dict, report: Path) -> None:
    nrn = chk["neuron"]
    print(f"NEURON CVODE tol {nrn['tol']}: {nrn['neuron_sim_s']} s simulation; "
          f"{chk['duration_ms']:.0f} ms, drive {chk['drive_nA'] * 1000:.3g} pA ({chk['direction']})")
    for run, r in chk["torch"].items():
        for g in ("motor_neurons", "muscles", "adapt_a_nS", "adapt_b_nS"):
            if g not in r:
                continue
            s = r[g]
            line = (f"  torch {run} {g} ({s['max_dv_mV']['n']}): max |dV| first "
                    f"{r['window_ms']:.0f} ms median {s['max_dv_mV_window']['median']:.3g} / "
                    f"worst {s['max_dv_mV_window']['worst']:.3g} mV "
                    f"({s['max_dv_mV_window']['worst_cell']}); after it worst "
                    f"{s['max_dv_mV_after'].get('worst', 0):.3g} mV; corr worst "
                    f"{s['corr'].get('worst', 0):.4f}")
            if g == "muscles":
                line += (f"; [Ca] rel. error median {s['ca_rel_err']['median']:.3g} / worst "
                         f"{s['ca_rel_err']['worst']:.3g} (after the first "
                         f"{r['window_ms']:.0f} ms: worst "
                         f"{s['ca_rel_err_after'].get('worst', 0):.3g})")
            print(line)
    print(f"covers: {chk['covers']}\nnot covered: {chk['does_not_cover']}\nfull report: {report}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
