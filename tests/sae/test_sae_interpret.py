"""Interpretation: the seed's format, Cohen's d, block permutations, FDR, known answers."""

import numpy as np
import pytest

from wormlab import sae


def test_seed_format_exactly():
    s1 = sae.FeatureStat("10mM CuSO4", 180, "180", 0.334, 6.562, 5.358, 0.001, 0.004, True)
    s2 = sae.FeatureStat("10mM CuSO4", 20, "20", 0.158, 1.380, 1.064, 0.2, 0.5, False)
    t = sae.SelectivityTable("unit", "Stimulus", {"10mM CuSO4": (480, 4499)}, [s2, s1], 1000)
    lines = t.format(top=2).splitlines()
    assert lines[0] == "Stimulus: 10mM CuSO4  (n_on=480, n_off=4499)"
    assert lines[1].startswith("  #01 unit 180  d=+0.334  on=6.562 off=5.358")
    assert lines[2].startswith("  #02 unit  20  d=+0.158  on=1.380 off=1.064")
    assert lines[1].endswith("p=0.001 q=0.004 significant")
    assert lines[2].endswith("p=0.200 q=0.500 n.s.")
    neuron = sae.format_line(1, "neuron", sae.FeatureStat("x", 3, "AVAL", -1.5, 0, 1, .01, .02,
                                                          True))
    assert neuron.startswith("  #01 neuron AVAL  d=-1.500  on=0.000 off=1.000")


def test_cohens_d_known_value():
    x = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])[:, None]
    m = np.array([0, 0, 0, 0, 1, 1, 1, 1], bool)
    d, on, off = sae.cohens_d(x, m)
    # means 6.5 vs 2.5, both variances 5/3 -> d = 4 / sqrt(5/3)
    assert d[0] == pytest.approx(4 / np.sqrt(5 / 3)) and on[0] == 6.5 and off[0] == 2.5
    with pytest.raises(ValueError, match=">= 2 on"):
        sae.cohens_d(x, np.eye(8, dtype=bool)[0])


def test_benjamini_hochberg_known_values():
    q = sae.benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(q, [0.02, 0.04, 0.04, 0.02])
    q2 = sae.benjamini_hochberg(np.array([[0.5, 0.9], [0.001, 1.0]]))
    assert q2.shape == (2, 2) and q2[1, 0] == pytest.approx(0.004) and q2.max() <= 1


def test_block_shuffles_keep_block_lengths():
    rng = np.random.default_rng(0)
    m = np.zeros(200, bool)
    m[10:30] = m[80:95] = m[150:190] = True
    sh = sae.block_shuffles(m, 50, rng)
    assert (sh.sum(1) == m.sum()).all()
    assert not (sh == m).all(1).all()


def _ar1(T, F, phi, rng):
    e = rng.normal(size=(T, F))
    x = np.empty_like(e)
    x[0] = e[0]
    for t in range(1, T):
        x[t] = phi * x[t - 1] + np.sqrt(1 - phi**2) * e[t]
    return x


def _pulses(T, rng, n=12, length=60):
    m = np.zeros(T, bool)
    starts = np.sort(rng.choice(np.arange(0, T - length, 2 * length), n, replace=False))
    for s in starts:
        m[s:s + length] = True
    return m


def test_known_answer_selective_feature_is_found_nulls_are_not():
    rng = np.random.default_rng(1)
    T = 3000
    m = _pulses(T, rng)
    x = _ar1(T, 40, 0.95, rng)
    x[:, 0] += 1.0 * m  # feature 0 responds to the stimulus
    x[:, 1] -= 1.5 * m  # feature 1 is suppressed by it
    t = sae.selectivity(x, {"stim": m}, n_perm=500, seed=0)
    stats = {s.feature: s for s in t.for_condition("stim")}
    assert stats[0].significant and stats[0].d > 0.8 and stats[0].q < 0.05
    assert stats[1].significant and stats[1].d < -0.5
    assert sum(stats[j].significant for j in range(2, 40)) <= 2  # FDR 5 %
    assert t.ranked("stim")[0].feature == 0


def test_block_shuffle_is_calibrated_where_frame_shuffle_is_not():
    """Autocorrelated null features (GCaMP-like smoothness): the block permutation keeps the
    false-positive rate near alpha; shuffling single frames would not."""
    rng = np.random.default_rng(2)
    T = 2000
    m = _pulses(T, rng, n=10, length=50)
    x = _ar1(T, 200, 0.97, rng)
    d, _, _, p = sae.block_permutation_test(x, m, n_perm=300, seed=0)
    fpr_block = float((p < 0.05).mean())
    # frame-level shuffle for contrast
    null = np.stack([sae.cohens_d(x, rng.permutation(m))[0] for _ in range(300)])
    p_frame = (1 + (np.abs(null) >= np.abs(d)).sum(0)) / 301
    fpr_frame = float((p_frame < 0.05).mean())
    assert fpr_block < 0.12
    assert fpr_frame > 2 * fpr_block and fpr_frame > 0.2


def test_decoder_reading_helpers():
    w = np.array([[0.0, 0.9, -0.4, 0.1], [0.0, 0.8, -0.5, 0.2], [1.0, 0.0, 0.0, 0.0]])
    names = ["AVAL", "ASHL", "AWCL", "RIML"]
    assert sae.top_neurons(w, names, 0, k=2) == [("ASHL", 0.9), ("AWCL", -0.4)]
    nn = sae.nearest_units(w, 0, k=2)
    assert nn[0][0] == 1 and nn[0][1] > 0.95 and nn[1][0] == 2


def test_planted_recovery_scores():
    stats = [sae.FeatureStat("s", 0, "0", 2.0, 1, 0, .001, .001, True),
             sae.FeatureStat("s", 1, "1", 0.1, 1, 0, .5, .6, False)]
    t = sae.SelectivityTable("unit", "Stimulus", {"s": (10, 90)}, stats, 100)
    w = np.array([[0.9, 0.8, 0.1, 0.0], [0.0, 0.0, 0.0, 1.0]])
    r = sae.recovery_from_units(t, w, ["A", "B", "C", "D"], {"s": ["A", "C"]})
    assert r["s"]["predicted"] == ["A", "B"]
    assert r["s"]["precision"] == 0.5 and r["s"]["recall"] == 0.5
