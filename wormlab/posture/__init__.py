"""Worm posture: eigenworms, RFT kinematics, a generative LSTM, interpretable cells, strains.

Seed paper: Brown lab (2017 bioRxiv) "Recurrent neural networks with interpretable cells predict
and classify worm behaviour". Eigenworms: Stephens et al. 2008 (PLoS Comput Biol), Brown et al.
2013 (PNAS). Data: Dag et al. 2023 (Cell), Broekmans et al. 2016 (eLife), the UCR "Worms" set.
"""

from wormlab.posture._config import (
    CellsConfig,
    GenerateConfig,
    KinematicsConfig,
    LSTMConfig,
    PostureConfig,
    ShapeConfig,
)
from wormlab.posture._data import (
    UCR_STRAINS,
    PostureRecording,
    leifer_basis,
    load_broekmans,
    load_flavell,
    load_postures,
    load_ucr_worms,
    read_ucr,
    synthetic_recording,
    wormpose_postures,
    write_ucr,
)
from wormlab.posture._kinematics import (
    Kinematics,
    curvature,
    end_to_end,
    kinematics,
    rft_body_velocity,
    travelling_wave,
    travelling_wave_speed,
)
from wormlab.posture._shape import (
    Basis,
    angles_from_midline,
    angles_from_series,
    fit_ica,
    fit_pca,
    midline_from_angles,
    resample_angles,
    shape_series,
    split_mean_angle,
)

__all__ = [
    "Basis",
    "CellsConfig",
    "GenerateConfig",
    "Kinematics",
    "KinematicsConfig",
    "LSTMConfig",
    "PostureConfig",
    "PostureRecording",
    "ShapeConfig",
    "UCR_STRAINS",
    "angles_from_midline",
    "angles_from_series",
    "curvature",
    "end_to_end",
    "fit_ica",
    "fit_pca",
    "kinematics",
    "leifer_basis",
    "load_broekmans",
    "load_flavell",
    "load_postures",
    "load_ucr_worms",
    "midline_from_angles",
    "read_ucr",
    "resample_angles",
    "rft_body_velocity",
    "shape_series",
    "split_mean_angle",
    "synthetic_recording",
    "travelling_wave",
    "travelling_wave_speed",
    "wormpose_postures",
    "write_ucr",
]
