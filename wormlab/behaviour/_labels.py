"""Behaviour labels per frame: Kato 2015 state names and Flavell-lab 2023 kinematics -> classes.

Frames a task does not cover get label ``-1`` and never become a training or test target.

Kato et al. 2015 (Cell 163:656) annotate 8 states: ``fwd``, ``slow``, ``rev1``, ``rev2``,
``revsus``, ``dt`` (dorsal turn), ``vt`` (ventral turn), ``nostate``. Following Wang et al. 2021
(Front. Artif. Intell. 4:618372), they are grouped into 4: forward = {fwd, slow}, reverse =
{rev1, rev2, revsus}, dorsal turn = {dt}, ventral turn = {vt}; ``nostate`` is ignored.

Flavell-lab recordings (Dag et al. 2023, Cell) carry per-frame ``reversal_vec`` (the lab's
curated reversal flags; every flagged frame has negative velocity), ``velocity``,
``angular_velocity`` and ``worm_curvature``. Our rule (documented in docs/behaviour.md):

* reverse  = reversal flag set;
* turn     = not reversing, ``worm_curvature`` >= the worm's ``turn_quantile`` quantile, and
  within ``turn_after_s`` seconds after a reversal ended (the reversal -> turn sequence that
  Kato's dt/vt states also follow). Dorsal vs ventral cannot be told apart: the recordings do
  not say which side the worm lies on, so Flavell has no ``four_state`` labels;
* forward  = every other frame.
"""

from __future__ import annotations

import numpy as np

CLASSES: dict[str, tuple[str, ...]] = {
    "fwd_rev": ("forward", "reverse"),
    "four_state": ("forward", "reverse", "dorsal_turn", "ventral_turn"),
    "fwd_rev_turn": ("forward", "reverse", "turn"),
}

KATO_STATES = ("dt", "fwd", "nostate", "rev1", "rev2", "revsus", "slow", "vt")

# Kato state -> class index, per task (-1 = not a target)
KATO_MAPS: dict[str, dict[str, int]] = {
    "four_state": {"fwd": 0, "slow": 0, "rev1": 1, "rev2": 1, "revsus": 1, "dt": 2, "vt": 3,
                   "nostate": -1},
    "fwd_rev": {"fwd": 0, "slow": 0, "rev1": 1, "rev2": 1, "revsus": 1, "dt": -1, "vt": -1,
                "nostate": -1},
    "fwd_rev_turn": {"fwd": 0, "slow": 0, "rev1": 1, "rev2": 1, "revsus": 1, "dt": 2, "vt": 2,
                     "nostate": -1},
}


def kato_labels(states, task: str) -> np.ndarray:
    """Per-frame Kato state names (T,) -> class indices (T,) int64 (-1 = ignored)."""
    if task not in KATO_MAPS:
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(KATO_MAPS)}")
    mapping = KATO_MAPS[task]
    states = np.asarray(states).astype(str)
    unknown = sorted(set(np.unique(states)) - set(mapping))
    if unknown:
        raise ValueError(f"unknown Kato state name(s) {unknown}; expected: {', '.join(KATO_STATES)}")
    return np.array([mapping[s] for s in states], dtype=np.int64)


def flavell_turns(reversal, curvature, fps: float, quantile: float = 0.9,
                  after_s: float = 8.0) -> np.ndarray:
    """Boolean (T,) turn frames by the rule in the module docstring."""
    rev = np.asarray(reversal).astype(bool)
    curv = np.asarray(curvature, dtype=float)
    if rev.shape != curv.shape or rev.ndim != 1:
        raise ValueError(f"reversal {rev.shape} and curvature {curv.shape} must be equal (T,)")
    high = curv >= np.nanquantile(curv, quantile)
    after = np.zeros_like(rev)
    n_after = max(1, int(round(after_s * fps)))
    ends = np.flatnonzero(rev[:-1] & ~rev[1:]) + 1
    for e in ends:
        after[e:e + n_after] = True
    return high & after & ~rev


def flavell_labels(reversal, curvature, fps: float, task: str, quantile: float = 0.9,
                   after_s: float = 8.0) -> np.ndarray:
    """Flavell kinematics -> class indices (T,) int64 (-1 = ignored); see module docstring."""
    if task == "four_state":
        raise ValueError("task 'four_state' needs dorsal/ventral turns, which the Flavell "
                         "recordings cannot provide (body side unknown); use 'fwd_rev_turn'")
    if task not in CLASSES:
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(CLASSES)}")
    rev = np.asarray(reversal).astype(bool)
    turn = flavell_turns(rev, curvature, fps, quantile, after_s)
    y = np.zeros(rev.shape, dtype=np.int64)
    y[rev] = 1
    y[turn] = 2 if task == "fwd_rev_turn" else -1
    return y
