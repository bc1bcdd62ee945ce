"""Ship the generative posture LSTM and its hidden-state SAE through the model registry.

Kinds ``posture.lstm`` and ``posture.hidden_sae`` (``wormlab.models``). :func:`ship_run` takes a
run folder written by ``wormlab posture train`` (+ ``wormlab posture sae``) and writes
``data/models/<lstm_name>/`` and ``data/models/<sae_name>/``. The weights are stored in
float16 (the 4 x 260 model's 1.9 M parameters are 7.6 MB in float32, 3.8 MB in float16; its SAE
4.3 MB), buffers (standardisation, residual s.d.) in float32; the recorded metrics are those of
the float16-rounded weights, so ``verify`` compares like with like.

:func:`shipped_run_dir` writes an ordinary run folder (``config.json``, ``basis.json``,
``lstm.json``, ``lstm.best.safetensors`` and, with the SAE, ``sae.json`` +
``sae.safetensors``) from the shipped files into the cache, after every registry check (size,
sha256, kind, architecture), so that :func:`~wormlab.posture.load_run`, the notebook and the
CLI use the shipped model exactly like a trained one.

Verifiers (need the shared Flavell 2023 recordings; skipped where they are absent): the LSTM's
one-step validation MSE (standardised units) on the held-out last 10 % of every worm, and the
SAE's held-out variance explained on the LSTM's hidden states of those tails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LSTM_KIND = "posture.lstm"
SAE_KIND = "posture.hidden_sae"
#: the shipped paper-size model (Flavell 2023, ICA basis, 4 x 260) and its SAE
DEFAULT_LSTM = "posture_lstm_4x260"
DEFAULT_SAE = "posture_sae_4x260"
_STAMP = "shipped.json"


def _half(state: dict, keep: tuple[str, ...]) -> dict:
    """Float tensors to float16, except the buffers named in ``keep`` (kept float32)."""

    out = {}
    for k, v in state.items():
        v = v.detach().contiguous()
        if v.is_floating_point():
            v = v.float() if any(k.endswith(b) for b in keep) else v.half()
        out[k] = v
    return out


def _float(state: dict) -> dict:
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


_LSTM_BUFFERS = ("mu", "sd", "resid_sd")


def _model_from(tensors: dict, config: dict):
    from wormlab.posture._lstm import PostureLSTM

    c = config["lstm"]
    model = PostureLSTM(int(config["n_channels"]), int(c["layers"]), int(c["hidden"]),
                        float(c["dropout"]), str(c.get("head", "mse")),
                        int(c.get("n_components", 5)))
    model.load_state_dict(_float(tensors))
    model.eval()
    return model


def _val_windows(series: list[np.ndarray], model, lstm_cfg: dict):
    import torch

    from wormlab.posture._lstm import _split, _windows

    _, val = _split([np.asarray(s, float) for s in series], float(lstm_cfg["val_fraction"]),
                    int(lstm_cfg["window"]))
    if not val:
        raise ValueError("no series is long enough for a validation tail")
    mu, sd = model.mu.numpy().astype(float), model.sd.numpy().astype(float)
    return torch.from_numpy(_windows([(s - mu) / sd for s in val], int(lstm_cfg["window"]) + 1))


def _series(posture_config: dict, basis_tensor, basis_meta: dict, smoke: bool = False):
    """The real worms' shape series in the shipped basis (shared data; skipped if absent)."""
    from wormlab.models import VerifySkipped
    from wormlab.paths import shared_data_dir
    from wormlab.posture._config import PostureConfig
    from wormlab.posture._pipeline import prepare
    from wormlab.posture._shape import Basis, shape_series

    cfg = PostureConfig.from_dict(posture_config)
    if cfg.dataset != "synthetic" and shared_data_dir() is None:
        raise VerifySkipped("the shared recordings folder (../shared/data) is absent")
    data = prepare(cfg, smoke=smoke)
    basis = Basis(kind=basis_meta["kind"], source=basis_meta["source"],
                  modes=np.asarray(basis_tensor, dtype=float))
    return [shape_series(a, basis, cfg.shape.wrap_heading) for a in data.angles], data, basis


