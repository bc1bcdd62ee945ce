"""``wormlab behaviour ...``: decode behaviour from recordings in the shared formats.

    wormlab behaviour evaluate --train A.h5 B.h5 --test C.h5 --model gnn --task fwd_rev --json
    wormlab behaviour evaluate --train A.h5 B.h5 C.h5 --test D.h5 --model best --json
    wormlab behaviour frames --models logreg logreg_causal best
    wormlab behaviour ship --name behaviour_fwd_rev_frames --heldout 2022-07-27-45 --model best
    wormlab behaviour ship-tables --classification reports/behaviour/classification.json \
        --forecast reports/behaviour/forecast.json     (notebook 06's full tables -> data/models)
    wormlab behaviour experiment flavell_lwo --models svm mlp gnn --out results.json
    wormlab behaviour forecast --models mlp gnn --out forecast.json
    wormlab behaviour report --results results.json --forecast forecast.json
"""

from __future__ import annotations

import argparse
import json
import sys

from wormlab.behaviour._config import TASKS, BehaviourConfig
from wormlab.behaviour._frames import FRAME_MODELS
from wormlab.behaviour._models import MODELS
from wormlab.runs import emit_json

FRAME_CHOICES = (*FRAME_MODELS, "best", "best_causal")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="fwd_rev", choices=TASKS)
    p.add_argument("--window", type=int, default=8, help="timesteps per window (default 8)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exclude", nargs="*", default=[], help="neuron names never used")
    p.add_argument("--neurons", nargs="*", default=[], help="explicit neuron set")


def _cfg(args, model: str = "gnn") -> BehaviourConfig:
    return BehaviourConfig().replace(
        data={"task": args.task, "window": args.window, "exclude": tuple(args.exclude),
              "neurons": tuple(args.neurons)},
        model={"name": model},
        train={"epochs": args.epochs, "seed": args.seed},
    )


def _evaluate(args) -> int:
    import numpy as np

    from wormlab.behaviour._data import (
        Split,
        _carve_val,
        check_no_leak,
        ends_within,
        resample,
        shared_names,
        split_windows,
    )
    from wormlab.behaviour._sources import load_worms
    from wormlab.behaviour._train import train_and_evaluate
    from wormlab.runs import configure_torch, keep_heap_memory

    configure_torch()
    keep_heap_memory()  # same numbers, faster dynamic GNNs (see its docstring)
    cfg = _cfg(args, args.model)
    # one file at a time, so a clash can name the files whose data gave the same worm id
    train = [w for p in args.train for w in load_worms([p])]
    test = [w for p in args.test for w in load_worms([p])]
    files: dict[str, list[str]] = {}
    for p, w in zip([*args.train, *args.test], train + test):
        files.setdefault(w.worm_id, []).append(str(p))
    dup = {i: ps for i, ps in files.items() if len(ps) > 1}
    if dup:
        which = "; ".join(f"{i!r} from {', '.join(ps)}" for i, ps in sorted(dup.items()))
        raise ValueError(f"worm(s) given more than once (train and test must differ): {which} "
                         "(the id comes from each file's metadata or name)")
    fps = args.resample_fps or (min(w.fps for w in train + test)
                                if len({round(w.fps, 2) for w in train + test}) > 1 else 0.0)
    if fps:
        train = [resample(w, fps) for w in train]
        test = [resample(w, fps) for w in test]
    d = cfg.data
    names = shared_names(train + test, d)
    if args.model in FRAME_CHOICES:
        return _evaluate_frames(args, cfg, train, test, names, fps)
    split = Split("cli", {}, {}, {}, {}, d.window, tuple(w.worm_id for w in test))
    for w in train:
        tr, va = _carve_val(np.ones(w.n_frames, bool), cfg.train.val_frac, d.window)
        split.train[w.worm_id], split.val[w.worm_id] = ends_within(tr, d.window), \
            ends_within(va, d.window)
        split.fit[w.worm_id] = None
    for w in test:
        split.test[w.worm_id] = ends_within(np.ones(w.n_frames, bool), d.window)
        split.fit[w.worm_id] = None
    check_no_leak(split)
    tr, va, te, names = split_windows(train + test, split, d, names)
    _, res = train_and_evaluate(cfg, tr, va, te, verbose=not args.json)
    out = {"accuracy": res["accuracy"], "balanced_accuracy": res["balanced_accuracy"],
           "majority_accuracy": res["majority"]["accuracy"], "model": args.model,
           "task": d.task, "classes": list(tr.classes), "confusion": res["confusion"],
           "per_worm": {k: {"accuracy": v["accuracy"],
                            "balanced_accuracy": v["balanced_accuracy"], "n": v["n"]}
                        for k, v in res["per_worm"].items()},
           "neurons": names, "n_train": len(tr), "n_test": len(te), "resample_fps": fps,
           "train": [w.worm_id for w in train], "test": [w.worm_id for w in test]}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.model} {d.task}: accuracy {out['accuracy']:.3f}, balanced "
              f"{out['balanced_accuracy']:.3f} (majority {out['majority_accuracy']:.3f}) on "
              f"{len(te)} windows; {len(names)} neurons: {' '.join(names)}")
    return 0


