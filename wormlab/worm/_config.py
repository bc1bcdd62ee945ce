"""One config-driven whole-worm run (issue 17 item 10): a YAML file with a ``worm:`` section
(what to simulate) and an ``ml:`` section in the layout of OpenWorm's DD017
(``differentiable_backend``; ``auto_fit``; ``sph_surrogate``; ``sensory_model``).

Example (``wormlab/worm/configs/crawl_forward.yml``)::

    worm:
      direction: forward          # forward (AVB drive) | backward (AVA/AVD/AVE drive)
      duration_s: 5.0
      params: null                # crawl parameter JSON (wormlab worm fit) or null = defaults
      ablate: []                  # cells of the motor circuit held silent
      body: physics               # physics (ElegansBot) | surrogate
      seed: 0
      bend_seeds: []              # fits: score each member from these initial bends (mean loss)
      processes: 1                # fits: forward and backward runs in parallel processes
      intestine: false            # step the intestinal Ca2+ oscillator in the same loop
      arena: null                 # learned sensing: arena YAML (default: NaCl ramp)
    ml:
      differentiable_backend: torch
      auto_fit:
        target_metrics: [speed_um_s, frequency_hz, wavelength_bl, oscillation_rad]
        max_epochs: 30            # CMA-ES generations
        learning_rate: 0.2        # CMA-ES initial step in the unit parameter box
        parameter_bounds: {}      # name: [low, high], inside wormlab.worm.PARAMS' bounds
      sph_surrogate:
        surrogate_model: body_surrogate
        surrogate_fallback_threshold: 0.15
      sensory_model: generic      # generic | learned (the closed loop of wormlab.loop)
      sensory_modalities: []      # learned: one of wormlab.sensory.MODALITIES
    out: reports/worm_run

Every key is checked; an unknown key or value names the valid ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from wormlab.worm._loop import PARAMS

TOP_KEYS = ("worm", "ml", "out")
WORM_KEYS = ("direction", "duration_s", "params", "ablate", "body", "seed", "bend_seeds",
             "processes", "intestine", "arena")
ML_KEYS = ("differentiable_backend", "auto_fit", "sph_surrogate", "sensory_model",
           "sensory_modalities")
AUTO_FIT_KEYS = ("target_metrics", "max_epochs", "learning_rate", "parameter_bounds")
SURROGATE_KEYS = ("surrogate_model", "surrogate_fallback_threshold")
TARGET_METRICS = ("speed_um_s", "frequency_hz", "wavelength_bl", "oscillation_rad")


@dataclass(frozen=True)
class WormRunConfig:
    direction: str = "forward"
    duration_s: float = 5.0
    params: str | None = None
    ablate: tuple[str, ...] = ()
    body: str = "physics"
    seed: int = 0
    bend_seeds: tuple[int, ...] = ()
    processes: int = 1
    intestine: bool = False
    arena: str | None = None
    differentiable_backend: str = "torch"
    target_metrics: tuple[str, ...] = TARGET_METRICS
    max_epochs: int = 30
    learning_rate: float = 0.2
    parameter_bounds: dict = field(default_factory=dict)
    surrogate_model: str = "body_surrogate"
    surrogate_fallback_threshold: float = 0.15
    sensory_model: str = "generic"
    sensory_modalities: tuple[str, ...] = ()
    out: str = "reports/worm_run"
    source: str = ""


def _keys(d, valid, where, path):
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ValueError(f"{path}: '{where}' must be a mapping, got {type(d).__name__}")
    bad = sorted(set(d) - set(valid))
    if bad:
        raise ValueError(f"{path}: unknown key(s) {bad} in '{where}'; valid: {list(valid)}")
    return d


def _choice(v, valid, where, path):
    if v not in valid:
        raise ValueError(f"{path}: {where}={v!r}; valid: {list(valid)}")
    return v


def _num(v, where, path, lo=None, hi=None, kind=float):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{path}: {where} must be a number, got {v!r}")
    v = kind(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{path}: {where}={v} outside [{lo}, {hi}]")
    return v


def load_run_config(path: str | Path) -> WormRunConfig:
    """Read and validate a whole-worm run YAML (see the module docstring)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"worm run config {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable YAML file ({exc})") from None
    doc = _keys(doc or {}, TOP_KEYS, "top level", path)
    w = _keys(doc.get("worm"), WORM_KEYS, "worm", path)
    ml = _keys(doc.get("ml"), ML_KEYS, "ml", path)
    af = _keys(ml.get("auto_fit"), AUTO_FIT_KEYS, "ml.auto_fit", path)
    sp = _keys(ml.get("sph_surrogate"), SURROGATE_KEYS, "ml.sph_surrogate", path)
    d = WormRunConfig()
    kw: dict = {}
    if "direction" in w:
        kw["direction"] = _choice(w["direction"], ("forward", "backward"), "worm.direction", path)
    if "duration_s" in w:
        kw["duration_s"] = _num(w["duration_s"], "worm.duration_s", path, 0.2, 600.0)
    if w.get("params") is not None:
        pf = Path(str(w["params"]))
        pf = pf if pf.is_absolute() else (path.parent / pf if (path.parent / pf).exists() else pf)
        kw["params"] = str(pf)
    if "ablate" in w:
        ab = w["ablate"] or []
        if not isinstance(ab, list) or not all(isinstance(x, str) for x in ab):
            raise ValueError(f"{path}: worm.ablate must be a list of cell names, got {ab!r}")
        kw["ablate"] = tuple(ab)
    if "body" in w:
        kw["body"] = _choice(w["body"], ("physics", "surrogate"), "worm.body", path)
    if "seed" in w:
        kw["seed"] = _num(w["seed"], "worm.seed", path, 0, 2**31 - 1, int)
    if w.get("bend_seeds"):
        bs = w["bend_seeds"]
        if not isinstance(bs, list) or not all(isinstance(x, int) and not isinstance(x, bool)
                                               and 0 <= x < 2**31 for x in bs):
            raise ValueError(f"{path}: worm.bend_seeds must be a list of seeds (integers >= 0), "
                             f"got {bs!r}")
        kw["bend_seeds"] = tuple(bs)
    if "processes" in w:
        kw["processes"] = _num(w["processes"], "worm.processes", path, 1, 64, int)
    if "intestine" in w:
        if not isinstance(w["intestine"], bool):
            raise ValueError(f"{path}: worm.intestine must be true or false, got "
                             f"{w['intestine']!r}")
        kw["intestine"] = w["intestine"]
    if w.get("arena") is not None:
        af_ = Path(str(w["arena"]))
        af_ = af_ if af_.is_absolute() or af_.exists() else path.parent / af_
        if not af_.is_file():
            raise FileNotFoundError(f"{path}: worm.arena {w['arena']} does not exist")
        kw["arena"] = str(af_)
    if "sensory_modalities" in ml:
        from wormlab.sensory import MODALITIES

        sm = ml["sensory_modalities"] or []
        if not isinstance(sm, list):
            raise ValueError(f"{path}: ml.sensory_modalities must be a list, got {sm!r}")
        for m in sm:
            _choice(m, MODALITIES, "ml.sensory_modalities[]", path)
        kw["sensory_modalities"] = tuple(sm)
    if "differentiable_backend" in ml:
        kw["differentiable_backend"] = _choice(ml["differentiable_backend"], ("torch",),
                                               "ml.differentiable_backend", path)
    if "sensory_model" in ml:
        kw["sensory_model"] = _choice(ml["sensory_model"], ("generic", "learned"),
                                      "ml.sensory_model", path)
    if "target_metrics" in af:
        tm = af["target_metrics"]
        if not isinstance(tm, list) or not tm:
            raise ValueError(f"{path}: ml.auto_fit.target_metrics must be a non-empty list")
        for m in tm:
            _choice(m, TARGET_METRICS, "ml.auto_fit.target_metrics[]", path)
        kw["target_metrics"] = tuple(tm)
    if "max_epochs" in af:
        kw["max_epochs"] = _num(af["max_epochs"], "ml.auto_fit.max_epochs", path, 1, 10000, int)
    if "learning_rate" in af:
        kw["learning_rate"] = _num(af["learning_rate"], "ml.auto_fit.learning_rate", path,
                                   1e-4, 1.0)
    if "parameter_bounds" in af:
        pb = af["parameter_bounds"] or {}
        if not isinstance(pb, dict):
            raise ValueError(f"{path}: ml.auto_fit.parameter_bounds must be a mapping")
        out = {}
        for k, v in pb.items():
            if k not in PARAMS:
                raise ValueError(f"{path}: ml.auto_fit.parameter_bounds: unknown parameter "
                                 f"{k!r}; valid: {sorted(PARAMS)}")
            if (not isinstance(v, list) or len(v) != 2
                    or not all(isinstance(x, (int, float)) for x in v)):
                raise ValueError(f"{path}: parameter_bounds.{k} must be [low, high], got {v!r}")
            lo, hi = float(v[0]), float(v[1])
            _, plo, phi, unit, _ = PARAMS[k]
            if not (plo <= lo < hi <= phi):
                raise ValueError(f"{path}: parameter_bounds.{k}=[{lo}, {hi}] {unit} must lie "
                                 f"inside [{plo}, {phi}] with low < high")
            out[k] = (lo, hi)
        kw["parameter_bounds"] = out
    if "surrogate_model" in sp:
        if not isinstance(sp["surrogate_model"], str):
            raise ValueError(f"{path}: ml.sph_surrogate.surrogate_model must be a model name")
        kw["surrogate_model"] = sp["surrogate_model"]
    if "surrogate_fallback_threshold" in sp:
        kw["surrogate_fallback_threshold"] = _num(
            sp["surrogate_fallback_threshold"], "ml.sph_surrogate.surrogate_fallback_threshold",
            path, 0.0, 10.0)
    if "out" in doc:
        if not isinstance(doc["out"], str) or not doc["out"]:
            raise ValueError(f"{path}: out must be a folder path")
        kw["out"] = doc["out"]
    cfg = WormRunConfig(**{**d.__dict__, **kw, "source": str(path)})
    return cfg


