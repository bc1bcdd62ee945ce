"""The taxis fit (CMA-ES of the sensory pathway through the closed loop): parameter space,
scoring against the flat control, checkpoint and resume, the pathway file."""

import json

import numpy as np
import pytest

from wormlab.loop import _fit as F
from wormlab.loop._closed import PATHWAY_PARAMS, read_pathway


def test_unit_cube_round_trip_and_bounds():
    cfg = F.TaxisFitConfig()
    space = F._space(cfg, ["ASEL", "ASER"])
    assert {"w:ASEL", "w:ASER", "sensory_vth_mV", "head_gain_nS_rad"} <= set(space)
    x0 = F.c302_values(space)
    assert PATHWAY_PARAMS["sensory_vth_mV"][0] == 0.0   # c302, clipped into the range
    assert x0["sensory_vth_mV"] == F.FIT_SPACE["sensory_vth_mV"][1]
    assert x0["w:ASER"] == 1.0
    back = F.decode(F.encode(x0, space), space)
    for k in x0:
        assert back[k] == pytest.approx(x0[k], rel=1e-12, abs=1e-12), k
    lo = F.decode(np.full(len(space), -3.0), space)   # clipped into the bounds
    hi = F.decode(np.full(len(space), 7.0), space)
    for k, (a, b, _) in space.items():
        assert lo[k] == pytest.approx(a) and hi[k] == pytest.approx(b)
    pw, crawl = F.split_values(x0)
    assert set(crawl) == {"head_gain_nS_rad"} and "head_gain_nS_rad" not in pw


def _tiny(tmp_path, **kw):
    return F.TaxisFitConfig(n_starts=1, duration_s=0.4, popsize=2, generations=1,
                            out=str(tmp_path / "fit"), **kw)


def test_scores_are_paired_against_the_flat_field_and_deterministic(tmp_path):
    cfg = _tiny(tmp_path)
    space = F._space(cfg, ["ASEL", "ASER"])
    x0 = F.c302_values(space)
    strong = {**x0, "sensory_vth_mV": -40.0, "w:ASER": 50.0}
    a = F.evaluate([x0, strong], cfg)
    b = F.evaluate([strong], cfg)
    assert b[0]["score_um"] == a[1]["score_um"]          # same trials, same bends
    for r in a:
        assert np.isfinite(r["score_um"]) and r["speed_um_s"] > 0
        slow = cfg.stall_weight * sum(max(0.0, cfg.min_speed_um_s - r[k]) for k in (
            "late_flat_speed_um_s", "late_gradient_speed_um_s"))
        assert r["score_um"] == pytest.approx(np.mean(r["closer_um"]) - slow)


def test_fit_resumes_and_writes_a_pathway_file(tmp_path):
    cfg = _tiny(tmp_path)
    r1 = F.fit_taxis(cfg, progress=False)
    assert len(r1["history"]) == 1
    r2 = F.fit_taxis(F.TaxisFitConfig(**{**cfg.__dict__, "generations": 2}), progress=False)
    assert len(r2["history"]) == 2
    assert r2["history"][0] == r1["history"][0]          # resumed, not redone
    # the replayed CMA-ES continues exactly as an uninterrupted run does
    whole = F.fit_taxis(F.TaxisFitConfig(**{**cfg.__dict__, "generations": 2,
                                            "out": str(tmp_path / "whole")}), progress=False)
    strip = [{k: v for k, v in h.items() if k != "wall_s"} for h in r2["history"]]
    assert strip == [{k: v for k, v in h.items() if k != "wall_s"} for h in whole["history"]]
    assert r2["mean"] == whole["mean"]
    assert r2["best"]["score_um"] >= r2["start"]["score_um"]
    pw = read_pathway(tmp_path / "fit" / "pathway.json")
    assert pw["modality"] == "nacl" and set(pw["crawl"]) == {"head_gain_nS_rad"}
    assert json.loads((tmp_path / "fit" / "fit.json").read_text())["best"] == r2["best"]


def test_bad_pathway_files_are_named(tmp_path):
    p = tmp_path / "pw.json"
    with pytest.raises(FileNotFoundError, match="pw.json does not exist"):
        read_pathway(p)
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        read_pathway(p)
    p.write_text(json.dumps({"pathway": {}}))
    with pytest.raises(ValueError, match="needs 'modality'"):
        read_pathway(p)
    p.write_text(json.dumps({"modality": "nacl", "pathway": {"sensory_vth_mV": 5.0}}))
    with pytest.raises(ValueError, match=r"sensory_vth_mV=5.0 outside \[-70.0, 0.0\]"):
        read_pathway(p)
    p.write_text(json.dumps({"modality": "nacl", "pathway": {"vth": 1.0}}))
    with pytest.raises(ValueError, match="unknown pathway parameter 'vth'"):
        read_pathway(p)
    p.write_text(json.dumps({"modality": "nacl", "pathway": {}, "crawl": {"foo": 1.0}}))
    with pytest.raises(ValueError, match="unknown crawl parameter 'foo'"):
        read_pathway(p)


def test_fit_starts_from_a_pathway_file(tmp_path):
    p = tmp_path / "pw.json"
    p.write_text(json.dumps({"modality": "nacl", "pathway": {
        "sensory_vth_mV": -43.0, "w:ASER": 0.5, "path_vth_mV": -60.0}, "crawl": {}}))
    cfg = F.TaxisFitConfig(n_starts=1, duration_s=0.4, popsize=2, generations=0,
                           start=str(p), out=str(tmp_path / "fit"))
    rep = F.fit_taxis(cfg, progress=False)
    x0 = rep["start"]["values"]
    assert x0["sensory_vth_mV"] == -43.0 and x0["w:ASER"] == 0.5
    assert x0["path_vth_mV"] == F.FIT_SPACE["path_vth_mV"][0]     # clipped into the range
    assert rep["best"]["values"] == x0 and rep["history"] == []


def test_a_tampered_fit_log_is_refused(tmp_path):
    cfg = _tiny(tmp_path)
    F.fit_taxis(cfg, progress=False)
    (ck,) = (tmp_path / "fit").glob("state_*.json")
    state = json.loads(ck.read_text())
    state["asked"][0][0][0] += 0.1
    ck.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="does not replay"):
        F.fit_taxis(F.TaxisFitConfig(**{**cfg.__dict__, "generations": 2}), progress=False)
