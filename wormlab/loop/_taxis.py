"""Taxis measured as the field measures it (issue 18 item 5): chemotaxis index, thermotaxis
zones and index, isothermal tracking, track measures, and comparisons with controls.

Definitions and sources (docs/sensory.md "## Taxis measures" repeats them with examples):

* **Chemotaxis index** (Bargmann & Horvitz 1991, Neuron 7:729; Bargmann et al. 1993, Cell
  74:515): ``CI = (A - C) / (A + C)`` with ``A``/``C`` the animals ending in the attractant /
  control zone. ``denominator="all"`` divides by every animal instead (the wording of the
  1993 paper as we recall it; check before quoting). Zones are discs of ``zone_radius_um``
  around the attractant spot and the control spot (default: the attractant mirrored through
  the plate centre, as in the two-spot assay).
* **Per-trial indices** for few worms: the fraction of trials ending closer to the peak than
  they started (Wilson interval) and the mean change of the sensed value per trial (bootstrap).
* **Thermotaxis zones** in the manner of Mori & Ohshima 1995 (Nature 376:344), who scored
  individual tracks on a radial gradient around the cultivation temperature ``Tc``: the
  fraction of time (and of end positions) colder than ``Tc - band``, within ``Tc +- band``, and
  warmer than ``Tc + band``.
* **Thermotaxis index** of Ito, Inada & Mori 2006 (J Neurosci Methods 154:45): the plate's
  temperature range is cut into 8 equal sections numbered -4..-1, +1..+4 from cold to warm and
  ``TTX = sum(i * N_i) / N``; positive = thermophilic.
* **Isothermal tracking** (Hedgecock & Russell 1975; Mori & Ohshima 1995): the fraction of
  moving time whose direction lies within ``max_angle_deg`` of the local isotherm.
* **Comparison**: difference of an index between a condition and a control (no gradient or an
  ablation): percentile-bootstrap CI of the difference (trials resampled within each group,
  seeded) and a two-sided permutation p-value (``(1 + #|d*| >= |d|) / (1 + n_perm)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np


# ---- intervals --------------------------------------------------------------------------
def wilson_interval(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (Wilson 1927); ``(nan, nan)`` if n = 0."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"wilson_interval: need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    z = NormalDist().inv_cdf(0.5 + conf / 2)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def bootstrap_ci(values, stat: Callable = np.mean, *, n_boot: int = 2000, conf: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat(values)`` resampling the first axis (trials).

    Replicates where ``stat`` is not finite (e.g. a CI with no animal in either zone) are
    dropped; ``(nan, nan)`` when fewer than half remain or there are under 2 trials.
    """
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    reps = np.array([stat(v[i]) for i in idx], dtype=float)
    reps = reps[np.isfinite(reps)]
    if len(reps) < n_boot / 2:
        return (math.nan, math.nan)
    a = (1 - conf) / 2
    lo, hi = np.quantile(reps, [a, 1 - a])
    return (float(lo), float(hi))


# ---- tracks -----------------------------------------------------------------------------
def _tracks(tracks_um, what: str) -> np.ndarray:
    tr = tracks_um.detach().cpu().numpy() if hasattr(tracks_um, "detach") else tracks_um
    tr = np.asarray(tr, dtype=float)
    if tr.ndim == 2 and tr.shape[-1] == 2:
        tr = tr[:, None]
    if tr.ndim != 3 or tr.shape[-1] != 2 or tr.shape[0] < 2:
        raise ValueError(f"{what}: tracks must be (T, B, 2) um with T >= 2, got {tr.shape}")
    if not np.isfinite(tr).all():
        t, b = np.argwhere(~np.isfinite(tr).all(-1))[0]
        raise ValueError(f"{what}: track of member {b} is not finite at frame {t}")
    return tr


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def _headings(tr: np.ndarray, dt_s: float, min_speed_um_s: float):
    """(T-1, B) heading (rad) of each step and a mask of steps faster than ``min_speed``."""
    d = np.diff(tr, axis=0)
    speed = np.linalg.norm(d, axis=-1) / dt_s
    return np.arctan2(d[..., 1], d[..., 0]), speed >= min_speed_um_s


