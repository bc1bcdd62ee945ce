"""The input-current shape library."""

import numpy as np
import pytest

from wormlab import rom


def test_at_least_40_distinct_recipes():
    t = np.arange(0, 500.5, 0.5)
    names, cur = rom.shape_library(len(rom.RECIPES), 4, t, seed=1)
    assert len(rom.RECIPES) >= 40 and cur.shape == (len(t), len(rom.RECIPES), 4)
    flat = cur.reshape(len(t), -1).T
    # every sequence differs from every other one
    d = np.abs(cur[:, :, None, :] - cur[:, None, :, :]).max(axis=(0, 3))
    np.fill_diagonal(d, 1)
    assert (d > 1e-6).all()
    assert np.abs(flat).max() <= rom._shapes.DEFAULT_AMPLITUDE_NA + 1e-15
    assert cur.min() >= -0.5 * rom._shapes.DEFAULT_AMPLITUDE_NA - 1e-15
    assert cur.min() < 0  # some hyperpolarising stimuli
    assert len(set(n.split("_", 1)[1] for n in names)) == len(rom.RECIPES)


def test_library_is_seeded_and_groups_alternate():
    t = np.arange(0, 500.5, 0.5)
    a = rom.shape_library(9, 4, t, seed=3)[1]
    b = rom.shape_library(9, 4, t, seed=3)[1]
    c = rom.shape_library(9, 4, t, seed=4)[1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(a[:, 2, 2:] == 0) and np.any(a[:, 2, :2] != 0)  # 3rd: first group only
    assert np.all(a[:, 5, :2] == 0) and np.any(a[:, 5, 2:] != 0)  # 6th: second group only


def test_make_current_primitives():
    t = np.arange(0, 100.0, 1.0)
    s = rom.make_current("step", t, 0.005, start_ms=10, stop_ms=20)
    assert s[9] == 0 and s[10] == 0.005 and s[19] == 0.005 and s[20] == 0
    r = rom.make_current("ramp", t, 1.0, start_ms=0, stop_ms=100)
    assert np.all(np.diff(r) >= 0)
    with pytest.raises(KeyError, match="unknown current shape 'spike'"):
        rom.make_current("spike", t)
