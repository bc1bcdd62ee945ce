"""``wormlab rom ...``: train ROMs on any folder in the published text format, generate data,
run the experiment tables.

    wormlab rom train --data DIR --model gru --hidden 8 [--split-seed S] [--runs N] --json
    wormlab rom baseline --data DIR --hidden 8 [--split-seed S] [--runs N] --json
    wormlab rom generate --out DIR [--scenario forward|two] [--n 40] [--workers 2]
    wormlab rom experiment NAME --data DIR --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wormlab.rom._format import CURRENT_UNITS, VOLTAGE_UNITS


def _names(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


def _files(s: str | None) -> tuple[str, ...] | None:
    if s is None:
        return None
    p = Path(s)
    if p.is_file() and p.suffix in (".txt", ".lst"):
        return tuple(x.strip() for x in p.read_text().split() if x.strip())
    return tuple(_names(s) or ())


def _data_args(p) -> None:
    p.add_argument("--data", required=True, help="folder of sequence files (.dat/.txt), .npz or .h5")
    p.add_argument("--outputs", type=int, default=None,
                   help="number of output columns when the folder has no columns.json")
    p.add_argument("--output-names", help="comma list (overrides columns.json)")
    p.add_argument("--input-names", help="comma list (overrides columns.json)")
    p.add_argument("--unit", default=None, choices=sorted(VOLTAGE_UNITS),
                   help="unit of the output columns (default: columns.json, else detected: "
                        "values within +-1 are volts)")
    p.add_argument("--input-unit", default=None, choices=sorted(CURRENT_UNITS),
                   help="unit of the input columns (default: columns.json, else detected)")
    p.add_argument("--drop-inputs", help="comma list of input columns to leave out")
    p.add_argument("--resample", type=int, default=1, help="keep every N-th sample")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--fractions", default="0.5,0.25,0.25", help="train,val,test fractions")
    p.add_argument("--train-files", help="comma list or a .txt file of names (explicit split)")
    p.add_argument("--val-files")
    p.add_argument("--test-files")


def _load_data(a):
    """The data set and split config the ``train`` / ``baseline`` options describe."""
    from wormlab.rom._format import FormatError, load
    from wormlab.rom._train import SplitConfig

    kw = {}
    if Path(a.data).is_dir():
        kw = {"n_outputs": a.outputs, "output_names": _names(a.output_names),
              "input_names": _names(a.input_names), "input_unit": a.input_unit}
    data = load(a.data, output_unit=a.unit, **kw)
    if a.drop_inputs:
        drop = set(_names(a.drop_inputs))
        unknown = drop - set(data.input_names)
        if unknown:
            raise FormatError(f"--drop-inputs names unknown inputs {sorted(unknown)}; "
                              f"available: {data.input_names}")
        data = data.select(inputs=[n for n in data.input_names if n not in drop])
    if a.resample > 1:
        data = data.resample(a.resample)
    try:
        fr = tuple(float(x) for x in a.fractions.split(","))
    except ValueError:
        raise ValueError(f"--fractions must be three numbers, got {a.fractions!r}") from None
    split = SplitConfig(seed=a.split_seed, fractions=fr, train=_files(a.train_files),
                        val=_files(a.val_files), test=_files(a.test_files))
    return data, split


def _paper(label: str, unit: str) -> float | None:
    """Mestre et al. (2021)'s test RMSE for ``label`` (reported in V) in ``unit``."""
    from wormlab.rom._experiments import PAPER

    if label not in PAPER or unit not in VOLTAGE_UNITS:
        return None
    return PAPER[label] / VOLTAGE_UNITS[unit]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wormlab rom", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("train", help="train RNN/LSTM/GRU models on a data folder")
    _data_args(p)
    p.add_argument("--model", default="gru", choices=["rnn", "lstm", "gru"])
    p.add_argument("--hidden", type=int, default=8)
    p.add_argument("--runs", type=int, default=1, help="repeated trainings (mean +- sd)")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--patience", type=int, default=None, help="early stopping (epochs)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed of run 0")
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (0: none)")
    p.add_argument("--normalise", default="zscore", choices=["zscore", "outputs", "none"],
                   help="z-score inputs and outputs, outputs only, or nothing")
    p.add_argument("--save", help="folder for the safetensors checkpoints (one per run) and "
                   "a columns.json with the data's columns and units")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    b = sub.add_parser("baseline", help="the plain reference trainer (full batch, MSE, Adam, "
                       "best validation epoch) on the same split as train")
    _data_args(b)
    b.add_argument("--model", default="gru", choices=["rnn", "lstm", "gru"])
    b.add_argument("--hidden", type=int, default=8)
    b.add_argument("--runs", type=int, default=1)
    b.add_argument("--epochs", type=int, default=1000)
    b.add_argument("--lr", type=float, default=1e-2)
    b.add_argument("--seed", type=int, default=0, help="initialisation seed of run 0")
    b.add_argument("--json", action="store_true", help="print one JSON object")

    g = sub.add_parser("generate", help="simulate a data set (c302/NEURON or wormlab.circuit)")
    g.add_argument("--out", required=True)
    g.add_argument("--scenario", default="forward", choices=["forward", "two"],
                   help="forward crawling (4 in, 4 out) or forward + nictation (10 in, 28 out)")
    g.add_argument("--n", type=int, default=40, help="number of sequences")
    g.add_argument("--workers", type=int, default=1, help="dask worker processes")
    g.add_argument("--duration-ms", type=float, default=500.0)
    g.add_argument("--dt", default="0.5,0.1", help="sampling steps in ms")
    g.add_argument("--backend", default="auto", choices=["auto", "neuron", "circuit"])
    g.add_argument("--amplitude-nA", type=float, default=None)
    g.add_argument("--seed", type=int, default=0)

    e = sub.add_parser("experiment", help="run one experiment table (see docs/rom.md)")
    e.add_argument("name", choices=["arch", "sweep", "long", "inputs", "two"])
    e.add_argument("--data", required=True)
    e.add_argument("--out", required=True, help="JSON file (resumable: finished rows kept)")
    e.add_argument("--runs", type=int, default=3)
    e.add_argument("--epochs", type=int, default=300)
    e.add_argument("--patience", type=int, default=None)
    e.add_argument("--lr", type=float, default=1e-2)
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (0: none)")
    e.add_argument("--split-seed", type=int, default=0)
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.add_argument("--rows", default=None,
                   help="comma list of row labels to train (default: all); processes given "
                        "different rows of one table can run side by side")
    e.add_argument("--first", type=int, default=None,
                   help="use only the first N sequences (generation order, sorted names)")
    e.add_argument("--base-split", type=int, default=None,
                   help="validation/test = the seeded split of the first N sequences; every "
                        "later sequence is added to training (more data, same held-out set)")

    z = sub.add_parser("datasize", help="GRU test RMSE against the number of training "
                       "sequences on fixed validation/test sets")
    z.add_argument("--data", required=True)
    z.add_argument("--ntrain", required=True, help="comma list of training-set sizes")
    z.add_argument("--first", type=int, default=None, help="use the first N sequences")
    z.add_argument("--runs", type=int, default=2)
    z.add_argument("--epochs", type=int, default=200)
    z.add_argument("--lr", type=float, default=1e-2)
    z.add_argument("--hidden", type=int, default=8)
    z.add_argument("--n-test", type=int, default=15, help="fixed test sequences")
    z.add_argument("--n-val", type=int, default=10, help="fixed validation sequences")
    z.add_argument("--out", default=None, help="also write the rows to this JSON file")

    h = sub.add_parser("ship", help="ship the best-validation run of an experiment-table row "
                       "through the model registry (data/models/NAME, `wormlab models verify`)")
    h.add_argument("--table", required=True, help="experiment table JSON")
    h.add_argument("--row", required=True, help="row label, e.g. GRU-32")
    h.add_argument("--name", required=True, help="registry name, e.g. rom_gru32_forward")
    h.add_argument("--tolerance", type=float, default=0.05,
                   help="absolute test-RMSE tolerance of verify (data unit)")

    s = sub.add_parser("sensitivity", help="determinism and input sensitivity of a generator "
                       "(the predictability floor of any ROM)")
    s.add_argument("--backend", default="neuron", choices=["auto", "neuron", "circuit"])
    s.add_argument("--scenario", default="forward", choices=["forward", "two"])
    s.add_argument("--amplitude-nA", type=float, default=None)
    s.add_argument("--n", type=int, default=8, help="stimuli, spread over the library")
    s.add_argument("--library", type=int, default=44, help="size of the stimulus library")
    s.add_argument("--scale", type=float, default=1.001)
    s.add_argument("--shift-ms", type=float, default=0.5)
    s.add_argument("--duration-ms", type=float, default=500.0)
    s.add_argument("--out", help="also write the JSON to this file")
    return parser


