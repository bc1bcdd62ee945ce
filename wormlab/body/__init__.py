"""Muscles, ElegansBot body physics and an FNO surrogate (issue 7).

>>> from wormlab import body
>>> act = body.travelling_wave(T=101, frame_dt_s=0.04)          # (T, 1, 95)
>>> traj = body.simulate(act)                                    # ElegansBot, um
>>> body.kinematics(traj)["forward_speed_um_s"]
"""

from wormlab.body._config import BodyConfig, DataConfig, MuscleConfig, PhysicsConfig, SurrogateConfig
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
from wormlab.body._physics import (
    Trajectory,
    body_points,
    forward_speed,
    kinematics,
    simulate,
    simulate_joints,
    wave_kinematics,
)

__all__ = [
    "GROUPS", "MUSCLES", "BodyConfig", "DataConfig", "MuscleConfig", "PhysicsConfig",
    "SurrogateConfig", "Trajectory", "activation_to_force", "body_points",
    "calcium_from_activation", "calcium_to_activation", "forward_speed", "group_mask",
    "joint_commands", "joint_matrix", "kinematics", "muscle_table", "simulate",
    "simulate_joints", "wave_kinematics",
]