def _lstm_metrics(model, series, lstm_cfg: dict) -> dict:
    from wormlab.posture._lstm import _evaluate

    va = _val_windows(series, model, lstm_cfg)
    return {"heldout_val_loss": _evaluate(model, va, str(lstm_cfg.get("loss_on", "all"))),
            "n_val_windows": float(len(va))}


def verify_lstm(name: str, tensors: dict, manifest: dict) -> dict:
    cfg = manifest["config"]
    model = _model_from({k: v for k, v in tensors.items() if k != "basis.modes"}, cfg)
    series, _, _ = _series(cfg["posture"], tensors["basis.modes"].double().numpy(),
                           cfg["basis"], bool(cfg.get("smoke_data", False)))
    return _lstm_metrics(model, series, cfg["lstm"])


def _sae_from(tensors: dict, config: dict):
    from wormlab.sae import SAEConfig, SparseAutoencoder

    sae = SparseAutoencoder(SAEConfig(**config["sae_config"]))
    sae.load_state_dict(_float(tensors))
    sae.eval()
    return sae


def _sae_heldout(sae, model, series, hidden_cfg: dict) -> dict:
    from wormlab.posture._evaluate import model_traces
    from wormlab.posture._sae import stacked_states
    from wormlab.sae import evaluate

    layers = hidden_cfg.get("layers")
    states, _ = stacked_states(model_traces(model, series), model.n_layers, model.hidden,
                               hidden_cfg["state"], None if layers is None else tuple(layers))
    vf = float(hidden_cfg["val_fraction"])
    x_va = np.concatenate([st[len(st) - int(round(vf * len(st))):] for st in states])
    m = evaluate(sae, x_va)
    return {"heldout_variance_explained": m.variance_explained, "heldout_l0": m.l0,
            "n_heldout_frames": float(len(x_va))}


def verify_sae(name: str, tensors: dict, manifest: dict) -> dict:
    from wormlab import models

    cfg = manifest["config"]
    lt, lm = models.load(cfg["lstm_model"], kind=LSTM_KIND)
    model = _model_from({k: v for k, v in lt.items() if k != "basis.modes"}, lm["config"])
    series, _, _ = _series(lm["config"]["posture"], lt["basis.modes"].double().numpy(),
                           lm["config"]["basis"], bool(lm["config"].get("smoke_data", False)))
    return _sae_heldout(_sae_from(tensors, cfg), model, series, cfg["hidden_sae"])


