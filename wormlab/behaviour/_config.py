"""The one configuration of the behaviour component: nested, frozen, JSON-able."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from wormlab.io import config_from_dict, config_to_dict

TASKS = ("fwd_rev", "four_state", "fwd_rev_turn")


@dataclass(frozen=True)
class DataConfig:
    """How recordings become windows.

    Attributes:
        task: label set: ``fwd_rev`` (2 classes), ``four_state`` (forward, reverse, dorsal
            turn, ventral turn; Kato only), ``fwd_rev_turn`` (3 classes; both datasets).
        window: T, timesteps per window (Wang et al. 2021 use 8, ~3 s at Kato's 2.9 fps).
        neurons: explicit neuron names to use (``()`` = every name shared by the worms).
        exclude: names never used (e.g. ``("AVAL", "AVAR")`` for a "without AVA" condition).
        derivatives: add the per-frame derivative of each trace as a second node feature.
        resample_fps: resample every worm to this frame rate first (``0`` = keep native);
            needed when worms of different datasets meet (Kato 2.9 fps, Flavell ~1.7 fps).
        turn_quantile: Flavell turn rule, per-worm curvature quantile (see ``_labels``).
        turn_after_s: Flavell turn rule, seconds after a reversal ends.
    """

    task: str = "fwd_rev"
    window: int = 8
    neurons: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    derivatives: bool = True
    resample_fps: float = 0.0
    turn_quantile: float = 0.9
    turn_after_s: float = 8.0

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of: {', '.join(TASKS)}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1 timestep, got {self.window}")
        if self.resample_fps < 0:
            raise ValueError(f"resample_fps must be >= 0, got {self.resample_fps}")


@dataclass(frozen=True)
class ModelConfig:
    """Which model (by registry name) and its sizes.

    ``name`` is one of :data:`wormlab.behaviour.MODELS`: ``svm``, ``mlp``, ``gnn`` (inferred
    edges, dynamic per timestep), ``gnn_static`` (inferred edges, static per worm),
    ``gnn_connectome`` (edges from the Cook 2019 chemical synapses), ``gnn_lstm`` (dynamic
    GNN, then an LSTM over time before the readout).
    """

    name: str = "gnn"
    hidden: int = 16
    edge_hidden: int = 8
    readout_hidden: int = 32
    dropout: float = 0.1
    svm_c: float = 1.0
    svm_kernel: str = "rbf"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: Adam, LR decay on plateau, best-validation checkpoint (in memory)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    lr_factor: float = 0.5
    lr_patience: int = 3
    early_stop: int = 8
    val_frac: float = 0.15
    class_weighted: bool = False
    seed: int = 0
    # forecasting
    horizon: int = 16
    forecast_window: int = 1
    ss_max: float = 1.0  # scheduled sampling: final probability of feeding back predictions


@dataclass(frozen=True)
class BehaviourConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BehaviourConfig:
        return config_from_dict(cls, d)

    def replace(self, **parts) -> BehaviourConfig:
        """``cfg.replace(model={"name": "mlp"}, train={"epochs": 3})``."""
        out = {}
        for key in ("data", "model", "train"):
            cur = getattr(self, key)
            out[key] = dataclasses.replace(cur, **parts[key]) if key in parts else cur
        return BehaviourConfig(**out)
