"""One frozen, JSON-able configuration for the posture component (nested, not flat)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wormlab.io import config_from_dict, config_to_dict


@dataclass(frozen=True)
class ShapeConfig:
    """Shape representation: tangent angles -> mean removed -> basis amplitudes.

    ``basis``: ``"pca"`` or ``"ica"`` fitted on the training postures, or ``"leifer"`` (the
    6x101 eigenworm basis shipped in ``leiferlab-wbi``). ``n_segments``: tangent angles per
    frame after explicit resampling (Flavell 2023 records 30; Leifer basis has 101).
    """

    basis: str = "ica"  # choices: pca, ica, leifer
    n_modes: int = 6
    n_segments: int = 30
    # wrap the heading increment (last channel) into [-pi, pi): removes the 2 pi jumps of
    # body-unwrapped recordings (see ``shape_series``); off by default so that existing runs
    # and checkpoints keep their input representation
    wrap_heading: bool = False


@dataclass(frozen=True)
class KinematicsConfig:
    """Resistive force theory (RFT) for crawling on agar.

    ``drag_ratio`` K = c_normal / c_tangential. On agar K >> 1 (literature estimates span
    roughly 10-40; Niebur & Erdos 1991 and later RFT fits); in water K ~ 1.5. Default 30.
    ``body_length_mm`` scales speeds from body lengths/s to mm/s (adult N2 ~ 1 mm).
    """

    drag_ratio: float = 30.0
    body_length_mm: float = 1.0
    reversal_min_s: float = 1.0  # a reversal lasts at least this long (s)
    turn_end_to_end: float = 0.5  # head-tail distance / body length below this = turn
    smooth_s: float = 0.0  # optional moving-average of speed before reversal calls (s)


@dataclass(frozen=True)
class LSTMConfig:
    """Generative LSTM: paper default 4 layers x 260 cells, dropout 0.2, window 50."""

    layers: int = 4
    hidden: int = 260
    dropout: float = 0.2
    window: int = 50
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    loss_on: str = "all"  # choices: all, last (next-frame MSE at every step or only the last)
    val_fraction: float = 0.1
    keep_best: bool = True  # return (and save as .best) the best-validation epoch's weights
    # early stopping: stop after this many epochs without a better validation MSE (0 = off)
    patience: int = 0
    # training-set augmentation: "mirror" adds the dorsal/ventral mirror image (theta -> -theta,
    # i.e. every channel negated) of each worm's TRAINING part; validation stays real and
    # un-mirrored, standardisation uses the real training part only
    augment: str = "none"  # choices: none, mirror
    # read-out: "mse" = next-frame point prediction (MSE loss, the paper's); "mdn" = a mixture
    # density network (Bishop 1994; Graves 2013): ``n_components`` diagonal Gaussians per frame,
    # trained by negative log-likelihood and sampled at generation (``noise_kind="mdn"``)
    head: str = "mse"  # choices: mse, mdn
    n_components: int = 5


@dataclass(frozen=True)
class GenerateConfig:
    n_frames: int = 9000
    noise: float = 0.0  # noise scale, in units of each channel's one-step residual std
    mode: str = "stateful"  # choices: stateful, window
    # gaussian: independent per channel, s.d. = noise x residual s.d.; bootstrap: noise x a
    # one-step residual VECTOR drawn from the held-out residuals (keeps cross-channel
    # correlation and heavy tails; needs calibrate_noise first)
    # mdn: sample the model's own mixture (needs an mdn head); ``noise`` is then the
    # temperature, a factor on every component's s.d. (1 = the fitted density, 0 = the mean of
    # the drawn component)
    noise_kind: str = "gaussian"  # choices: gaussian, bootstrap, mdn


@dataclass(frozen=True)
class CellsConfig:
    """Interpretable-cell search.

    The paper smooths with a 200-frame mean filter at 10 fps, i.e. **20 s**: the filter is
    defined here in seconds (``smooth_s``) and converted with each recording's frame rate.
    ``smooth_frames`` (if set) overrides it with a fixed frame count; ``also_frames`` adds a
    second smoothed table with that fixed frame count (200 = the paper's count, which spans
    ~2 min at the Flavell rate of 1.7 Hz), for comparison.
    """

    smooth_s: float = 20.0
    smooth_frames: int | None = None
    also_frames: int | None = 200
    n_shuffles: int = 200
    alpha: float = 0.05  # family-wise, against the max-|r| circular-shift null
    min_abs_r: float = 0.3


@dataclass(frozen=True)
class PostureConfig:
    dataset: str = "flavell"  # choices: flavell, broekmans, synthetic
    seed: int = 0
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    kinematics: KinematicsConfig = field(default_factory=KinematicsConfig)
    lstm: LSTMConfig = field(default_factory=LSTMConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    cells: CellsConfig = field(default_factory=CellsConfig)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PostureConfig:
        return config_from_dict(cls, d)
