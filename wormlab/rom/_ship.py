"""Ship a trained experiment-table ROM through the model registry (``wormlab.models``).

``ship_row(table_json, label, name)`` picks, among the runs of one table row, the checkpoint
with the lowest validation RMSE, and writes it to ``data/models/<name>/`` with a manifest
(table, row, run, data folder, generator, split ids, metrics) and the held-out test outputs
(``heldout_test.safetensors``, float16). The test inputs are not stored: they follow from the
generator config recorded in the data folder's ``columns.json`` (:func:`~wormlab.rom.stimuli`,
milliseconds), and a checksum per sequence in the manifest catches a changed stimulus library.

The verifier of kind ``rom.model`` recomputes the test RMSE of the shipped model on those
held-out sequences; ``wormlab models verify`` runs it. The shipped file is also an ordinary
``rom`` checkpoint (:func:`~wormlab.rom.load_model` reads it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

SHIPPED_KIND = "rom.model"
HELDOUT_FILE = "heldout_test.safetensors"


def _fail(msg: str):
    from wormlab.models import ModelError

    raise ModelError(msg)


def _generator(data_dir: Path) -> dict:
    side = Path(data_dir) / "columns.json"
    try:
        gen = json.loads(side.read_text())["generator"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{side}: no readable 'generator' entry ({exc!r}); shipping needs a "
                         "data folder written by `wormlab rom generate`, whose stimuli can be "
                         "regenerated") from None
    return gen


def _stimuli(gen: dict, names: list[str], dt_s: float) -> np.ndarray:
    """The input currents ``(T, len(names), M)`` in nA of the named sequences, regenerated."""
    from wormlab.rom._generate import config_from_json, stimuli

    cfg = config_from_json(json.dumps(gen))
    all_names, _, cur = stimuli(cfg)
    missing = [n for n in names if n not in all_names]
    if missing:
        raise ValueError(f"sequences {missing[:3]} are not produced by the recorded generator "
                         f"({len(all_names)} sequences)")
    every = int(round(dt_s * 1000.0 / min(cfg.sample_dt_ms)))
    return cur[::every][:, [all_names.index(n) for n in names]]


def _checksums(inputs: np.ndarray) -> list[float]:
    return [float(np.abs(inputs[:, i]).sum()) for i in range(inputs.shape[1])]


def _test_rmse(model, inputs: np.ndarray, outputs: np.ndarray) -> float:
    import torch

    from wormlab.rom._train import rmse

    x = torch.as_tensor(inputs, dtype=torch.float32)
    y = torch.as_tensor(outputs, dtype=torch.float32)
    return rmse(model, x, y)[0]


def ship_row(table_json, label: str, name: str, *, command: str,
             tolerance: float = 0.05) -> Path:
    """Ship the best-validation run of row ``label`` of an experiment table as ``name``.

    Returns the manifest path. Metrics: ``test_rmse`` (data unit, on the shipped float16 test
    outputs; verified within ``tolerance``), ``val_rmse`` and ``test_rmse_float64`` (the
    table's data; documented), ``row_test_rmse_mean`` / ``_sd`` (all runs of the row).
    """
    from safetensors.torch import save_file

    from wormlab import models
    from wormlab.rom._experiments import _checkpoints, table_data
    from wormlab.rom._format import load
    from wormlab.rom._models import load_model
    from wormlab.runs import atomic_path

    table_json = Path(table_json)
    table = json.loads(table_json.read_text())
    if label not in table.get("rows", {}):
        raise KeyError(f"{table_json}: no row {label!r} (rows: {sorted(table.get('rows', {}))})")
    row = table["rows"][label]
    if row.get("dropped"):
        raise ValueError(f"{table_json}: row {label!r} drops inputs {row['dropped']}; ship "
                         "an all-inputs row")
    data_dir = Path(table["data"])
    gen = _generator(data_dir)
    data, split = table_data(load(data_dir), table.get("split_seed", 0), table.get("first"),
                             table.get("base_split"))
    paths = _checkpoints(table_json, table, label)
    xs = {k: (data.inputs[:, split[k]], data.outputs[:, split[k]]) for k in ("val", "test")}
    scores = []
    for p in paths:
        m = load_model(p)
        scores.append({k: _test_rmse(m, *xs[k]) for k in xs})
    best = int(np.argmin([s["val"] for s in scores]))
    model = load_model(paths[best])
    test_names = [data.names[i] for i in split["test"]]
    x_test = _stimuli(gen, test_names, data.dt_s)
    if not np.allclose(x_test, xs["test"][0], rtol=1e-6, atol=1e-9):
        raise ValueError(f"{data_dir}: the regenerated stimuli differ from the files' inputs "
                         f"(max |diff| {np.abs(x_test - xs['test'][0]).max():.3g} nA)")
    y16 = xs["test"][1].astype(np.float16)
    folder = models.model_path(name).parent  # checks the name
    folder.mkdir(parents=True, exist_ok=True)
    import torch

    held = folder / HELDOUT_FILE
    with atomic_path(held) as tmp:
        save_file({"outputs": torch.from_numpy(y16).contiguous()}, str(tmp),
                  metadata={"ids_json": json.dumps(test_names)})
    from safetensors import safe_open

    with safe_open(str(paths[best]), framework="pt") as f:
        meta = dict(f.metadata() or {})  # the checkpoint's own metadata: load_model reads it
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    config = {"kind": model.kind, "n_inputs": model.n_inputs, "n_hidden": model.n_hidden,
              "n_outputs": model.n_outputs}
    test_rmse = _test_rmse(model, x_test, y16.astype(np.float64))
    unit = data.output_unit
    return models.save(
        name, tensors, kind=SHIPPED_KIND, config=config, command=command,
        data={"table": str(table_json), "row": label, "run": best, "seed": best,
              "checkpoint": str(paths[best]), "data_dir": str(data_dir), "generator": gen,
              "first": table.get("first"), "base_split": table.get("base_split"),
              "split_seed": table.get("split_seed", 0),
              "split_sizes": {k: len(v) for k, v in split.items()},
              "test_ids": test_names, "val_ids": [data.names[i] for i in split["val"]],
              "unit": unit, "dt_s": data.dt_s, "input_names": data.input_names,
              "output_names": data.output_names, "input_checksums": _checksums(x_test),
              "heldout_file": {"file": HELDOUT_FILE, "bytes": held.stat().st_size,
                               "sha256": hashlib.sha256(held.read_bytes()).hexdigest()},
              "provenance": "synthetic: c302 simulated by this project (not animal "
                            "recordings); run chosen by lowest validation RMSE"},
        metrics={"test_rmse": test_rmse, "test_rmse_float64": scores[best]["test"],
                 "val_rmse": scores[best]["val"], "row_test_rmse_mean": row["test_rmse"],
                 "row_test_rmse_sd": row.get("test_rmse_sd", 0.0),
                 "n_test": float(len(test_names))},
        tolerance={"test_rmse": tolerance, "n_test": 0.0}, metadata=meta)


def shipped_heldout(name: str, manifest: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, outputs)`` of a shipped model's test sequences: the outputs from the
    hash-checked file beside it, the inputs regenerated and checked against the manifest."""
    from wormlab.io import meta_json, read_safetensors
    from wormlab.models import models_dir

    d = manifest["data"]
    entry = d.get("heldout_file") or {}
    path = models_dir() / name / Path(str(entry.get("file", HELDOUT_FILE))).name
    if not path.is_file():
        _fail(f"model {name!r}: its held-out file {path} is missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry.get("sha256"):
        _fail(f"model {name!r}: sha256 of {path} is {digest}, the manifest says "
              f"{entry.get('sha256')} (corrupt or replaced held-out file)")
    t, meta = read_safetensors(path, f"held-out file of model {name!r}")
    ids = [str(i) for i in meta_json(meta, "ids_json", path, "held-out file")]
    if ids != list(d["test_ids"]):
        _fail(f"model {name!r}: {path} holds other sequences than the manifest's test_ids")
    x = _stimuli(d["generator"], ids, float(d["dt_s"]))
    got = _checksums(x)
    if not np.allclose(got, d["input_checksums"], rtol=1e-6):
        bad = int(np.argmax(np.abs(np.array(got) - d["input_checksums"])))
        _fail(f"model {name!r}: regenerated stimulus of {ids[bad]} differs from the one the "
              f"model was tested on (sum |I| {got[bad]:.6g} vs {d['input_checksums'][bad]:.6g} "
              "nA; was the stimulus library changed?)")
    return x, t["outputs"].numpy().astype(np.float64)


def verify_shipped(name: str, tensors: dict, manifest: dict) -> dict:
    """Verifier of kind ``rom.model``: test RMSE on the recorded held-out sequences."""
    from wormlab.models import model_path
    from wormlab.rom._models import load_model

    model = load_model(model_path(name))
    cfg = manifest["config"]
    for k in ("kind", "n_inputs", "n_hidden", "n_outputs"):
        if getattr(model, k) != cfg[k]:
            _fail(f"model {name!r}: architecture mismatch at config.{k}: the manifest says "
                  f"{cfg[k]!r}, the file holds {getattr(model, k)!r}")
    x, y = shipped_heldout(name, manifest)
    return {"test_rmse": _test_rmse(model, x, y), "n_test": float(x.shape[1])}


def _register() -> None:
    from wormlab.models import register_verifier

    register_verifier(SHIPPED_KIND, verify_shipped)


_register()