def track_measures(tracks_um, dt_s: float, *, peak_um=None, min_speed_um_s: float = 5.0,
                   turn_deg: float = 90.0, turn_window_s: float = 2.0) -> dict:
    """Per-member measures of tracks (T, B, 2) um sampled every ``dt_s`` s.

    Returns:
        ``path_length_um`` (B,), ``net_displacement_um`` (B,), ``mean_speed_um_s`` (B,) (path
        length / duration), ``turning_rate_per_min`` (B,): sharp turns per minute, a turn being
        a heading change of more than ``turn_deg`` within ``turn_window_s`` (counted once per
        bout; steps slower than ``min_speed_um_s`` carry no heading). With ``peak_um`` (2,) also
        ``bearing_deg`` (T-1, B): heading minus the direction to the peak, wrapped to
        [-180, 180) (0 = straight at it, +-180 = away, positive = the peak lies clockwise, to
        the worm's right with y up; NaN while not moving), and
        ``mean_cos_bearing`` (B,) (1 = always straight at the peak, 0 = no bias).
    """
    if not dt_s > 0:
        raise ValueError(f"track_measures: dt_s={dt_s} must be > 0")
    tr = _tracks(tracks_um, "track_measures")
    T, B, _ = tr.shape
    step = np.linalg.norm(np.diff(tr, axis=0), axis=-1)
    path = step.sum(0)
    dur = (T - 1) * dt_s
    out = {"path_length_um": path,
           "net_displacement_um": np.linalg.norm(tr[-1] - tr[0], axis=-1),
           "mean_speed_um_s": path / dur}
    head, moving = _headings(tr, dt_s, min_speed_um_s)
    w = max(1, int(round(turn_window_s / dt_s)))
    rate = np.zeros(B)
    for b in range(B):
        h = head[:, b]
        ok = moving[:, b]
        if w >= len(h):
            continue
        dh = np.abs(_wrap(h[w:] - h[:-w]))
        turn = (dh > math.radians(turn_deg)) & ok[w:] & ok[:-w]
        rate[b] = np.count_nonzero(turn[1:] & ~turn[:-1]) + int(turn[:1].sum())
    out["turning_rate_per_min"] = rate / (dur / 60.0)
    if peak_um is not None:
        p = np.asarray(peak_um, dtype=float).reshape(-1)
        if p.shape != (2,):
            raise ValueError(f"track_measures: peak_um must be (2,) um, got {p.shape}")
        to_peak = np.arctan2(p[1] - tr[:-1, :, 1], p[0] - tr[:-1, :, 0])
        bearing = np.degrees(_wrap(head - to_peak))
        bearing = np.where(moving, bearing, np.nan)
        out["bearing_deg"] = bearing
        with np.errstate(invalid="ignore"):
            c = np.cos(np.radians(bearing))
            out["mean_cos_bearing"] = np.array(
                [np.nanmean(c[:, b]) if np.isfinite(c[:, b]).any() else np.nan
                 for b in range(B)])
    return out


def _window_turns(com_um, dt_s: float, window_s: float, what: str):
    """Consecutive windows of ``window_s`` over tracks (T, B, 2): the tracks, the window
    starts ``idx``, window length ``w`` (samples), the heading of each first window ``h1``,
    the signed heading change to the next ``turn`` (rad, > 0 counter-clockwise) and the
    slower of the two windows' speeds (um/s), each (n, B)."""
    if not dt_s > 0 or not window_s >= dt_s:
        raise ValueError(f"{what}: need dt_s > 0 and window_s >= dt_s, got {dt_s}, "
                         f"{window_s}")
    tr = _tracks(com_um, what)
    w = int(round(window_s / dt_s))
    if tr.shape[0] <= 2 * w:
        raise ValueError(f"{what}: {tr.shape[0]} samples are too few for windows of {w}")
    idx = np.arange(0, tr.shape[0] - 2 * w, w)
    d1 = tr[idx + w] - tr[idx]
    d2 = tr[idx + 2 * w] - tr[idx + w]
    h1, h2 = np.arctan2(d1[..., 1], d1[..., 0]), np.arctan2(d2[..., 1], d2[..., 0])
    speed = np.minimum(np.linalg.norm(d1, axis=-1), np.linalg.norm(d2, axis=-1)) / window_s
    return tr, idx, w, h1, _wrap(h2 - h1), speed


