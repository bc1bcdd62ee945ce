"""``wormlab worm ...``: the integrated worm (circuit -> muscles -> body, closed loop).

    wormlab worm run CONFIG [--quiet]        one whole-worm run as CONFIG (YAML) says: WCON,
                                             traces and metrics into its ``out`` folder
    wormlab worm fit CONFIG [--quiet]        CMA-ES fit of the crawl parameters to the crawl
                                             targets, starting from worm.params (resumable:
                                             re-running continues)
    wormlab worm diagnose [--drive-nA X]     why c302 C1 does not move the body: the muscle
        [--duration-ms T] [--json OUT]       drive chain with numbers (issue 17 item 1)

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
    d = sub.add_parser("diagnose", help="the muscle-drive chain of c302 C1 with numbers")
    d.add_argument("--drive-nA", type=float, default=0.003)
    d.add_argument("--duration-ms", type=float, default=300.0)
    d.add_argument("--json", default=None, metavar="OUT", help="also write the JSON to OUT")
    return p


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
        if args.cmd == "diagnose":
            from wormlab.worm._diagnose import diagnose_muscle_drive

            out = diagnose_muscle_drive(drive_nA=args.drive_nA, duration_ms=args.duration_ms)
            emit_json(out, args.json)
            return 0
    except NotImplementedError as exc:
        print(f"wormlab worm: not available: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"wormlab worm: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
