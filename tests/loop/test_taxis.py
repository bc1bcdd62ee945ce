"""Taxis measures on hand-made tracks with known answers, and on the synthetic walk."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from wormlab import loop

ARENAS = Path(loop.__file__).parent / "arenas"


def test_wilson_interval_known_values():
    # reference values of the Wilson score interval (z = 1.959964)
    np.testing.assert_allclose(loop.wilson_interval(5, 10), (0.236593, 0.763407), atol=1e-6)
    np.testing.assert_allclose(loop.wilson_interval(0, 10), (0.0, 0.277532), atol=1e-6)
    from scipy.stats import binomtest

    for k, n in ((9, 10), (1, 10), (17, 50), (50, 50)):
        ref = binomtest(k, n).proportion_ci(0.95, method="wilson")
        np.testing.assert_allclose(loop.wilson_interval(k, n), (ref.low, ref.high), atol=1e-9)
    assert all(math.isnan(v) for v in loop.wilson_interval(0, 0))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        loop.wilson_interval(11, 10)


def test_bootstrap_ci_is_seeded_and_covers_the_mean():
    x = np.random.default_rng(1).normal(3.0, 1.0, 400)
    a = loop.bootstrap_ci(x, seed=5)
    assert a == loop.bootstrap_ci(x, seed=5)
    assert a[0] < x.mean() < a[1]
    se = x.std() / math.sqrt(len(x))
    assert abs((a[1] - a[0]) - 2 * 1.96 * se) < 0.25 * 2 * 1.96 * se
    assert all(math.isnan(v) for v in loop.bootstrap_ci([1.0]))


def _line(start, end, T):
    s = np.linspace(0, 1, T)[:, None]
    return np.asarray(start) + s * (np.asarray(end) - np.asarray(start))


def test_track_measures_straight_and_back_and_forth():
    dt = 0.5
    a = _line([0, 0], [1000, 0], 21)  # 1000 um in 10 s towards +x
    b = np.concatenate([_line([0, 0], [500, 0], 11), _line([500, 0], [0, 0], 11)[1:]])
    m = loop.track_measures(np.stack([a, b], 1), dt, peak_um=[5000, 0], turn_window_s=1.0)
    np.testing.assert_allclose(m["path_length_um"], [1000, 1000])
    np.testing.assert_allclose(m["net_displacement_um"], [1000, 0], atol=1e-9)
    np.testing.assert_allclose(m["mean_speed_um_s"], [100, 100])
    # one reversal in 10 s = 6 turns per minute; none on the straight track
    np.testing.assert_allclose(m["turning_rate_per_min"], [0.0, 6.0])
    assert m["bearing_deg"].shape == (20, 2)
    np.testing.assert_allclose(m["bearing_deg"][:, 0], 0.0, atol=1e-9)
    np.testing.assert_allclose(np.abs(m["bearing_deg"][10:, 1]), 180.0, atol=1e-9)
    np.testing.assert_allclose(m["mean_cos_bearing"], [1.0, 0.0], atol=1e-9)
    # heading +y: the peak straight ahead is bearing 0, a peak on the +x side (to the worm's
    # right, clockwise) is +90
    up = _line([0, 0], [0, 1000], 11)[:, None]
    np.testing.assert_allclose(loop.track_measures(up, dt, peak_um=[0, 1e9])["bearing_deg"], 0.0,
                               atol=1e-6)
    np.testing.assert_allclose(loop.track_measures(up, dt, peak_um=[1e9, 500])["bearing_deg"],
                               90.0, atol=1e-4)
    # a worm sitting still has no heading
    still = np.zeros((5, 1, 2))
    m = loop.track_measures(still, dt, peak_um=[1, 0])
    assert np.isnan(m["bearing_deg"]).all() and m["turning_rate_per_min"][0] == 0
    with pytest.raises(ValueError, match="member 0 is not finite at frame 2"):
        loop.track_measures(np.where(np.arange(5)[:, None, None] == 2, np.nan, still), dt)


def test_chemotaxis_index_counts_zones():
    A, C = [30000.0, 0.0], [-30000.0, 0.0]
    ends = np.array([[30000, 0], [31000, 5000], [25000, -1000],   # attractant zone
                     [-30000, 1000],                              # control zone
                     [0, 0], [0, 30000]], dtype=float)            # neither
    s = loop.chemotaxis_scores(ends, A, zone_radius_um=10000)
    assert s.tolist() == [1, 1, 1, -1, 0, 0]
    r = loop.chemotaxis_index(ends, A, C, zone_radius_um=10000)
    assert (r["ci"], r["A"], r["C"], r["N"]) == (0.5, 3, 1, 6)
    assert r["ci_low"] <= 0.5 <= r["ci_high"]
    r = loop.chemotaxis_index(ends, A, zone_radius_um=10000, denominator="all")
    assert r["ci"] == pytest.approx(2 / 6)
    assert math.isnan(loop.ci_from_scores([0, 0]))
    with pytest.raises(ValueError, match="overlap"):
        loop.chemotaxis_scores(ends, [1000, 0], zone_radius_um=5000)


def test_closer_fraction_and_value_change():
    arena = loop.load_arena(ARENAS / "nacl_local.yml")  # 50 mM + 5 mM/mm along +x
    tr = np.stack([_line([0, 0], [2000, 0], 5), _line([0, 0], [-1000, 0], 5),
                   _line([0, 0], [0, 1000], 5)], 1)
    c = loop.closer_fraction(tr, arena.peak_um("nacl"))
    assert (c["k"], c["n"]) == (1, 3)
    assert (c["low"], c["high"]) == pytest.approx(loop.wilson_interval(1, 3))
    v = loop.value_change(arena, tr, "nacl")
    np.testing.assert_allclose(v["per_trial"], [10.0, -5.0, 0.0], atol=1e-9)
    assert v["mean"] == pytest.approx(5 / 3) and v["unit"] == "mM"


def test_thermotaxis_index_and_zones():
    # sections of 17-23 degC in 8 parts of 0.75 degC: -4 .. -1, +1 .. +4
    t = np.array([17.1, 17.9, 19.9, 20.1, 22.9, 30.0, 10.0])
    r = loop.thermotaxis_index(t)
    secs = [-4, -3, -1, 1, 4, 4, -4]
    assert r["ttx"] == pytest.approx(np.mean(secs))
    assert r["counts"].tolist() == [2, 1, 0, 1, 1, 0, 0, 2]
    temps = np.array([[18.0, 20.0, 22.0], [18.5, 20.5, 21.5], [19.5, 19.0, 21.2]])  # (T, B)
    z = loop.thermotaxis_zones(temps, 20.0, band_degc=1.0)
    np.testing.assert_allclose(z["time_fraction"]["cold"], [2 / 3, 0, 0])
    np.testing.assert_allclose(z["time_fraction"]["at_tc"], [1 / 3, 1, 0])
    np.testing.assert_allclose(z["time_fraction"]["warm"], [0, 0, 1])
    assert z["end"]["at_tc"]["fraction"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="even n_sections"):
        loop.thermotaxis_index(t, n_sections=7)


def test_isothermal_tracking_along_and_across_isotherms():
    arena = loop.load_arena(ARENAS / "thermal_linear.yml")  # gradient along x
    along = _line([0, 0], [0, 3000], 31)         # along y: on an isotherm
    across = _line([0, 0], [3000, 0], 31)        # along x: straight up the gradient
    diag = _line([0, 0], [3000, 3000], 31)       # 45 degrees: neither
    f = loop.isothermal_tracking(arena, np.stack([along, across, diag], 1), 1.0)
    np.testing.assert_allclose(f, [1.0, 0.0, 0.0])
    # only steps near Tc = 20 degC count: the x-track leaves the band after 1 degC = 20 mm
    f = loop.isothermal_tracking(arena, np.stack([along], 1), 1.0, t_cult_degc=25.0)
    assert np.isnan(f[0])
    flat = loop.Arena(radius_mm=10, fields=(loop.Field("temperature", "degC", (
        loop.Constant(value=20.0),)),))
    assert np.isnan(loop.isothermal_tracking(flat, along[:, None], 1.0)[0])


def test_compare_conditions_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 1.0, 40)
    y = rng.normal(0.0, 1.0, 40)
    z = rng.normal(1.0, 1.0, 40)
    r = loop.compare_conditions(np.mean, x, {"control": y, "same": z}, n_perm=999, seed=3)
    assert r["control"]["difference"] == pytest.approx(x.mean() - y.mean())
    assert r["control"]["low"] > 0 and r["control"]["p_value"] < 0.01
    assert r["same"]["low"] < 0 < r["same"]["high"] and r["same"]["p_value"] > 0.05
    assert r == loop.compare_conditions(np.mean, x, {"control": y, "same": z}, n_perm=999,
                                        seed=3)


def test_synthetic_walk_shows_taxis_only_with_a_gradient():
    """The synthetic klinokinesis walker climbs the NaCl ramp; its no-gradient and blind
    controls do not, and the measures say so (a sign error in a measure fails this)."""
    arena = loop.load_arena(ARENAS / "nacl_local.yml")
    walk = loop.SyntheticWalk(arena, duration_s=30.0, gain=4.0)
    peak = arena.peak_um("nacl")
    tracks, dC = {}, {}
    for cond in ("gradient", "no_gradient", "blind"):
        res = [walk({"seed": s, "start_um": [0, 0], "heading_deg": 30.0 * s, "condition": cond})
               for s in range(12)]
        tracks[cond] = np.stack([r["head_um"] for r in res], 1)
        dC[cond] = loop.value_change(arena, tracks[cond], "nacl")["per_trial"]
    r = loop.compare_conditions(np.mean, dC["gradient"],
                                {"no_gradient": dC["no_gradient"], "blind": dC["blind"]},
                                n_perm=499)
    for k in ("no_gradient", "blind"):
        assert r[k]["difference"] > 0 and r[k]["low"] > 0 and r[k]["p_value"] < 0.05, r[k]
    assert loop.closer_fraction(tracks["gradient"], peak)["low"] > 0.5
    m = loop.track_measures(tracks["gradient"], walk.dt_s, peak_um=peak)
    assert np.nanmean(m["mean_cos_bearing"]) > 0.1


def test_comparison_of_an_undefined_index_has_no_p_value():
    """No animal in either zone: the index is undefined, and so is its p-value (it was 0)."""
    from wormlab.loop import ci_from_scores, compare_conditions

    zeros = np.zeros(10)
    out = compare_conditions(ci_from_scores, zeros, {"control": zeros}, n_boot=50, n_perm=50)
    assert np.isnan(out["control"]["difference"]) and np.isnan(out["control"]["p_value"])


def _arc(t, start, heading, rate_rad_s, speed=100.0):
    """A constant-curvature track (T, 2) um: heading(t) = heading + rate * t."""
    h = heading + rate_rad_s * t
    dt = t[1] - t[0]
    step = speed * dt * np.stack([np.cos(h), np.sin(h)], -1)
    return np.asarray(start) + np.concatenate([[[0.0, 0.0]], np.cumsum(step[:-1], 0)])


def test_steering_signs_curving_towards_the_peak():
    from wormlab.loop import steering

    t = np.arange(0, 10, 0.04)
    peak = [0.0, 5000.0]                      # ahead and to the left of a worm heading +x
    left = _arc(t, [0.0, 0.0], 0.0, +0.05)    # counter-clockwise: towards the peak
    right = _arc(t, [0.0, 0.0], 0.0, -0.05)
    straight = _arc(t, [0.0, 0.0], 0.0, 0.0)
    r = steering(np.stack([left, right, straight], 1), 0.04, peak, window_s=1.0)
    deg = np.degrees(0.05)
    np.testing.assert_allclose(r["toward_deg_s"], [deg, -deg, 0.0], atol=0.05)
    with pytest.raises(ValueError, match="peak_um"):
        steering(np.stack([left], 1), 0.04, [1.0, 2.0, 3.0])


def test_turning_by_change_finds_turning_on_the_way_down():
    from wormlab.loop import turning_by_change

    arena = loop.Arena(radius_mm=20.0, fields=(loop.Field("nacl", "mM", (loop.Linear(
        value_at_centre=50.0, slope_per_mm=1.0),)),))
    t = np.arange(0, 8, 0.04)
    up = _arc(t, [-5000.0, 0.0], 0.0, 0.0)             # straight up the ramp
    down = _arc(t, [5000.0, 0.0], np.pi, 0.3)         # curving while going down
    r = turning_by_change(arena, np.stack([up, down], 1), 0.04, "nacl", window_s=1.0)
    assert r["rate_up_deg_s"][0] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(r["rate_down_deg_s"][0])          # never went down
    assert r["rate_down_deg_s"][1] == pytest.approx(np.degrees(0.3), rel=0.01)
    assert r["mean_down_deg_s"] > r["mean_up_deg_s"]
