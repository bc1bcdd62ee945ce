"""The taxis experiment: paired starts, conditions, resume, the report's measures."""

import json

import numpy as np
import pytest

from wormlab import loop
from wormlab.loop import _experiment as ex
from wormlab.paths import package_data

ARENA = str(package_data("loop", "arenas", "nacl_local.yml"))


def test_trial_starts_are_seeded_inside_the_start_disc():
    cfg = loop.TaxisConfig(n_trials=40, start_radius_um=1000.0, seed=3)
    s, h = loop.trial_starts(cfg)
    s2, h2 = loop.trial_starts(cfg)
    np.testing.assert_array_equal(s, s2)
    np.testing.assert_array_equal(h, h2)
    assert s.shape == (40, 2) and np.all(np.hypot(*s.T) <= 1000.0)
    assert not np.allclose(s, loop.trial_starts(loop.TaxisConfig(n_trials=40, seed=4))[0])


def test_conditions_are_parsed_and_bad_ones_named():
    assert ex._condition("gradient") == (True, ())
    assert ex._condition("no_gradient") == (False, ())
    assert ex._condition("ablate:ASEL+ASER") == (True, ("ASEL", "ASER"))
    with pytest.raises(ValueError, match="unknown condition 'ablate:'"):
        ex._condition("ablate:")
    specs = ex._specs(loop.TaxisConfig(n_trials=25, chunk=10))
    assert [s["n"] for s in specs if s["condition"] == "gradient"] == [10, 10, 5]


@pytest.mark.slow
def test_taxis_runs_every_condition_on_the_same_starts_and_resumes(tmp_path):
    from wormlab.worm import read_crawl_params, write_crawl_params

    pfile = tmp_path / "p.json"
    p = read_crawl_params(package_data("worm", "data", "crawl_params.json"))
    write_crawl_params(pfile, p)
    cfg = loop.TaxisConfig(arena=ARENA, n_trials=2, duration_s=0.4, chunk=2,
                           conditions=("gradient", "no_gradient", "ablate:ASEL+ASER"),
                           params=str(pfile), out=str(tmp_path / "taxis"))
    rep = loop.run_taxis(cfg, client="sync", progress=False)
    assert set(rep["conditions"]) == set(cfg.conditions)
    g = loop.load_condition(cfg, "gradient")
    n = loop.load_condition(cfg, "no_gradient")
    a = loop.load_condition(cfg, "ablate:ASEL+ASER")
    np.testing.assert_allclose(g["com_um"][0], n["com_um"][0])      # paired starts
    assert g["head_um"].shape == (11, 2, 2)
    assert np.ptp(n["stimulus"]) == pytest.approx(0.0, abs=1e-12)   # no gradient: flat
    assert np.ptp(g["stimulus"]) > 0.0
    assert np.all(a["v_mV"][:, :, :2] == -70.0)                      # ablated ASE silent
    for c, m in rep["conditions"].items():
        assert m["n_trials"] == 2 and m["value_change"]["unit"] == "mM", c
    assert set(rep["comparisons"]["value_change"]) == {"no_gradient", "ablate:ASEL+ASER"}
    on_disk = json.loads((tmp_path / "taxis" / "taxis.json").read_text())
    assert on_disk["conditions"]["gradient"]["n_trials"] == 2
    # resume: nothing is recomputed; the same file with other crawl parameters is refused
    rep2 = loop.run_taxis(cfg, client="sync", progress=False)
    assert rep2["conditions"]["gradient"]["value_change"] == rep["conditions"]["gradient"][
        "value_change"]
    write_crawl_params(pfile, {**p, "drive_nA": p["drive_nA"] * 0.9})
    with pytest.raises(ValueError, match="another fn config"):
        loop.run_taxis(cfg, client="sync", progress=False)


@pytest.mark.slow
def test_taxis_with_a_pathway_file_uses_it_and_refuses_results_of_another(tmp_path):
    pw = tmp_path / "pw.json"
    base = json.loads(package_data("loop", "data", "pathway_nacl.json").read_text())
    pw.write_text(json.dumps({**base, "crawl": {"head_gain_nS_rad": -0.05}}))
    cfg = loop.TaxisConfig(arena=str(package_data("loop", "arenas", "nacl_spot.yml")),
                           n_trials=2, duration_s=0.4, chunk=2, conditions=("gradient",),
                           pathway=str(pw), out=str(tmp_path / "taxis"))
    rep = loop.run_taxis(cfg, client="sync", progress=False)
    m = rep["conditions"]["gradient"]
    assert m["n_trials"] == 2 and 0 <= m["stalled"] <= 2 and np.isfinite(m["late_speed_um_s"])
    crawl, pathway = loop.pathway_and_params(str(pw), modality="nacl")
    assert crawl["head_gain_nS_rad"] == -0.05 and pathway == base["pathway"]
    # the same trials by hand: the report's trials are the pathway's, not c302's
    s, h = loop.trial_starts(cfg)
    r = loop.run_closed_loop(loop.load_arena(cfg.arena), s, h, crawl,
                             loop.ClosedLoopConfig(duration_s=0.4, seed=cfg.seed),
                             pathway=pathway)
    np.testing.assert_allclose(loop.load_condition(cfg, "gradient")["com_um"], r.com_um)
    pw.write_text(json.dumps({**base, "crawl": {"head_gain_nS_rad": -0.06}}))
    with pytest.raises(ValueError, match="another fn config"):
        loop.run_taxis(cfg, client="sync", progress=False)