def ship_run(run_dir: str | Path, *, command: str, lstm_name: str = DEFAULT_LSTM,
             sae_name: str | None = DEFAULT_SAE, tolerance: float = 1e-4,
             smoke_data: bool = False) -> list[Path]:
    """Ship the best-validation LSTM of ``run_dir`` (and its SAE when ``sae_name`` is given
    and the run has ``sae.json``). Returns the manifest paths. Needs the run's data (the
    shared recordings) to record the float16 weights' held-out metrics. ``smoke_data``: the
    run was trained on the smoke-size data (tests); recorded, so that verify uses the same."""
    import torch

    from wormlab import models
    from wormlab.posture._evaluate import load_run

    run_dir = Path(run_dir)
    run_cfg, model, data, meta = load_run(run_dir, smoke=smoke_data)
    if meta.get("weights") != "lstm.best.safetensors":
        raise ValueError(f"{run_dir}: no best-validation weights (lstm.best.safetensors); "
                         "train with early stopping first")
    state = _half(model.state_dict(), _LSTM_BUFFERS)
    cfg = {"n_channels": model.n_channels, "lstm": meta["config"],
           "posture": run_cfg.to_dict(),
           "basis": {"kind": data.basis.kind, "source": data.basis.source},
           "smoke_data": bool(smoke_data)}
    shipped = _model_from(state, cfg)
    lm = _lstm_metrics(shipped, data.series, meta["config"])
    tensors = dict(state, **{"basis.modes": torch.as_tensor(np.asarray(data.basis.modes),
                                                            dtype=torch.float64)})
    best = int(np.nanargmin(meta["val_loss"])) + 1
    data_entry = {
        "dataset": f"{run_cfg.dataset}: Flavell-lab 2023 whole-brain imaging with behaviour "
                   "(Dag et al. 2023, Cell 186:2574), ../shared/data (never copied here)",
        "worms": [r.name for r in data.recordings],
        "split": f"time split: the last {meta['config']['val_fraction']:.0%} of every worm is "
                 "held out (validation / verify), the rest trains",
        "run_dir": str(run_dir), "best_epoch": best, "epochs_done": meta["epochs_done"],
        "val_loss_per_epoch": meta["val_loss"], "train_loss_per_epoch": meta["train_loss"],
        "train_seconds": meta["seconds"],
        "weights_dtype": "float16 (buffers float32)",
    }
    out = [models.save(lstm_name, tensors, kind=LSTM_KIND, config=cfg, command=command,
                       data=data_entry,
                       metrics={**lm, "trained_best_val_loss_float32": float(
                           np.nanmin(meta["val_loss"]))},
                       tolerance={"heldout_val_loss": tolerance, "n_val_windows": 0.0})]
    if sae_name and (run_dir / "sae.json").exists():
        import tempfile

        from wormlab.posture._sae import (
            feature_decoder_cells,
            interpret_hidden_sae,
            load_hidden_sae,
        )
        from wormlab.sae import load_checkpoint, save_checkpoint

        sae_meta = json.loads((run_dir / "sae.json").read_text())
        sae, _ = load_checkpoint(run_dir / "sae.safetensors")
        sstate = _half(sae.state_dict(), ())
        scfg = {"sae_config": sae.config.to_dict(), "hidden_sae": sae_meta["config"],
                "lstm_model": lstm_name}
        sm = _sae_heldout(_sae_from(sstate, scfg), shipped, data.series, sae_meta["config"])
        # the interpretation tables of the float16 model and SAE (what a fresh clone shows)
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(Path(tmp) / "sae.safetensors", _sae_from(sstate, scfg))
            (Path(tmp) / "sae.json").write_text(json.dumps({"config": sae_meta["config"]}))
            hs = load_hidden_sae(shipped, data, tmp)
        interp = interpret_hidden_sae(hs, data)
        interp.pop("tables", None)
        for v in interp["selectivity"].values():
            f = int(v["sae"]["best"][1:])
            v["sae"]["best_decoder_cells"] = [(n, round(w, 3))
                                              for n, w in feature_decoder_cells(hs, f)]
        out.append(models.save(
            sae_name, sstate, kind=SAE_KIND, config=scfg, command=command,
            data={"inputs": f"hidden states h of the shipped LSTM {lstm_name!r} run over "
                            "the real worms", "split": "the last fraction val_fraction of "
                            "every worm is held out", "run_dir": str(run_dir),
                  "weights_dtype": "float16",
                  "interpretation": json.loads(json.dumps(interp, default=float))},
            metrics={**sm, "recorded_val_variance_explained_float32":
                     float(sae_meta["val_metrics"]["variance_explained"])},
            tolerance={"heldout_variance_explained": 1e-3, "heldout_l0": 0.05,
                       "n_heldout_frames": 0.0}))
    return out


def _find_sae(lstm_name: str) -> str | None:
    from wormlab import models

    names = [r["name"] for r in models.list() if r.get("kind") == SAE_KIND
             and models.manifest(r["name"])["config"].get("lstm_model") == lstm_name]
    return sorted(names)[0] if names else None