def turning_by_change(arena, com_um, dt_s: float, modality: str, *, window_s: float = 1.0,
                      min_speed_um_s: float = 5.0, t_s: float = 0.0) -> dict:
    """Turning while the field rises vs while it falls along the track: the signature of
    klinokinesis (Pierce-Shimomura, Morse & Lockery 1999 scored turning against dC/dt).

    Over windows of ``window_s``, the heading change of the centre of mass (deg/s, absolute)
    and the change of ``modality``'s field at it (the centre of mass averages out the head's
    sweep). Windows are split by the sign of the change; slow windows (below
    ``min_speed_um_s``) carry no heading and are left out.

    Returns ``rate_up_deg_s`` and ``rate_down_deg_s`` (B,) (NaN for a trial without such
    windows), their means, and ``difference`` = mean over trials of (down - up) with a
    bootstrap 95 % interval (``low``, ``high``) over the trials that have both: > 0 means the
    worms turn more while going down the field.
    """
    tr, idx, w, _, turn, speed = _window_turns(com_um, dt_s, window_s, "turning_by_change")
    T, B, _ = tr.shape
    c = np.stack([arena.sample(tr[t], t_s)[modality] for t in range(T)])     # (T, B)
    rate = np.degrees(np.abs(turn)) / window_s                                 # (n, B)
    dc = c[idx + 2 * w] - c[idx]
    ok = speed >= min_speed_um_s
    up, down = np.full(B, np.nan), np.full(B, np.nan)
    for b in range(B):
        u, d = ok[:, b] & (dc[:, b] > 0), ok[:, b] & (dc[:, b] < 0)
        if u.any():
            up[b] = rate[u, b].mean()
        if d.any():
            down[b] = rate[d, b].mean()
    both = np.isfinite(up) & np.isfinite(down)
    diff = down[both] - up[both]
    lo, hi = bootstrap_ci(diff) if both.sum() >= 2 else (math.nan, math.nan)
    return {"rate_up_deg_s": up, "rate_down_deg_s": down,
            "mean_up_deg_s": float(np.nanmean(up)) if np.isfinite(up).any() else math.nan,
            "mean_down_deg_s": float(np.nanmean(down)) if np.isfinite(down).any() else math.nan,
            "difference": float(diff.mean()) if both.any() else math.nan, "low": lo, "high": hi,
            "n": int(both.sum()), "window_s": window_s}


def steering(com_um, dt_s: float, peak_um, *, window_s: float = 1.0,
             min_speed_um_s: float = 5.0) -> dict:
    """How fast the heading turns *towards* the peak (weathervaning / klinotaxis, Iino &
    Yoshida 2009 measured the curving of runs against the bearing): over windows of
    ``window_s``, the signed heading change of the centre of mass (deg/s), positive when it
    reduces the angle between the heading and the direction to ``peak_um``.

    Returns ``toward_deg_s`` (B,) per-trial means (NaN without moving windows), ``mean`` and a
    bootstrap 95 % interval (``low``, ``high``) over trials: > 0 means the paths curve
    towards the peak."""
    p = np.asarray(peak_um, dtype=float).reshape(-1)
    if p.shape != (2,):
        raise ValueError(f"steering: peak_um must be (2,) um, got {p.shape}")
    tr, idx, w, h1, turn, speed = _window_turns(com_um, dt_s, window_s, "steering")
    B = tr.shape[1]
    mid = tr[idx + w]
    to_peak = np.arctan2(p[1] - mid[..., 1], p[0] - mid[..., 0])
    bearing = _wrap(h1 - to_peak)                        # > 0: the peak lies clockwise
    toward = -np.sign(bearing) * np.degrees(turn) / window_s
    toward = np.where(speed >= min_speed_um_s, toward, np.nan)
    with np.errstate(invalid="ignore"):
        per = np.array([np.nanmean(toward[:, b]) if np.isfinite(toward[:, b]).any()
                        else np.nan for b in range(B)])
    ok = per[np.isfinite(per)]
    lo, hi = bootstrap_ci(ok) if len(ok) >= 2 else (math.nan, math.nan)
    return {"toward_deg_s": per, "mean": float(ok.mean()) if len(ok) else math.nan,
            "low": lo, "high": hi, "n": int(len(ok)), "window_s": window_s}


