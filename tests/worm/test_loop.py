"""The closed loop (circuit -> muscles -> ElegansBot -> curvature -> circuit) and the fit's
loss, parameter mapping and bad input."""

import math
from dataclasses import replace

import numpy as np
import pytest

from wormlab import worm
from wormlab.worm import _fit


def test_unknown_or_out_of_bound_parameters_are_named():
    with pytest.raises(KeyError, match="unknown crawl parameters.*nmj"):
        worm.run_loop({"nmj": 1.0})
    with pytest.raises(ValueError, match="nmj_vth_mV.*outside its bounds"):
        worm.run_loop({"nmj_vth_mV": 20.0})
    with pytest.raises(ValueError, match="tau_act_ms is not finite"):
        worm.run_loop({"tau_act_ms": float("nan")})
    with pytest.raises(ValueError, match="direction"):
        worm.run_loop({}, worm.LoopConfig(direction="sideways"))
    with pytest.raises(KeyError, match="cannot ablate 'AVBX'"):
        worm.run_loop({}, worm.LoopConfig(duration_s=0.08, ablate=("AVBX",)))


def test_band_loss_is_exact():
    x = np.array([np.nan, 50.0, 100.0, 150.0, 300.0, 400.0])
    assert _fit._band(x, 100, 300, 100).tolist() == [1.0, 0.5, 0.0, 0.0, 0.0, 1.0]
    inside = {"speed_um_s": np.array([200.0]), "frequency_hz": np.array([0.5]),
              "wavelength_bl": np.array([0.7]), "oscillation_rad": np.array([0.2])}
    back = dict(inside, speed_um_s=np.array([-200.0]))
    assert _fit.crawl_loss(inside, back).tolist() == [0.0]
    # crawling forward under the backward drive is penalised by its distance to the band
    assert _fit.crawl_loss(inside, inside).tolist() == [pytest.approx(3.0)]


def test_unit_box_round_trip_and_bounds():
    names = tuple(worm.PARAMS)
    p = {k: v[0] for k, v in worm.PARAMS.items()}
    p.update(syn_nmj_exc=12.5, nmj_vth_mV=-33.0, prop_gain_nS_rad=-0.5, max_ca_mM=3e-8)
    u = _fit.to_unit(p, names)
    assert np.all((u >= 0) & (u <= 1))
    back = _fit.from_unit(u, names)
    for k in ("syn_nmj_exc", "nmj_vth_mV", "prop_gain_nS_rad", "max_ca_mM", "tau_act_ms"):
        assert back[k].item() == pytest.approx(p[k], rel=1e-9), k
    edge = _fit.from_unit(np.array([[0.0] * len(names), [1.0] * len(names)]), names)
    for k, (_d, lo, hi, *_) in worm.PARAMS.items():
        assert lo <= edge[k].min().item() and edge[k].max().item() <= hi * (1 + 1e-12), k


@pytest.mark.slow
def test_short_loop_runs_records_and_silences_without_neuromuscular_drive():
    p = worm.default_params(2)
    p["nmj_vth_mV"][:] = -35.0
    p["syn_nmj_exc"][0] = 10.0
    p["syn_nmj_exc"][1] = 0.0          # member 1: no excitatory drive reaches the muscles
    p["syn_nmj_inh"][1] = 0.0
    r = worm.run_loop(p, worm.LoopConfig(duration_s=0.4, warmup_ms=40.0, init_bend_rad=0.0))
    T = round(0.4 / 0.04) + 1
    assert r.activation.shape == (T, 2, 95) and r.trajectory.com_um.shape == (T, 2, 2)
    assert np.all((r.activation >= 0) & (r.activation <= 1))
    assert np.all(np.isfinite(r.trajectory.tangent_rad))
    assert r.activation[-1, 0].max() > 1e-3          # drive reaches the muscles
    assert r.activation[-1, 1].max() < 1e-4          # and does not without the NMJs
    assert np.abs(r.trajectory.joints_rad[:, 1]).max() < 1e-3
    # ablating the drive neurons removes the drive: the same member becomes quiet
    q = worm.run_loop({k: v[:1] for k, v in p.items()},
                      worm.LoopConfig(duration_s=0.4, warmup_ms=40.0, init_bend_rad=0.0,
                                      ablate=("AVBL", "AVBR")))
    assert q.activation[-1, 0].mean() < r.activation[-1, 0].mean()
    assert math.isfinite(r.wall_s)