def read_crawl_params(path: str | Path) -> dict[str, float]:
    """A crawl parameter file: JSON ``{"format": "wormlab.worm.params", "params": {...}}``
    (written by ``wormlab worm fit``) or a plain ``{name: value}`` mapping; checked against
    :data:`~wormlab.worm.PARAMS` (names, finiteness, bounds) by the loop."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"crawl parameter file {path} does not exist")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON parameter file ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object")
    params = doc.get("params", doc) if doc.get("format") == "wormlab.worm.params" else doc
    if not isinstance(params, dict):
        raise ValueError(f"{path}: 'params' must be an object of name: value")
    bad = sorted(set(params) - set(PARAMS))
    old = [k for k in bad if k.endswith("_nA_rad")]
    if old:
        raise ValueError(f"{path}: {old} are gains of the first crawl version, whose "
                         "proprioception was a current source (nA/rad); it is now a stretch "
                         "conductance (nS/rad, docs/crawl.md): refit with `wormlab worm fit`")
    if bad:
        raise ValueError(f"{path}: unknown crawl parameter(s) {bad}; valid: {sorted(PARAMS)}")
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{path}: parameter {k} must be a number, got {v!r}")
    return {k: float(v) for k, v in params.items()}


def write_crawl_params(path: str | Path, params: dict[str, float], **provenance) -> Path:
    """Write a crawl parameter file (atomic) that :func:`read_crawl_params` reads back."""
    from wormlab.runs import atomic_path

    bad = sorted(set(params) - set(PARAMS))
    if bad:
        raise ValueError(f"unknown crawl parameter(s) {bad}; valid: {sorted(PARAMS)}")
    doc = {"format": "wormlab.worm.params", "version": 1,
           "params": {k: float(v) for k, v in params.items()},
           "units": {k: PARAMS[k][3] for k in params}, "provenance": provenance}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1))
    return path


def run_from_config(cfg: WormRunConfig, progress: bool = True) -> dict:
    """Run the whole worm as ``cfg`` says and write ``cfg.out``: ``run.wcon`` (midline, mm),
    ``traces.npz`` (time-first: t_s, muscle activation and [Ca] (mM), recorded neurons' V
    (mV)), ``metrics.json`` (crawl kinematics; null where undefined, e.g. no wave). The folder is written to a temporary sibling
    and renamed at the end, so a failed run leaves nothing half-written."""
    from types import SimpleNamespace

    import numpy as np

    from wormlab.body._wcon import write_wcon
    from wormlab.circuit import CircuitBlowUpError
    from wormlab.runs import atomic_dir
    from wormlab.worm._fit import crawl_metrics
    from wormlab.worm._loop import LoopConfig, run_loop

    if cfg.body != "physics":
        raise NotImplementedError(
            "worm.body: surrogate is not available in the closed loop yet (the body surrogate "
            "maps a whole activation window to kinematics, not one 40 ms step); use "
            "body: physics (ElegansBot)")
    params = read_crawl_params(cfg.params) if cfg.params else {}
    learned = cfg.sensory_model == "learned"
    if learned and len(cfg.sensory_modalities) != 1:
        from wormlab.sensory import MODALITIES

        raise NotImplementedError(
            "ml.sensory_model: learned runs one modality at a time (one transducer in the "
            f"closed loop); set ml.sensory_modalities to one of {list(MODALITIES)}, got "
            f"{list(cfg.sensory_modalities)}")
    if cfg.arena and not learned:
        raise ValueError("worm.arena is for ml.sensory_model: learned (a generic worm senses "
                         "nothing)")
    n_frames = int(round(cfg.duration_s / LoopConfig().frame_dt_s)) + 1
    clock = None
    if cfg.intestine:
        from wormlab.worm._organs import IntestineClock

        clock = IntestineClock(n_frames, LoopConfig().frame_dt_s)
    extra: dict = {}
    if learned:
        from wormlab import loop

        arena_path = cfg.arena or str(Path(loop.__file__).parent / "arenas" / "nacl_local.yml")
        arena = loop.load_arena(arena_path)
        cl = loop.run_closed_loop(
            arena, np.zeros((1, 2)), np.zeros(1), params,
            config=loop.ClosedLoopConfig(modality=cfg.sensory_modalities[0],
                                         duration_s=cfg.duration_s, direction=cfg.direction,
                                         ablate=cfg.ablate, seed=cfg.seed),
            progress=progress, frame_hook=clock.step if clock else None)
        if cl.diverged.any():
            raise CircuitBlowUpError("the closed loop's circuit diverged")
        traj, t_s, v_mV, neurons = cl.trajectory(), cl.t_s, cl.v_mV, cl.recorded
        act = ca = np.zeros((len(t_s), 1, 0))
        m = {k: float(np.asarray(v)[0])
             for k, v in crawl_metrics(SimpleNamespace(trajectory=traj)).items()}
        extra = {"stimulus": cl.stimulus, "sensory_current_nA": cl.current_nA,
                 "sensory_neurons": np.array(cl.sensory_neurons)}
        wall = cl.wall_s
    else:
        lc = LoopConfig(duration_s=cfg.duration_s, direction=cfg.direction, ablate=cfg.ablate,
                        seed=cfg.seed)
        hook = None
        if clock:
            def hook(f, t_s, points_um):
                clock.step(f)
                return {}
        res = run_loop(params, lc, progress=progress, frame_input=hook)
        traj, t_s, v_mV, neurons = res.trajectory, res.t_s, res.v_mV, res.neurons
        act, ca = res.activation, res.ca_mM
        m = {k: float(np.asarray(v)[0]) for k, v in crawl_metrics(res).items()}
        wall = res.wall_s
    # strict JSON: an undefined metric (e.g. no wave -> no frequency) is null, not NaN
    m = {k: (v if np.isfinite(v) else None) for k, v in m.items()}
    if clock:
        extra.update(intestine_ca_uM=clock.ca_uM, intestine_cells=np.array(clock.cells))
    with atomic_dir(cfg.out) as tmp:
        write_wcon(tmp / "run.wcon", traj, ids=[f"wormlab-crawl-{cfg.direction}"],
                   metadata={"wormlab": {"config": cfg.source, "params": cfg.params,
                                         "direction": cfg.direction}})
        np.savez(tmp / "traces.npz", t_s=t_s, activation=act, ca_mM=ca,
                 v_mV=v_mV, neurons=np.array(neurons), **extra)
        summary = {"config": cfg.source, "direction": cfg.direction,
                   "duration_s": cfg.duration_s, "params": cfg.params, "ablate": list(cfg.ablate),
                   "body": cfg.body, "sensory_model": cfg.sensory_model,
                   "sensory_modalities": list(cfg.sensory_modalities),
                   "arena": cfg.arena if learned else None, "intestine": cfg.intestine,
                   "metrics": m, "wall_s": wall,
                   "units": {"speed_um_s": "um/s (+ = toward the head)", "frequency_hz": "Hz",
                             "wavelength_bl": "body lengths", "oscillation_rad": "rad",
                             "amplitude_rad": "rad", "intestine_ca_uM": "uM",
                             "stimulus": "the modality's units (wormlab.sensory)"}}
        (tmp / "metrics.json").write_text(json.dumps(summary, indent=1, allow_nan=False))
    return summary
