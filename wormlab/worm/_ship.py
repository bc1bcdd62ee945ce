"""Ship the body surrogate fine-tuned on the crawling worm's activations (kind
``worm.surrogate``, default name ``body_surrogate_crawl``).

The file is the surrogate checkpoint itself (``wormlab.body`` loads it). Two held-out sets are
verified: the model's ``crawl`` test runs (activations and ElegansBot outputs shipped beside it,
float16: the activations come from closed-loop runs and cannot be rebuilt from a
spec) and the generic test set of the shipped ``body_surrogate`` (its own held-out file), so
that a fine-tuning that forgot the generic families shows in the manifest.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

KIND = "worm.surrogate"
NAME = "body_surrogate_crawl"
BASE = "body_surrogate"


def _split(act, com, tan, family, ids):
    from wormlab.body._surrogate import Split

    return Split(np.asarray(act, np.float32), np.asarray(com, np.float32),
                 np.asarray(tan, np.float32), np.asarray(family), np.asarray(ids))


def _metrics(model, crawl, generic) -> dict:
    from wormlab.body._surrogate import evaluate

    out = {}
    for tag, sp in (("crawl", crawl), ("generic", generic)):
        r = evaluate(model, sp)
        out[f"{tag}_test_body_rmse_pct_mean"] = float(r["body_rmse_pct_mean"])
        out[f"{tag}_n_test"] = float(len(sp))
        for k in ("forward_speed_err_pct_median", "wavelength_err_pct_median"):
            if np.isfinite(r[k]):  # undefined when no test sample moves / shows a wave
                out[f"{tag}_test_{k}"] = float(r[k])
    return out


def _generic_test():
    from wormlab import models
    from wormlab.body._paths import heldout_data

    d = heldout_data(models.manifest(BASE), "test", show_progress=False)
    return _split(d["activation"], d["com_um"], d["tangent_rad"], d["family"], d["id"])


def _crawl_test(name: str):
    from wormlab import models

    got = models.read_heldout(name, "crawl_test")
    if got is None:
        raise models.ModelError(f"model {name!r} names no crawl_test held-out file")
    t, ids = got
    return _split(t["activation"].float().numpy(), t["com_um"].float().numpy(),
                  t["tangent_rad"].float().numpy(), np.array(["crawl"] * len(ids)), ids)


def load_crawl_surrogate(name: str = NAME):
    """``(model, manifest)``: the shipped crawl-tuned surrogate after the registry's checks."""
    from wormlab import models
    from wormlab.body._surrogate import load_surrogate

    path = models.checked_path(name, kind=KIND)
    model, _ = load_surrogate(path)
    return model, models.manifest(name)


def verify_crawl_surrogate(name: str, tensors: dict, manifest: dict) -> dict:
    model, _ = load_crawl_surrogate(name)
    return _metrics(model, _crawl_test(name), _generic_test())


def ship_crawl_surrogate(checkpoint: str | Path, stores, *, command: str, data_commands: dict,
                         name: str = NAME, tolerance: float = 0.05) -> Path:
    """Ship ``checkpoint`` (trained by ``python -m wormlab.body.cli train --store ...``) with
    its crawl test samples and the metrics on both held-out sets."""
    from wormlab import models
    from wormlab.body._generate import load_stores
    from wormlab.body._surrogate import load_surrogate
    from wormlab.io import read_safetensors

    model, hist = load_surrogate(checkpoint)
    ids = hist.get("heldout_ids")
    if not ids:
        raise ValueError(f"{checkpoint} records no held-out ids")
    d = load_stores(stores)
    where = {str(i): k for k, i in enumerate(d["id"])}
    missing = [i for i in ids["test"] if str(i) not in where]
    if missing:
        raise ValueError(f"test ids {missing[:3]} are not in the stores {stores}")
    k = np.array([where[str(i)] for i in ids["test"] if d["family"][where[str(i)]] == "crawl"])
    if len(k) == 0:
        raise ValueError(f"{checkpoint}: no crawl sample in its test split")
    crawl = _split(d["activation"][k], d["com_um"][k], d["tangent_rad"][k], d["family"][k],
                   d["id"][k])
    # shipped in float16 (well under 5 MB): score the model on exactly what verify will read
    half = {k: getattr(crawl, k).astype(np.float16) for k in ("activation", "com_um",
                                                              "tangent_rad")}
    crawl = dataclasses.replace(crawl, **{k: v.astype(np.float32) for k, v in half.items()})
    entry = models.write_heldout(name, "crawl_test", {k: torch.from_numpy(v)
                                                      for k, v in half.items()},
                                 crawl.id.tolist())
    metrics = _metrics(model, crawl, _generic_test())
    tensors, meta = read_safetensors(checkpoint, "surrogate checkpoint")
    fams = {str(f): int((d["family"] == f).sum()) for f in np.unique(d["family"])}
    data = {"what": "synthetic ElegansBot stores: the body generator's families and the crawl "
                    "family (wormlab worm body-data: the circuit's own activations)",
            "stores": [str(s) for s in stores], "samples_per_family": fams,
            "commands": data_commands, "heldout_ids": ids,
            "heldout_files": {"crawl_test": entry},
            "generic_test_set": f"the test set of the shipped {BASE!r} (its heldout file)",
            "init": hist.get("init"), "train_wall_s": hist.get("wall_s"),
            "best_epoch": hist.get("best_epoch")}
    tol = {k_: tolerance for k_ in metrics if "body_rmse" in k_}
    tol.update({k_: 0.0 for k_ in metrics if k_.endswith("n_test")})
    return models.save(name, tensors, kind=KIND, config=dataclasses.asdict(model.cfg),
                       command=command, data=json.loads(json.dumps(data, default=str)),
                       metrics=metrics, tolerance=tol, metadata=meta,
                       code_version=models.current_code_version(
                           ("wormlab/body", "wormlab/worm", "wormlab/models")))


