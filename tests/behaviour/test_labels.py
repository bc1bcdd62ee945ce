import numpy as np
import pytest

from wormlab.behaviour import CLASSES, KATO_MAPS, flavell_labels, kato_labels
from wormlab.behaviour._labels import KATO_STATES, flavell_turns


def test_kato_eight_to_four():
    y = kato_labels(list(KATO_STATES), "four_state")
    got = dict(zip(KATO_STATES, y.tolist()))
    assert got == {"dt": 2, "fwd": 0, "nostate": -1, "rev1": 1, "rev2": 1, "revsus": 1,
                   "slow": 0, "vt": 3}
    assert CLASSES["four_state"][2] == "dorsal_turn" and CLASSES["four_state"][3] == "ventral_turn"


def test_kato_fwd_rev_ignores_turns_and_nostate():
    y = kato_labels(["fwd", "slow", "rev1", "rev2", "revsus", "dt", "vt", "nostate"], "fwd_rev")
    assert y.tolist() == [0, 0, 1, 1, 1, -1, -1, -1]
    y3 = kato_labels(["dt", "vt", "fwd"], "fwd_rev_turn")
    assert y3.tolist() == [2, 2, 0]
    for task, mapping in KATO_MAPS.items():
        assert set(mapping) == set(KATO_STATES), task
        assert max(mapping.values()) == len(CLASSES[task]) - 1


def test_kato_unknown_state_is_named():
    with pytest.raises(ValueError, match="walk"):
        kato_labels(["fwd", "walk"], "fwd_rev")
    with pytest.raises(ValueError, match="unknown task"):
        kato_labels(["fwd"], "three")


def test_flavell_rule():
    rev = np.array([0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    curv = np.array([9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 9.0])  # high: frames 0-3 and 11
    # fps 1, 3 s after a reversal: frames 3..5 are "after"; frame 0 and 11 are not
    turn = flavell_turns(rev, curv, fps=1.0, quantile=0.6, after_s=3)
    assert np.flatnonzero(turn).tolist() == [3]
    y = flavell_labels(rev, curv, 1.0, "fwd_rev_turn", quantile=0.6, after_s=3)
    assert y.tolist() == [0, 1, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    y2 = flavell_labels(rev, curv, 1.0, "fwd_rev", quantile=0.6, after_s=3)
    assert y2.tolist() == [0, 1, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="dorsal/ventral"):
        flavell_labels(rev, curv, 1.0, "four_state")
    with pytest.raises(ValueError, match="must be equal"):
        flavell_turns(rev, curv[:-1], 1.0)