def shipped_run_dir(lstm_name: str = DEFAULT_LSTM, sae_name: str | None = "auto",
                    dest: str | Path | None = None, *, dataset: str | None = None,
                    basis: str | None = None) -> Path | None:
    """A run folder made from the shipped model(s), for :func:`load_run` and the notebook.

    Written under ``<cache>/posture/shipped/<lstm_name>`` (or ``dest``) after every registry
    check; rewritten when the shipped files' digests differ from the folder's stamp.
    ``sae_name="auto"``: the shipped SAE trained on this LSTM, if any; ``None``: no SAE.
    ``dataset`` / ``basis``: when given and the shipped model was trained on another data set
    or shape basis, returns ``None`` (the caller trains its own).
    """
    from safetensors.torch import save_file

    from wormlab import models
    from wormlab.paths import cache_dir
    from wormlab.posture._pipeline import save_basis
    from wormlab.posture._shape import Basis
    from wormlab.runs import atomic_path

    lt, lm = models.load(lstm_name, kind=LSTM_KIND)
    pc = lm["config"]["posture"]
    if (dataset is not None and pc["dataset"] != dataset) or (
            basis is not None and pc["shape"]["basis"] != basis):
        return None
    if sae_name == "auto":
        sae_name = _find_sae(lstm_name)
    digests = {lstm_name: lm["sha256"]}
    st = sm = None
    if sae_name:
        st, sm = models.load(sae_name, kind=SAE_KIND)
        if sm["config"]["lstm_model"] != lstm_name:
            raise models.ModelError(f"shipped SAE {sae_name!r} belongs to the LSTM "
                                    f"{sm['config']['lstm_model']!r}, not {lstm_name!r}")
        digests[sae_name] = sm["sha256"]
    out = Path(dest) if dest else cache_dir("posture", "shipped", lstm_name)
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / _STAMP
    if stamp.exists() and json.loads(stamp.read_text()) == digests:
        return out
    if stamp.exists():
        stamp.unlink()
    cfg = lm["config"]
    save_basis(out / "basis.json", Basis(kind=cfg["basis"]["kind"],
                                         source=cfg["basis"]["source"],
                                         modes=lt["basis.modes"].double().numpy()))
    with atomic_path(out / "config.json") as tmp:
        tmp.write_text(json.dumps(cfg["posture"], indent=2))
    weights = _float({k: v for k, v in lt.items() if k != "basis.modes"})
    with atomic_path(out / "lstm.best.safetensors") as tmp:
        save_file(weights, str(tmp))
    d = lm["data"]
    lmeta = {"config": cfg["lstm"], "seed": cfg["posture"].get("seed", 0),
             "n_channels": cfg["n_channels"], "train_loss": d.get("train_loss_per_epoch", []),
             "val_loss": d.get("val_loss_per_epoch", []), "epochs_done": d.get("epochs_done", 0),
             "seconds": d.get("train_seconds", 0.0), "shipped_model": lstm_name}
    with atomic_path(out / "lstm.json") as tmp:
        tmp.write_text(json.dumps(lmeta))
    if sae_name:
        from wormlab.sae import SAEConfig, SparseAutoencoder, save_checkpoint

        sae = SparseAutoencoder(SAEConfig(**sm["config"]["sae_config"]))
        sae.load_state_dict(_float(st))
        # stamped as finished, so that `wormlab posture sae` on this folder does not retrain
        n_steps = int(sm["config"]["hidden_sae"]["n_steps"])
        save_checkpoint(out / "sae.safetensors", sae, step=n_steps,
                        extra={"shipped_model": sae_name})
        # sae.json: the configuration (load_hidden_sae reads it) and the interpretation tables
        # recorded at shipping (selectivity, correlations of the float16 model and SAE)
        with atomic_path(out / "sae.json") as tmp:
            tmp.write_text(json.dumps({**sm["data"]["interpretation"],
                                       "config": sm["config"]["hidden_sae"],
                                       "shipped_model": sae_name}))
    with atomic_path(stamp) as tmp:
        tmp.write_text(json.dumps(digests))
    return out