# ---- chemotaxis ---------------------------------------------------------------------------
def chemotaxis_scores(end_xy_um, attractant_um, control_um=None, *,
                      zone_radius_um: float = 20_000.0) -> np.ndarray:
    """Per animal: +1 in the attractant zone, -1 in the control zone, 0 elsewhere.

    Args:
        end_xy_um: (B, 2) end positions, um.
        attractant_um: (2,) attractant spot, um; ``control_um`` default: mirrored through the
            plate centre (the opposite spot of the two-spot assay).
        zone_radius_um: radius of both zones (default 2 cm, the counting circle commonly drawn
            on 9-10 cm plates; scale it with the arena).
    """
    e = np.asarray(end_xy_um, dtype=float)
    if e.ndim != 2 or e.shape[-1] != 2:
        raise ValueError(f"chemotaxis_scores: end positions must be (B, 2) um, got {e.shape}")
    a = np.asarray(attractant_um, dtype=float).reshape(2)
    c = -a if control_um is None else np.asarray(control_um, dtype=float).reshape(2)
    if not zone_radius_um > 0:
        raise ValueError(f"chemotaxis_scores: zone_radius_um={zone_radius_um} must be > 0")
    if np.linalg.norm(a - c) < 2 * zone_radius_um:
        raise ValueError(f"chemotaxis_scores: zones of radius {zone_radius_um} um around "
                         f"{a.tolist()} and {c.tolist()} overlap; use a smaller zone_radius_um")
    in_a = np.linalg.norm(e - a, axis=-1) <= zone_radius_um
    in_c = np.linalg.norm(e - c, axis=-1) <= zone_radius_um
    return in_a.astype(float) - in_c.astype(float)


def ci_from_scores(scores, denominator: str = "zones") -> float:
    """Chemotaxis index from per-animal scores (:func:`chemotaxis_scores`): ``(A - C) / (A + C)``
    (``"zones"``) or ``(A - C) / N`` (``"all"``); NaN when the denominator is 0."""
    s = np.asarray(scores, dtype=float)
    if denominator == "zones":
        d = np.abs(s).sum()
    elif denominator == "all":
        d = float(len(s))
    else:
        raise ValueError(f"denominator={denominator!r}; valid: 'zones', 'all'")
    return float(s.sum() / d) if d > 0 else math.nan


def chemotaxis_index(end_xy_um, attractant_um, control_um=None, *,
                     zone_radius_um: float = 20_000.0, denominator: str = "zones",
                     n_boot: int = 2000, conf: float = 0.95, seed: int = 0) -> dict:
    """Bargmann's chemotaxis index from end positions (B, 2) um, with a bootstrap CI over
    animals. Returns ``{"ci", "ci_low", "ci_high", "A", "C", "N", "denominator"}``."""
    s = chemotaxis_scores(end_xy_um, attractant_um, control_um, zone_radius_um=zone_radius_um)
    lo, hi = bootstrap_ci(s, lambda x: ci_from_scores(x, denominator), n_boot=n_boot,
                          conf=conf, seed=seed)
    return {"ci": ci_from_scores(s, denominator), "ci_low": lo, "ci_high": hi,
            "A": int((s > 0).sum()), "C": int((s < 0).sum()), "N": len(s),
            "denominator": denominator}


def closer_fraction(tracks_um, peak_um, conf: float = 0.95) -> dict:
    """Fraction of trials ending closer to ``peak_um`` than they started, Wilson interval.
    Returns ``{"fraction", "low", "high", "k", "n"}``."""
    tr = _tracks(tracks_um, "closer_fraction")
    p = np.asarray(peak_um, dtype=float).reshape(2)
    closer = np.linalg.norm(tr[-1] - p, axis=-1) < np.linalg.norm(tr[0] - p, axis=-1)
    k, n = int(closer.sum()), len(closer)
    lo, hi = wilson_interval(k, n, conf)
    return {"fraction": k / n, "low": lo, "high": hi, "k": k, "n": n}


