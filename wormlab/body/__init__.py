"""Muscles, ElegansBot body physics and an FNO surrogate (issue 7).

>>> from wormlab import body
>>> act = body.travelling_wave(T=101, frame_dt_s=0.04)          # (T, 1, 95)
>>> traj = body.simulate(act)                                    # ElegansBot, um
>>> body.kinematics(traj)["forward_speed_um_s"]
"""

from wormlab.body._config import (
    BodyConfig,
    DataConfig,
    MuscleConfig,
    PhysicsConfig,
    SurrogateConfig,
)
from wormlab.body._families import (
    FAMILIES,
    control_activation,
    make_activation,
    nominal_activation,
    sample_specs,
    sinusoid_activation,
    travelling_wave,
)
from wormlab.body._generate import generate, load_store, package_versions, simulate_spec
from wormlab.body._muscles import (
    GROUPS,
    MUSCLES,
    activation_to_force,
    calcium_from_activation,
    calcium_to_activation,
    group_mask,
    joint_commands,
    joint_matrix,
    muscle_table,
)
from wormlab.body._paths import (
    default_model,
    default_store,
    load_default,
    notebook_files,
    shipped_model,
    shipped_splits,
)
from wormlab.body._physics import (
    Trajectory,
    body_points,
    forward_speed,
    kinematics,
    simulate,
    simulate_joints,
    wave_kinematics,
)
from wormlab.body._plots import compare, plot_error_over_time, plot_loss, plot_shapes, plot_tracks
from wormlab.body._surrogate import (
    Split,
    Surrogate,
    SurrogateFallbackWarning,
    body_rmse_pct,
    channels_to_trajectory,
    com_rmse_pct,
    evaluate,
    load_surrogate,
    predict_with_fallback,
    save_surrogate,
    speed_gradient,
    split_data,
    train_surrogate,
    trajectory_to_channels,
)
from wormlab.body._wcon import read_wcon, write_wcon

__all__ = [
    "default_model", "default_store", "load_default", "notebook_files", "shipped_model",
    "shipped_splits",
    "compare", "plot_error_over_time", "plot_loss", "plot_shapes", "plot_tracks",
    "FAMILIES", "Split", "control_activation", "Surrogate", "SurrogateFallbackWarning", "body_rmse_pct",
    "channels_to_trajectory", "com_rmse_pct", "evaluate", "generate", "load_store",
    "load_surrogate", "make_activation", "nominal_activation", "package_versions",
    "predict_with_fallback", "read_wcon", "sample_specs", "save_surrogate", "simulate_spec",
    "sinusoid_activation", "speed_gradient", "split_data", "train_surrogate",
    "trajectory_to_channels", "travelling_wave", "write_wcon",
    "GROUPS", "MUSCLES", "BodyConfig", "DataConfig", "MuscleConfig", "PhysicsConfig",
    "SurrogateConfig", "Trajectory", "activation_to_force", "body_points",
    "calcium_from_activation", "calcium_to_activation", "forward_speed", "group_mask",
    "joint_commands", "joint_matrix", "kinematics", "muscle_table", "simulate",
    "simulate_joints", "wave_kinematics",
]
