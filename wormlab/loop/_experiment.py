"""Taxis experiments with the closed loop (issue 18 item 5): many trials per condition, the
same starts and headings in every condition (a paired design), measured as the field measures
taxis, against a no-gradient control and sensory ablations.

Conditions: ``"gradient"`` (the arena as given), ``"no_gradient"`` (every field replaced by
its value at the plate centre: the same stimulus level, no gradient) and
``"ablate:CELL+CELL"`` (the arena as given, those cells silenced and cut from every path).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TaxisConfig:
    """A taxis experiment. Units: um, s.

    ``start_radius_um``: starts are uniform in a disc of that radius around the plate centre,
    headings uniform; ``chunk``: trials per closed-loop batch (one Dask task).
    ``zone_radius_um``: the chemotaxis index counts animals ending in the attractant zone or
    the control zone (Bargmann & Horvitz 1991, scaled to the trials): two discs of this radius
    whose centres lie this far from the plate centre, towards the field's peak and away from
    it, so that they touch at the centre (a trial of 20 s covers ~1-2 mm, far less than the
    distance to the rim of the plate). ``path_syn_scale``: see
    :class:`ClosedLoopConfig` (1 = c302). ``pathway``: a pathway file
    (:func:`wormlab.loop.read_pathway`, e.g. the taxis fit's): per-class pathway parameters
    and crawl-parameter overrides, applied to every trial ("" = c302's pathway)."""

    arena: str = "wormlab/loop/arenas/nacl_local.yml"
    modality: str = "nacl"
    n_trials: int = 50
    duration_s: float = 20.0
    chunk: int = 10
    start_radius_um: float = 1000.0
    conditions: tuple[str, ...] = ("gradient", "no_gradient", "ablate:ASEL+ASER")
    zone_radius_um: float = 2500.0
    path_syn_scale: float = 1.0
    params: str = ""
    pathway: str = ""
    seed: int = 0
    out: str = "data/cache/loop/taxis"


#: a trial whose centre of mass moves slower than this over its last quarter has stalled
STALL_UM_S = 10.0


def flattened(arena):
    """The no-gradient control: every field constant at its value at the plate centre."""
    from wormlab.loop._arena import Arena, Constant, Field

    centre = arena.sample(np.zeros((1, 2)), 0.0)
    fields = tuple(Field(f.modality, f.unit, (Constant(value=float(centre[f.modality][0])),))
                   for f in arena.fields)
    return Arena(radius_mm=arena.radius_mm, fields=fields, name=f"{arena.name}_no_gradient",
                 description=f"no-gradient control of {arena.name}")


def trial_starts(cfg: TaxisConfig) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) starts (um) and (N,) headings (rad), seeded; the same in every condition."""
    rng = np.random.default_rng(cfg.seed)
    r = cfg.start_radius_um * np.sqrt(rng.random(cfg.n_trials))
    a = 2 * np.pi * rng.random(cfg.n_trials)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1), 2 * np.pi * rng.random(cfg.n_trials)


def _condition(cond: str) -> tuple[bool, tuple[str, ...]]:
    if cond == "gradient":
        return True, ()
    if cond == "no_gradient":
        return False, ()
    if cond.startswith("ablate:") and len(cond) > 7:
        return True, tuple(c for c in cond[7:].split("+") if c)
    raise ValueError(f"unknown condition {cond!r}; use 'gradient', 'no_gradient' or "
                     "'ablate:CELL+CELL'")


class _ChunkRunner:
    """``spec -> arrays`` for :func:`wormlab.loop.run_trials`: one batch of trials."""

    def __init__(self, cfg: TaxisConfig):
        self.cfg = cfg

    def __call__(self, spec: dict) -> dict:
        from wormlab.loop._arena import load_arena
        from wormlab.loop._closed import ClosedLoopConfig, run_closed_loop

        cfg = self.cfg
        arena = load_arena(cfg.arena)
        grad, ablate = _condition(spec["condition"])
        if not grad:
            arena = flattened(arena)
        starts, heads = trial_starts(cfg)
        sl = slice(spec["first"], spec["first"] + spec["n"])
        params, pathway = _params_and_pathway(cfg)
        res = run_closed_loop(arena, starts[sl], heads[sl], params=params,
                              config=ClosedLoopConfig(modality=cfg.modality,
                                                      duration_s=cfg.duration_s,
                                                      ablate=ablate, seed=spec["seed"],
                                                      path_syn_scale=cfg.path_syn_scale),
                              pathway=pathway)
        return res.arrays()


def pathway_and_params(pathway: str = "", params: str = "",
                       modality: str | None = None) -> tuple[dict | None, dict | None]:
    """(crawl parameters, pathway parameters) for :func:`run_closed_loop`: the crawl
    parameter file ``params`` (default: the shipped one) with the pathway file's crawl
    overrides, and the pathway file's pathway parameters. ``pathway=""``: c302's pathway,
    ``(params or None, None)``. ``modality``: refuse a file fitted for another one."""
    from wormlab.loop._closed import read_pathway
    from wormlab.paths import package_data
    from wormlab.worm._config import read_crawl_params

    if not pathway:
        return (read_crawl_params(params) if params else None), None
    pw = read_pathway(pathway)
    if modality is not None and pw["modality"] != modality:
        raise ValueError(f"pathway file {pathway} was fitted for {pw['modality']!r}, "
                         f"not {modality!r}")
    crawl = None
    if pw["crawl"] or params:
        crawl = {**read_crawl_params(params or package_data("worm", "data",
                                                            "crawl_params.json")),
                 **pw["crawl"]}
    return crawl, pw["pathway"]


def _params_and_pathway(cfg: TaxisConfig) -> tuple[dict | None, dict | None]:
    return pathway_and_params(cfg.pathway, cfg.params, cfg.modality)


def _specs(cfg: TaxisConfig) -> list[dict]:
    specs = []
    for cond in cfg.conditions:
        _condition(cond)
        for first in range(0, cfg.n_trials, cfg.chunk):
            n = min(cfg.chunk, cfg.n_trials - first)
            specs.append({"id": f"{cond.replace(':', '_').replace('+', '-')}_{first:04d}",
                          "condition": cond, "first": first, "n": n, "seed": cfg.seed + first,
                          "duration_s": cfg.duration_s, "modality": cfg.modality,
                          "arena": str(cfg.arena), "params": cfg.params})
    return specs


def run_taxis(cfg: TaxisConfig, client=None, progress: bool = True,
              processes: bool = False) -> dict:
    """Run (or resume) every chunk of every condition into ``cfg.out/trials`` (Dask,
    :func:`wormlab.loop.run_trials`; ``processes``: worker processes, for notebooks), then
    measure: returns and writes ``taxis.json``."""
    import hashlib

    from wormlab.loop._sweep import run_trials
    from wormlab.paths import package_data
    from wormlab.sensory._transducer import weights_path
    from wormlab.worm._config import read_crawl_params

    out = Path(cfg.out)
    pfile = cfg.params or package_data("worm", "data", "crawl_params.json")
    # results of other crawl parameters, transducer weights or trial settings are refused
    weights = weights_path(cfg.modality)
    fn_config = {"crawl_params": read_crawl_params(pfile), "start_radius_um":
                 cfg.start_radius_um, "n_trials": cfg.n_trials,
                 "path_syn_scale": cfg.path_syn_scale,
                 "transducer_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    if cfg.pathway:  # (c302's pathway keeps the key set of earlier results, which stay valid)
        crawl, pathway = _params_and_pathway(cfg)
        fn_config["pathway"] = pathway
        if crawl is not None:  # the pathway file's crawl overrides
            fn_config["crawl_params"] = crawl
    run_trials(_ChunkRunner(cfg), _specs(cfg), out / "trials", client=client,
               progress=progress, config=fn_config, processes=processes)
    return taxis_report(cfg)


def load_condition(cfg: TaxisConfig, cond: str) -> dict[str, np.ndarray]:
    """Arrays of one condition with the trials of all its chunks concatenated (B axis)."""
    from wormlab.loop._sweep import load_trial

    parts = [load_trial(Path(cfg.out) / "trials", s)[1] for s in _specs(cfg)
             if s["condition"] == cond]
    out = {}
    for k in parts[0]:
        axis = 0 if k in ("diverged", "starts_um", "headings_rad") else 1
        out[k] = parts[0][k] if k == "t_s" else np.concatenate([p[k] for p in parts], axis)
    return out


def taxis_report(cfg: TaxisConfig) -> dict:
    """Taxis measures of every condition and the gradient condition against each other one."""
    from wormlab.loop import _taxis as tx
    from wormlab.loop._arena import load_arena
    from wormlab.runs import atomic_path

    arena = load_arena(cfg.arena)
    peak = arena.peak_um(cfg.modality)
    axis = peak / max(float(np.hypot(*peak)), 1e-9)
    spot = axis * cfg.zone_radius_um          # zones touch at the plate centre
    control_spot = -spot
    per = {}
    scores, dvals, bearing = {}, {}, {}
    for cond in cfg.conditions:
        d = load_condition(cfg, cond)
        head = d["head_um"]
        dt = float(d["t_s"][1] - d["t_s"][0])
        scores[cond] = tx.chemotaxis_scores(head[-1], spot, control_spot,
                                            zone_radius_um=cfg.zone_radius_um)
        vc = tx.value_change(arena, head, cfg.modality, t_end_s=cfg.duration_s)
        dvals[cond] = vc["per_trial"]
        tm = tx.track_measures(d["com_um"], dt, peak_um=peak)
        q = max(2, head.shape[0] // 4)    # the last quarter of the trials
        late = (np.linalg.norm(np.diff(d["com_um"][-q:], axis=0), axis=-1).sum(0)
                / ((q - 1) * dt))
        win = min(2.0, (head.shape[0] - 1) * dt / 3)
        st = tx.steering(d["com_um"], dt, peak, window_s=win)
        tb = tx.turning_by_change(arena, d["com_um"], dt, cfg.modality, window_s=win)
        bearing[cond] = tm["mean_cos_bearing"]
        ci = tx.chemotaxis_index(head[-1], spot, control_spot, zone_radius_um=cfg.zone_radius_um)
        per[cond] = {
            "n_trials": int(head.shape[1]), "diverged": int(d["diverged"].sum()),
            "chemotaxis_index": ci,
            "value_change": {k: vc[k] for k in ("mean", "low", "high", "unit")},
            "closer_fraction": tx.closer_fraction(head, peak),
            "mean_cos_bearing": {"mean": float(np.nanmean(bearing[cond])),
                                 "ci": list(tx.bootstrap_ci(bearing[cond][np.isfinite(
                                     bearing[cond])]))},
            "mean_speed_um_s": float(np.mean(tm["mean_speed_um_s"])),
            "turning_rate_per_min": float(np.mean(tm["turning_rate_per_min"])),
            # do the worms keep crawling? (a control that stops is not a fair control)
            "late_speed_um_s": float(late.mean()),
            "stalled": int((late < STALL_UM_S).sum()),
            "steering_deg_s": {k: st[k] for k in ("mean", "low", "high", "n", "window_s")},
            "turning_down_minus_up_deg_s": {k: tb[k] for k in (
                "difference", "low", "high", "n", "mean_up_deg_s", "mean_down_deg_s")},
        }
    report = {"config": {k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in cfg.__dict__.items()},
              "arena_peak_um": peak.tolist(), "attractant_zone_um": spot.tolist(),
              "control_zone_um": control_spot.tolist(), "conditions": per, "comparisons": {},
              "load_avg_1min": os.getloadavg()[0]}
    if "gradient" in cfg.conditions:
        others = [c for c in cfg.conditions if c != "gradient"]
        if others:
            report["comparisons"] = {
                "chemotaxis_index": tx.compare_conditions(
                    tx.ci_from_scores, scores["gradient"], {c: scores[c] for c in others}),
                "value_change": tx.compare_conditions(
                    np.mean, dvals["gradient"], {c: dvals[c] for c in others}),
            }
    path = Path(cfg.out) / "taxis.json"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=1, default=float))
    return report


def plot_taxis(report: dict, axes=None):
    """Bars per condition with 95 % intervals: chemotaxis index, change of the sensed value,
    fraction of trials ending closer to the peak (simulated worms)."""
    import matplotlib.pyplot as plt

    conds = list(report["conditions"])
    per = report["conditions"]
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    x = np.arange(len(conds))

    def bars(ax, vals, lo, hi, label):
        vals, lo, hi = (np.asarray(v, dtype=float) for v in (vals, lo, hi))
        err = np.stack([vals - lo, hi - vals])
        ax.bar(x, vals, yerr=np.where(np.isfinite(err), err, 0.0), capsize=4,
               color="tab:blue", alpha=0.7)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xticks(x, conds, rotation=20, fontsize=8)
        ax.set_ylabel(label)

    ci = [per[c]["chemotaxis_index"] for c in conds]
    bars(axes[0], [m["ci"] for m in ci], [m["ci_low"] for m in ci], [m["ci_high"] for m in ci],
         "chemotaxis index")
    vc = [per[c]["value_change"] for c in conds]
    bars(axes[1], [m["mean"] for m in vc], [m["low"] for m in vc], [m["high"] for m in vc],
         f"change at the head ({vc[0]['unit']})")
    cf = [per[c]["closer_fraction"] for c in conds]
    bars(axes[2], [m["fraction"] for m in cf], [m["low"] for m in cf], [m["high"] for m in cf],
         "fraction ending closer")
    axes[2].axhline(0.5, color="grey", ls="--", lw=0.8)
    n = per[conds[0]]["n_trials"]
    axes[0].figure.suptitle(f"taxis of the simulated worm: {n} trials per condition, "
                            f"{report['config']['duration_s']:g} s each (95 % intervals)")
    axes[0].figure.tight_layout()
    return axes
