"""The real recordings in the shared data folder (Kato et al. 2015; Dag et al. 2023)."""

import numpy as np
import pytest

from wormlab import recordings as R
from wormlab.paths import shared_data_dir

pytestmark = pytest.mark.skipif(shared_data_dir() is None, reason="shared data folder absent")


def test_kato2015_worm0():
    r = R.load_kato2015()
    assert (r.n_frames, r.n_neurons) == (3137, 103)
    assert r.fps == pytest.approx(2.905, abs=1e-3)
    assert len(r.identified) == 32 and "AVER" in r.neuron_names and r.neuron_names[0] is None
    assert r.state_names == ("dt", "fwd", "nostate", "rev1", "rev2", "revsus", "slow", "vt")
    assert not r.synthetic and "Cell 163:656" in r.citation
    assert set(r.conditions()) == set(r.state_names)  # no stimuli -> states


def test_kato2015_states_match_label_csv():
    """The NPZ states agree with the independent per-frame label file of the same conversion."""
    r = R.load_kato2015()
    y = np.loadtxt(shared_data_dir() / "kato2015" / "labels" / "worm_0_y.csv", delimiter=",")
    assert y.shape == (r.n_frames,)
    np.testing.assert_array_equal(y.astype(int), r.states)


def test_flavell2023_all_datasets():
    ids = R.list_flavell2023()
    assert len(ids) == 7
    for d in ids:
        r = R.load_flavell2023(d)
        assert 130 <= r.n_neurons <= 146 and 799 <= r.n_frames <= 1137
        assert 0.5 < 1 / r.fps < 0.8 and r.behaviour["velocity"].shape == (r.n_frames,)
        assert r.state_names == ("fwd", "rev") and "Cell" in r.citation
        if d in ("2022-01-16-01", "2022-05-02-01"):
            assert r.strain == "SWF415" and not r.identified and r.stimuli[0].name == "food"
        else:
            assert r.strain == "SWF702" and len(r.identified) > 80


def test_flavell2023_names_are_plausible():
    """The reversal command interneurons (AVA, AVE, AIB) rise with reversals in every NeuroPAL
    worm, more than a typical ROI does (checks the derived name -> column mapping, as the
    shared README asks)."""
    cmd = ("AVAL", "AVAR", "AVEL", "AVER", "AIBL", "AIBR")
    for d in R.list_flavell2023():
        r = R.load_flavell2023(d)
        if not r.identified:
            continue
        rev = r.state_mask("rev")
        corr = np.array([np.corrcoef(r.traces[:, j], rev)[0, 1] for j in range(r.n_neurons)])
        mine = [corr[r.index(n)] for n in cmd if n in r.neuron_names]
        assert len(mine) >= 4, d
        assert np.mean(mine) > 0.1 and np.mean(mine) > np.median(corr) + 0.1, (d, mine)


def test_load_shared_ids_and_dispatch():
    assert "kato2015/worm0" in R.list_shared()
    r = R.load_shared("flavell2023/2022-07-26-31")
    r2 = R.load(shared_data_dir() / "flavell2023" / "recordings" / "2022-07-26-31-data.h5")
    np.testing.assert_array_equal(r.traces, r2.traces)
    with pytest.raises(ValueError, match="unknown recording source"):
        R.load_shared("nichols2017/worm0")
    with pytest.raises(FileNotFoundError):
        R.load_flavell2023("1999-01-01-01")
