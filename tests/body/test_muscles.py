"""Muscle table, calcium -> activation, the 95 -> 24 joint mapping and its sign in ElegansBot."""

import numpy as np
import pytest
import torch

from wormlab import body, connectome


def test_muscle_table_matches_connectome():
    tab = body.muscle_table()
    assert list(tab["name"]) == list(connectome.MUSCLES)
    assert tab["dorsal"].sum() == 48 and (~tab["dorsal"]).sum() == 47  # no MVL24
    assert set(tab["row"]) == set(range(1, 25))
    for name, d, r in zip(tab["name"], tab["dorsal"], tab["row"], strict=True):
        side, _, row = connectome.muscle_info(name)
        assert (side == "dorsal") == d and row == r


def test_joint_matrix_dorsal_minus_ventral_per_row():
    w = body.joint_matrix().numpy()
    tab = body.muscle_table()
    for r in range(24):
        col = w[:, r]
        assert np.isclose(col[tab["dorsal"]].sum(), 1) and np.isclose(col[~tab["dorsal"]].sum(), -1)
        assert np.all(col[tab["row"] != r + 1] == 0)
    act = torch.zeros(1, 1, 95, dtype=torch.float64)
    act[..., body.group_mask("dorsal")] = 1.0
    j = body.joint_commands(act)
    assert torch.allclose(j, torch.full_like(j, body.MuscleConfig().joint_gain_rad))
    act = 1 - act
    assert torch.allclose(body.joint_commands(act), -j)


def test_calcium_to_activation_sibernetic_scaling_and_errors():
    cfg = body.MuscleConfig()
    ca = torch.tensor([0.0, 2e-7, 4e-7, 8e-7]).reshape(4, 1, 1).expand(4, 1, 95)
    a = body.calcium_to_activation(ca)
    assert torch.allclose(a[:, 0, 0], torch.tensor([0.0, 0.5, 1.0, 1.0]))
    soft = body.calcium_to_activation(ca, body.MuscleConfig(saturation="soft"))
    assert torch.all(soft < 1) and torch.all(torch.diff(soft[:, 0, 0]) > 0)
    with pytest.raises(ValueError, match=">= 0"):
        body.calcium_to_activation(-ca - 1e-9)
    with pytest.raises(ValueError, match=r"\(T, B, 95\)"):
        body.calcium_to_activation(torch.zeros(3, 94))
    with pytest.raises(ValueError, match="saturation"):
        body.calcium_to_activation(ca, body.MuscleConfig(saturation="x"))
    assert cfg.max_ca_mM == 4e-7


def test_calcium_chain_is_differentiable():
    x = torch.rand(3, 2, 95, dtype=torch.float64) * 3e-7

    def f(ca):
        return body.joint_commands(body.calcium_to_activation(ca, body.MuscleConfig(
            saturation="soft")))

    assert torch.autograd.gradcheck(f, (x.requires_grad_(),), eps=1e-12, atol=1e-6)


def test_calcium_from_activation_reaches_steady_state():
    act = torch.full((200, 1, 95), 0.5, dtype=torch.float64)
    ca = body.calcium_from_activation(act, dt_s=0.01)
    assert torch.allclose(body.calcium_to_activation(ca)[-1], act[-1], atol=1e-6)
    assert ca[0, 0, 0] < ca[10, 0, 0]  # rises with the c302 muscle time constant


def _concave_side(traj):
    """+1 if the body at the last frame is concave on its dorsal side, -1 if ventral."""
    pts = traj.points_um[-1, 0]  # (26, 2) head -> tail
    chord_mid = 0.5 * (pts[0] + pts[-1])
    mid = pts[13]
    axis = pts[0] - pts[-1]  # posterior -> anterior
    dorsal_normal = np.array([-axis[1], axis[0]])  # +90 deg (ElegansBot polarity_clockwise=False)
    # dorsal concavity: the chord lies on the dorsal side of the mid-body point
    return np.sign(np.dot(chord_mid - mid, dorsal_normal))


@pytest.mark.parametrize("group,expected", [("dorsal", 1), ("ventral", -1)])
def test_dorsal_activation_bends_dorsally(group, expected):
    act = torch.zeros(26, 1, 95, dtype=torch.float64)
    act[..., body.group_mask(group)] = 0.3
    traj = body.simulate(act)
    assert _concave_side(traj) == expected
    assert np.sign(traj.joints_rad[-1, 0].mean()) == expected