def _cmd_train(a) -> int:
    from wormlab.rom._format import FormatError
    from wormlab.rom._models import save_model
    from wormlab.rom._train import ModelConfig, RomConfig, TrainConfig, repeated_runs
    from wormlab.runs import atomic_path

    try:
        data, split = _load_data(a)
        cfg = RomConfig(
            ModelConfig(a.model, a.hidden),
            TrainConfig(epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, patience=a.patience,
                        seed=a.seed, clip_grad=a.clip or None, normalise=a.normalise),
            split, runs=a.runs,
        )
        if a.save:  # an unusable --save folder fails here, not after the training
            Path(a.save).mkdir(parents=True, exist_ok=True)
        res = repeated_runs(data, cfg, show_progress=not a.quiet, keep_models=bool(a.save))
    except (FormatError, ValueError, KeyError, OSError) as exc:
        print(f"wormlab rom: error: {exc}", file=sys.stderr)
        return 2
    unit = res["output_unit"]
    if a.save:
        for r, m in enumerate(res.pop("_models")):
            save_model(m, Path(a.save) / f"{res['model'].lower()}_run{r}.safetensors")
        cols = dict(data.columns(), unit_source=data.unit_source)
        with atomic_path(Path(a.save) / "columns.json") as tmp:
            tmp.write_text(json.dumps(cols, indent=1) + "\n")
    out = {k: res[k] for k in ("train_rmse", "val_rmse", "test_rmse", "test_rmse_sd",
                               "train_rmse_sd", "val_rmse_sd", "train_nrmse", "val_nrmse",
                               "test_nrmse", "test_nrmse_sd")}
    out.update(model=res["model"], runs=len(res["runs"]), unit=unit,
               unit_source=data.unit_source.get("output_unit", "default"),
               paper_test_rmse=_paper(res["model"], unit),
               best_epochs=[r["best_epoch"] for r in res["runs"]], split=res["split"])
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        print(_line(out))
    return 0


