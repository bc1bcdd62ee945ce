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
    feature_separability,
    real_vs_real_test,
    window_feature_names,
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


def body_bend(angles: np.ndarray) -> np.ndarray:
    """Signed net bend per frame: tail tangent angle minus head tangent angle (rad).

    A signed companion of :func:`curvature` (which is unsigned, mean |d theta / ds|).
    """
    a = np.asarray(angles, dtype=float)
    return a[:, -1] - a[:, 0]


def behaviour_signals(data: PreparedData, kcfg: KinematicsConfig | None = None) -> list[dict]:
    """Per worm: curvature and signed bend (from the angles), speed and reversal (recorded if
    present, else RFT)."""
    out = []
    for rec, ang in zip(data.recordings, data.angles):
        kin = kinematics(ang, rec.fps, kcfg)
        out.append(
            {
                "curvature": curvature(ang),
                "bend": body_bend(ang),
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
    signals: tuple[str, ...] = ("curvature", "bend", "speed", "reversal"),
) -> dict:
    """Interpretable-cell table: for each signal x {memory c, hidden h} x {raw, smoothed}.

    ``smoothed`` uses the config's filter in seconds (paper: 200 frames at 10 fps = 20 s),
    converted with each worm's frame rate; ``smoothed_<N>frames`` (``CellsConfig.also_frames``)
    applies the paper's frame count as such.
    """
    cfg = cfg or CellsConfig()
    traces = traces or model_traces(model, data.series)
    beh = behaviour_signals(data)
    fps = [r.fps for r in data.recordings]
    smoothings: dict[str, bool | int] = {"raw": False, "smoothed": True}
    if cfg.also_frames:
        smoothings[f"smoothed_{cfg.also_frames}frames"] = int(cfg.also_frames)
    res: dict = {}
    for signal in signals:
        for kind in ("c", "h"):
            names = cell_names(model.n_layers, model.hidden, kind)
            for label, smooth in smoothings.items():
                r = cell_correlations(
                    [t[kind] for t in traces],
                    [b[signal] for b in beh],
                    cfg,
                    smooth=smooth,
                    seed=seed,
                    fps=fps,
                )
                best = int(np.nanargmax(np.abs(r["r"])))
                res[f"{signal}/{kind}/{label}"] = {
                    "best_cell": names[best],
                    "best_r": float(r["r"][best]),
                    "threshold": r["threshold"],
                    "n_passed": int(len(r["passed"])),
                    "passed_top": [
                        (names[i], round(float(r["r"][i]), 3)) for i in r["passed"][:top]
                    ],
                    "passed": [names[i] for i in r["passed"]],  # all, strongest first
                    "smooth_frames": sorted(set(r["smooth_frames"])),
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
    noise_kind: str = "gaussian",
) -> list[np.ndarray]:
    """One generated sequence per real worm, each seeded with that worm's first ``window`` frames."""
    seeds = np.stack([s[:window] for s in data.series])
    g = generate(
        model,
        seeds,
        GenerateConfig(n_frames=n_frames, noise=noise, mode=mode, noise_kind=noise_kind),
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
    names = window_feature_names(data.series[0].shape[1])
    return {
        "distributions": dist,
        "c2st_generated_vs_real": classifier_two_sample_test(fr, fg, seed=seed),
        # what gives the generated windows away: (feature, AUC, median real, median generated)
        "most_separating_features": feature_separability(fr, fg, names, top=8),
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
    data.basis = basis
    data.series = [shape_series(a, basis, cfg.shape.wrap_heading) for a in data.angles]
    # the noise unit (one-step residual s.d.) from the same held-out tails as in training
    calibrate_noise(model, data.series, cfg.lstm.window, cfg.lstm.val_fraction)
    meta["weights"] = getattr(model, "loaded_from", "")
    return cfg, model, data, meta


#: Generation settings evaluated by default: ``kind:scale`` (see :class:`GenerateConfig`).
DEFAULT_NOISES = ("gaussian:0", "gaussian:1", "bootstrap:1")


def parse_noises(spec: str | tuple | list) -> list[tuple[str, float]]:
    """``"gaussian:0,bootstrap:1"`` -> ``[("gaussian", 0.0), ("bootstrap", 1.0)]``."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for it in items:
        it = it.strip()
        if not it:
            continue
        kind, _, scale = it.partition(":")
        if kind not in ("gaussian", "bootstrap", "mdn") or not scale:
            raise ValueError(
                f"noise setting {it!r}: expected gaussian:SCALE, bootstrap:SCALE or mdn:TEMPERATURE"
            )
        try:
            val = float(scale)
        except ValueError:
            raise ValueError(f"noise setting {it!r}: scale {scale!r} is not a number") from None
        if val < 0:
            raise ValueError(f"noise setting {it!r}: scale must be >= 0")
        out.append((kind, val))
    if not out:
        raise ValueError("no noise settings given")
    return out


def evaluate_run(
    out: Path,
    n_frames: int = 9000,
    n_shuffles: int = 200,
    noises: str | tuple | list = DEFAULT_NOISES,
    cells: bool = True,
    generation: bool = True,
    smooth_s: float | None = None,
) -> dict:
    """Evaluate a run folder written by ``wormlab posture train``; writes ``results.json``.

    ``noises``: generation settings ``kind:scale``; result keys are ``stability_<kind>_<scale>``
    and ``realism_<kind>_<scale>`` (``noise_0`` / ``noise_1`` for gaussian, as before).
    ``generation=False`` keeps the generation/realism results of an existing ``results.json``
    and recomputes only the cells. ``smooth_s``: override the run config's cell smoothing with
    a filter of this many seconds (a run config written before the filter was defined in
    seconds carries ``smooth_frames: 200``).
    """
    from wormlab.runs import configure_torch, seed_everything

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
    if not generation:
        prev = out / "results.json"
        if not prev.exists():
            raise FileNotFoundError(f"{prev} does not exist: run with generation first")
        old = json.loads(prev.read_text())
        res.update({k: v for k, v in old.items() if k.startswith(("stability_", "realism_"))})
    for kind, noise in parse_noises(noises) if generation else []:
        t1 = time.perf_counter()
        gen = generate_set(model, data, n_frames, noise, w, seed=cfg.seed, noise_kind=kind)
        key = f"noise_{noise:g}" if kind == "gaussian" else f"{kind}_{noise:g}"
        res[f"stability_{key}"] = stability(np.stack(gen), np.concatenate(data.series))
        res[f"stability_{key}"]["n_frames"] = n_frames
        if res[f"stability_{key}"]["stable"]:
            res[f"realism_{key}"] = realism(data, gen, w, cfg.seed, cfg.kinematics)
        res[f"stability_{key}"]["seconds"] = round(time.perf_counter() - t1, 1)
        _write_results(out, res)  # partial results survive an interruption
    if not cells:
        res["evaluate_seconds"] = time.perf_counter() - t0
        _write_results(out, res)
        return res
    cells_cfg = replace(cfg.cells, n_shuffles=n_shuffles)
    if smooth_s is not None:
        cells_cfg = replace(cells_cfg, smooth_s=float(smooth_s), smooth_frames=None)
    res["cells"] = find_cells(model, data, cells_cfg, seed=cfg.seed)
    res["cells_config"] = {
        "smooth_s": cells_cfg.smooth_s,
        "smooth_frames": cells_cfg.smooth_frames,
        "also_frames": cells_cfg.also_frames,
        "n_shuffles": n_shuffles,
        "alpha": cells_cfg.alpha,
        "min_abs_r": cells_cfg.min_abs_r,
    }
    res["evaluate_seconds"] = time.perf_counter() - t0
    _write_results(out, res)
    return res


def _write_results(out: Path, res: dict) -> None:
    from wormlab.runs import atomic_path

    with atomic_path(Path(out) / "results.json") as tmp:
        tmp.write_text(json.dumps(res, indent=1, default=float))
