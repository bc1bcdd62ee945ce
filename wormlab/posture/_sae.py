"""A sparse autoencoder (``wormlab.sae``) on the posture LSTM's hidden states, interpreted.

The generative LSTM's cells are dense and polysemantic; an SAE trained on the stacked hidden
states of all layers (frames of the real worms, model run statefully) looks for sparse
directions that track behaviour. Interpretation reuses the SAE component's tools:

* **selectivity** for binary behaviour states (reversal; fast forward = recorded velocity in the
  top quartile; high curvature = top quartile), Cohen's d with a block-permutation null and
  Benjamini-Hochberg FDR (``wormlab.sae.selectivity``), for SAE features, the raw LSTM cells
  and as many PCA components of the hidden states (the SAE component's three bases);
* **correlation** with the continuous signals (speed, curvature, signed bend, reversal state),
  raw and smoothed in seconds, against the family-wise circular-shift null of
  :func:`wormlab.posture.cell_correlations`, again for SAE features and raw cells.

Split: the SAE trains on the first 90% of every worm and is scored on the last 10% (the same
held-out tails as the LSTM's validation set).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wormlab.posture._cells import cell_correlations, cell_names
from wormlab.posture._config import CellsConfig
from wormlab.posture._lstm import PostureLSTM
from wormlab.posture._pipeline import PreparedData


@dataclass(frozen=True)
class HiddenSAEConfig:
    """SAE on LSTM states.

    Args:
        state: ``"h"`` (hidden state, what the next layer reads) or ``"c"`` (memory).
        layers: LSTM layers whose states are stacked (``None`` = all).
        expansion, activation, l1_coeff, k: the SAE (:class:`wormlab.sae.SAEConfig`).
        n_steps, batch_size, lr: training (:class:`wormlab.sae.TrainConfig`).
        val_fraction: last fraction of every worm held out (same as the LSTM's validation).
        n_perm: block permutations for the selectivity tests; ``quartile``: top-quartile
            threshold that defines "fast forward" and "high curvature".
        cells: smoothing (seconds) and shuffles of the correlation analysis.
    """

    state: str = "h"
    layers: tuple[int, ...] | None = None
    expansion: float = 1.0
    activation: str = "relu"
    l1_coeff: float = 3e-3
    k: int = 16
    # "scalar": centre, one common scale (all cells share the tanh range); "zscore" would weight
    # near-constant (saturated) cells as much as active ones
    normalise: str = "scalar"
    n_steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    val_fraction: float = 0.1
    n_perm: int = 1000
    quartile: float = 0.75
    alpha: float = 0.05
    cells: CellsConfig = field(default_factory=CellsConfig)
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class HiddenSAE:
    """A trained SAE on hidden states plus everything needed to interpret it."""

    config: HiddenSAEConfig
    sae: object  # wormlab.sae.SparseAutoencoder
    train_result: object  # wormlab.sae.TrainResult
    val_metrics: object  # wormlab.sae.Metrics
    states: list[np.ndarray]  # per worm (T, n_inputs)
    input_names: list[str]
    is_val: list[np.ndarray]  # per worm (T,) bool

    def activations(self) -> list[np.ndarray]:
        """SAE feature activations per worm, (T, n_features)."""
        with torch.no_grad():
            return [
                self.sae.encode(torch.as_tensor(s, dtype=torch.float32)).numpy()
                for s in self.states
            ]


def stacked_states(
    traces: list[dict[str, np.ndarray]],
    n_layers: int,
    hidden: int,
    state: str = "h",
    layers: tuple[int, ...] | None = None,
) -> tuple[list[np.ndarray], list[str]]:
    """Select ``state`` of ``layers`` from :func:`model_traces` output: per worm (T, n), names."""
    if state not in ("h", "c"):
        raise ValueError(f"state must be 'h' or 'c', got {state!r}")
    layers = tuple(range(n_layers)) if layers is None else tuple(layers)
    bad = [la for la in layers if not 0 <= la < n_layers]
    if bad or not layers:
        raise ValueError(f"layers {bad or layers} out of range for a {n_layers}-layer model")
    cols = np.concatenate([np.arange(la * hidden, (la + 1) * hidden) for la in layers])
    names = cell_names(n_layers, hidden, state)
    return [t[state][:, cols] for t in traces], [names[i] for i in cols]


def fit_hidden_sae(
    model: PostureLSTM,
    data: PreparedData,
    config: HiddenSAEConfig | None = None,
    traces: list | None = None,
    checkpoint: str | Path | None = None,
    show_progress: bool = False,
) -> HiddenSAE:
    """Train an SAE on the model's states over the real worms (resumable via ``checkpoint``)."""
    from wormlab import sae as S
    from wormlab.posture._evaluate import model_traces
    from wormlab.runs import seed_everything

    cfg = config or HiddenSAEConfig()
    seed_everything(cfg.seed)
    traces = traces if traces is not None else model_traces(model, data.series)
    states, names = stacked_states(traces, model.n_layers, model.hidden, cfg.state, cfg.layers)
    is_val = []
    for s in states:
        m = np.zeros(len(s), dtype=bool)
        m[len(s) - int(round(cfg.val_fraction * len(s))) :] = True
        is_val.append(m)
    x_tr = np.concatenate([s[~m] for s, m in zip(states, is_val)])
    x_va = np.concatenate([s[m] for s, m in zip(states, is_val)])
    if len(x_va) == 0:
        raise ValueError("no validation frames: increase val_fraction")
    scfg = S.SAEConfig(
        n_inputs=x_tr.shape[1],
        expansion=cfg.expansion,
        activation=cfg.activation,
        l1_coeff=cfg.l1_coeff,
        k=cfg.k,
        normalise=cfg.normalise,
    )
    sae = S.SparseAutoencoder(scfg, seed=cfg.seed)
    xt = torch.as_tensor(x_tr, dtype=torch.float32)
    sae.fit_normaliser(xt)
    tcfg = S.TrainConfig(
        n_steps=cfg.n_steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        eval_every=max(1, cfg.n_steps // 10),
        seed=cfg.seed,
        checkpoint_every=max(1, cfg.n_steps // 10),
        # dead units are resampled at 1/4, 2/4 and 3/4 of training (wormlab.sae.train itself
        # now skips resampling in the last resample_every / 2 steps: a resampling at step n-1
        # once left 168 untrained units, held-out variance explained -8.8)
        resample_every=max(1, cfg.n_steps // 4),
    )
    res = S.train(
        sae,
        S.FrameBatches(xt, cfg.batch_size, seed=cfg.seed),
        tcfg,
        val=x_va,
        checkpoint=checkpoint,
        show_progress=show_progress,
    )
    return HiddenSAE(cfg, sae, res, S.evaluate(sae, x_va), states, names, is_val)


def behaviour_conditions(beh: list[dict], quartile: float = 0.75) -> dict[str, np.ndarray]:
    """Binary states over the concatenated worms: reversal, fast forward, high curvature."""
    speed = np.concatenate([b["speed"] for b in beh])
    curv = np.concatenate([b["curvature"] for b in beh])
    rev = np.concatenate([b["reversal"] for b in beh]) > 0
    fwd = speed > 0
    return {
        "reversal": rev,
        "fast forward": fwd & (speed >= np.quantile(speed[fwd], quartile)) if fwd.any() else fwd,
        "high curvature": curv >= np.quantile(curv, quartile),
    }


def interpret_hidden_sae(hs: HiddenSAE, data: PreparedData, top: int = 5, pcs: bool = True) -> dict:
    """Selectivity (block permutations + FDR) and correlations (shift null) of SAE features,
    compared with the raw LSTM cells (and PCA components of the states for selectivity)."""
    from wormlab import sae as S
    from wormlab.posture._evaluate import behaviour_signals

    cfg = hs.config
    beh = behaviour_signals(data)
    conds = {
        k: m
        for k, m in behaviour_conditions(beh, cfg.quartile).items()
        if 2 <= m.sum() <= len(m) - 2
    }
    acts = hs.activations()
    A = np.concatenate(acts)
    H = np.concatenate(hs.states)
    bases = {"sae": (A, [f"f{i}" for i in range(A.shape[1])]), "cells": (H, hs.input_names)}
    if pcs:
        train = ~np.concatenate(hs.is_val)
        P_, _ = S.pca_features(H[train], H, min(A.shape[1], H.shape[1], int(train.sum())))
        bases["pca"] = (P_, [f"pc{i}" for i in range(P_.shape[1])])
    alive = A.max(0) > 0
    out: dict = {
        "config": {k: v for k, v in cfg.to_dict().items() if k != "cells"},
        "n_inputs": int(H.shape[1]),
        "n_features": int(A.shape[1]),
        "n_alive_features": int(alive.sum()),
        "val_metrics": hs.val_metrics.as_dict(),
        "train_seconds": None if hs.train_result is None else round(hs.train_result.seconds, 1),
        "conditions": {k: [int(m.sum()), int((~m).sum())] for k, m in conds.items()},
        "selectivity": {},
        "correlation": {},
        "tables": {},
    }
    for basis, (X, labels) in bases.items():
        # never-firing SAE features get d = 0 and p = 1 (they still count in the FDR family)
        kind = {"sae": "unit", "cells": "neuron", "pca": "pc"}[basis]
        tab = S.selectivity(
            X,
            conds,
            kind=kind,
            labels=labels,
            heading="State",
            n_perm=cfg.n_perm,
            alpha=cfg.alpha,
            seed=cfg.seed,
        )
        for c in conds:
            st = tab.ranked(c, by="d" if basis == "sae" else "abs")
            sig = [s for s in st if s.significant]
            out["selectivity"].setdefault(c, {})[basis] = {
                "best": st[0].label,
                "best_d": round(st[0].d, 3),
                "best_q": float(st[0].q),
                "n_significant": len(sig),
                "n_significant_abs_d_ge_0.8": sum(abs(s.d) >= 0.8 for s in sig),
                "n_features": len(st),
                "top": [(s.label, round(s.d, 3), float(f"{s.q:.3g}")) for s in st[:top]],
            }
        if basis == "sae":
            out["tables"]["sae"] = tab.format(top=top)
    fps = [r.fps for r in data.recordings]
    smoothings = {"raw": False, "smoothed": True}
    for signal in ("speed", "curvature", "bend", "reversal"):
        for basis in ("sae", "cells"):
            X, labels = bases[basis]
            per_worm = acts if basis == "sae" else hs.states
            for label, smooth in smoothings.items():
                r = cell_correlations(
                    per_worm,
                    [b[signal] for b in beh],
                    cfg.cells,
                    smooth=smooth,
                    seed=cfg.seed,
                    fps=fps,
                )
                rr = np.nan_to_num(r["r"])
                best = int(np.argmax(np.abs(rr)))
                out["correlation"][f"{signal}/{basis}/{label}"] = {
                    "best": labels[best],
                    "best_r": round(float(rr[best]), 3),
                    "threshold": round(float(r["threshold"]), 3),
                    "n_passed": int(len(r["passed"])),
                    "passed_top": [(labels[i], round(float(rr[i]), 3)) for i in r["passed"][:top]],
                }
    return out


def load_hidden_sae(
    model: PostureLSTM, data: PreparedData, run_dir: str | Path, traces: list | None = None
) -> HiddenSAE:
    """Rebuild the :class:`HiddenSAE` that :func:`sae_on_run` saved in ``run_dir``
    (``sae.json`` config + ``sae.safetensors`` weights; no pickle)."""
    from wormlab import sae as S
    from wormlab.posture._evaluate import model_traces

    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "sae.json").read_text())
    c = dict(meta["config"])
    if c.get("layers") is not None:
        c["layers"] = tuple(c["layers"])
    cfg = HiddenSAEConfig(**c)
    sae, _ = S.load_checkpoint(run_dir / "sae.safetensors")
    traces = traces if traces is not None else model_traces(model, data.series)
    states, names = stacked_states(traces, model.n_layers, model.hidden, cfg.state, cfg.layers)
    if states[0].shape[1] != sae.config.n_inputs:
        raise ValueError(
            f"{run_dir}/sae.safetensors expects {sae.config.n_inputs} inputs, the "
            f"model's states have {states[0].shape[1]}"
        )
    is_val = []
    for st in states:
        m = np.zeros(len(st), dtype=bool)
        m[len(st) - int(round(cfg.val_fraction * len(st))) :] = True
        is_val.append(m)
    x_va = np.concatenate([st[m] for st, m in zip(states, is_val)])
    return HiddenSAE(cfg, sae, None, S.evaluate(sae, x_va), states, names, is_val)


def feature_decoder_cells(hs: HiddenSAE, feature: int, k: int = 5) -> list[tuple[str, float]]:
    """The LSTM cells a feature's decoder row weights most (z-scored input space)."""
    from wormlab.sae import top_neurons

    return top_neurons(hs.sae.W_dec.detach().numpy(), hs.input_names, feature, k)


def sae_on_run(
    out: Path,
    config: HiddenSAEConfig | None = None,
    show_progress: bool = True,
    smoke: bool = False,
) -> dict:
    """Train + interpret the hidden-state SAE of a run folder; writes ``sae.json`` (atomic)
    and the SAE weights ``sae.safetensors`` (resumable training checkpoint).

    ``smoke``: load the run's data in smoke size (tests)."""
    from wormlab.posture._evaluate import load_run
    from wormlab.runs import atomic_path, configure_torch

    configure_torch()
    out = Path(out)
    cfg = config or HiddenSAEConfig()
    run_cfg, model, data, _ = load_run(out, smoke=smoke)
    cfg = dataclasses.replace(
        cfg, cells=dataclasses.replace(cfg.cells, n_shuffles=run_cfg.cells.n_shuffles)
    )
    t0 = time.perf_counter()
    ck = out / "sae.safetensors"
    if (out / "sae.json").exists() and ck.exists():
        done = json.loads((out / "sae.json").read_text()).get("config", {})
        want = {k: v for k, v in cfg.to_dict().items() if k != "cells"}
        if json.loads(json.dumps(want)) != done:  # another configuration: start again
            ck.unlink()
    hs = fit_hidden_sae(
        model, data, cfg, checkpoint=out / "sae.safetensors", show_progress=show_progress
    )
    res = interpret_hidden_sae(hs, data)
    for v in res["selectivity"].values():
        f = int(v["sae"]["best"][1:])
        v["sae"]["best_decoder_cells"] = [(n, round(w, 3)) for n, w in feature_decoder_cells(hs, f)]
    res["seconds"] = round(time.perf_counter() - t0, 1)
    with atomic_path(out / "sae.json") as tmp:
        tmp.write_text(json.dumps(res, indent=1, default=float))
    return res