# ------------------------------------------------------------ the fitted crawl parameters
PARAMS_KIND = "worm.crawl_params"
PARAMS_NAME = "crawl_params"
#: the loop runs verify repeats (seconds, initial-bend seed)
_VERIFY_RUN = (4.0, 0)


def _package_params_file() -> Path:
    from wormlab.paths import package_data

    return package_data("worm", "data", "crawl_params.json")


def _crawl_speeds(params: dict[str, float]) -> dict:
    from wormlab.worm._fit import crawl_metrics
    from wormlab.worm._loop import LoopConfig, run_loop

    dur, seed = _VERIFY_RUN
    out = {}
    for direction in ("forward", "backward"):
        res = run_loop(params, LoopConfig(duration_s=dur, direction=direction, seed=seed))
        m = crawl_metrics(res)
        out[f"{direction}_speed_um_s_4s_seed0"] = float(m["speed_um_s"][0])
        out[f"{direction}_frequency_hz_4s_seed0"] = float(m["frequency_hz"][0])
    return out


def _params_from(tensors: dict, manifest: dict) -> dict[str, float]:
    return {k: float(v) for k, v in zip(manifest["config"]["names"],
                                        tensors["values"].tolist())}


def verify_crawl_params(name: str, tensors: dict, manifest: dict) -> dict:
    """Rerun the 4 s forward and backward crawls of the shipped values, and check that the
    package's parameter file (what the CLIs and notebooks read) holds the same values."""
    from wormlab.worm._config import read_crawl_params

    params = _params_from(tensors, manifest)
    pkg = read_crawl_params(_package_params_file())
    diff = (max(abs(pkg.get(k, float("nan")) - v) for k, v in params.items())
            if set(pkg) == set(params) else float("inf"))
    return {**_crawl_speeds(params), "package_file_max_abs_diff": float(diff)}


def ship_crawl_params(path: str | Path | None = None, *, command: str,
                      name: str = PARAMS_NAME) -> Path:
    """Register a crawl parameter file (default: the package's) in the model registry: values
    (float64) and names, the file's provenance and sha256, and the 4 s crawl speeds that
    ``verify`` reruns (± 0.5 um/s, ± 0.01 Hz)."""
    import hashlib

    from wormlab import models
    from wormlab.worm._config import read_crawl_params
    from wormlab.worm._loop import PARAMS

    path = Path(path) if path is not None else _package_params_file()
    params = read_crawl_params(path)
    doc = json.loads(path.read_text())
    names = sorted(params)
    tensors = {"values": torch.tensor([params[k] for k in names], dtype=torch.float64)}
    metrics = {**_crawl_speeds(params), "package_file_max_abs_diff": 0.0}
    tol = {k: (0.01 if "frequency" in k else 0.5) for k in metrics}
    tol["package_file_max_abs_diff"] = 0.0
    data = {"file": str(path.name), "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "provenance": doc.get("provenance", {}),
            "verify_run": {"duration_s": _VERIFY_RUN[0], "bend_seed": _VERIFY_RUN[1]},
            "documented": "docs/crawl.md (kinematics, perturbations, physics check)"}
    return models.save(name, tensors, kind=PARAMS_KIND,
                       config={"names": names, "units": {k: PARAMS[k][3] for k in names}},
                       command=command, data=json.loads(json.dumps(data, default=str)),
                       metrics=metrics, tolerance=tol,
                       code_version=models.current_code_version(("wormlab/worm",
                                                                 "wormlab/circuit")))


def shipped_crawl_params(name: str = PARAMS_NAME) -> dict[str, float]:
    """The registered crawl parameters (``{name: value}``) after the registry's checks."""
    from wormlab import models

    tensors, m = models.load(name, kind=PARAMS_KIND)
    return _params_from(tensors, m)


def _register() -> None:
    from wormlab.models import register_verifier

    register_verifier(KIND, verify_crawl_surrogate)
    register_verifier(PARAMS_KIND, verify_crawl_params)


_register()
