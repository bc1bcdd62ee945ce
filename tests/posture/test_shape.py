import importlib.util

import numpy as np
import pytest

from wormlab import posture as P


def _wave(n=30, T=50, seed=0):
    rng = np.random.default_rng(seed)
    s = (np.arange(n) + 0.5) / n
    ph = rng.uniform(0, 2 * np.pi, T)
    return np.sin(2 * np.pi * s[None] * 1.3 - ph[:, None]) + 0.3 * rng.standard_normal((T, 1))


def test_midline_angle_round_trip():
    th = _wave()
    pts = P.midline_from_angles(th)
    assert pts.shape == (50, 31, 2)
    back = P.angles_from_midline(pts)
    np.testing.assert_allclose(back, th, atol=1e-9)
    # segment lengths equal body length / n
    seg = np.linalg.norm(np.diff(pts, axis=1), axis=2)
    np.testing.assert_allclose(seg, 1 / 30, rtol=1e-12)


def test_angles_from_unevenly_spaced_midline():
    s = np.sort(np.random.default_rng(1).uniform(0, 1, 2000))
    s[0], s[-1] = 0, 1
    # a circle arc of total angle 2: tangent angle grows linearly from 0 to 2
    pts = np.stack([np.sin(2 * s) / 2, (1 - np.cos(2 * s)) / 2], axis=1)
    th = P.angles_from_midline(pts, n_segments=40)
    expected = 2 * (np.arange(40) + 0.5) / 40
    np.testing.assert_allclose(th, expected, atol=2e-3)


@pytest.mark.parametrize("n_in,n_out", [(30, 49), (49, 100), (100, 30), (30, 101)])
def test_resampling_between_segment_counts(n_in, n_out):
    s_in = (np.arange(n_in) + 0.5) / n_in
    s_out = (np.arange(n_out) + 0.5) / n_out
    f = lambda s: 0.7 * s**3 - s**2 + 0.4 * s - 0.2  # noqa: E731  cubics are reproduced exactly
    np.testing.assert_allclose(P.resample_angles(f(s_in), n_out), f(s_out), atol=1e-10)
    smooth = np.sin(2 * np.pi * s_in)
    back = P.resample_angles(P.resample_angles(smooth, n_out), n_in)
    assert np.abs(back - smooth).max() < 0.01


def test_basis_mismatch_is_an_error():
    b = P.fit_pca(P.split_mean_angle(_wave(30, 200))[0], 4)
    with pytest.raises(ValueError, match="resample"):
        b.project(np.zeros((3, 49)))
    with pytest.raises(ValueError, match="NaN"):
        b.project(np.full((2, 30), np.nan))


@pytest.mark.parametrize("kind", ["pca", "ica"])
def test_projection_reconstruction_round_trip(kind):
    rng = np.random.default_rng(0)
    true = np.linalg.qr(rng.standard_normal((30, 5)))[0].T  # 5 orthonormal shapes
    true -= true.mean(axis=1, keepdims=True)
    amps = rng.laplace(size=(2000, 5)) * np.array([3, 2, 1.5, 1, 0.5])
    x = amps @ true
    basis = P.fit_pca(x, 5) if kind == "pca" else P.fit_ica(x, 5, seed=0)
    rec = basis.reconstruct(basis.project(x))
    np.testing.assert_allclose(rec, x, atol=1e-8)
    ve = basis.variance_explained(x)
    assert ve[-1] == pytest.approx(1.0, abs=1e-10)
    assert np.all(np.diff(ve) >= -1e-12)
    # too few modes loses variance
    assert basis.variance_explained(x, 2)[-1] < 0.95


def test_shape_series_round_trip_with_mean_angle():
    th = _wave(30, 300)
    basis = P.fit_pca(P.split_mean_angle(th)[0], 6)
    ser = P.shape_series(th, basis)
    assert ser.shape == (300, 7)
    back = P.angles_from_series(ser, basis, mean0=th[0].mean())
    full = P.fit_pca(P.split_mean_angle(th)[0], 30)
    np.testing.assert_allclose(
        P.angles_from_series(P.shape_series(th, full), full, th[0].mean()), th, atol=1e-8
    )
    assert np.abs(back - th).mean() < 0.2


def test_leifer_basis_is_real_and_orthonormal():
    b = P.leifer_basis()
    assert b.modes.shape == (6, 101)
    np.testing.assert_allclose(b.modes @ b.modes.T, np.eye(6), atol=1e-6)
    r = b.resampled(30)
    assert r.n_segments == 30
    x = r.reconstruct(np.random.default_rng(0).standard_normal((10, 6)))
    np.testing.assert_allclose(r.reconstruct(r.project(x)), x, atol=1e-8)


def test_wormpose_postures_pca_variance():
    pytest.importorskip("scipy")
    # skip only when the package is not installed; an installed package whose resource
    # cannot be found is a broken loader and must fail
    if importlib.util.find_spec("wormpose") is None:
        pytest.skip("wormpose not installed (pip install --no-deps wormpose)")
    x = P.wormpose_postures(500, seed=0)
    assert x.shape == (500, 100)
    ve = P.fit_pca(x, 6).variance_explained(x)
    # real postures are low-dimensional (Stephens 2008: 4 modes ~ 95% at 100 segments)
    assert ve[3] > 0.85
