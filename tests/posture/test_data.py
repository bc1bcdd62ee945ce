import numpy as np
import pytest

from wormlab import posture as P
from wormlab.paths import shared_data_dir


@pytest.mark.skipif(shared_data_dir() is None, reason="shared data folder absent")
def test_real_loaders_if_present():
    # skip only without the shared folder: with it, a loader that cannot find its files is a
    # broken loader and must fail, not skip
    recs = P.load_flavell()
    esc = P.load_broekmans()
    assert len(recs) == 6  # 2022-05-02-01 has no per-segment angles
    for r in recs:
        assert r.angles.shape[1] == 30 and 1.0 < r.fps < 2.0 and not r.synthetic
        assert r.velocity.shape == r.reversal.shape == (len(r.angles),)
    assert len(esc) == 12 and all(e.shape == (200, 4) for e in esc)


@pytest.mark.skipif(shared_data_dir() is None, reason="shared data folder absent")
def test_load_postures_reads_the_real_worms_when_present():
    recs = P.load_postures("flavell", smoke=True)
    assert len(recs) == 3 and not any(r.synthetic for r in recs)


def test_fallback_to_labelled_synthetic(tmp_path, monkeypatch):
    monkeypatch.setenv("WORMLAB_SHARED_DATA", str(tmp_path / "nowhere"))
    recs = P.load_postures("flavell", smoke=True)
    assert recs and all(r.synthetic and "synthetic" in r.name for r in recs)
    with pytest.raises(FileNotFoundError):
        P.load_flavell()
    with pytest.raises(ValueError, match="unknown posture dataset"):
        P.load_postures("kato")


def test_synthetic_recording_has_forward_reversal_and_turns():
    r = P.synthetic_recording(3000, 30, 10.0, seed=0)
    kin = P.kinematics(r.angles, r.fps)
    assert r.synthetic and 0.02 < r.reversal.mean() < 0.4
    # the model's own reversal state is recovered by RFT on most frames
    assert ((kin.speed < 0) == (r.reversal > 0)).mean() > 0.8
    assert kin.turn.any()
    assert np.isfinite(r.angles).all()