def value_change(arena, tracks_um, modality: str, *, t_start_s: float = 0.0,
                 t_end_s: float = 0.0, n_boot: int = 2000, conf: float = 0.95,
                 seed: int = 0) -> dict:
    """Per-trial change of the field value (end - start) at the track's ends, in the field's
    unit, with the mean and its bootstrap CI. Returns ``{"per_trial" (B,), "mean", "low",
    "high", "unit"}``."""
    tr = _tracks(tracks_um, "value_change")
    v0 = arena.sample(tr[0], t_start_s, clip=True)[modality]
    v1 = arena.sample(tr[-1], t_end_s, clip=True)[modality]
    d = np.asarray(v1 - v0, dtype=float)
    lo, hi = bootstrap_ci(d, n_boot=n_boot, conf=conf, seed=seed)
    return {"per_trial": d, "mean": float(d.mean()), "low": lo, "high": hi,
            "unit": arena.units[modality]}


# ---- thermotaxis ----------------------------------------------------------------------------
def thermotaxis_zones(temps_degc, t_cult_degc: float, *, band_degc: float = 1.0,
                      conf: float = 0.95) -> dict:
    """Mori & Ohshima 1995 style zones around the cultivation temperature.

    Args:
        temps_degc: (T, B) temperature sensed along each track (or (B,) end temperatures).
        t_cult_degc: cultivation temperature.
        band_degc: half-width of the "at Tc" zone.

    Returns:
        ``time_fraction``: {"cold", "at_tc", "warm"} -> (B,) fraction of each track's frames;
        ``end``: {"cold", "at_tc", "warm"} -> {"fraction", "low", "high"} of end positions
        (Wilson intervals).
    """
    t = np.asarray(temps_degc, dtype=float)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or not np.isfinite(t).all():
        raise ValueError(f"thermotaxis_zones: temps must be finite (T, B) degC, got {t.shape}")
    zones = {"cold": t < t_cult_degc - band_degc, "warm": t > t_cult_degc + band_degc}
    zones["at_tc"] = ~(zones["cold"] | zones["warm"])
    out = {"time_fraction": {k: z.mean(0) for k, z in zones.items()}, "end": {}}
    n = t.shape[1]
    for k, z in zones.items():
        kk = int(z[-1].sum())
        lo, hi = wilson_interval(kk, n, conf)
        out["end"][k] = {"fraction": kk / n, "low": lo, "high": hi}
    return out


def thermotaxis_index(end_temps_degc, t_range_degc: tuple[float, float] = (17.0, 23.0), *,
                      n_sections: int = 8, n_boot: int = 2000, conf: float = 0.95,
                      seed: int = 0) -> dict:
    """Ito, Inada & Mori 2006 thermotaxis (TTX) index from end temperatures (B,) degC.

    The range ``t_range_degc`` (the plate's gradient; 17-23 degC in that assay) is cut into
    ``n_sections`` equal sections numbered ``-n/2..-1, +1..+n/2`` from cold to warm (animals
    beyond the range count in the end sections); ``TTX = mean section number``. Returns
    ``{"ttx", "low", "high", "counts" (n_sections,)}``.
    """
    t = np.asarray(end_temps_degc, dtype=float).reshape(-1)
    lo_t, hi_t = map(float, t_range_degc)
    if not hi_t > lo_t or n_sections < 2 or n_sections % 2:
        raise ValueError(f"thermotaxis_index: need t_range low < high and an even n_sections, "
                         f"got {t_range_degc}, {n_sections}")
    if not np.isfinite(t).all():
        raise ValueError("thermotaxis_index: end temperatures contain NaN or inf")
    k = np.clip(((t - lo_t) / (hi_t - lo_t) * n_sections).astype(int), 0, n_sections - 1)
    half = n_sections // 2
    sec = np.where(k < half, k - half, k - half + 1).astype(float)
    lo, hi = bootstrap_ci(sec, n_boot=n_boot, conf=conf, seed=seed)
    return {"ttx": float(sec.mean()), "low": lo, "high": hi,
            "counts": np.bincount(k, minlength=n_sections)}


