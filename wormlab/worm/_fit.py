"""Fitting the crawling worm: CMA-ES over the class-level parameters of :data:`PARAMS`,
each member run through the closed loop with the physics (ElegansBot) in both directions.

The search space is the unit box: every parameter is mapped linearly (signed or small
ranges) or logarithmically (scale factors, concentrations, time constants) onto [0, 1], so
bounds hold by construction. Resume after a kill replays the seeded ask/tell with the stored
fitness values (nothing pickled), as :func:`wormlab.fit.fit_cma` does.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from wormlab.worm._loop import PARAMS, LoopConfig, run_loop

LOG_PARAMS = ("syn_cmd_mn", "syn_nmj_exc", "syn_nmj_inh", "syn_mn_mn", "gap_cmd_mn",
              "gap_mn_mn", "max_ca_mM", "tau_act_ms", "adapt_a_nS", "adapt_b_nS",
              "adapt_tau_ms")
LOG_FLOOR = {"syn_cmd_mn": 1e-2, "syn_nmj_exc": 1e-2, "syn_nmj_inh": 1e-2, "syn_mn_mn": 1e-2,
             "gap_cmd_mn": 1e-2, "gap_mn_mn": 1e-2, "adapt_a_nS": 1e-3,
             "adapt_b_nS": 1e-3}

# Crawling on agar (targets; sources in docs/crawl.md): speed 100-300 um/s forward and
# backward, undulation 0.25-0.8 Hz, wavelength 0.5-1.0 body lengths.
TARGETS = {"speed_um_s": (100.0, 300.0), "frequency_hz": (0.25, 0.8),
           "wavelength_bl": (0.5, 1.0), "oscillation_rad": (0.05, np.inf)}


def _range(name, bounds=None):
    d, lo, hi, *_ = PARAMS[name]
    if bounds and name in bounds:
        lo, hi = (float(x) for x in bounds[name])
    if name in LOG_PARAMS:
        return math.log10(max(lo, LOG_FLOOR.get(name, lo))), math.log10(hi), True
    return lo, hi, False


def to_unit(params: dict[str, float], names, bounds=None) -> np.ndarray:
    out = []
    for n in names:
        lo, hi, lg = _range(n, bounds)
        x = float(params[n])
        x = math.log10(max(x, 10 ** lo)) if lg else x
        out.append((x - lo) / (hi - lo))
    return np.clip(np.array(out), 0.0, 1.0)


def from_unit(u: np.ndarray, names, bounds=None) -> dict[str, torch.Tensor]:
    """(P, n) unit-box rows -> {name: (P,) physical values}; ``bounds`` {name: (lo, hi)}
    narrows a parameter's box inside its :data:`PARAMS` bounds."""
    u = np.clip(np.atleast_2d(u), 0.0, 1.0)
    out = {}
    for i, n in enumerate(names):
        lo, hi, lg = _range(n, bounds)
        x = lo + u[:, i] * (hi - lo)
        out[n] = torch.tensor(10 ** x if lg else x, dtype=torch.float64)
    return out


def crawl_metrics(res, skip_s: float | None = None) -> dict[str, np.ndarray]:
    """Per member: signed forward speed (um/s), undulation frequency (Hz), wavelength (BL),
    wave direction, joint amplitude and oscillation (rad), after dropping the first
    ``skip_s`` (default: 1 s, or a quarter of a shorter run)."""
    from wormlab.body._physics import forward_speed, wave_kinematics

    tr = res.trajectory
    dt = float(tr.t_s[1] - tr.t_s[0])
    skip_s = min(1.0, 0.25 * float(tr.t_s[-1])) if skip_s is None else float(skip_s)
    if skip_s > float(tr.t_s[-1]) - 2 * dt:
        raise ValueError(f"run of {tr.t_s[-1]:.2f} s is too short to drop {skip_s} s")
    sp = np.asarray(forward_speed(tr, skip_s=skip_s))
    wk = wave_kinematics(tr, skip_s=skip_s)
    j = tr.joints_rad[int(round(skip_s / dt)):]
    amp = np.abs(j).max(0).mean(-1)
    osc = j.std(0).mean(-1)
    rms = np.sqrt((j**2).mean(-1)).mean(0)  # per-frame RMS over joints, time mean (Flavell's)
    return {"oscillation_rad": osc, "rms_joint_rad": rms, "speed_um_s": sp, "frequency_hz": wk["frequency_hz"],
            "wavelength_bl": wk["wavelength_bl"], "direction": wk["direction"],
            "amplitude_rad": amp}


