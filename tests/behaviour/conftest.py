"""Small synthetic worms for the behaviour tests (labelled synthetic; tiny arrays only)."""

import numpy as np
import pytest

from wormlab.behaviour import Worm

NAMES = ("AVAL", "AVBL", "RIML", "AIBL", "RMEL")


def synthetic_worm(worm_id="synthetic/w0", n_frames=240, names=NAMES, seed=0, kato=True):
    """A synthetic worm whose reversals are read out by the first neuron (AVAL-like)."""
    rng = np.random.default_rng(seed)
    rev = (np.sin(np.arange(n_frames) / 9.0 + seed) > 0.4)
    x = rng.normal(0, 0.3, (n_frames, len(names)))
    x[:, 0] += 2.0 * rev  # the reversal command neuron
    x[:, 1] -= 1.0 * rev
    if kato:
        states = np.where(rev, "rev1", "fwd").astype(object)
        states[:3] = "nostate"
        return Worm(worm_id, "synthetic", x, tuple(names), 3.0, states=np.array(states, str))
    curv = rng.uniform(0.3, 0.6, n_frames)
    return Worm(worm_id, "synthetic", x, tuple(names), 1.7,
                behaviour={"reversal": rev.astype(int), "curvature": curv})


@pytest.fixture
def worm():
    return synthetic_worm()


@pytest.fixture
def worms():
    return [synthetic_worm(f"synthetic/w{i}", seed=i, kato=False) for i in range(4)]


@pytest.fixture
def make_worm():
    return synthetic_worm