def _evaluate_frames(args, cfg, train, test, names, fps) -> int:
    """``evaluate`` for the frame decoders and ``best`` (selection on the training worms only)."""
    import numpy as np

    from wormlab.behaviour._frames import (
        BEST_CANDIDATES,
        BEST_CAUSAL_CANDIDATES,
        FRAME_MODELS,
        FrameDecoder,
        select_frame_model,
    )
    from wormlab.behaviour._train import majority_baseline

    d = cfg.data
    sel = None
    name = args.model
    if args.model in ("best", "best_causal"):
        cands = BEST_CAUSAL_CANDIDATES if args.model == "best_causal" else BEST_CANDIDATES
        sel = select_frame_model(train, names, d, cands, seed=args.seed)  # training worms only
        name = sel["chosen"]
    dec = FrameDecoder(name, names, d, seed=args.seed).fit(train)
    res = dec.evaluate(test)
    y_tr = np.concatenate([dec.scored_labels(w) for w in train])
    y_te = np.concatenate([dec.scored_labels(w) for w in test])
    maj = majority_baseline(y_tr, y_te, len(dec.classes))
    spec = FRAME_MODELS[name]
    out = {"accuracy": res["accuracy"], "balanced_accuracy": res["balanced_accuracy"],
           "majority_accuracy": maj["accuracy"], "model": args.model, "fitted_model": name,
           "causal": spec.causal, "lookahead_frames": spec.lookahead_frames,
           "task": d.task, "classes": list(dec.classes), "confusion": res["confusion"],
           "per_worm": {k: {"accuracy": v["accuracy"],
                            "balanced_accuracy": v["balanced_accuracy"], "n": v["n"]}
                        for k, v in res["per_worm"].items()},
           "neurons": dec.names, "threshold": dec.threshold,
           "n_train": int(len(y_tr)), "n_test": int(res["n"]),
           "resample_fps": fps,
           "train": [w.worm_id for w in train], "test": [w.worm_id for w in test]}
    if sel is not None:
        out["selection"] = {"chosen": sel["chosen"], "candidates": sel["candidates"],
                            "inner_mean": sel["inner_mean"], "inner": sel["inner"],
                            "held_out_worms": [w.worm_id for w in train]}
    if args.json:
        emit_json(out, indent=2)
    else:
        chosen = f" (chosen: {name})" if sel is not None else ""
        print(f"{args.model}{chosen} {d.task}: accuracy {out['accuracy']:.3f}, balanced "
              f"{out['balanced_accuracy']:.3f} (majority {out['majority_accuracy']:.3f}) on "
              f"{out['n_test']} frames; {len(dec.names)} neurons: {' '.join(dec.names)}")
    return 0


