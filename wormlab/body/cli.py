"""``python -m wormlab.body.cli generate|train|report``: the full-size pipeline.

    python -m wormlab.body.cli generate --sinusoid 960 --nominal 96 --group-scaled 128 \\
        --single-muscle 64
    python -m wormlab.body.cli train --epochs 150 --hidden 48 --modes 24
    python -m wormlab.body.cli report   # accuracy JSON on test + generalisation splits

Files default to ``data/cache/body/`` (``WORMLAB_CACHE``): ``synthetic_elegansbot.h5``,
``surrogate.safetensors``, ``report.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from wormlab.paths import cache_dir


def default_store() -> Path:
    return cache_dir("body") / "synthetic_elegansbot.h5"


def default_model() -> Path:
    return cache_dir("body") / "surrogate.safetensors"


def _generate(a) -> int:
    from wormlab.body._config import DataConfig
    from wormlab.body._generate import generate

    data = DataConfig(duration_s=a.duration, seed=a.seed, n_per_family={
        "nominal": a.nominal, "group_scaled": a.group_scaled, "sinusoid": a.sinusoid,
        "single_muscle": a.single_muscle})
    res = generate(a.store, data, scheduler=a.scheduler, n_workers=a.workers)
    print(json.dumps(res, indent=2))
    return 0 if res["complete"] else 1


def _train(a) -> int:
    from wormlab.body._config import SurrogateConfig
    from wormlab.body._generate import load_store
    from wormlab.body._surrogate import split_data, train_surrogate
    from wormlab.runs import atomic_path, configure_torch, seed_everything

    configure_torch()
    seed_everything(a.seed)
    d = load_store(a.store)
    cfg = SurrogateConfig(hidden_channels=a.hidden, n_modes=a.modes, n_layers=a.layers,
                          n_ensemble=a.ensemble, epochs=a.epochs, batch_size=a.batch,
                          lr=a.lr, seed=a.seed)
    splits = split_data(d, cfg)
    print({k: len(v) for k, v in splits.items()}, flush=True)
    model, hist = train_surrogate(splits, cfg, d["frame_dt_s"], d["body_length_um"],
                                  checkpoint=a.out, time_budget_s=a.time_budget)
    with atomic_path(Path(a.out).with_suffix(".history.json")) as tmp:
        tmp.write_text(json.dumps(hist))
    print(json.dumps({k: v for k, v in hist.items() if not isinstance(v, list)}, indent=2))
    return 0


def accuracy_report(store, model_path) -> dict:
    """Accuracy of a saved surrogate on its test split and the generalisation split."""
    from wormlab.body._generate import load_store
    from wormlab.body._surrogate import evaluate, load_surrogate, split_data

    model, hist = load_surrogate(model_path)
    d = load_store(store)
    splits = split_data(d, model.cfg)
    out = {"model": dataclasses.asdict(model.cfg),
           "n_parameters": sum(p.numel() for p in model.parameters()),
           "sizes": {k: len(v) for k, v in splits.items()},
           "best_epoch": hist.get("best_epoch"), "train_wall_s": hist.get("wall_s"),
           "calibration": hist.get("calibration")}
    for k in ("test", "general"):
        if len(splits[k]):
            r = evaluate(model, splits[k])
            ps = r.pop("per_sample")
            fams = sorted(set(ps["family"]))
            r["by_family_body_rmse_pct_mean"] = {
                f: float(ps["body_rmse_pct"][ps["family"] == f].mean()) for f in fams}
            out[k] = r
    return out


def _report(a) -> int:
    from wormlab.runs import atomic_path

    rep = accuracy_report(a.store, a.model)
    text = json.dumps(rep, indent=2, default=float)
    with atomic_path(a.out) as tmp:
        tmp.write_text(text)
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wormlab.body.cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="simulate training data with ElegansBot (resumable)")
    g.add_argument("--store", type=Path, default=default_store())
    g.add_argument("--duration", type=float, default=4.0, help="seconds per sample")
    g.add_argument("--nominal", type=int, default=48)
    g.add_argument("--group-scaled", type=int, default=96)
    g.add_argument("--sinusoid", type=int, default=480)
    g.add_argument("--single-muscle", type=int, default=64)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--scheduler", default=None, help="dask scheduler address (default: local)")
    g.add_argument("--workers", type=int, default=2)
    g.set_defaults(func=_generate)
    t = sub.add_parser("train", help="train the FNO ensemble")
    t.add_argument("--store", type=Path, default=default_store())
    t.add_argument("--out", type=Path, default=default_model())
    t.add_argument("--hidden", type=int, default=32)
    t.add_argument("--modes", type=int, default=16)
    t.add_argument("--layers", type=int, default=4)
    t.add_argument("--ensemble", type=int, default=3)
    t.add_argument("--epochs", type=int, default=60)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--time-budget", type=float, default=None, help="stop after N seconds")
    t.set_defaults(func=_train)
    r = sub.add_parser("report", help="accuracy on test and generalisation splits")
    r.add_argument("--store", type=Path, default=default_store())
    r.add_argument("--model", type=Path, default=default_model())
    r.add_argument("--out", type=Path, default=cache_dir("body") / "report.json")
    r.set_defaults(func=_report)
    a = p.parse_args(argv)
    return int(a.func(a) or 0)


if __name__ == "__main__":
    sys.exit(main())
