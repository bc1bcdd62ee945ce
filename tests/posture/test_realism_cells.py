import numpy as np
import pytest

from wormlab import posture as P
from wormlab.posture._cells import cell_correlations, mean_filter
from wormlab.posture._realism import (
    classifier_two_sample_test,
    feature_distributions,
    real_vs_real_test,
    window_features,
)


def _recs(n=4, T=1500):
    return [P.synthetic_recording(T, 30, 10.0, seed=i) for i in range(n)]


def test_real_vs_real_is_near_chance_and_noise_is_detected():
    recs = _recs()
    basis = P.fit_pca(np.concatenate([P.split_mean_angle(r.angles)[0] for r in recs]), 4)
    ser = [P.shape_series(r.angles, basis) for r in recs]
    f = np.concatenate([window_features(s, 50) for s in ser])
    rr = real_vs_real_test(f, seed=0, repeats=3, n_trees=100)
    assert 0.35 <= rr["accuracy"] <= 0.65, rr
    # white noise with matched per-channel mean/std is trivially told apart
    rng = np.random.default_rng(0)
    cat = np.concatenate(ser)
    fake = [cat.mean(0) + cat.std(0) * rng.standard_normal(s.shape) for s in ser]
    g = np.concatenate([window_features(s, 50) for s in fake])
    gr = classifier_two_sample_test(f, g, seed=0, n_trees=100)
    assert gr["accuracy"] > 0.9 and gr["p_value_vs_chance"] < 1e-6
    with pytest.raises(ValueError):
        classifier_two_sample_test(f[:3], g[:3])


def test_feature_distributions_identical_sets_match():
    recs = _recs(2, 800)
    basis = P.fit_pca(np.concatenate([P.split_mean_angle(r.angles)[0] for r in recs]), 5)
    ser = [P.shape_series(r.angles, basis) for r in recs]
    d = feature_distributions(ser, ser, basis, 10.0)
    assert d["compare"]["speed_mm_s"]["ks"] == 0
    assert np.allclose(d["compare"]["log_spectral_distance_db"], 0)
    # the synthetic worm crawls forward on average and reverses
    assert d["real"]["speed_mm_s"]["mean"] > 0
    assert d["real"]["reversal_rate_per_min"] > 0
    frozen = [np.repeat(s[:1], len(s), 0) for s in ser]
    d2 = feature_distributions(ser, frozen, basis, 10.0)
    assert d2["compare"]["speed_mm_s"]["ks"] > 0.5


def test_cell_correlations_find_planted_cells_only():
    rng = np.random.default_rng(0)
    beh, act = [], []
    for _ in range(3):
        T = 1000
        b = mean_filter(rng.standard_normal(T), 30)
        a = rng.standard_normal((T, 40))
        a = mean_filter(a, 30)
        a[:, 7] = b + 0.3 * a[:, 7]  # planted cell
        a[:, 21] = -b + 0.5 * a[:, 21]  # planted, negative
        beh.append(b)
        act.append(a)
    cfg = P.CellsConfig(smooth_frames=50, n_shuffles=100, alpha=0.05, min_abs_r=0.3)
    res = cell_correlations(act, beh, cfg, seed=0)
    assert set(res["passed"].tolist()) == {7, 21}
    assert res["r"][7] > 0.8 and res["r"][21] < -0.8
    sm = cell_correlations(act, beh, cfg, smooth=True, seed=0)
    assert {7, 21} <= set(sm["passed"].tolist())
    with pytest.raises(ValueError):
        cell_correlations(act, beh[:2], cfg)


def test_mean_filter_preserves_constants():
    x = np.ones((100, 3))
    np.testing.assert_allclose(mean_filter(x, 200), 1.0)


def test_feature_separability_names_the_planted_difference():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 3 * 9))
    b = rng.standard_normal((200, 3 * 9))
    names = P.window_feature_names(3)
    assert len(names) == 27 and names[4] == "std[1]"
    b[:, 4] += 2.0  # set b differs in one feature only
    top = P.feature_separability(a, b, names, top=3)
    assert top[0][0] == "std[1]" and top[0][1] > 0.9
    assert all(abs(t[1] - 0.5) < 0.2 for t in top[1:])
    with pytest.raises(ValueError):
        P.feature_separability(a, b, names[:-1])
