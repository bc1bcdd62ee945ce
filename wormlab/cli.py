"""The ``wormlab`` command line: run notebooks, list them, run benchmarks, component tools."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

# Benchmarks: name -> module exposing ``run(quick: bool = False) -> dict``. Each returns the
# measured figures AND the anchor (NEURON, ElegansBot, ...) measured in the same run.
BENCHMARKS: dict[str, str] = {
    "connectome": "wormlab.connectome.bench",
    "circuit": "wormlab.circuit.bench",
    "sae": "wormlab.sae.bench",
    "rom": "wormlab.rom.bench",
    "surrogate": "wormlab.body.bench",
    # cost at 1x, 4x, 16x the default size of circuit batch, SAE, behaviour, surrogate
    "scaling": "wormlab.bench_scaling",
    # gradient vs evolution vs hybrid on one target and wall-time budget (issue 16)
    "autofit": "wormlab.fit.bench",
    # the closed loop per simulated second, forward + backward, ElegansBot and circuit alone
    "crawl": "wormlab.worm.bench",
    # the sensory closed loop per simulated second, one trial and a batch (issue 18)
    "loop": "wormlab.loop.bench",
}

# Component tools: ``wormlab NAME ...`` -> module exposing ``main(argv: list[str]) -> int``.
COMMANDS: dict[str, str] = {
    "rom": "wormlab.rom.cli",
    "behaviour": "wormlab.behaviour.cli",
    "posture": "wormlab.posture.cli",
    "circuit": "wormlab.circuit.cli",
    "recordings": "wormlab.recordings.cli",
    "body": "wormlab.body.cli",
    "fit": "wormlab.fit.cli",
    "models": "wormlab.models.cli",  # shipped models: list | verify (issue 19)
    "worm": "wormlab.worm.cli",  # the integrated worm: run | fit | diagnose (issue 17)
    "sensory": "wormlab.sensory.cli",  # reference responses, GRU transducers (issue 18)
    "loop": "wormlab.loop.cli",  # the sensory closed loop: run | taxis (issue 18)
}


def _err(msg: str) -> int:
    print(f"wormlab: error: {msg}", file=sys.stderr)
    return 2


def _cmd_list(args: argparse.Namespace) -> int:
    from wormlab.notebooks import NotebookError, list_notebooks, notebook_parameters

    for name in list_notebooks():
        print(name)
        try:
            params = notebook_parameters(name)
        except NotebookError as exc:
            print(f"    ! {exc}")
            continue
        for p in params.values():
            extra = f"  choices: {', '.join(p.choices)}" if p.choices else ""
            print(f"    {p.name}: {p.type_name} = {p.default}{extra}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from wormlab.notebooks import (
        NotebookError,
        list_notebooks,
        run_notebook,
        validate_parameters,
        write_index,
    )

    if args.all == bool(args.notebook):
        return _err("give one NOTEBOOK or --all")
    names = list_notebooks() if args.all else [args.notebook]
    raw = {k: v for k, v in (args.param or [])}
    if args.all and raw:
        return _err("-p cannot be combined with --all (notebooks declare different parameters)")
    try:  # validate everything before the first kernel starts
        for name in names:
            validate_parameters(name, raw)
    except NotebookError as exc:
        return _err(str(exc))
    failures = 0
    for name in names:
        t0 = time.perf_counter()
        print(f"[wormlab] running {name}{' (smoke)' if args.smoke else ''} ...", flush=True)
        res = run_notebook(name, raw, smoke=args.smoke, timeout_s=args.timeout)
        dt = time.perf_counter() - t0
        if res.ok:
            print(f"[wormlab] {name}: ok in {dt:.0f} s -> {res.html}", flush=True)
        else:
            failures += 1
            print(f"[wormlab] {name}: FAILED after {dt:.0f} s: {res.error}", file=sys.stderr)
            print(f"[wormlab] failed notebook kept at {res.ipynb}; last good report untouched",
                  file=sys.stderr)
    index = write_index()
    if args.all:
        print(f"[wormlab] {len(names) - failures}/{len(names)} notebooks ok; index: {index}")
    return 1 if failures else 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from wormlab.runs import configure_torch

    if args.name not in BENCHMARKS:
        return _err(f"unknown benchmark {args.name!r}; available: {', '.join(BENCHMARKS)}")
    try:
        module = importlib.import_module(BENCHMARKS[args.name])
    except ModuleNotFoundError as exc:
        return _err(f"benchmark {args.name!r} is not available: {exc}")
    configure_torch()
    result = module.run(quick=args.quick)
    if args.json:
        print(json.dumps(result, indent=2, default=float))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wormlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="execute notebooks headless with papermill")
    p.add_argument("notebook", nargs="?", help="notebook name, e.g. 00_connectome")
    p.add_argument("--all", action="store_true", help="run every notebook")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"))
    p.add_argument("--smoke", action="store_true", help="small fast settings (CI)")
    p.add_argument("--timeout", type=int, default=None, help="per-cell timeout, seconds")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("list", help="notebooks with their parameters and defaults")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("bench", help="run a registered benchmark")
    p.add_argument("name", help=f"one of: {', '.join(BENCHMARKS)}")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="smaller sizes (for tests)")
    p.set_defaults(func=_cmd_bench)

    for name in COMMANDS:
        sub.add_parser(name, help=f"{name} tools (wormlab {name} --help)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        try:
            module = importlib.import_module(COMMANDS[argv[0]])
        except ModuleNotFoundError as exc:
            return _err(f"'wormlab {argv[0]}' is not available: {exc}")
        return int(module.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
