"""The paper's experiment tables on our own generated data (resumable, one JSON per table).

Each table is a list of rows; a row already present in the output JSON is not recomputed, so
a killed run resumes. Models of one cell kind are trained side by side (``train_many``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wormlab.rom._format import load
from wormlab.rom._models import load_model, save_model
from wormlab.rom._saliency import gradient_saliency
from wormlab.rom._train import (
    MAX_PACKED_HIDDEN,
    SplitConfig,
    TrainConfig,
    _tensors,
    rmse,
    split_indices,
    train_many,
)
from wormlab.runs import atomic_path, remove_orphan_tmp

# Mestre et al. 2021, test RMSE (their data and units), for side-by-side reading only.
PAPER = {"RNN-16": 1.34e-1, "LSTM-8": 1.49e-2, "GRU-8": 1.00e-2, "GRU-2": 6.00e-2,
         "GRU-4": 1.17e-2, "GRU-16": 9.36e-3, "GRU-32": 1.23e-2, "GRU-64": 1.68e-2}

TABLES = {
    # name: list of (row label, kind, hidden, input columns to drop)
    # GRU first: the size sweep and the input table reuse these rows when run alongside
    "arch": [("GRU-8", "gru", 8, ()), ("GRU-32", "gru", 32, ()), ("LSTM-8", "lstm", 8, ()),
             ("LSTM-32", "lstm", 32, ()), ("RNN-16", "rnn", 16, ()), ("RNN-64", "rnn", 64, ())],
    # 8 and 32 last: they are usually reused from the architecture table
    "sweep": [(f"GRU-{h}", "gru", h, ()) for h in (2, 4, 16, 64, 8, 32)],
    "long": [("GRU-8", "gru", 8, ())],
    # all-inputs last: usually reused from the architecture table by then
    "inputs": [("GRU-8 No-AVB", "gru", 8, ("AVBL", "AVBR")), ("GRU-8 No-PLM", "gru", 8, ("PLML", "PLMR")),
               ("GRU-8 all inputs", "gru", 8, ())],
    "two": [("GRU-32", "gru", 32, ()), ("GRU-16", "gru", 16, ()), ("LSTM-32", "lstm", 32, ())],
}


def _read(out: Path) -> dict:
    return json.loads(out.read_text()) if out.exists() else {"rows": {}}


def _sorted_rows(table: dict) -> list[tuple[str, dict]]:
    """The rows in reading order: the table's own order (the size sweep by size)."""
    order = {lab: i for i, (lab, *_) in enumerate(TABLES.get(table.get("name", ""), []))}
    if table.get("name") == "sweep":
        order.update({f"GRU-{h}": h for h in (2, 4, 8, 16, 32, 64)})
    return sorted(table["rows"].items(), key=lambda kv: order.get(kv[0], 999))


def _write(out: Path, table: dict) -> None:
    """Write ``table``, first merging in rows that another process running the same table
    (same settings, other ``rows``) wrote meanwhile; an exclusive lock on ``<out>.lock``
    makes read-merge-write atomic between processes. ``table["rows"]`` gets the merged rows,
    in the table's own order."""
    from wormlab.runs import file_lock

    with file_lock(out.with_name(out.name + ".lock")):
        disk = _read(out)
        if all(disk.get(k) == table.get(k) for k in SETTINGS):
            for label, row in disk["rows"].items():
                table["rows"].setdefault(label, row)
        table["rows"] = dict(_sorted_rows(table))
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(table, indent=1) + "\n")


SETTINGS = ("data", "runs", "epochs", "patience", "lr", "split_seed", "batch_size", "clip_grad",
            "first", "base_split")
SCENARIO_NAMES = {"s0": "forward crawling", "s1": "nictation"}  # name tags of `two` data
BASELINE_LABELS = {"constant_mean": "constant training mean", "mean_trace": "mean training trace"}