def _line(out: dict) -> str:
    u = out["unit"]
    s = (f"{out['model']}  runs {out['runs']}  test RMSE {out['test_rmse']:.4g} +- "
         f"{out['test_rmse_sd']:.2g} {u}  (train {out['train_rmse']:.4g} {u}, "
         f"val {out['val_rmse']:.4g} {u}; unit {out['unit_source']})")
    if out.get("paper_test_rmse") is not None:
        s += (f"\n  Mestre et al. 2021, {out['model']} on their data: "
              f"{out['paper_test_rmse']:.3g} {u} (reported as {out['paper_test_rmse'] * VOLTAGE_UNITS[u]:.3g} V)")
    return s


def _cmd_baseline(a) -> int:
    from wormlab.rom._baseline import baseline_runs
    from wormlab.rom._format import FormatError
    from wormlab.rom._train import split_indices

    try:
        data, split_cfg = _load_data(a)
        split = split_indices(data, split_cfg)
        res = baseline_runs(data, split, runs=a.runs, seed=a.seed, kind=a.model,
                            hidden=a.hidden, epochs=a.epochs, lr=a.lr)
    except (FormatError, ValueError, KeyError) as exc:
        print(f"wormlab rom: error: {exc}", file=sys.stderr)
        return 2
    unit = res["output_unit"]
    out = {k: v for k, v in res.items() if k.endswith(("rmse", "rmse_sd"))}
    out.update(model=res["model"], runs=a.runs, unit=unit,
               unit_source=data.unit_source.get("output_unit", "default"),
               paper_test_rmse=_paper(res["model"], unit),
               best_epochs=[r["best_epoch"] for r in res["runs"]],
               split={k: [data.names[i] for i in v] for k, v in split.items()},
               trainer="plain baseline: full batch, MSE on z-scored outputs, Adam, no clipping, "
                       "best validation epoch")
    print(json.dumps(out, indent=1) if a.json else _line(out))
    return 0