def isothermal_tracking(arena, tracks_um, dt_s: float, *, t_s: float = 0.0,
                        max_angle_deg: float = 20.0, min_speed_um_s: float = 5.0,
                        t_cult_degc: float | None = None, band_degc: float = 1.0,
                        modality: str = "temperature") -> np.ndarray:
    """(B,) fraction of moving steps heading within ``max_angle_deg`` of the local isotherm
    (perpendicular to the temperature gradient, from central differences of the arena field).

    With ``t_cult_degc`` only steps within ``band_degc`` of it count (isothermal tracking is
    seen near the cultivation temperature). NaN for a member with no counted step or where the
    field has no gradient (a constant field has no isotherms).
    """
    tr = _tracks(tracks_um, "isothermal_tracking")
    head, moving = _headings(tr, dt_s, min_speed_um_s)
    p = tr[:-1].reshape(-1, 2)
    h = 1.0  # um
    f = lambda q: np.asarray(arena.sample(q, t_s, clip=True)[modality], dtype=float)  # noqa: E731
    gx = (f(p + [h, 0]) - f(p - [h, 0])) / (2 * h)
    gy = (f(p + [0, h]) - f(p - [0, h])) / (2 * h)
    g = np.hypot(gx, gy).reshape(head.shape)
    ga = np.arctan2(gy, gx).reshape(head.shape)
    along = np.abs(np.cos(head - ga)) <= math.sin(math.radians(max_angle_deg))
    count = moving & (g > 1e-12)
    if t_cult_degc is not None:
        count &= np.abs(f(p).reshape(head.shape) - t_cult_degc) <= band_degc
    n = count.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (along & count).sum(0) / np.maximum(n, 1), np.nan)


# ---- comparisons -------------------------------------------------------------------------
def compare_conditions(stat: Callable, condition, controls: dict, *, n_boot: int = 2000,
                       n_perm: int = 2000, conf: float = 0.95, seed: int = 0) -> dict:
    """An index of a condition against each control (no gradient, ablations).

    Args:
        stat: the index as a function of per-trial values (e.g. ``np.mean`` of per-trial
            changes, or ``ci_from_scores`` of chemotaxis scores).
        condition: per-trial values of the condition (first axis = trials).
        controls: ``{name: per-trial values}``.

    Returns:
        ``{name: {"index", "control_index", "difference", "low", "high", "p_value", "n",
        "n_control"}}``: difference = index - control index, its percentile-bootstrap CI
        (each group resampled on its own) and a two-sided permutation p-value.
    """
    x = np.asarray(condition, dtype=float)
    if len(x) < 2:
        raise ValueError(f"compare_conditions: the condition has {len(x)} trial(s); need >= 2")
    out = {}
    rng = np.random.default_rng(seed)
    a = (1 - conf) / 2
    for name, ctrl in controls.items():
        y = np.asarray(ctrl, dtype=float)
        if len(y) < 2:
            raise ValueError(f"compare_conditions: control {name!r} has {len(y)} trial(s)")
        d0 = stat(x) - stat(y)
        ix = rng.integers(0, len(x), (n_boot, len(x)))
        iy = rng.integers(0, len(y), (n_boot, len(y)))
        reps = np.array([stat(x[i]) - stat(y[j]) for i, j in zip(ix, iy)])
        reps = reps[np.isfinite(reps)]
        lo, hi = (np.quantile(reps, [a, 1 - a]) if len(reps) >= n_boot / 2
                  else (math.nan, math.nan))
        pool = np.concatenate([x, y])
        hits = 0
        for _ in range(n_perm):
            perm = rng.permutation(len(pool))
            d = stat(pool[perm[:len(x)]]) - stat(pool[perm[len(x):]])
            hits += bool(np.isfinite(d) and abs(d) >= abs(d0) - 1e-12)
        out[name] = {"index": float(stat(x)), "control_index": float(stat(y)),
                     "difference": float(d0), "low": float(lo), "high": float(hi),
                     "p_value": ((1 + hits) / (1 + n_perm) if np.isfinite(d0) else math.nan),
                     "n": len(x), "n_control": len(y)}
    return out