# ------------------------------------------------------------------ the strain table
STRAINS_KIND = "posture.strains"
#: the strain-classification table notebook 07 shows (UCR Worms, its methods and protocol)
DEFAULT_STRAINS = "posture_strains_ucr"
#: methods verify recomputes (the cheap ones; rocket and the LSTM take minutes each)
VERIFY_METHODS = ("features", "nn")


def _strain_metrics(table: dict, methods) -> dict:
    out = {}
    for m in methods:
        if m in table:
            out[f"{m}/cv_accuracy_mean"] = float(table[m]["cv_accuracy_mean"])
            out[f"{m}/holdout_accuracy"] = float(table[m]["holdout_accuracy"])
    return out


def _strains_from(tensors: dict) -> dict:
    from wormlab.models import tensor_json

    return tensor_json(tensors["table_json_utf8"])


def verify_strains(name: str, tensors: dict, manifest: dict) -> dict:
    from wormlab.models import VerifySkipped
    from wormlab.paths import shared_data_dir
    from wormlab.posture._classify import strain_benchmark
    from wormlab.posture._data import load_ucr_worms

    if shared_data_dir() is None:
        raise VerifySkipped("the shared recordings folder (../shared/data) is absent")
    table = _strains_from(tensors)
    p = table["_protocol"]
    methods = [m for m in VERIFY_METHODS if m in table]
    X, y = load_ucr_worms()
    res = strain_benchmark(X, y, methods, folds=p["folds"], repeats=p["repeats"], seed=p["seed"])
    return _strain_metrics(res, methods)


def ship_strains(table_json: str | Path, *, command: str, name: str = DEFAULT_STRAINS,
                 tolerance: float = 1e-9) -> Path:
    """Ship a table written by ``wormlab posture strains --out`` (UCR Worms); ``verify``
    recomputes the :data:`VERIFY_METHODS` rows with the table's protocol."""

    from wormlab import models

    table = json.loads(Path(table_json).read_text())
    if "_protocol" not in table:
        raise ValueError(f"{table_json}: not a strain table (no _protocol)")
    methods = sorted(k for k in table if not k.startswith("_"))
    tensors = {"table_json_utf8": models.json_tensor(table)}
    metrics = _strain_metrics(table, methods)
    tol = {k: tolerance for k in metrics if k.split("/")[0] in VERIFY_METHODS}
    return models.save(
        name, tensors, kind=STRAINS_KIND,
        config={"methods": methods, "protocol": table["_protocol"]}, command=command,
        data={"dataset": "UCR/UEA 'Worms' (Yemini et al. 2013 eigenworm series, 5 strains; "
                         "Bagnall et al. 2017 archive), ../shared/data/ucr_worms (never copied)",
              "seconds": {m: table[m].get("seconds") for m in methods}},
        metrics=metrics, tolerance=tol)


def shipped_strains(methods, folds: int, seed: int, repeats: int = 1,
                    name: str = DEFAULT_STRAINS) -> tuple[dict, dict] | None:
    """``(table, info)`` of the shipped strain table when it holds ``methods`` under this
    protocol (folds, repeats, seed), else ``None``. The table is the CLI's / notebook's
    ``strain_benchmark`` result (``_protocol`` included)."""
    from wormlab import models

    tensors, m = models.load(name, kind=STRAINS_KIND)
    p = m["config"]["protocol"]
    if (p["folds"], p["repeats"], p["seed"]) != (int(folds), int(repeats), int(seed)) or not (
            set(methods) <= set(m["config"]["methods"])):
        return None
    table = _strains_from(tensors)
    out = {k: v for k, v in table.items() if k in set(methods) or k == "_protocol"}
    return out, {"name": name, "sha256": m["sha256"], "command": m["command"],
                 "commit": m["code_version"].get("commit")}


def _register() -> None:
    from wormlab.models import register_verifier

    register_verifier(LSTM_KIND, verify_lstm)
    register_verifier(SAE_KIND, verify_sae)
    register_verifier(STRAINS_KIND, verify_strains)


_register()
