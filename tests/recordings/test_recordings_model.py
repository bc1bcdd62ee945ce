"""The Recording data model: validation, masks, selections."""

import numpy as np
import pytest

from wormlab import recordings as R


def test_valid_recording_basics(rec):
    assert rec.n_frames == 40 and rec.n_neurons == 5
    assert rec.traces.dtype == np.float32 and not rec.traces.flags.writeable
    assert rec.identified == [0, 2, 3]
    assert rec.roi_labels[1] == "1"
    assert rec.index("AVAR") == 2
    with pytest.raises(KeyError, match="AVAL"):
        rec.index("AVAQ")
    assert rec.stimuli[0].label == "10mM CuSO4"
    m = rec.stimulus_mask("10mM CuSO4")
    # frames at 0.5 s: on for t in [2, 5) and [10, 12.5)
    assert m.sum() == 6 + 5 and m[4] and not m[10] and m[20] and not m[25]
    assert set(rec.conditions()) == {"10mM CuSO4"}
    assert set(rec.conditions("state")) <= {"fwd", "rev", "turn"}
    lab = rec.state_labels
    assert all(lab[k] == ("" if s < 0 else rec.state_names[s]) for k, s in enumerate(rec.states))


def test_select_and_slice(make_rec):
    r = make_rec(N=6, synthetic=True)
    s = r.select(["ASHL", 0])
    assert s.neuron_names == ("ASHL", "AVAL") and s.ground_truth["10mM CuSO4"] == ("ASHL",)
    s2 = r.select(identified_only=True)
    assert None not in s2.neuron_names
    w = r.slice_frames(10, 30)
    assert w.n_frames == 20 and w.time_s[0] == 5.0 and w.behaviour["velocity"].shape == (20,)
    assert "SYNTHETIC" in r.name and "SYNTHETIC" in r.summary()


def test_stimulus_from_mask_roundtrip():
    t = np.arange(20) * 0.5
    m = np.zeros(20, bool)
    m[3:7] = True
    m[15:] = True
    s = R.Stimulus.from_mask("O2", m, t, concentration=21, unit="%")
    assert s.label == "21% O2"
    np.testing.assert_array_equal(s.mask(t), m)


def test_fill_nan(make_rec):
    r = make_rec()
    x = np.array(r.traces)
    x[5:8, 1] = np.nan
    r2 = r.replace(traces=x).fill_nan()
    assert not np.isnan(r2.traces).any()
    np.testing.assert_allclose(r2.traces[6, 1], (x[4, 1] + x[8, 1]) / 2, rtol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"traces": np.zeros(40)}, "2-D"),
        ({"traces": np.zeros((40, 4))}, "4 trace columns"),
        ({"neuron_names": ("AVAL", None, "AVAL", "RIML", None)}, "duplicate neuron names"),
        ({"time_s": np.arange(39) / 2.0}, "one entry per frame"),
        ({"time_s": np.r_[np.arange(39) / 2.0, 5.0]}, "increase strictly"),
        ({"fps": 3.0}, "frame-rate/time mismatch"),
        ({"fps": -1.0}, "positive"),
        ({"states": np.full(40, 5)}, "state indices"),
        ({"states": np.zeros(39, int)}, "states must have shape"),
        ({"state_names": ("fwd", "fwd", "x")}, "unique"),
        ({"behaviour": {"v": np.zeros(3)}}, "behaviour"),
        ({"stimuli": (R.Stimulus("a"), R.Stimulus("a"))}, "duplicate stimulus"),
    ],
)
def test_malformed_recordings_are_rejected(rec, change, message):
    with pytest.raises(R.RecordingError, match=message):
        rec.replace(**change)


def test_nan_only_and_inf_neurons_rejected(rec):
    x = np.array(rec.traces)
    x[:, 3] = np.nan
    with pytest.raises(R.RecordingError, match=r"only NaN.*RIML"):
        rec.replace(traces=x)
    x = np.array(rec.traces)
    x[2, 1] = np.inf
    with pytest.raises(R.RecordingError, match="inf"):
        rec.replace(traces=x)


def test_bad_stimuli():
    with pytest.raises(R.RecordingError, match="off > on"):
        R.Stimulus("a", ((3.0, 1.0),))
    with pytest.raises(R.RecordingError, match="overlap"):
        R.Stimulus("a", ((0.0, 2.0), (1.0, 3.0)))
    with pytest.raises(R.RecordingError, match="non-empty"):
        R.Stimulus("  ")


def test_block_ids():
    np.testing.assert_array_equal(R.block_ids(np.array([0, 0, 1, 1, 1, 0, 2])),
                                  [0, 0, 1, 1, 1, 2, 3])
