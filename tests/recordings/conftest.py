import numpy as np
import pytest

from wormlab import recordings as R


def make_recording(T=40, N=5, seed=0, synthetic=False, states=True, stimuli=True, fps=2.0):
    """A small valid recording (shared factory for the recordings tests)."""
    rng = np.random.default_rng(seed)
    names = ("AVAL", None, "AVAR", "RIML", None, "ASHL", "AWCL", None)[:N]
    names = names + (None,) * (N - len(names))
    return R.Recording(
        traces=rng.normal(size=(T, N)).astype(np.float32),
        neuron_names=names,
        time_s=np.arange(T) / fps,
        fps=fps,
        stimuli=(R.Stimulus("CuSO4", ((2.0, 5.0), (10.0, 12.5)), 10.0),) if stimuli else (),
        states=rng.integers(-1, 3, T) if states else None,
        state_names=("fwd", "rev", "turn") if states else (),
        behaviour={"velocity": rng.normal(size=T)},
        dataset="test",
        worm_id="w1",
        synthetic=synthetic,
        ground_truth={"10mM CuSO4": ("ASHL",)} if synthetic else {},
    )


@pytest.fixture
def rec():
    return make_recording()


@pytest.fixture
def make_rec():
    return make_recording