def _frames(args) -> int:
    from wormlab.behaviour._frames import frames_table
    from wormlab.behaviour._sources import flavell_worms, load_worms

    if args.tabulate:
        return _frames_tabulate(args)
    cfg = _cfg(args)
    if args.files:
        worms = [w for p in args.files for w in load_worms([p])]
    else:
        worms = flavell_worms()
    if len(worms) < 3:
        raise ValueError(f"frames needs >= 3 worms (leave one out, and 'best' leaves one more "
                         f"out inside), got {len(worms)}")
    from wormlab.behaviour._frames import frame_lwo

    rows = frame_lwo(worms, args.models, cfg.data, seed=args.seed,
                     progress_bar=not args.json)
    if args.json or args.out:
        emit_json({"rows": rows, "data": cfg.to_dict()["data"]}, args.out, echo=args.json)
    if not args.json:
        print(frames_table(rows, _window_rows(args.windows, cfg.data.task)))
        _print_chosen(rows)
    return 0


def _ship(args) -> int:
    import shlex

    from wormlab.behaviour._ship import ship_frame_decoder

    cmd = "wormlab behaviour ship " + " ".join(shlex.quote(x) for x in args.argv)
    path = ship_frame_decoder(args.name, args.heldout, args.model, command=cmd, seed=args.seed)
    m = json.loads(path.read_text())
    print(f"shipped {args.name} ({m['data']['chosen']}): held-out {m['data']['heldout']} "
          f"balanced accuracy {m['metrics']['heldout_balanced_accuracy']:.3f} -> {path}")
    return 0


def _ship_tables(args) -> int:
    import shlex

    from wormlab.behaviour._ship import ship_tables

    cmd = "wormlab behaviour ship-tables " + " ".join(shlex.quote(x) for x in args.argv)
    path = ship_tables(args.classification, args.forecast, command=cmd, name=args.name)
    m = json.loads(path.read_text())
    print(json.dumps({"model": m["name"], "bytes": m["bytes"], "rows": m["config"]["rows"],
                      "spot_checks": m["metrics"]}, indent=1))
    return 0


def _window_rows(path, task: str) -> dict:
    """``{model (window): {worm: balanced accuracy}}`` from a ``flavell_lwo`` results file."""
    if not path:
        return {}
    from pathlib import Path

    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--windows {path}: not a readable results JSON file ({exc})") from None
    out: dict[str, dict[str, float]] = {}
    for r in rows if isinstance(rows, list) else []:
        if r.get("experiment") == "flavell_lwo" and r.get("task") == task:
            for wid, m in r.get("per_worm", {}).items():
                out.setdefault(f"{r['model']} (window T={r['config']['data']['window']})",
                               {})[wid] = m["balanced_accuracy"]
    if not out:
        raise ValueError(f"--windows {path}: no flavell_lwo rows for task {task!r}")
    return out


def _frames_tabulate(args) -> int:
    from pathlib import Path

    from wormlab.behaviour._frames import frames_table

    rows = []
    for p in args.tabulate:
        try:
            rows += json.loads(Path(p).read_text())["rows"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"--tabulate {p}: not a 'behaviour frames --out' file ({exc!r})"
                             ) from None
    print(frames_table(rows, _window_rows(args.windows, args.task)))
    _print_chosen(rows)
    return 0


def _print_chosen(rows) -> None:
    chosen = [f"{r['model']} for {r['test'].split('/')[-1]}: {r['chosen']} (inner "
              f"{r['inner_mean'][r['chosen']]:.3f})" for r in rows if "chosen" in r]
    if chosen:
        print("\nChosen by inner CV on the training worms: " + "; ".join(chosen) + ".")


def _experiment(args) -> int:
    from wormlab.behaviour._experiments import edge_table, run_classification, summary_table
    from wormlab.runs import configure_torch, keep_heap_memory

    configure_torch()
    keep_heap_memory()  # same numbers, faster dynamic GNNs (see its docstring)
    cfg = _cfg(args)
    rows = run_classification(args.name, args.models, cfg, out=args.out, n_test=args.n_test,
                              max_splits=args.max_splits)
    print(summary_table(rows).to_string())
    et = edge_table(rows)
    if len(et):
        print(et.groupby("model")[["spearman", "p_spearman", "auroc", "p_auroc"]].mean())
    return 0