def _scenario_kw(a) -> dict:
    from wormlab.rom._generate import (
        FORWARD_INPUTS,
        FORWARD_OUTPUTS,
        NICTATION_INPUTS,
        NICTATION_OUTPUTS,
    )

    kw = {}
    if a.scenario == "two":
        kw = {"inputs": FORWARD_INPUTS + NICTATION_INPUTS,
              "outputs": FORWARD_OUTPUTS + NICTATION_OUTPUTS,
              "scenario_groups": (FORWARD_INPUTS, NICTATION_INPUTS)}
    if a.amplitude_nA is not None:
        kw["amplitude_nA"] = a.amplitude_nA
    return kw


def _cmd_datasize(a) -> int:
    from wormlab.rom._experiments import data_size_curve
    from wormlab.rom._format import FormatError, load

    try:
        rows = data_size_curve(load(a.data), [int(x) for x in a.ntrain.split(",")],
                               first=a.first, runs=a.runs, epochs=a.epochs, lr=a.lr,
                               hidden=a.hidden, n_test=a.n_test, n_val=a.n_val)
    except (FormatError, ValueError) as exc:
        print(f"wormlab rom: error: {exc}", file=sys.stderr)
        return 2
    from wormlab.runs import emit_json

    emit_json(rows, a.out or None)
    return 0


def _cmd_sensitivity(a) -> int:
    from wormlab.rom._generate import GenerateConfig, SimulationBlowUp
    from wormlab.rom._sensitivity import generator_sensitivity

    try:
        cfg = GenerateConfig(backend=a.backend, n_sequences=a.library,
                             duration_ms=a.duration_ms, **_scenario_kw(a))
        res = generator_sensitivity(cfg, n=a.n, scale=a.scale, shift_ms=a.shift_ms)
    except (ValueError, RuntimeError, SimulationBlowUp) as exc:
        print(f"wormlab rom: error: {exc}", file=sys.stderr)
        return 2
    from wormlab.runs import emit_json

    emit_json(res, a.out or None)
    return 0


def _cmd_generate(a) -> int:
    from wormlab.rom._generate import GenerateConfig, generate_dataset

    kw = _scenario_kw(a)
    try:
        cfg = GenerateConfig(backend=a.backend, n_sequences=a.n, duration_ms=a.duration_ms,
                             sample_dt_ms=tuple(float(x) for x in a.dt.split(",")), seed=a.seed,
                             **kw)
        dirs = generate_dataset(cfg, a.out, workers=a.workers)
    except (ValueError, RuntimeError) as exc:
        print(f"wormlab rom: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({f"{k:g}": str(v) for k, v in dirs.items()}))
    return 0


def _cmd_experiment(a) -> int:
    from wormlab.rom._experiments import run_experiment

    table = run_experiment(a.name, a.data, a.out, runs=a.runs, epochs=a.epochs,
                           patience=a.patience, lr=a.lr, batch_size=a.batch_size,
                           clip_grad=a.clip or None, split_seed=a.split_seed,
                           show_progress=not a.quiet,
                           rows=a.rows.split(",") if a.rows else None,
                           first=a.first, base_split=a.base_split)
    print(table)
    return 0


def _cmd_ship(a) -> int:
    import shlex

    from wormlab.rom._format import FormatError
    from wormlab.rom._ship import ship_row

    cmd = "wormlab rom ship " + " ".join(shlex.quote(x) for x in a.argv)
    try:
        path = ship_row(a.table, a.row, a.name, command=cmd, tolerance=a.tolerance)
    except (FormatError, ValueError, KeyError, FileNotFoundError) as exc:
        print(f"wormlab rom: error: {exc}", file=sys.stderr)
        return 2
    m = json.loads(Path(path).read_text())
    print(json.dumps({"manifest": str(path), "run": m["data"]["run"], **m["metrics"]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv[1:]
    from wormlab.runs import configure_torch

    configure_torch()
    return {"train": _cmd_train, "baseline": _cmd_baseline, "generate": _cmd_generate, "experiment": _cmd_experiment,
            "sensitivity": _cmd_sensitivity, "datasize": _cmd_datasize,
            "ship": _cmd_ship}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