def test_seed_gives_identical_runs_and_another_seed_another_start():
    cfg = worm.LoopConfig(duration_s=0.16, warmup_ms=20.0, seed=3)
    a = worm.run_loop({}, cfg)
    b = worm.run_loop({}, cfg)
    c = worm.run_loop({}, worm.LoopConfig(duration_s=0.16, warmup_ms=20.0, seed=4))
    assert np.array_equal(a.trajectory.tangent_rad, b.trajectory.tangent_rad)
    assert np.array_equal(a.v_mV, b.v_mV)
    assert not np.allclose(a.trajectory.joints_rad[0], c.trajectory.joints_rad[0])


def test_on_diverge_choice_is_checked():
    with pytest.raises(ValueError, match="on_diverge must be 'raise' or 'mark'"):
        worm.run_loop({}, worm.LoopConfig(duration_s=0.08, on_diverge="ignore"))


def test_bend_seeds_give_each_member_the_start_of_its_own_seed():
    cfg = worm.LoopConfig(duration_s=0.08, warmup_ms=20.0)
    both = worm.run_loop(worm.default_params(2), replace(cfg, bend_seeds=(5, 6)))
    for b, s in enumerate((5, 6)):
        one = worm.run_loop({}, replace(cfg, seed=s))
        assert np.allclose(both.trajectory.joints_rad[0, b], one.trajectory.joints_rad[0, 0])
    with pytest.raises(ValueError, match="bend_seeds has 1 seeds for 2 members"):
        worm.run_loop(worm.default_params(2), replace(cfg, bend_seeds=(5,)))


def test_fit_scores_each_member_as_the_mean_over_its_bend_seeds_in_one_or_two_processes():
    u = _fit.to_unit({"drive_nA": 0.004}, ("drive_nA",))[None].repeat(2, 0)
    u[1, 0] = 0.9
    cfg = _fit.CrawlFitConfig(names=("drive_nA",), duration_s=0.4, bend_seeds=(1, 2))
    L, info = _fit.evaluate(u, cfg)
    per = [_fit.evaluate(u, replace(cfg, bend_seeds=(), seed=s))[0] for s in (1, 2)]
    assert L.shape == (2,) and np.allclose(L, (per[0] + per[1]) / 2)
    assert info["fwd"]["speed_um_s"].shape == (2,)
    L2, _ = _fit.evaluate(u, replace(cfg, processes=2))
    assert np.array_equal(L, L2)


def test_speed_windows_follow_a_crawl_that_stops():
    from types import SimpleNamespace

    from wormlab.body._physics import Trajectory

    t = np.arange(0, 20.0 + 1e-9, 0.04)
    x = np.where(t < 6.0, 100.0 * t, 600.0)  # +100 um/s head-first for 6 s, then at rest
    com = np.stack([x, 0 * x], -1)[:, None]
    tan = np.full((len(t), 1, 25), np.pi)  # head at +x: forward is +x
    res = SimpleNamespace(trajectory=Trajectory(t, com, tan))
    edges, v = worm.speed_windows(res, window_s=5.0, skip_s=1.0)
    np.testing.assert_allclose(edges, [1, 6, 11, 16, 20])
    np.testing.assert_allclose(v[:, 0], [100.0, 0.0, 0.0, 0.0], atol=1e-9)
    back = SimpleNamespace(trajectory=Trajectory(t, com[::-1].copy(), tan))
    assert worm.speed_windows(back, 5.0)[1][-1, 0] < -99  # tail first (last 6 s): negative
    with pytest.raises(ValueError, match="too short for one 50.0 s window"):
        worm.speed_windows(res, window_s=50.0)
