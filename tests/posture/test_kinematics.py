import numpy as np
import pytest

from wormlab import posture as P


@pytest.mark.parametrize("K", [1.5, 30.0])
def test_rft_speed_matches_exact_travelling_wave(K):
    fps, wl, f, a = 20.0, 3, 0.5, 0.8
    th = P.travelling_wave(400, 120, fps, theta0=a, wavelengths=wl, freq_hz=f)
    kin = P.kinematics(th, fps, P.KinematicsConfig(drag_ratio=K))
    exact = P.travelling_wave_speed(a, 2 * np.pi * wl, 2 * np.pi * f, K)
    assert kin.speed[20:-20].mean() == pytest.approx(exact, rel=0.05)  # finite body: 3 wavelengths
    # the centroid track advances at that speed along the body axis (head is at -x)
    disp = kin.xy[-21] - kin.xy[20]
    assert -disp[0] / ((len(th) - 41) / fps) == pytest.approx(exact, rel=0.07)
    assert not kin.reversal.any()


def test_backward_wave_is_a_reversal_and_drag_ratio_matters():
    fps = 10.0
    th = P.travelling_wave(200, 60, fps, wavelengths=2, freq_hz=-0.5)
    kin = P.kinematics(th, fps)
    assert kin.speed[5:-5].max() < 0 and kin.reversal[5:-5].all()
    assert kin.reversal_rate_per_min > 0
    water = P.kinematics(th, fps, P.KinematicsConfig(drag_ratio=1.5))
    assert abs(water.speed.mean()) < 0.3 * abs(kin.speed.mean())


def test_curvature_turns_and_bad_input():
    s = (np.arange(50) + 0.5) / 50
    straight = np.zeros((5, 50))
    coil = np.tile(2 * np.pi * 0.9 * s, (5, 1))  # nearly closed loop
    assert np.allclose(P.curvature(straight), 0)
    assert P.curvature(coil)[0] == pytest.approx(2 * np.pi * 0.9, rel=1e-6)
    kin = P.kinematics(np.concatenate([straight, coil]), 10.0)
    assert not kin.turn[:5].any() and kin.turn[5:].all()
    with pytest.raises(ValueError, match="fps"):
        P.kinematics(straight, 0)
    with pytest.raises(ValueError, match="3 frames"):
        P.kinematics(straight[:2], 10.0)
