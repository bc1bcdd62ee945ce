"""Ship a frame decoder through the model registry (``wormlab.models``), kind ``behaviour.frames``.

:func:`ship_frame_decoder` trains a (logistic-regression) frame decoder on all Flavell worms
but one -- ``model="best"`` chooses it by leave-one-worm-out CV on those training worms only --
scores the held-out worm, and writes ``data/models/<name>/`` (weights, cut-off, neurons,
feature spec; the manifest names the training and held-out worms and the inner CV scores).
The verifier recomputes the held-out balanced accuracy from the shipped tensors and the shared
recording (skipped where ``../shared/data`` is absent); :func:`load_frame_decoder` gives a
ready :class:`~wormlab.behaviour._frames.FrameDecoder`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

SHIPPED_KIND = "behaviour.frames"


def _spec_from(config: dict):
    from wormlab.behaviour._frames import FrameSpec

    s = dict(config["spec"])
    s["lags"], s["scales"] = tuple(s["lags"]), tuple(s["scales"])
    return FrameSpec(**s)


def _decoder(tensors: dict, config: dict):
    """A fitted FrameDecoder rebuilt from shipped tensors (no training)."""
    from sklearn.linear_model import LogisticRegression

    from wormlab.behaviour._config import DataConfig
    from wormlab.behaviour._frames import FrameDecoder

    spec = _spec_from(config)
    cfg = DataConfig(task=config["task"], window=int(config["first_frame"]) + 1)
    dec = FrameDecoder(spec, config["names"], cfg, first_frame=int(config["first_frame"]))
    clf = LogisticRegression()
    clf.coef_ = tensors["coef"].double().numpy()
    clf.intercept_ = tensors["intercept"].double().numpy()
    clf.classes_ = np.arange(len(config["classes"]))
    n_feat = clf.coef_.shape[1]
    clf.n_features_in_ = n_feat
    dec.clf = clf
    thr = float(tensors["threshold"].item())
    dec.threshold = thr if thr >= 0 else None
    return dec


def load_frame_decoder(name: str):
    """The shipped frame decoder ``name`` as a fitted ``FrameDecoder`` (checks by the registry:
    hash, size, kind)."""
    from wormlab import models

    tensors, m = models.load(name, kind=SHIPPED_KIND)
    return _decoder(tensors, m["config"])


def _heldout_worm(worm_id: str):
    from wormlab.behaviour._sources import worm_from_recording
    from wormlab.models import VerifySkipped
    from wormlab.paths import shared_data_dir

    if shared_data_dir() is None:
        raise VerifySkipped("the shared recordings folder (../shared/data) is absent")
    from wormlab import recordings

    short = worm_id.split("/", 1)[-1]
    return worm_from_recording(recordings.load_flavell2023(short))


def verify_shipped(name: str, tensors: dict, manifest: dict) -> dict:
    dec = _decoder(tensors, manifest["config"])
    res = dec.evaluate([_heldout_worm(manifest["data"]["heldout"])])
    return {"heldout_balanced_accuracy": res["balanced_accuracy"],
            "heldout_accuracy": res["accuracy"], "n_heldout": float(res["n"])}


def ship_frame_decoder(name: str, heldout: str = "2022-07-27-45", model: str = "best", *,
                       command: str, seed: int = 0, tolerance: float = 1e-6) -> Path:
    """Train ``model`` on the identified Flavell worms except ``heldout``, score ``heldout``,
    and ship it as ``name``. Returns the manifest path.

    Only logistic-regression decoders have a tensor form here; ``hgb`` is refused.
    """
    import torch

    from wormlab import models
    from wormlab.behaviour._config import DataConfig
    from wormlab.behaviour._data import shared_names
    from wormlab.behaviour._frames import (
        BEST_CANDIDATES,
        FRAME_MODELS,
        FrameDecoder,
        select_frame_model,
    )
    from wormlab.behaviour._sources import flavell_worms

    cfg = DataConfig()
    worms = flavell_worms()
    ids = [w.worm_id.split("/", 1)[-1] for w in worms]
    if heldout not in ids:
        raise ValueError(f"held-out worm {heldout!r} is not one of the identified Flavell "
                         f"worms: {', '.join(ids)}")
    test = worms[ids.index(heldout)]
    train = [w for w in worms if w is not test]
    names = shared_names(worms, cfg)
    sel = None
    chosen = model
    if model == "best":
        sel = select_frame_model(train, names, cfg, BEST_CANDIDATES, seed=seed)
        chosen = sel["chosen"]
    if chosen not in FRAME_MODELS:
        raise ValueError(f"unknown frame decoder {chosen!r}")
    spec = FRAME_MODELS[chosen]
    if spec.kind != "logreg":
        raise ValueError(f"frame decoder {chosen!r} ({spec.kind}) has no tensor form to ship; "
                         "ship a logreg decoder")
    dec = FrameDecoder(chosen, names, cfg, seed=seed).fit(train)
    res = dec.evaluate([test])
    tensors = {"coef": torch.from_numpy(np.ascontiguousarray(dec.clf.coef_)),
               "intercept": torch.from_numpy(np.ascontiguousarray(dec.clf.intercept_)),
               "threshold": torch.tensor([-1.0 if dec.threshold is None else dec.threshold],
                                         dtype=torch.float64)}
    config = {"spec": asdict(spec), "names": list(dec.names), "task": cfg.task,
              "classes": list(dec.classes), "first_frame": dec.first_frame,
              "features": "per-worm z-scored traces, derivatives and differences "
                          "(wormlab.behaviour._frames.frame_features)"}
    data = {"dataset": "flavell2023 (Dag et al. 2023, Cell 186:2574), ../shared/data",
            "train": [w.worm_id for w in train], "heldout": test.worm_id,
            "model": model, "chosen": chosen, "seed": seed,
            "selection": None if sel is None else {"inner_mean": sel["inner_mean"],
                                                    "inner": sel["inner"]}}
    return models.save(name, tensors, kind=SHIPPED_KIND, config=config, command=command,
                       data=data,
                       metrics={"heldout_balanced_accuracy": res["balanced_accuracy"],
                                "heldout_accuracy": res["accuracy"],
                                "n_heldout": float(res["n"])},
                       tolerance={"heldout_balanced_accuracy": tolerance,
                                  "heldout_accuracy": tolerance, "n_heldout": 0.0})


# ------------------------------------------------------------------ the notebook's tables
TABLES_KIND = "behaviour.tables"
#: the classification + forecasting tables that notebook 06 shows in full mode (fwd_rev)
DEFAULT_TABLES = "behaviour_tables_fwd_rev"


def _table_params(cls_rows: list[dict]) -> dict:
    """The notebook parameters the rows were made with (task, window, epochs, seed)."""
    from wormlab.behaviour._config import BehaviourConfig

    keys = set()
    for r in cls_rows:
        c = BehaviourConfig.from_dict(r["config"])
        keys.add((c.data.task, c.data.window, c.train.epochs, c.train.seed))
    if len(keys) != 1:
        raise ValueError(f"the classification rows mix settings (task, window, epochs, seed): "
                         f"{sorted(keys)}")
    task, window, epochs, seed = keys.pop()
    return {"task": task, "window": window, "epochs": epochs, "seed": seed}


def _spot_checks(cls_rows: list[dict], fc_rows: list[dict]) -> dict:
    """The rows verify recomputes: every svm row of each experiment, the mlp row of the
    first split of each experiment, and the mlp forecasting row of the first split."""
    out = {}
    for exp in sorted({r["experiment"] for r in cls_rows}):
        rows = [r for r in cls_rows if r["experiment"] == exp]
        first = rows[0]["split"]
        for m in ("svm", "mlp"):
            sel = [r for r in rows if r["model"] == m and (m == "svm" or r["split"] == first)]
            if sel:
                out[f"{exp}/{m}/balanced_accuracy"] = float(
                    np.mean([r["balanced_accuracy"] for r in sel]))
    fc = [r for r in fc_rows if r["model"] == "mlp"]
    if fc:
        out["forecast_lwo/mlp/split0_mse_step1"] = float(fc[0]["mse"][0])
    return out


def _recompute(cls_rows: list[dict], fc_rows: list[dict]) -> dict:
    from wormlab.behaviour._config import BehaviourConfig
    from wormlab.behaviour._experiments import run_classification, run_forecasting

    out = {}
    for exp in sorted({r["experiment"] for r in cls_rows}):
        rows = [r for r in cls_rows if r["experiment"] == exp]
        cfg = BehaviourConfig.from_dict(rows[0]["config"])
        n_test = len(rows[0]["test_worms"]) if "lwo" in exp else 1
        base = exp[:-1] if n_test > 1 and exp[-1].isdigit() else exp
        if any(r["model"] == "svm" for r in rows):
            res = run_classification(base, ["svm"], cfg, n_test=n_test, edges=False)
            out[f"{exp}/svm/balanced_accuracy"] = float(
                np.mean([r["balanced_accuracy"] for r in res]))
        if any(r["model"] == "mlp" for r in rows):
            res = run_classification(base, ["mlp"], cfg, n_test=n_test, max_splits=1,
                                     edges=False)
            out[f"{exp}/mlp/balanced_accuracy"] = float(res[0]["balanced_accuracy"])
    fc = [r for r in fc_rows if r["model"] == "mlp"]
    if fc:
        cfg = BehaviourConfig.from_dict(cls_rows[0]["config"])
        res = run_forecasting(["mlp"], cfg, max_splits=1)
        out["forecast_lwo/mlp/split0_mse_step1"] = float(res[0]["mse"][0])
    return out


def _tables_from(tensors: dict) -> tuple[list[dict], list[dict]]:
    from wormlab.models import tensor_json

    d = tensor_json(tensors["tables_json_utf8"])
    return d["classification"], d["forecast"]


def verify_tables(name: str, tensors: dict, manifest: dict) -> dict:
    from wormlab.models import VerifySkipped
    from wormlab.paths import shared_data_dir

    if shared_data_dir() is None:
        raise VerifySkipped("the shared recordings folder (../shared/data) is absent")
    cls_rows, fc_rows = _tables_from(tensors)
    return _recompute(cls_rows, fc_rows)


def ship_tables(classification: str | Path, forecast: str | Path, *, command: str,
                name: str = DEFAULT_TABLES, tolerance: float = 1e-6,
                made_by: str = "wormlab run 06_behaviour (full mode, default parameters), "
                               "which writes reports/behaviour/*.json") -> Path:
    """Ship the result tables of a full notebook-06 run (``reports/behaviour/*.json``) so that
    a fresh clone shows them without retraining every decoder on every split. Stored as the
    UTF-8 bytes of one JSON document (sha256-checked like any shipped model); ``verify``
    retrains the spot-check rows (:func:`_spot_checks`) and compares."""

    from wormlab import models

    cls_rows = json.loads(Path(classification).read_text())
    fc_rows = json.loads(Path(forecast).read_text())
    if not cls_rows or not isinstance(cls_rows, list):
        raise ValueError(f"{classification}: no classification rows")
    params = _table_params(cls_rows)
    fc_rows = [r for r in fc_rows if r["seed"] == params["seed"]]
    tensors = {"tables_json_utf8": models.json_tensor({"classification": cls_rows,
                                                       "forecast": fc_rows})}
    metrics = _spot_checks(cls_rows, fc_rows)
    summary = {}
    for r in cls_rows:
        summary.setdefault(f"{r['experiment']}/{r['model']}", []).append(r["balanced_accuracy"])
    config = {"notebook_parameters": params,
              "models": sorted({r["model"] for r in cls_rows}),
              "experiments": sorted({r["experiment"] for r in cls_rows}),
              "forecast_models": sorted({r["model"] for r in fc_rows}),
              "rows": {"classification": len(cls_rows), "forecast": len(fc_rows)}}
    data = {"dataset": "Kato et al. 2015 (Cell 163:656) and Flavell-lab Dag et al. 2023 "
                       "(Cell 186:2574), ../shared/data (never copied here)",
            "what": "per-split result rows of wormlab.behaviour.run_classification / "
                    "run_forecasting, as notebook 06 writes them to reports/behaviour/",
            "made_by": made_by,
            "balanced_accuracy_mean": {k: float(np.mean(v)) for k, v in sorted(summary.items())},
            "train_seconds": float(sum(r.get("seconds", 0.0) for r in cls_rows + fc_rows))}
    return models.save(name, tensors, kind=TABLES_KIND, config=config, command=command,
                       data=data, metrics=metrics, tolerance=tolerance)


def seed_results(results_dir: str | Path, *, task: str, window: int, epochs: int, seed: int,
                 models_wanted, name: str = DEFAULT_TABLES) -> dict | None:
    """Put the shipped tables into ``results_dir`` (``classification.json``, ``forecast.json``)
    when they are absent there and the shipped rows were made with these notebook parameters
    and cover ``models_wanted``; the notebook's runs then resume with nothing left to train.
    Returns the shipped model's summary, or ``None`` (nothing written) when the parameters
    differ, a model is missing or results already exist."""
    from wormlab import models
    from wormlab.runs import atomic_path

    results_dir = Path(results_dir)
    cls_path, fc_path = results_dir / "classification.json", results_dir / "forecast.json"
    if cls_path.exists() or fc_path.exists():
        return None
    tensors, m = models.load(name, kind=TABLES_KIND)
    want = {"task": task, "window": int(window), "epochs": int(epochs), "seed": int(seed)}
    if m["config"]["notebook_parameters"] != want or not set(models_wanted) <= set(
            m["config"]["models"]):
        return None
    cls_rows, fc_rows = _tables_from(tensors)
    results_dir.mkdir(parents=True, exist_ok=True)
    for path, rows in ((cls_path, cls_rows), (fc_path, fc_rows)):
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(rows, indent=1))
    return {"name": name, "sha256": m["sha256"], "command": m["command"],
            "commit": m["code_version"].get("commit"), "rows": m["config"]["rows"],
            "train_seconds": m["data"]["train_seconds"]}


def _register() -> None:
    from wormlab.models import register_verifier

    register_verifier(SHIPPED_KIND, verify_shipped)
    register_verifier(TABLES_KIND, verify_tables)


_register()