def _forecast(args) -> int:
    from wormlab.behaviour._experiments import forecast_table, run_forecasting
    from wormlab.runs import configure_torch, keep_heap_memory

    configure_torch()
    keep_heap_memory()  # same numbers, faster dynamic GNNs (see its docstring)
    cfg = _cfg(args)
    rows = run_forecasting(args.models, cfg, out=args.out, max_splits=args.max_splits)
    print(forecast_table(rows).to_string())
    return 0


def _report(args) -> int:
    from wormlab.behaviour._experiments import report_markdown

    print(report_markdown(args.results, args.forecast))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from wormlab.behaviour._experiments import EXPERIMENTS

    parser = argparse.ArgumentParser(prog="wormlab behaviour", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("evaluate", help="train on --train worms, score on --test worms")
    p.add_argument("--train", nargs="+", required=True, help="recording files (train only)")
    p.add_argument("--test", nargs="+", required=True, help="recording files (scored)")
    p.add_argument("--model", default="gnn", choices=[*MODELS, *FRAME_CHOICES],
                   help="a window model, a frame decoder, or 'best' / 'best_causal': the frame "
                        "decoder chosen by leave-one-worm-out CV on the --train worms only")
    p.add_argument("--resample-fps", type=float, default=0.0,
                   help="common frame rate (default: the slowest when rates differ)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _common(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("experiment", help="a named splits x models table (resumable)")
    p.add_argument("name", choices=EXPERIMENTS)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--out", default=None, help="JSON results file (resumes if present)")
    p.add_argument("--n-test", type=int, default=1, help="test worms per leave-worms-out split")
    p.add_argument("--max-splits", type=int, default=0)
    _common(p)
    p.set_defaults(func=_experiment)

    p = sub.add_parser("frames", help="leave-one-worm-out table of frame decoders (and best)")
    p.add_argument("files", nargs="*", help="recording files (default: the 5 identified "
                                            "Flavell worms)")
    p.add_argument("--models", nargs="+", default=["logreg", "logreg_causal", "best"],
                   choices=FRAME_CHOICES)
    p.add_argument("--out", default=None, help="JSON rows file (written atomically)")
    p.add_argument("--json", action="store_true", help="print the JSON rows")
    p.add_argument("--tabulate", nargs="+", default=None,
                   help="print the table of these --out files (nothing is recomputed)")
    p.add_argument("--windows", default=None,
                   help="a results file of 'experiment flavell_lwo': add the window models' "
                        "per-worm rows to the table")
    _common(p)
    p.set_defaults(func=_frames)

    p = sub.add_parser("ship", help="train a frame decoder on all identified Flavell worms but "
                                    "one and ship it (wormlab.models), held-out score recorded")
    p.add_argument("--name", default="behaviour_fwd_rev_frames")
    p.add_argument("--heldout", default="2022-07-27-45", help="Flavell worm id kept out")
    p.add_argument("--model", default="best", choices=FRAME_CHOICES[:-1])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_ship)

    p = sub.add_parser("ship-tables", help="ship notebook 06's full result tables "
                                           "(wormlab.models; verify retrains spot-check rows)")
    p.add_argument("--classification", required=True, help="reports/behaviour/classification.json")
    p.add_argument("--forecast", required=True, help="reports/behaviour/forecast.json")
    p.add_argument("--name", default="behaviour_tables_fwd_rev")
    p.set_defaults(func=_ship_tables)

    p = sub.add_parser("forecast", help="leave-worms-out forecasting MSE per step (Flavell)")
    p.add_argument("--models", nargs="+", default=["mlp", "gnn", "gnn_connectome"],
                   choices=[m for m in MODELS if m != "svm"])
    p.add_argument("--out", default=None)
    p.add_argument("--max-splits", type=int, default=0)
    _common(p)
    p.set_defaults(func=_forecast)

    p = sub.add_parser("report", help="markdown tables from the JSON results")
    p.add_argument("--results", nargs="*", default=[], help="classification JSON file(s)")
    p.add_argument("--forecast", default=None, help="forecast JSON")
    p.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)[1:]
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"wormlab behaviour: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
