"""Evaluation of a trained posture LSTM: long generation, stability, realism, interpretable cells."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from wormlab.posture._cells import cell_correlations, cell_names
from wormlab.posture._config import CellsConfig, GenerateConfig, KinematicsConfig, PostureConfig
from wormlab.posture._kinematics import curvature, kinematics
from wormlab.posture._lstm import PostureLSTM, calibrate_noise, generate, load_lstm, stability
from wormlab.posture._pipeline import PreparedData, load_basis, prepare
from wormlab.posture._realism import (
    classifier_two_sample_test,
    feature_distributions,
    real_vs_real_test,
    window_features,
)
from wormlab.posture._shape import shape_series


def model_traces(model: PostureLSTM, series: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Run the model statefully over each worm; per worm ``h`` and ``c`` as (T, layers*hidden)."""
    out = []
    for s in series:
        x = (torch.as_tensor(s, dtype=torch.float32) - model.mu) / model.sd
        tr = model.trace(x[:, None])
        out.append({k: tr[k][:, 0].reshape(len(s), -1).numpy() for k in ("h", "c")})
    return out


def behaviour_signals(data: PreparedData, kcfg: KinematicsConfig | None = None) -> list[dict]:
    """Per worm: curvature (from the angles), speed and reversal (recorded if present, else RFT)."""
    out = []
    for rec, ang in zip(data.recordings, data.angles):
        kin = kinematics(ang, rec.fps, kcfg)
        out.append(
            {
                "curvature": curvature(ang),
                "speed": rec.velocity if rec.velocity is not None else kin.speed,
                "reversal": rec.reversal
                if rec.reversal is not None
                else kin.reversal.astype(float),
                "speed_source": "recorded" if rec.velocity is not None else "RFT",
            }
        )
    return out


def find_cells(
    model: PostureLSTM,
    data: PreparedData,
    cfg: CellsConfig | None = None,
    seed: int = 0,
    traces: list | None = None,
    top: int = 5,
) -> dict:
    """Interpretable-cell table: for each signal x {memory c, hidden h} x {raw, smoothed}."""
    cfg = cfg or CellsConfig()
    traces = traces or model_traces(model, data.series)
    beh = behaviour_signals(data)
    res: dict = {}
    for signal in ("curvature", "speed", "reversal"):
        for kind in ("c", "h"):
            names = cell_names(model.n_layers, model.hidden, kind)
            for smooth in (False, True):
                r = cell_correlations(
                    [t[kind] for t in traces],
                    [b[signal] for b in beh],
                    cfg,
                    smooth=smooth,
                    seed=seed,
                )
                best = int(np.nanargmax(np.abs(r["r"])))
                res[f"{signal}/{kind}/{'smoothed' if smooth else 'raw'}"] = {
                    "best_cell": names[best],
                    "best_r": float(r["r"][best]),
                    "threshold": r["threshold"],
                    "n_passed": int(len(r["passed"])),
                    "passed_top": [
                        (names[i], round(float(r["r"][i]), 3)) for i in r["passed"][:top]
                    ],
                }
    return res


def generate_set(
    model: PostureLSTM,
    data: PreparedData,
    n_frames: int,
    noise: float,
    window: int,
    seed: int = 0,
    mode: str = "stateful",
) -> list[np.ndarray]:
    """One generated sequence per real worm, each seeded with that worm's first ``window`` frames."""
    seeds = np.stack([s[:window] for s in data.series])
    g = generate(
        model,
        seeds,
        GenerateConfig(n_frames=n_frames, noise=noise, mode=mode),
        window=window,
        seed=seed,
    )
    return list(g)


def realism(
    data: PreparedData,
    generated: list[np.ndarray],
    window: int = 50,
    seed: int = 0,
    kcfg: KinematicsConfig | None = None,
    control_repeats: int = 10,
) -> dict:
    """Distributions + classifier two-sample tests (generated vs real, and real vs real)."""
    dist = feature_distributions(data.series, generated, data.basis, data.fps, kcfg)
    fr = np.concatenate([window_features(s, window) for s in data.series])
    fg = np.concatenate([window_features(s, window) for s in generated])
    dist.pop("samples")
    return {
        "distributions": dist,
        "c2st_generated_vs_real": classifier_two_sample_test(fr, fg, seed=seed),
        "c2st_real_vs_real": real_vs_real_test(fr, seed=seed, repeats=control_repeats),
        "window_frames": window,
    }


def load_run(out: Path, smoke: bool = False):
    """A run folder from ``wormlab posture train`` -> (config, model, prepared data, meta)."""
    out = Path(out)
    if not (out / "lstm.json").exists():
        raise FileNotFoundError(f"{out} holds no trained model (run 'wormlab posture train')")
    cfg = PostureConfig.from_dict(json.loads((out / "config.json").read_text()))
    meta = json.loads((out / "lstm.json").read_text())
    model = load_lstm(out / "lstm")
    data = prepare(cfg, smoke=smoke)
    basis = load_basis(out / "basis.json")
    data.basis, data.series = basis, [shape_series(a, basis) for a in data.angles]
    # the noise unit (one-step residual s.d.) from the same held-out tails as in training
    calibrate_noise(model, data.series, cfg.lstm.window, cfg.lstm.val_fraction)
    meta["weights"] = getattr(model, "loaded_from", "")
    return cfg, model, data, meta


def evaluate_run(out: Path, n_frames: int = 9000, n_shuffles: int = 200) -> dict:
    """Evaluate a run folder written by ``wormlab posture train``; writes ``results.json``."""
    from wormlab.runs import atomic_path, configure_torch, seed_everything

    configure_torch()
    out = Path(out)
    cfg, model, data, meta = load_run(out)
    seed_everything(cfg.seed)
    basis = data.basis
    t0 = time.perf_counter()
    res: dict = {
        "dataset": cfg.dataset,
        "data_label": data.label,
        "fps": data.fps,
        "model": {
            "layers": model.n_layers,
            "hidden": model.hidden,
            "dropout": cfg.lstm.dropout,
            "epochs_done": meta["epochs_done"],
            "epochs_planned": cfg.lstm.epochs,
            "final_train_mse": meta["train_loss"][-1],
            "final_val_mse": meta["val_loss"][-1],
            "best_val_mse": min(meta["val_loss"]),
            "train_seconds": meta["seconds"],
            "weights": meta.get("weights", ""),
            "noise_unit_resid_sd": model.resid_sd.numpy().round(4).tolist(),
        },
        "basis": {"kind": basis.kind, "n_modes": basis.n_modes, "n_segments": basis.n_segments},
    }
    w = cfg.lstm.window
    for noise in (0.0, 1.0):
        gen = generate_set(model, data, n_frames, noise, w, seed=cfg.seed)
        key = f"noise_{noise:g}"
        res[f"stability_{key}"] = stability(np.stack(gen), np.concatenate(data.series))
        res[f"stability_{key}"]["n_frames"] = n_frames
        if res[f"stability_{key}"]["stable"]:
            res[f"realism_{key}"] = realism(data, gen, w, cfg.seed, cfg.kinematics)
    cells_cfg = replace(cfg.cells, n_shuffles=n_shuffles)
    res["cells"] = find_cells(model, data, cells_cfg, seed=cfg.seed)
    res["cells_config"] = {
        "smooth_frames": cells_cfg.smooth_frames,
        "n_shuffles": n_shuffles,
        "alpha": cells_cfg.alpha,
        "min_abs_r": cells_cfg.min_abs_r,
    }
    res["evaluate_seconds"] = time.perf_counter() - t0
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(res, indent=1, default=float))
    return res