def _reuse(out: Path, table: dict, label: str, drop) -> dict | None:
    """A row with the same label and settings from another table JSON in the same folder
    (e.g. GRU-8 of the architecture table reused by the size sweep)."""
    for other in sorted(out.parent.glob("*.json")):
        if other == out:
            continue
        try:
            t = json.loads(other.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if all(t.get(k) == table.get(k) for k in SETTINGS):
            for lab, row in t.get("rows", {}).items():
                if lab.split()[0] == label.split()[0] and list(row.get("dropped", [])) == list(
                        drop):
                    return dict(row, reused_from=f"{other.name}:{lab}")
    return None


def table_data(data, split_seed: int = 0, first: int | None = None,
               base_split: int | None = None):
    """The sequences and split of a table: ``(data, {"train", "val", "test": indices})``.

    ``first``: keep only the first ``first`` sequences in generation order (sorted names).
    ``base_split``: validation and test sets are the seeded 50/25/25 split of the first
    ``base_split`` sequences, and every later sequence is added to the training set, so a
    larger data set is scored on the same held-out sequences as the tables of the smaller
    one (e.g. the 120-sequence tables' 30 validation and 30 test sequences, with 120 instead
    of 60 training sequences from a 180-sequence set). Default: the seeded 50/25/25 split of
    all sequences.
    """
    order = sorted(range(len(data)), key=lambda i: data.names[i])
    if first is not None:
        if not 3 <= first <= len(data):
            raise ValueError(f"first={first}: the data has {len(data)} sequences (need 3..)")
        order = order[:first]
    if order != list(range(len(data))):
        data = data.subset(order)
    if base_split is None:
        return data, split_indices(data, SplitConfig(seed=split_seed))
    if not 3 <= base_split <= len(data):
        raise ValueError(f"base_split={base_split} outside 3..{len(data)} (sequences used)")
    split = split_indices(data.subset(range(base_split)), SplitConfig(seed=split_seed))
    split["train"] = split["train"] + list(range(base_split, len(data)))
    return data, split


def run_experiment(name: str, data_dir, out, *, runs: int = 3, epochs: int = 300,
                   patience: int | None = None, lr: float = 1e-2, split_seed: int = 0,
                   batch_size: int = 32, clip_grad: float | None = 1.0,
                   show_progress: bool = True, rows: list[str] | None = None,
                   first: int | None = None, base_split: int | None = None) -> str:
    """Run table ``name`` on ``data_dir``; store rows in ``out`` (JSON); return Markdown.

    ``first`` / ``base_split``: which sequences and which split (see :func:`table_data`).

    Every trained model is saved to ``<out stem>_models/<label>_run<r>.safetensors``; a pack
    still training keeps its state there (``*.resume.pt``, see :func:`train_many`), so a killed
    run continues from its last saved epoch, not only from its last finished row.
    ``rows``: train only these row labels (e.g. ``["GRU-64"]``), so that several processes
    can share one table's rows (writes merge, see :func:`_write`); the table's summaries
    (saliency, paired comparison) are computed once all its rows are there.
    """
    if name not in TABLES:
        raise KeyError(f"unknown experiment {name!r}; available: {sorted(TABLES)}")
    labels = [lab for lab, *_ in TABLES[name]]
    if rows is not None:
        unknown = [r for r in rows if r not in labels]
        if unknown or not rows:
            raise KeyError(f"unknown rows {unknown} for table {name!r}; available: {labels}")
    out = Path(out)
    for folder in (out.parent, model_dir(out)):  # temporaries of a killed run, not a live one's
        remove_orphan_tmp(folder)
    data, split = table_data(load(data_dir), split_seed, first, base_split)
    table = _read(out)
    settings = dict(data=str(data_dir), runs=runs, epochs=epochs, patience=patience, lr=lr,
                    split_seed=split_seed, batch_size=batch_size, clip_grad=clip_grad,
                    first=first, base_split=base_split)
    if any(table.get(k) != v for k, v in settings.items()):
        table = {"rows": {}}  # rows of other settings are not resumed
    table.update(settings, name=name, n_sequences=len(data), dt_s=data.dt_s, unit=data.output_unit,
                 inputs=data.input_names, outputs=data.output_names)
    tcfg = TrainConfig(epochs=epochs, lr=lr, patience=patience, batch_size=batch_size,
                       clip_grad=clip_grad)
    table["split_sizes"] = {k: len(v) for k, v in split.items()}
    # recomputed on every run (cheap), so older tables gain baselines added since
    table["baselines"] = mean_baselines(data, split_seed, split=split)
    # pending rows of one (kind, dropped inputs) train side by side, in groups of at most
    # MAX_PACKED_HIDDEN hidden units, and the JSON is written after every group (resumable)
    groups: list[tuple[tuple, list]] = []
    for label, kind, hidden, drop in TABLES[name]:
        if label in table["rows"] or (rows is not None and label not in rows):
            continue
        row = _reuse(out, table, label, drop)
        if row is not None:
            table["rows"][label] = row
            continue
        last = groups[-1] if groups else None
        if (last and last[0] == (kind, drop)
                and (sum(h for _, h in last[1]) + hidden) * runs <= MAX_PACKED_HIDDEN):
            last[1].append((label, hidden))
        else:
            groups.append(((kind, drop), [(label, hidden)]))
    for (kind, drop), rows in groups:
        pending = []
        for label, hidden in rows:  # another table may have finished the row meanwhile
            row = _reuse(out, table, label, drop)
            if row is None:
                pending.append((label, hidden))
            else:
                table["rows"][label] = row
        rows = pending
        if not rows:
            _write(out, table)
            continue
        d = data.select(inputs=[c for c in data.input_names if c not in drop]) if drop else data
        hiddens = [h for _, h in rows for _ in range(runs)]
        seeds = [r for _ in rows for r in range(runs)]
        # epoch-level resume inside a pack (a 1,000-epoch pack can run for an hour)
        res = train_many(d, kind, hiddens, seeds, tcfg, split, show_progress=show_progress,
                         resume_dir=model_dir(out))
        for j, (label, hidden) in enumerate(rows):
            rr = res[j * runs : (j + 1) * runs]
            for r, tr in enumerate(rr):
                save_model(tr.model, model_dir(out) / f"{_slug(label)}_run{r}.safetensors")
            row = {"kind": kind, "hidden": hidden, "dropped": list(drop),
                   "n_params": sum(p.numel() for p in rr[0].model.parameters()),
                   "seconds_all_packed": rr[0].seconds,
                   "best_epochs": [r.best_epoch for r in rr]}
            for k in rr[0].metrics:
                v = np.array([r.metrics[k] for r in rr])
                row[k] = float(v.mean())
                row[f"{k}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            if name == "two":
                row["per_scenario_test_rmse"] = _per_scenario(rr, d, split["test"])
            table["rows"][label] = row
        _write(out, table)
    _write(out, table)  # merges rows finished meanwhile by other processes
    complete = all(lab in table["rows"] for lab in labels)
    if name == "inputs" and complete and not {"saliency", "paired"} <= table.keys():
        if "saliency" not in table:
            table["saliency"] = _saliency(out, table, data, split)
        if "paired" not in table:
            table["paired"] = _paired(out, table, data, split)
        _write(out, table)
    return markdown(table)


def _slug(label: str) -> str:
    return label.lower().replace(" ", "_").replace("-", "")


def model_dir(out: Path) -> Path:
    return out.parent / f"{out.stem}_models"


def _checkpoints(out: Path, table: dict, label: str) -> list[Path]:
    """The per-run checkpoints of row ``label`` (in another table's folder if reused)."""
    row = table["rows"][label]
    src = out
    if "reused_from" in row:
        src = out.parent / row["reused_from"].split(":")[0]
        label = row["reused_from"].split(":", 1)[1]
    paths = sorted(model_dir(src).glob(f"{_slug(label)}_run*.safetensors"),
                   key=lambda p: int(p.stem.rsplit("_run", 1)[1]))
    if not paths:
        raise FileNotFoundError(f"no checkpoints for {label} in {model_dir(src)}")
    return paths


def _saliency(out: Path, table: dict, data, split) -> dict:
    """Gradient saliency of the all-inputs GRU-8 runs (their checkpoints), on the test set."""
    paths = _checkpoints(out, table, "GRU-8 all inputs")
    sal = np.mean([gradient_saliency(load_model(p), data.inputs[:, split["test"]])
                   for p in paths], axis=0)
    return {"inputs": data.input_names, "outputs": data.output_names, "matrix": sal.tolist(),
            "models": [str(p) for p in paths]}


def _paired(out: Path, table: dict, data, split) -> dict:
    """Test RMSE of every run of each dropped-input row minus the all-inputs run with the same
    initialisation seed and split (a paired comparison: both share seed r), from the saved
    checkpoints. Returns per row the per-run differences, their mean and sd, and how many
    runs got worse without the inputs."""
    import torch

    def run_rmse(label: str, drop) -> list[float]:
        d = data.select(inputs=[c for c in data.input_names if c not in drop]) if drop else data
        x = torch.as_tensor(d.inputs[:, split["test"]], dtype=torch.float32)
        y = torch.as_tensor(d.outputs[:, split["test"]], dtype=torch.float32)
        return [rmse(load_model(p), x, y)[0] for p in _checkpoints(out, table, label)]

    base = run_rmse("GRU-8 all inputs", ())
    res = {"GRU-8 all inputs": {"test_rmse_runs": base}}
    for label, r in table["rows"].items():
        if not r["dropped"]:
            continue
        vals = run_rmse(label, r["dropped"])
        if len(vals) != len(base):
            raise ValueError(f"{label}: {len(vals)} runs, all inputs: {len(base)}")
        diff = np.array(vals) - np.array(base)
        res[label] = {"test_rmse_runs": vals, "diff_runs": diff.tolist(),
                      "diff_mean": float(diff.mean()),
                      "diff_sd": float(diff.std(ddof=1)) if len(diff) > 1 else 0.0,
                      "n_worse": int((diff > 0).sum()), "n_runs": len(diff)}
    return res


def _by_scenario(names, idx) -> dict[str, list[int]]:
    """``idx`` grouped by the scenario tag in the sequence names (``synthetic_000_s0_...``);
    tags with no sequence are left out."""
    groups = {tag: [i for i in idx if f"_{tag}_" in names[i]] for tag in SCENARIO_NAMES}
    return {tag: g for tag, g in groups.items() if g}


def _per_scenario(results, data, test_idx) -> dict:
    """Test RMSE of each scenario's test sequences, mean and sd over the runs' models."""
    out = {}
    for tag, idx in _by_scenario(data.names, test_idx).items():
        x, y = _tensors(data, idx)
        vals = [rmse(r.model, x, y)[0] for r in results]
        out[tag] = {"mean": float(np.mean(vals)), "sd": float(np.std(vals, ddof=1))
                    if len(vals) > 1 else 0.0, "n_sequences": len(idx)}
    return out


def markdown(table: dict) -> str:
    """The table as Markdown: mean +- sd over runs, in the data's unit and z-scored."""
    unit = table.get("unit", "mV")
    rows = _sorted_rows(table)
    lines = [f"| model | params | train RMSE ({unit}) | val RMSE ({unit}) | test RMSE ({unit}) "
             f"| test nRMSE | best epochs | paper test RMSE |",
             "|---|---|---|---|---|---|---|---|"]
    for label, r in rows:
        paper = (PAPER.get(label.split()[0])
                 if table.get("name") in ("arch", "sweep") and not r["dropped"] else None)
        lines.append(
            f"| {label} | {r['n_params']} | {r['train_rmse']:.3g} ± {r['train_rmse_sd']:.2g} "
            f"| {r['val_rmse']:.3g} ± {r['val_rmse_sd']:.2g} "
            f"| {r['test_rmse']:.3g} ± {r['test_rmse_sd']:.2g} "
            f"| {r['test_nrmse']:.3g} ± {r['test_nrmse_sd']:.2g} "
            f"| {', '.join(str(e) for e in r['best_epochs'])} "
            f"| {'' if paper is None else f'{paper:.3g}'} |")
    for name, b in table.get("baselines", {}).items():
        lines.append(f"| *{BASELINE_LABELS[name]}* | 0 | | | {b['test_rmse']:.3g} "
                     f"| {b['test_nrmse']:.3g} | | |")
    scen = [(label, r["per_scenario_test_rmse"]) for label, r in rows
            if r.get("per_scenario_test_rmse")]
    if scen:
        tags = sorted({t for _, ps in scen for t in ps})
        lines += ["", f"Test RMSE per scenario ({unit}, mean ± sd over runs; "
                  + ", ".join(f"{t} = {SCENARIO_NAMES.get(t, t)}" for t in tags) + ")", "",
                  "| model | " + " | ".join(tags) + " |", "|---|" + "---|" * len(tags)]
        for label, ps in scen:
            lines.append(f"| {label} | " + " | ".join(
                f"{ps[t]['mean']:.3g} ± {ps[t]['sd']:.2g} ({ps[t]['n_sequences']} seq)"
                if t in ps else "" for t in tags) + " |")
        for name, b in table.get("baselines", {}).items():
            if "per_scenario_test_rmse" in b:
                lines.append(f"| *{BASELINE_LABELS[name]}* | " + " | ".join(
                    f"{b['per_scenario_test_rmse'][t]:.3g}" if t in b["per_scenario_test_rmse"]
                    else "" for t in tags) + " |")
    if "paired" in table:
        unit_ = table.get("unit", "mV")
        lines += ["", f"Paired: test RMSE without the inputs minus with all inputs, run by run "
                  f"(same initialisation seed and split), {unit_}", "",
                  "| model | mean ± sd of the difference | runs worse without the inputs |",
                  "|---|---|---|"]
        for label, p in table["paired"].items():
            if "diff_mean" in p:
                lines.append(f"| {label} | {p['diff_mean']:+.3g} ± {p['diff_sd']:.2g} "
                             f"| {p['n_worse']} of {p['n_runs']} |")
    if "saliency" in table:
        s = table["saliency"]
        lines += ["", "Gradient saliency (rows: inputs, columns: outputs; z-scored units)", "",
                  "| input | " + " | ".join(s["outputs"]) + " |",
                  "|---|" + "---|" * len(s["outputs"])]
        for name, row in zip(s["inputs"], s["matrix"]):
            lines.append(f"| {name} | " + " | ".join(f"{v:.3g}" for v in row) + " |")
    return "\n".join(lines)


def mean_baselines(data, split_seed: int = 0, split: dict | None = None) -> dict:
    """Test RMSE (data unit and z-scored) of two trivial predictors fitted on the training
    split: the constant per-output mean, and the mean trace over training sequences (which
    captures the common settling from the initial state). A ROM must beat these to have
    learnt anything input-specific. ``split``: explicit indices (default: the seeded split)."""
    split = split or split_indices(data, SplitConfig(seed=split_seed))
    tr, te = data.outputs[:, split["train"]], data.outputs[:, split["test"]]
    sd = tr.std(axis=(0, 1))
    out = {}
    for name, pred in (("constant_mean", tr.mean(axis=(0, 1))),
                       ("mean_trace", tr.mean(axis=1, keepdims=True))):
        err = te - pred
        out[name] = {"test_rmse": float(np.sqrt((err**2).mean())),
                     "test_nrmse": float(np.sqrt(((err / sd) ** 2).mean()))}
        # two-scenario sets: the same predictor, per scenario (columns of the test block)
        col = {i: j for j, i in enumerate(split["test"])}
        for tag, idx in _by_scenario(data.names, split["test"]).items():
            out[name].setdefault("per_scenario_test_rmse", {})[tag] = float(
                np.sqrt((err[:, [col[i] for i in idx]] ** 2).mean()))
    return out


def data_size_curve(data, ntrain, *, first: int | None = None, n_test: int = 15,
                    n_val: int = 10, runs: int = 2, epochs: int = 200, lr: float = 1e-2,
                    kind: str = "gru", hidden: int = 8, seed: int = 0,
                    show_progress: bool = False) -> list[dict]:
    """Test RMSE against the number of training sequences, on fixed validation/test sets.

    The first ``first`` sequences (sorted by name, i.e. generation order) are permuted with
    ``seed``; the first ``n_test`` are the test set, the next ``n_val`` the validation set,
    and the training set is the first ``k`` of the rest for each ``k`` in ``ntrain``.
    Each row also has the constant-training-mean test RMSE for the same training set.
    """
    names = sorted(data.names)[: first or len(data.names)]
    idx = [data.names.index(n) for n in names]
    perm = np.random.default_rng(seed).permutation(idx).tolist()
    test, val, rest = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    if not test or not val:
        raise ValueError(f"{len(names)} sequences are too few for {n_test} test + {n_val} val")
    rows = []
    for k in ntrain:
        if not 1 <= k <= len(rest):
            raise ValueError(f"ntrain {k} outside 1..{len(rest)} (sequences left for training)")
        split = {"train": sorted(rest[:k]), "val": sorted(val), "test": sorted(test)}
        res = train_many(data, kind, [hidden] * runs, list(range(seed, seed + runs)),
                         TrainConfig(epochs=epochs, lr=lr), split, show_progress=show_progress)
        tr, te = data.outputs[:, split["train"]], data.outputs[:, test]
        base = float(np.sqrt(((te - tr.mean(axis=(0, 1))) ** 2).mean()))
        row = {"n_first": len(names), "ntrain": k, "epochs": epochs,
               "constant_mean_test_rmse": base, "best_epochs": [r.best_epoch for r in res]}
        for m in ("train_rmse", "val_rmse", "test_rmse", "test_nrmse"):
            row[m] = [r.metrics[m] for r in res]
        rows.append(row)
    return rows
