"""ElegansBot adapter: units, geometry and derived kinematics."""

import numpy as np
import pytest
import torch

from wormlab import body


def test_adapter_matches_elegansbot_tips_in_um():
    from elegansbot import Worm

    j = 0.5 * np.cos(2 * np.pi * (np.linspace(0, 1, 24)[None] - np.arange(26)[:, None] * 0.04))
    traj = body.simulate_joints(j[:, None])
    env = Worm(dt=1e-4, simTime=None, dt_snapshot=None)
    env.run(j, 0.04)
    assert np.allclose(traj.points_um[:, 0], env.xy_tip_log.transpose(0, 2, 1) * 1000, atol=1e-6)
    assert np.allclose(traj.com_um[:, 0], env.xyc_log * 1000)
    assert np.allclose(traj.joints_rad[:, 0], env.theta_log)
    assert traj.points_um.shape == (26, 1, 26, 2) and traj.speed_um_s.shape == (26, 1)


def test_forward_and_backward_waves():
    fw = body.travelling_wave(101, 0.04, freq_hz=0.5, wavelength_bl=0.75, amplitude=0.8)
    bw = body.travelling_wave(101, 0.04, freq_hz=0.5, wavelength_bl=0.75, amplitude=0.8,
                              direction=-1)
    traj = body.simulate(torch.cat([fw, bw], 1))
    k = body.kinematics(traj)
    assert k["forward_speed_um_s"][0] > 20 and k["forward_speed_um_s"][1] < -20
    assert np.allclose(k["frequency_hz"], 0.5, rtol=0.1)
    assert np.allclose(k["wavelength_bl"], 0.75, rtol=0.2)
    assert list(k["direction"]) == [1, -1]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"\(T, B, 24\)"):
        body.simulate_joints(np.zeros((5, 1, 23)))
    with pytest.raises(ValueError, match="NaN"):
        body.simulate_joints(np.full((5, 1, 24), np.nan))
    with pytest.raises(ValueError, match=r"\(T, B, 95\)"):
        body.simulate(np.zeros((5, 1, 90)))
    with pytest.raises(ValueError, match="direction"):
        body.travelling_wave(5, direction=0)


def test_families_are_deterministic_and_checked():
    a = body.sample_specs({"sinusoid": 3, "single_muscle": 2, "group_scaled": 2}, seed=1)
    b = body.sample_specs({"sinusoid": 3, "single_muscle": 2, "group_scaled": 2}, seed=1)
    assert a == b and len({s["id"] for s in a}) == 7
    for s in a:
        x = body.make_activation(s, 11, 0.04)
        assert x.shape == (11, 95) and np.isfinite(x).all() and (x >= 0).all()
    with pytest.raises(ValueError, match="unknown families"):
        body.sample_specs({"chirp": 1})
    with pytest.raises(ValueError, match="unknown muscle group"):
        body.group_mask("pharynx")