def speed_windows(res, window_s: float = 5.0, skip_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Whether a crawl is sustained: forward speed (um/s, signed; backward < 0) per member in
    consecutive windows of ``window_s`` after dropping ``skip_s``; a last window shorter than
    half ``window_s`` joins the one before. Returns (edges_s (W + 1,), speed (W, B))."""
    from wormlab.body._physics import Trajectory, forward_speed

    tr = res.trajectory
    t = np.asarray(tr.t_s, dtype=np.float64)
    if not window_s > 0 or not skip_s >= 0:
        raise ValueError(f"window_s must be > 0 and skip_s >= 0, got {window_s}, {skip_s}")
    if t[-1] - skip_s < window_s / 2:
        raise ValueError(f"run of {t[-1]:.2f} s is too short for one {window_s} s window "
                         f"after {skip_s} s")
    edges = list(np.arange(skip_s, t[-1] + 1e-9, window_s))
    if t[-1] - edges[-1] < window_s / 2:
        edges[-1] = t[-1]
    else:
        edges.append(t[-1])
    edges = np.asarray(edges)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        i, j = int(np.searchsorted(t, a - 1e-9)), int(np.searchsorted(t, b + 1e-9))
        sub = Trajectory(t[i:j] - t[i], tr.com_um[i:j], tr.tangent_rad[i:j],
                         tr.body_length_um, tr.source)
        out.append(np.asarray(forward_speed(sub, skip_s=0.0)))
    return edges, np.stack(out)


def _band(x, lo, hi, scale):
    """0 inside [lo, hi], growing linearly (per ``scale``) outside; 1 for NaN (undefined)."""
    x = np.asarray(x, dtype=np.float64)
    pen = np.where(x < lo, (lo - x) / scale, np.where(x > hi, (x - hi) / scale, 0.0))
    return np.where(np.isfinite(x), pen, 1.0)


def crawl_loss(fwd: dict, bwd: dict | None,
               metrics: tuple[str, ...] = tuple(TARGETS)) -> np.ndarray:
    """Kinematic loss over ``metrics`` (names of :data:`TARGETS`): forward speed (and, for
    ``bwd``, backward speed = negative forward speed) inside the crawling band, oscillation
    amplitude above its floor, frequency and wavelength inside theirs. 0 inside all."""
    bad = sorted(set(metrics) - set(TARGETS))
    if bad:
        raise ValueError(f"unknown target metrics {bad}; valid: {list(TARGETS)}")
    lo, hi = TARGETS["speed_um_s"]
    L = np.zeros_like(np.asarray(fwd["speed_um_s"], dtype=np.float64))
    if "speed_um_s" in metrics:
        L = L + _band(fwd["speed_um_s"], lo, hi, 100.0)
        if bwd is not None:
            L = L + _band(-np.asarray(bwd["speed_um_s"]), lo, hi, 100.0)
    for m in (fwd, bwd) if bwd is not None else (fwd,):
        if "oscillation_rad" in metrics:
            L = L + _band(m["oscillation_rad"], TARGETS["oscillation_rad"][0], np.inf, 0.05)
        if "frequency_hz" in metrics:
            L = L + 0.5 * _band(m["frequency_hz"], *TARGETS["frequency_hz"], 0.5)
        if "wavelength_bl" in metrics:
            L = L + 0.5 * _band(m["wavelength_bl"], *TARGETS["wavelength_bl"], 0.5)
    return L


@dataclass(frozen=True)
class CrawlFitConfig:
    names: tuple[str, ...] = tuple(PARAMS)
    start: dict = field(default_factory=dict)
    sigma0: float = 0.25
    popsize: int = 10
    generations: int = 30
    duration_s: float = 3.0
    both_directions: bool = True
    seed: int = 0
    bounds: dict = field(default_factory=dict)
    metrics: tuple[str, ...] = tuple(TARGETS)
    bend_seeds: tuple[int, ...] = ()
    processes: int = 1
    out: str = "data/cache/worm/fit"


def _tile_bends(base: dict, lc: LoopConfig, seeds: tuple[int, ...]) -> tuple[dict, LoopConfig]:
    """Every member once per bend seed, member-major (row m*S + s = member m from seed s)."""
    S = len(seeds)
    P = next(iter(base.values())).numel()
    return ({k: v.repeat_interleave(S) for k, v in base.items()},
            replace(lc, bend_seeds=tuple(int(s) for s in seeds) * P))


def _run_metrics(base: dict, lc: LoopConfig, windows: float | None = None) -> tuple:
    res = run_loop(base, lc)
    out = (crawl_metrics(res), res.diverged.copy())
    return out + (speed_windows(res, windows)[1],) if windows else out


def _runs(base: dict, lcs: list[LoopConfig], processes: int,
          windows: float | None = None) -> list[tuple]:
    """Run the loop once per config, in up to ``processes`` forked worker processes (each
    with one torch thread, like the parent) or in this process: (metrics, diverged[, window
    speeds]) per config."""
    if processes <= 1 or len(lcs) == 1:
        return [_run_metrics(base, lc, windows) for lc in lcs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(processes, len(lcs)), mp_context=mp.get_context("fork")) as ex:
        futs = [ex.submit(_run_metrics, base, lc, windows) for lc in lcs]
        return [f.result() for f in futs]


def evaluate(u: np.ndarray, cfg: CrawlFitConfig) -> tuple[np.ndarray, dict]:
    """Loss per member (rows of ``u`` in the unit box). With ``cfg.bend_seeds`` every member
    runs once per seed (one batch) and its loss is the mean over those starts; the metrics
    returned are the means over starts too."""
    p = from_unit(u, cfg.names, cfg.bounds)
    P, S = len(u), max(1, len(cfg.bend_seeds))
    base = {k: torch.full((P,), float(v[0]), dtype=torch.float64) for k, v in PARAMS.items()}
    base.update(p)
    lc = LoopConfig(duration_s=cfg.duration_s, seed=cfg.seed, on_diverge="mark")
    if cfg.bend_seeds:
        base, lc = _tile_bends(base, lc, cfg.bend_seeds)
    try:
        lcs = [lc] + ([replace(lc, direction="backward")] if cfg.both_directions else [])
        out = _runs(base, lcs, cfg.processes)
        fwd, div = out[0]
        bwd = None
        if cfg.both_directions:
            bwd = out[1][0]
            div = div | out[1][1]
    except (ValueError, FloatingPointError, RuntimeError) as exc:
        # something other than the circuit failed for the batch (e.g. the body physics):
        # score the members one by one, the failing one(s) as the worst outcome
        if len(u) == 1:
            return np.array([1e3]), {"error": f"{type(exc).__name__}: {exc}"}
        Ls = [evaluate(row[None], cfg)[0][0] for row in u]
        return np.array(Ls), {"error": f"{type(exc).__name__}: {exc}"}
    L = crawl_loss(fwd, bwd, cfg.metrics)
    L = np.where(div, 1e3, L)  # a diverging circuit is the worst outcome
    if S > 1:
        L = L.reshape(P, S).mean(1)
        div = div.reshape(P, S).any(1)
        with warnings.catch_warnings():  # all-NaN rows (no wave) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            fwd = {k: np.nanmean(np.asarray(v, dtype=np.float64).reshape(P, S), 1)
                   for k, v in fwd.items()}
            if bwd is not None:
                bwd = {k: np.nanmean(np.asarray(v, dtype=np.float64).reshape(P, S), 1)
                       for k, v in bwd.items()}
    return L, {"fwd": fwd, "bwd": bwd, "diverged": div}


def sweep_crawl(params: dict, grid: dict[str, list[float]], bend_seeds=(0, 1, 2),
                duration_s: float = 20.0, window_s: float = 5.0, processes: int = 1,
                metrics: tuple[str, ...] = tuple(TARGETS)) -> list[dict]:
    """Every combination of ``grid`` ({parameter: values}) on top of ``params``, each run
    forward and backward from every initial-bend seed (one batch per direction), ranked by
    the mean :func:`crawl_loss` over the seeds (a diverged run scores 1e3). A row per
    combination: its values, ``loss`` and ``loss_per_seed``, and per direction the speed
    (um/s), frequency (Hz) and wavelength (BL) per seed and the speed per ``window_s``
    window (:func:`speed_windows`: does the crawl last?)."""
    import itertools

    bad = sorted(set(grid) - set(PARAMS))
    if bad:
        raise KeyError(f"unknown crawl parameters {bad}; valid: {sorted(PARAMS)}")
    if not grid or any(len(v) == 0 for v in grid.values()):
        raise ValueError("grid needs at least one value for each parameter")
    seeds = tuple(int(s) for s in bend_seeds)
    if not seeds:
        raise ValueError("bend_seeds must name at least one seed")
    combos = list(itertools.product(*grid.values()))
    names = list(grid)
    N, S = len(combos), len(seeds)
    base = {k: torch.full((N,), float(params.get(k, v[0])), dtype=torch.float64)
            for k, v in PARAMS.items()}
    for i, c in enumerate(combos):
        for k, x in zip(names, c):
            base[k][i] = float(x)
    from wormlab.worm._loop import check_params

    check_params(base)  # bounds before any run
    base, lc = _tile_bends(base, LoopConfig(duration_s=duration_s, on_diverge="mark"), seeds)
    out = _runs(base, [lc, replace(lc, direction="backward")], processes, windows=window_s)
    (mf, df, wf), (mb, db, wb) = out
    L = np.where(df | db, 1e3, crawl_loss(mf, mb, metrics)).reshape(N, S)
    rows = []
    for i, c in enumerate(combos):
        sl = slice(i * S, (i + 1) * S)
        row = {"values": dict(zip(names, (float(x) for x in c))), "loss": float(L[i].mean()),
               "loss_per_seed": L[i].tolist(), "bend_seeds": list(seeds)}
        for d, m, w in (("forward", mf, wf), ("backward", mb, wb)):
            row[d] = {"speed_um_s": m["speed_um_s"][sl].tolist(),
                      "frequency_hz": m["frequency_hz"][sl].tolist(),
                      "wavelength_bl": m["wavelength_bl"][sl].tolist(),
                      "window_speed_um_s": w[:, sl].T.tolist()}
        rows.append(row)
    return sorted(rows, key=lambda r: r["loss"])


def fit_crawl(cfg: CrawlFitConfig, show_progress: bool = True) -> dict:
    import cma

    from wormlab.runs import atomic_path, progress

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ck = out / "cma_state.json"
    start = {k: v[0] for k, v in PARAMS.items()}
    start.update(cfg.start)
    x0 = to_unit(start, cfg.names, cfg.bounds)
    es = cma.CMAEvolutionStrategy(x0, cfg.sigma0, {"seed": cfg.seed + 1, "popsize": cfg.popsize,
                                                   "bounds": [0, 1], "verbose": -9})
    # JSON-normalised (tuples -> lists) so a stored state compares equal on resume
    ident = {k: v for k, v in asdict(cfg).items() if k != "processes"}  # how, not what
    state = {"config": json.loads(json.dumps(ident)), "fitness": [], "history": [],
             "best": None}
    if ck.exists():
        old = json.loads(ck.read_text())
        if old["config"] != state["config"]:
            raise ValueError(f"{ck} was written by a different configuration; remove it or "
                             "choose another --out")
        state = old
        for f in state["fitness"]:
            es.tell(es.ask(), f)
    bar = progress(total=cfg.generations, initial=len(state["fitness"]), desc="crawl fit (cma)",
                   disable=not show_progress)
    t0 = time.perf_counter()
    w0 = state["history"][-1]["wall_s"] if state["history"] else 0.0  # wall time accumulates
    while len(state["fitness"]) < cfg.generations:
        X = np.asarray(es.ask())
        F, info = evaluate(X, cfg)
        es.tell(list(X), F.tolist())
        state["fitness"].append(F.tolist())
        i = int(np.argmin(F))
        rec = {"generation": len(state["fitness"]), "best_loss": float(F[i]),
               "median_loss": float(np.median(F)), "wall_s": w0 + time.perf_counter() - t0}
        if info:
            rec["diverged"] = int(np.sum(info.get("diverged", 0)))
            if "error" in info:
                rec["error"] = info["error"][:300]
            for d in ("fwd", "bwd"):
                if info.get(d):
                    rec[d] = {k: float(v[i]) for k, v in info[d].items()}
        state["history"].append(rec)
        if state["best"] is None or F[i] < state["best"]["loss"]:
            state["best"] = {"loss": float(F[i]), "u": X[i].tolist(),
                             "params": {k: float(v[0]) for k, v in
                                        from_unit(X[i], cfg.names, cfg.bounds).items()},
                             "metrics": rec}
        with atomic_path(ck) as tmp:
            Path(tmp).write_text(json.dumps(state, indent=1))
        bar.update(1)
        bar.set_postfix(best=f"{state['best']['loss']:.3f}")
    bar.close()
    return state
