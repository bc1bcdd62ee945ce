"""kinematics_table / realism_table: the summary tables of notebook 07."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from wormlab import posture as P


def test_kinematics_table_rows_match_kinematics():
    rec = P.synthetic_recording(n_frames=400, seed=1)
    k = P.kinematics(rec.angles, rec.fps)
    with_velocity = replace(rec, name="moving", velocity=k.speed * 2.0, reversal=k.reversal)
    without = replace(rec, name="still", velocity=None)
    data = SimpleNamespace(recordings=[with_velocity, without], angles=[rec.angles, rec.angles])
    rows, kins = P.kinematics_table(data)
    assert [r["worm"] for r in rows] == ["moving", "still"] and len(kins) == 2
    assert rows[0]["RFT |speed| mm/s"] == pytest.approx(np.abs(k.speed).mean())
    # a recorded velocity proportional to the RFT speed: r = 1, reversal states all agree
    assert rows[0]["r(RFT speed, recorded)"] == pytest.approx(1.0)
    assert rows[0]["reversal agreement"] == 1.0
    assert rows[0]["recorded |velocity| mm/s"] == pytest.approx(2 * rows[0]["RFT |speed| mm/s"])
    assert "r(RFT speed, recorded)" not in rows[1]
    with pytest.raises(ValueError, match="2 recordings but 1 angle series"):
        P.kinematics_table(SimpleNamespace(recordings=data.recordings, angles=data.angles[:1]))


def test_realism_table_picks_the_fields_and_names_a_broken_result():
    r = {"distributions": {"compare": {"speed_mm_s": {"ks": 0.1},
                                       "curvature_rad_per_L": {"ks": 0.2}},
                           "real": {"reversal_rate_per_min": 1.5},
                           "generated": {"reversal_rate_per_min": 2.5}},
         "c2st_generated_vs_real": {"accuracy": 0.9}, "c2st_real_vs_real": {"accuracy": 0.5}}
    tab = P.realism_table({"g": r})
    assert tab == {"g": {"C2ST acc gen vs real": 0.9, "C2ST acc real vs real": 0.5,
                         "KS speed": 0.1, "KS curvature": 0.2, "rev/min real": 1.5,
                         "rev/min generated": 2.5}}
    with pytest.raises(ValueError, match="'bad' lacks 'c2st_real_vs_real'"):
        P.realism_table({"bad": {k: v for k, v in r.items() if k != "c2st_real_vs_real"}})


def test_resolve_path_follows_the_cache_and_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv("WORMLAB_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("WORMLAB_ROOT", str(tmp_path / "root"))
    assert P.resolve_path("data/cache/posture/run") == (tmp_path / "c" / "posture" / "run").resolve()
    assert P.resolve_path("other/x.json") == (tmp_path / "root").resolve() / "other" / "x.json"
    assert P.resolve_path(tmp_path / "abs") == tmp_path / "abs"
    assert not (tmp_path / "c").exists()  # resolving creates nothing
