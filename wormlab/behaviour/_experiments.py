"""Named experiments (splits x models) with resumable JSON results and summary tables.

Experiments (only one Kato worm has traces here, so there is no cross-worm Kato experiment):

* ``kato_kfold``: 5 contiguous time folds within Kato worm 0 (its 32 identified neurons).
* ``flavell_lwo``: leave-worms-out over the 5 NeuroPAL-identified Flavell worms, every
  combination of ``n_test`` test worms, on the neurons all 5 share (results are labelled
  ``flavell_lwo2`` etc. when ``n_test`` > 1).
* ``flavell_lwo_noava``: the same without AVAL/AVAR (the paper's "without AVA" condition,
  which is what Kato worm 0 is).
* ``kato_to_flavell``: train on Kato worm 0, test on the 5 Flavell worms, on the identified
  neurons all 6 share, everything resampled to the Flavell frame rate.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from wormlab.behaviour._config import BehaviourConfig
from wormlab.behaviour._data import (
    check_no_leak,
    cross_dataset,
    kfold_within_worm,
    leave_worms_out,
    resample,
    split_windows,
)
from wormlab.behaviour._edges import compare_edges
from wormlab.behaviour._sources import flavell_worms, kato_worms
from wormlab.behaviour._train import (
    Forecaster,
    forecast_set,
    persistence_mse,
    train_and_evaluate,
)
from wormlab.runs import atomic_path, progress, remove_orphan_tmp

EXPERIMENTS = ("kato_kfold", "flavell_lwo", "flavell_lwo_noava", "kato_to_flavell")

# Wang et al. 2021, forward/reverse accuracy on unseen Kato worms (their Fig./Table; %)
PAPER_FWD_REV = {"svm": 82.8, "mlp": 93.9, "gnn": 97.7}


def experiment_splits(name: str, cfg: BehaviourConfig, *, n_test: int = 1, k: int = 5,
                      max_splits: int = 0):
    """(worms, splits, data config) of a named experiment."""
    d = cfg.data
    if name == "kato_kfold":
        worms = kato_worms()
        splits = kfold_within_worm(worms[0], k, d.window, cfg.train.val_frac)
    elif name in ("flavell_lwo", "flavell_lwo_noava"):
        worms = flavell_worms()
        if name.endswith("noava"):
            d = dataclasses.replace(d, exclude=tuple(sorted({*d.exclude, "AVAL", "AVAR"})))
        splits = leave_worms_out(worms, n_test, d.window, cfg.train.val_frac)
    elif name == "kato_to_flavell":
        fl = flavell_worms()
        fps = d.resample_fps or fl[0].fps
        d = dataclasses.replace(d, resample_fps=fps)
        kato = [resample(w, fps) for w in kato_worms()]
        fl = [resample(w, fps) for w in fl]
        worms = kato + fl
        splits = [cross_dataset(kato, fl, d.window, cfg.train.val_frac)]
    else:
        raise ValueError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    if max_splits:
        splits = splits[:max_splits]
    for s in splits:
        check_no_leak(s)
    return worms, splits, d


def _key(row: dict) -> str:
    return "|".join(str(row[k]) for k in ("experiment", "split", "model", "task", "seed"))


def _load(path: Path | None, must_exist: bool = False) -> list[dict]:
    if path is not None:
        remove_orphan_tmp(path.parent)  # temporaries of a killed run (never a live one's)
    if path is None or not path.exists():
        if must_exist:
            raise FileNotFoundError(f"results file {path} does not exist")
        return []
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a JSON results file ({exc})") from exc
    if not isinstance(rows, list):
        raise ValueError(f"{path} is not a JSON list of result rows")
    return rows


def _save(path: Path | None, rows: list[dict]) -> None:
    if path is None:
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(rows, indent=1, default=float))


def run_classification(experiment: str, models, cfg: BehaviourConfig, *, out: str | None = None,
                       n_test: int = 1, max_splits: int = 0, edges: bool = True,
                       n_perm: int = 500, train_stride: int = 1,
                       verbose: bool = False) -> list[dict]:
    """Train/evaluate every model on every split of ``experiment``.

    Results are appended to the JSON list at ``out`` after each (split, model), so a killed run
    resumes where it stopped. Each row holds overall and per-worm accuracy, balanced accuracy,
    confusion matrices, the majority-class baseline, the neurons used and, for inferred-edge
    models, the comparison of the test worm's edges with the connectome. ``train_stride`` > 1
    keeps every k-th training window (smoke runs only).
    """
    path = Path(out) if out else None
    rows = _load(path)
    done = {_key(r) for r in rows}
    worms, splits, dcfg = experiment_splits(experiment, cfg, n_test=n_test,
                                            max_splits=max_splits)
    cfg = dataclasses.replace(cfg, data=dcfg)
    if n_test > 1 and "lwo" in experiment:
        experiment = f"{experiment}{n_test}"  # e.g. flavell_lwo2: two unseen worms per split
    jobs = [(s, m) for s in splits for m in models]
    for split, model in progress(jobs, desc=experiment):
        row = {"experiment": experiment, "split": split.name, "model": model,
               "task": dcfg.task, "seed": cfg.train.seed}
        if _key(row) in done:
            continue
        mcfg = cfg.replace(model={"name": model})
        tr, va, te, names = split_windows(worms, split, dcfg)
        if train_stride > 1:
            tr = tr.subset(np.arange(0, len(tr), train_stride))
        t0 = time.perf_counter()
        dec, res = train_and_evaluate(mcfg, tr, va, te, verbose=verbose)
        row.update(accuracy=res["accuracy"], balanced_accuracy=res["balanced_accuracy"],
                   majority_accuracy=res["majority"]["accuracy"],
                   confusion=res["confusion"], per_worm=res["per_worm"],
                   classes=list(tr.classes), neurons=names, n_train=len(tr), n_val=len(va),
                   n_test=len(te), test_worms=list(split.test_worms),
                   best_epoch=res["best_epoch"], seconds=time.perf_counter() - t0,
                   config=mcfg.to_dict())
        if edges and model in ("gnn", "gnn_static", "gnn_lstm"):
            row["edges"] = {}
            for k, wid in enumerate(te.worm_ids):
                w = dec.edges(te, k)
                row["edges"][wid] = compare_edges(w, names, n_perm=n_perm, seed=cfg.train.seed)
        rows.append(row)
        _save(path, rows)
    return [r for r in rows if r["experiment"] == experiment]


def run_forecasting(models, cfg: BehaviourConfig, *, out: str | None = None, n_test: int = 1,
                    max_splits: int = 0, stride: int = 2, train_stride: int = 1,
                    verbose: bool = False) -> list[dict]:
    """Leave-worms-out forecasting on the Flavell worms: MSE per step 1..horizon of a pure
    rollout on the unseen worm(s), with the persistence baseline (X_{t+k} = X_t)."""
    path = Path(out) if out else None
    rows = _load(path)
    done = {_key(r) for r in rows}
    worms = flavell_worms()
    tc = cfg.train
    splits = leave_worms_out(worms, n_test, 1, tc.val_frac)
    if max_splits:
        splits = splits[:max_splits]
    from wormlab.behaviour._data import shared_names

    names = shared_names(worms, cfg.data)
    for split, model in progress([(s, m) for s in splits for m in models], desc="forecast"):
        row = {"experiment": "forecast_lwo", "split": split.name, "model": model,
               "task": "forecast", "seed": tc.seed}
        if _key(row) in done:
            continue
        mk = lambda ends, st: forecast_set(worms, ends, names, tc.forecast_window,  # noqa: E731
                                           tc.horizon, st)
        tr, va, te = mk(split.train, train_stride), mk(split.val, stride), mk(split.test, stride)
        t0 = time.perf_counter()
        fc = Forecaster(cfg.replace(model={"name": model}), names).fit(tr, va, verbose=verbose)
        row.update(mse=fc.mse_per_step(te).tolist(),
                   persistence=persistence_mse(te, tc.forecast_window, tc.horizon).tolist(),
                   n_train=len(tr.seq), n_test=len(te.seq), neurons=names,
                   test_worms=list(split.test_worms), best_epoch=fc.history.best_epoch,
                   seconds=time.perf_counter() - t0)
        rows.append(row)
        _save(path, rows)
    return [r for r in rows if r["experiment"] == "forecast_lwo"]


def summary_table(rows, metric: str = "accuracy"):
    """pandas table models x experiments of ``mean +- sd`` (in %) over splits, with n."""
    import pandas as pd

    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame([{k: r[k] for k in ("experiment", "model", "split", metric)}
                       for r in rows])
    g = df.groupby(["model", "experiment"])[metric]
    cell = g.apply(lambda s: f"{100 * s.mean():.1f} ± {100 * s.std(ddof=0):.1f} (n={len(s)})")
    table = cell.unstack("experiment")
    if metric == "accuracy":
        table["paper (Kato fwd/rev)"] = [f"{PAPER_FWD_REV[m]:.1f}" if m in PAPER_FWD_REV else ""
                                         for m in table.index]
    return table


def paired_table(rows, ref: str = "mlp", metric: str = "balanced_accuracy"):
    """Per model x experiment: mean over splits of (model - ``ref``) on the same split, in
    points, with how many splits the model is strictly better (``+1.2 (4/5)``)."""
    import pandas as pd

    by = {}
    for r in rows:
        by.setdefault((r["experiment"], r["split"]), {})[r["model"]] = r[metric]
    out = {}
    for (exp, _), d in sorted(by.items()):
        if ref not in d:
            continue
        for m, v in d.items():
            if m != ref:
                out.setdefault((m, exp), []).append(v - d[ref])
    if not out:
        return pd.DataFrame()
    cells = {k: f"{100 * np.mean(v):+.1f} ({sum(x > 0 for x in v)}/{len(v)})"
             for k, v in out.items()}
    s = pd.Series(cells)
    s.index = pd.MultiIndex.from_tuples(s.index, names=["model", "experiment"])
    return s.unstack("experiment").fillna("")


def edge_table(rows):
    """Inferred edges vs the connectome per (experiment, model, test worm)."""
    import pandas as pd

    out = []
    for r in rows:
        for wid, e in (r.get("edges") or {}).items():
            out.append({"experiment": r["experiment"], "model": r["model"], "worm": wid,
                        "spearman": e["spearman"], "p_spearman": e["p_spearman"],
                        "auroc": e["auroc"], "p_auroc": e["p_auroc"],
                        "n_connected": e["n_connected"], "n_pairs": e["n_pairs"]})
    return pd.DataFrame(out)


def forecast_table(rows, steps=(1, 2, 4, 8, 16)):
    """Mean MSE per step over splits, per model, with the persistence baseline."""
    import pandas as pd

    if not rows:
        return pd.DataFrame()
    recs = {}
    for r in rows:
        recs.setdefault(r["model"], []).append(r["mse"])
        recs.setdefault("persistence", []).append(r["persistence"])
    return pd.DataFrame({m: {f"step {s}": float(np.mean([v[s - 1] for v in vals]))
                             for s in steps if s <= len(vals[0])}
                         for m, vals in recs.items()}).T


def time_table(rows):
    """Median wall seconds per split (train + evaluate) per model x experiment (the task is
    named unless it is ``fwd_rev`` or forecasting)."""
    import pandas as pd

    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame([{"experiment": r["experiment"] if r["task"] in ("fwd_rev", "forecast")
                        else f"{r['experiment']} ({r['task']})",
                        "model": r["model"], "seconds": r["seconds"]} for r in rows])
    return df.groupby(["model", "experiment"])["seconds"].median().round(0).unstack("experiment")


def _md(df, index_name: str = "") -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join([index_name or (df.index.name or "")] + cols) + " |",
             "|" + "---|" * (len(cols) + 1)]
    for idx, row in df.iterrows():
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.tolist()]
        lines.append("| " + " | ".join([str(idx)] + cells) + " |")
    return "\n".join(lines)


def _correlation_baseline(rows):
    """The same comparison for |correlation| graphs of the test worms (no model)."""
    import pandas as pd

    from wormlab.behaviour._edges import correlation_edges

    worms = {w.worm_id: w for w in kato_worms() + flavell_worms()}
    out = {}
    for exp in sorted({r["experiment"] for r in rows if r.get("edges")}):
        r0 = next(r for r in rows if r["experiment"] == exp and r.get("edges"))
        names = r0["neurons"]
        tests = sorted({w for r in rows if r["experiment"] == exp for w in r["test_worms"]})
        res = [compare_edges(correlation_edges(worms[w], names), names, n_perm=500)
               for w in tests if w in worms]
        if res:
            out[f"{exp} · abs-corr baseline"] = {
                "spearman": np.mean([e["spearman"] for e in res]),
                "p_spearman": np.mean([e["p_spearman"] for e in res]),
                "auroc": np.mean([e["auroc"] for e in res]),
                "p_auroc": np.mean([e["p_auroc"] for e in res]),
                "n": len(res), "n_sig": int(sum(e["p_auroc"] < 0.05 for e in res))}
    return pd.DataFrame(out).T.round(3)


def report_markdown(classification=None, forecast: str | None = None) -> str:
    """Markdown tables (for docs/behaviour.md) from the JSON results of the runs."""
    import pandas as pd

    parts = []
    files = [classification] if isinstance(classification, str) else list(classification or [])
    rows, seen = [], set()
    for f in files:  # several result files (e.g. runs made in parallel) are merged
        for r in _load(Path(f), must_exist=True):
            if _key(r) not in seen:
                seen.add(_key(r))
                rows.append(r)
    for task in sorted({r["task"] for r in rows}):
        sel = [r for r in rows if r["task"] == task]
        for metric in ("accuracy", "balanced_accuracy"):
            t = summary_table(sel, metric)
            if task != "fwd_rev" and "paper (Kato fwd/rev)" in t:
                t = t.drop(columns="paper (Kato fwd/rev)")
            parts.append(f"**{task}: {metric.replace('_', ' ')} (%), mean ± sd over splits**"
                         f"\n\n{_md(t, 'model')}")
        # one value per split (every model of a split shares it); sd as in the other tables
        pt = paired_table(sel)
        if len(pt):
            parts.append(f"**{task}: balanced accuracy minus the mlp's on the same split (points; "
                         f"mean over splits, and in how many splits the model is better)**"
                         f"\n\n{_md(pt, 'model')}")
        maj = (pd.DataFrame(sel).drop_duplicates(["experiment", "split"])
               .groupby("experiment")["majority_accuracy"]
               .agg(mean="mean", std=lambda s: s.std(ddof=0)))
        maj = (100 * maj).round(1)
        parts.append(f"**{task}: majority-class baseline accuracy (%)**\n\n{_md(maj)}")
        per = [{"model": r["model"], "worm": w.split("/")[-1], "bal": m["balanced_accuracy"]}
               for r in sel if r["experiment"] == "flavell_lwo"
               for w, m in r["per_worm"].items()]
        if per:
            p = pd.DataFrame(per).pivot(index="worm", columns="model", values="bal").round(3)
            parts.append(f"**{task}: balanced accuracy per unseen Flavell worm**\n\n{_md(p)}")
        et = edge_table(sel)
        if len(et):
            g = et.groupby(["experiment", "model"]).agg(
                spearman=("spearman", "mean"), p_spearman=("p_spearman", "mean"),
                auroc=("auroc", "mean"), p_auroc=("p_auroc", "mean"),
                n=("worm", "count"), n_sig=("p_auroc", lambda s: int((s < 0.05).sum())))
            g.index = [f"{a} · {b}" for a, b in g.index]
            g = pd.concat([g, _correlation_baseline(sel)])
            parts.append(f"**{task}: inferred edges vs Cook 2019 chemical synapses (mean over test "
                         f"worms or folds, n of them; n_sig = how many with p_auroc < 0.05)**\n\n"
                         f"{_md(g.round(3), 'experiment · model')}")
    frows = _load(Path(forecast), must_exist=True) if forecast else []
    if frows:
        parts.append("**forecasting: MSE per step on unseen Flavell worms (normalised traces; "
                     f"mean over {len({r['split'] for r in frows})} splits)**\n\n"
                     + _md(forecast_table(frows).round(5), "model"))
    if rows or frows:
        t = time_table(rows + frows)
        parts.append("**wall seconds per split (train + evaluate; median over splits, one "
                     "thread, nice'd on the shared loaded 2-core machine)**\n\n"
                     + _md(t.astype(object).where(t.notna(), ""), "model"))
    return "\n\n".join(parts)
