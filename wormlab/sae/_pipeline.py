"""Recording -> split -> SAE -> metrics -> interpretation (what the notebook calls)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wormlab.io import config_from_dict, config_to_dict
from wormlab.recordings import Recording
from wormlab.runs import seed_everything
from wormlab.sae._data import FrameBatches, Split, time_block_split
from wormlab.sae._interpret import (
    SelectivityTable,
    recovery_from_neurons,
    recovery_from_units,
    selectivity,
)
from wormlab.sae._metrics import Metrics, evaluate
from wormlab.sae._model import SAEConfig, SparseAutoencoder
from wormlab.sae._train import TrainConfig, TrainResult, train


@dataclass(frozen=True)
class SplitConfig:
    n_blocks: int = 10
    val_fraction: float = 0.2
    gap_s: float = 5.0  # dropped from training around each validation block


@dataclass(frozen=True)
class InterpretConfig:
    conditions: str = "auto"  # "auto" (stimuli if any, else states), "stimulus", "state"
    n_perm: int = 1000
    alpha: float = 0.05
    top: int = 10
    d_min: float = 0.8  # planted recovery: features need FDR significance and |d| >= d_min
    weight_frac: float = 0.5  # planted recovery: decoder weights >= this x the row max
    max_units: int = 3  # planted recovery: read at most this many selective units


@dataclass(frozen=True)
class ExperimentConfig:
    """One SAE experiment on a recording (nested, JSON-able; the notebook builds it)."""

    expansion: float = 1.0
    activation: str = "relu"
    l1_coeff: float = 3e-3
    k: int = 8
    aux_k: int = 32
    normalise: str = "zscore"
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    interpret: InterpretConfig = field(default_factory=InterpretConfig)

    def sae_config(self, n_inputs: int) -> SAEConfig:
        return SAEConfig(n_inputs=n_inputs, expansion=self.expansion, activation=self.activation,
                         l1_coeff=self.l1_coeff, k=self.k, aux_k=self.aux_k,
                         normalise=self.normalise)

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentConfig:
        return config_from_dict(cls, d)


@dataclass
class Experiment:
    recording: Recording
    config: ExperimentConfig
    sae: SparseAutoencoder
    split: Split
    result: TrainResult
    val_metrics: Metrics
    train_metrics: Metrics

    @property
    def input_names(self) -> list[str]:
        r = self.recording
        return [n if n is not None else f"roi{lab}" for n, lab in zip(r.neuron_names,
                                                                      r.roi_labels)]

    def activations(self) -> np.ndarray:
        """Unit activations ``(T, n_units)`` on every frame of the recording."""
        with torch.no_grad():
            return self.sae.encode(self.recording.to_tensor()).numpy()

    def decoder(self) -> np.ndarray:
        """``(n_units, n_inputs)`` unit-norm decoder rows (normalised input space)."""
        return self.sae.W_dec.detach().numpy().copy()


def fit_recording(rec: Recording, config: ExperimentConfig | None = None, *,
                  checkpoint: str | Path | None = None, show_progress: bool = True) -> Experiment:
    """Train an SAE on a recording's frames with a time-block split (resumable via
    ``checkpoint``)."""
    cfg = config or ExperimentConfig()
    seed_everything(cfg.seed)
    rec = rec.fill_nan()
    x = rec.to_tensor()
    gap = int(round(cfg.split.gap_s * rec.fps))
    split = time_block_split(rec.n_frames, n_blocks=cfg.split.n_blocks,
                             val_fraction=cfg.split.val_fraction, gap=gap, seed=cfg.seed)
    sae = SparseAutoencoder(cfg.sae_config(rec.n_neurons), seed=cfg.seed)
    sae.fit_normaliser(x[split.train])
    batches = FrameBatches(x[split.train], cfg.train.batch_size, seed=cfg.seed)
    result = train(sae, batches, cfg.train, val=x[split.val], checkpoint=checkpoint,
                   show_progress=show_progress)
    return Experiment(rec, cfg, sae, split, result, evaluate(sae, x[split.val]),
                      evaluate(sae, x[split.train]))


@dataclass
class Interpretation:
    heading: str
    tables: dict[str, SelectivityTable]  # "unit", "neuron", "pc"
    comparison: object  # pandas DataFrame: per condition and basis
    recovery: dict[str, dict[str, dict]]  # basis -> condition -> precision/recall (synthetic)
    activations: np.ndarray  # (T, n_units)

    def report(self, top: int = 10) -> str:
        return self.tables["unit"].format(top=top)


def pca_features(x_train: np.ndarray, x_all: np.ndarray, n_components: int):
    """PCA (fitted on training frames, z-scored like the SAE) applied to all frames."""
    from sklearn.decomposition import PCA

    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    n = min(n_components, x_train.shape[1], x_train.shape[0])
    p = PCA(n_components=n, random_state=0).fit((x_train - mu) / sd)
    return p.transform((x_all - mu) / sd), p


def interpret(exp: Experiment, config: InterpretConfig | None = None) -> Interpretation:
    """Selectivity of SAE units, raw neurons and PCA components for the recording's
    conditions (stimuli, else behaviour states), FDR-controlled; planted-responder recovery
    when the recording is synthetic with ground truth."""
    import pandas as pd

    icfg = config or exp.config.interpret
    rec = exp.recording
    conds = rec.conditions(icfg.conditions)
    heading = "Stimulus" if (icfg.conditions == "stimulus" or (
        icfg.conditions == "auto" and rec.stimuli)) else "State"
    conds = {k: m for k, m in conds.items() if 2 <= m.sum() <= len(m) - 2}
    acts = exp.activations()
    x = np.asarray(rec.fill_nan().traces, dtype=np.float64)
    pcs, _ = pca_features(x[exp.split.train], x, exp.sae.config.n_units)
    names = exp.input_names
    kw = dict(heading=heading, n_perm=icfg.n_perm, alpha=icfg.alpha, seed=exp.config.seed)
    tables = {
        "unit": selectivity(acts, conds, kind="unit", **kw),
        "neuron": selectivity(x, conds, kind="neuron", labels=names, **kw),
        "pc": selectivity(pcs, conds, kind="pc", **kw),
    }
    rows = []
    for c in conds:
        for basis, t in tables.items():
            st = t.ranked(c, by="d" if basis == "unit" else "abs")
            best = st[0]
            rows.append({"condition": c, "basis": basis, "best": best.label,
                         "best_d": best.d, "best_q": best.q,
                         "n_significant": sum(s.significant for s in st),
                         "n_significant_d_ge_0.5": sum(s.significant and abs(s.d) >= 0.5
                                                       for s in st),
                         "n_features": len(st)})
    comparison = pd.DataFrame(rows)
    recovery = {}
    if rec.synthetic and rec.ground_truth:
        recovery["unit"] = recovery_from_units(tables["unit"], exp.decoder(), names,
                                               rec.ground_truth, d_min=icfg.d_min,
                                               weight_frac=icfg.weight_frac,
                                               max_units=icfg.max_units)
        recovery["neuron"] = recovery_from_neurons(tables["neuron"], rec.ground_truth,
                                                   d_min=icfg.d_min)
    return Interpretation(heading, tables, comparison, recovery, acts)
