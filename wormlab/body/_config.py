"""Configuration of the body component: one frozen, JSON-able, nested dataclass."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from wormlab.io import config_from_dict, config_to_dict


@dataclass(frozen=True)
class MuscleConfig:
    """Calcium -> activation -> joint command.

    Defaults and sources:
    - ``max_ca_mM = 4e-7``: Sibernetic's c302 coupling scales muscle ``cai`` (NEURON, mM; c302's
      ``caConc`` is mol/m^3 = mM) as ``min(1, ca / max_ca)`` with ``max_ca = 4e-7``
      (openworm/sibernetic ``main_sim.py``, class ``C302NRNSimulation``).
    - ``max_force_coeff = 1.0``: Sibernetic's ``max_muscle_force_coeff`` for crawling (0.7 for
      swimming), same file, function ``parallel_waves``.
    - ``ca_decay_ms = 60.81``: muscle calcium pool decay time of c302 parameter set C2
      (installed ``c302/parameters_C2.py``, bioparameter ``ca_conc_decay_time_muscle``
      "60.811870945509265 ms"); used by :func:`wormlab.body.calcium_from_activation` to build
      a calcium trace with the c302 muscle time constant.
    - ``joint_gain_rad = 0.7``: target joint angle (rad) per unit dorsal-minus-ventral
      activation; 0.7 rad is the amplitude of ElegansBot's own crawling demo kymogram
      (``elegansbot.Worm`` docstring), our modelling choice, not a measured constant.
    """

    max_ca_mM: float = 4e-7
    max_force_coeff: float = 1.0
    ca_decay_ms: float = 60.81
    saturation: str = "hard"  # "hard": min(1, ca/max_ca) as Sibernetic; "soft": smooth tanh
    joint_gain_rad: float = 0.7


@dataclass(frozen=True)
class PhysicsConfig:
    """ElegansBot settings (units: s, um; ElegansBot itself works in mm and ug)."""

    dt_s: float = 1e-4  # integration step; 1e-4 differs from 5e-5 by ~5 um COM over 4 s
    frame_dt_s: float = 0.04  # activation / output sampling interval (25 Hz)
    body_length_um: float = 1000.0  # ElegansBot L = 1 mm
    scale_friction: float = 1.0  # 1 = agar (bT 1.28e8 ug/s), ElegansBot default
    scale_muscle: float = 1.0


@dataclass(frozen=True)
class DataConfig:
    """Training-data generation: families, sizes, duration."""

    duration_s: float = 4.0
    n_per_family: dict = field(default_factory=lambda: {
        "nominal": 8, "group_scaled": 64, "sinusoid": 256, "single_muscle": 32})
    seed: int = 0


@dataclass(frozen=True)
class SurrogateConfig:
    """FNO surrogate (neuraloperator) size, representation, error estimate and training.

    - ``input_space``: ``"joints"`` (default) feeds the FNO the 24 ElegansBot joint commands
      computed from the 95 activations by the fixed, documented muscle -> joint map (the only
      thing the physics sees); ``"muscles"`` feeds the 95 activations (last session's model).
    - ``representation``: ``"body_frame"`` (default): per frame the COM displacement in the
      body frame of the previous frame, the heading increment and the 24 joint angles;
      ``"lab_delta"``: COM displacement in the lab frame and the absolute heading.
    - ``n_ensemble`` FNO members (>= 1); ``error_head``: the error estimate is a learned head
      (trained on held-out samples incl. ``errorhead_families``) instead of the ensemble
      spread (which needs ``n_ensemble >= 2``).
    """

    hidden_channels: int = 32
    n_modes: int = 16
    n_layers: int = 4
    n_ensemble: int = 1
    epochs: int = 60
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-5
    val_fraction: float = 0.15
    position_loss_weight: float = 1.0  # weight of the integrated midline-points loss
    # weight of the forward-speed loss: mean |v_pred - v_true| / max(|v_true|, floor), the
    # relative error the accuracy report measures (0: off, as for v3/v4)
    speed_loss_weight: float = 0.0
    speed_loss_floor_um_s: float = 20.0
    grad_clip: float = 0.0  # max gradient norm (0: no clipping)
    domain_padding: float = 0.25  # time axis padded (hold last value) to a fast FFT length
    input_space: str = "joints"
    representation: str = "body_frame"
    error_head: bool = True
    train_families: tuple = ("nominal", "sinusoid", "random")
    errorhead_families: tuple = ("perturbed",)  # used only to train/calibrate the error head
    fallback_threshold_pct: float = 15.0  # estimated body RMSE (% body length) above -> physics
    seed: int = 0

    def __post_init__(self):
        if self.input_space not in ("joints", "muscles"):
            raise ValueError(f"input_space must be 'joints' or 'muscles', got {self.input_space!r}")
        if self.representation not in ("body_frame", "lab_delta"):
            raise ValueError("representation must be 'body_frame' or 'lab_delta', got "
                             f"{self.representation!r}")
        if self.n_ensemble < 1:
            raise ValueError("n_ensemble must be >= 1")
        if self.speed_loss_weight < 0 or self.speed_loss_floor_um_s <= 0:
            raise ValueError("speed_loss_weight must be >= 0 and speed_loss_floor_um_s > 0, got "
                             f"{self.speed_loss_weight}, {self.speed_loss_floor_um_s}")
        if not self.error_head and self.n_ensemble < 2:
            raise ValueError("without an error head the estimate is the ensemble spread: "
                             "n_ensemble must be >= 2")


@dataclass(frozen=True)
class BodyConfig:
    muscle: MuscleConfig = field(default_factory=MuscleConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    surrogate: SurrogateConfig = field(default_factory=SurrogateConfig)

    def to_dict(self) -> dict:
        return config_to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> BodyConfig:
        return config_from_dict(cls, d)
