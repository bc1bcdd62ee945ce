"""Trial sweeps with one result file per trial (issue 18 item 4, sweep part), WCON export of a
trial's track, and a cheap synthetic stand-in trial (a biased random walk, labelled synthetic).

A trial is ``fn(spec) -> {name: array}`` for a JSON-able ``spec`` (seed, start position,
heading, condition, ...). :func:`run_trials` writes ``<out_dir>/<id>.npz`` (the arrays) and then
``<out_dir>/<id>.json`` (the spec, array shapes, wall time), each atomically; a trial counts as
done only when both exist, the JSON holds the same spec (and the same ``config``, the
description of ``fn``'s own settings, when one is given) and the npz holds the listed arrays,
so a killed sweep resumes where it stopped, a half-written trial is redone, and results of a
differently configured ``fn`` are refused rather than silently reused.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def trial_id(spec: dict) -> str:
    """``spec["id"]`` if given, else ``trial-`` + 12 hex digits of the canonical JSON's SHA-1
    (stable across runs and independent of the order of the specs)."""
    if "id" in spec:
        tid = str(spec["id"])
        if not _ID.match(tid):
            raise ValueError(f"trial id {tid!r} must be 1-128 characters of letters, digits, "
                             "'_', '.', '-' (it names the result files)")
        return tid
    return "trial-" + hashlib.sha1(_canonical(spec).encode()).hexdigest()[:12]


def _canonical(spec: dict) -> str:
    try:
        return json.dumps(spec, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"trial spec {spec!r} is not JSON-able with finite numbers ({exc})"
                         ) from None


def _paths(out_dir: Path, tid: str) -> tuple[Path, Path]:
    return out_dir / f"{tid}.npz", out_dir / f"{tid}.json"


def _done(out_dir: Path, spec: dict, tid: str, config: dict | None = None) -> bool:
    npz, js = _paths(out_dir, tid)
    if not (npz.is_file() and js.is_file()):
        return False
    try:
        meta = json.loads(js.read_text())
        with np.load(npz, allow_pickle=False) as z:
            keys = set(z.files)
    except (OSError, ValueError, json.JSONDecodeError, zipfile.BadZipFile, EOFError):
        return False
    if json.dumps(meta.get("spec"), sort_keys=True) != _canonical(spec):
        raise ValueError(f"{js}: trial {tid!r} was run with another spec ({meta.get('spec')!r}"
                         f", now {spec!r}); give the new spec another id or another out_dir")
    if config is not None and meta.get("config") != json.loads(json.dumps(config)):
        raise ValueError(f"{js}: trial {tid!r} was run with another fn config "
                         f"({meta.get('config')!r}, now {config!r}); use another out_dir")
    return keys == set(meta.get("arrays", {}))


def _arrays(result, tid: str) -> dict[str, np.ndarray]:
    if not isinstance(result, dict) or not result:
        raise TypeError(f"trial {tid!r}: fn must return a non-empty dict of arrays, got "
                        f"{type(result).__name__}")
    out = {}
    for k, v in result.items():
        if not isinstance(k, str) or not k.isidentifier():
            raise ValueError(f"trial {tid!r}: result key {k!r} is not an identifier")
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        a = np.asarray(v)
        if a.dtype == object or a.dtype.kind not in "biufc":
            raise TypeError(f"trial {tid!r}: result {k!r} is not a numeric array "
                            f"(dtype {a.dtype})")
        out[k] = a
    return out


def _run_one(fn: Callable, spec: dict, tid: str, out_dir: str, config: dict | None = None
             ) -> str:
    """Run one trial and write its files atomically (npz first, then the JSON marker)."""
    from wormlab.runs import atomic_path

    out = Path(out_dir)
    t0 = time.perf_counter()
    arrays = _arrays(fn(spec), tid)
    wall = time.perf_counter() - t0
    npz, js = _paths(out, tid)
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    meta = {"id": tid, "spec": spec, "config": config, "wall_s": round(wall, 4),
            "arrays": {k: {"shape": list(a.shape), "dtype": str(a.dtype)}
                       for k, a in arrays.items()},
            "fn": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"}
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return tid


def run_trials(fn: Callable[[dict], dict], specs: Sequence[dict], out_dir: str | Path,
               client=None, progress: bool = True, *, n_workers: int = 2,
               config: dict | None = None, processes: bool = False) -> dict:
    """Run ``fn(spec)`` for every spec not yet done in ``out_dir``; one result per trial.

    Args:
        fn: ``spec -> {name: array}`` (numpy or torch). It must seed itself from the spec
            (``np.random.default_rng(spec["seed"])``), not from global state: trials run
            concurrently.
        specs: JSON-able dicts; ``spec["id"]`` names the files, else a hash of the spec does.
        out_dir: folder of ``<id>.npz`` + ``<id>.json``.
        client: ``None``: a ``dask.distributed.LocalCluster`` of ``n_workers`` one-thread
            workers in this process (``processes=False``: no pickling of ``fn``, and torch
            releases the GIL in its ops), closed afterwards; a ``distributed.Client`` to use
            yours; ``"sync"`` to run in this process without Dask (debugging).
        progress: show a progress bar (``wormlab.runs.progress``).
        processes: with ``client=None``, worker processes instead of threads (``fn`` and the
            specs are pickled). Use it inside Jupyter: an in-process cluster's threads have
            been seen to stall the kernel's next widget cell until papermill's timeout.
        n_workers: workers of the default LocalCluster (2 for the 2 shared cores here).
        config: a JSON-able description of ``fn``'s settings (e.g. ``walk.config()``), written
            into every result; finished results with a different config raise instead of being
            skipped. ``None``: not recorded or checked.

    Returns:
        ``{"out_dir", "ids" (in spec order), "n_total", "n_computed", "n_skipped"}``.
    """
    from wormlab.runs import progress as bar_of
    from wormlab.runs import remove_orphan_tmp

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_orphan_tmp(out)
    specs = list(specs)
    for i, s in enumerate(specs):
        if not isinstance(s, dict):
            raise TypeError(f"specs[{i}] must be a dict, got {type(s).__name__}")
        _canonical(s)
    ids = [trial_id(s) for s in specs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"run_trials: duplicate trial ids {dup[:5]} (identical specs?)")
    if config is not None:
        try:
            json.dumps(config, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"run_trials: config is not JSON-able ({exc})") from None
    todo = [(s, i) for s, i in zip(specs, ids) if not _done(out, s, i, config)]
    res = {"out_dir": str(out), "ids": ids, "n_total": len(specs),
           "n_computed": 0, "n_skipped": len(specs) - len(todo)}
    if not todo:
        return res
    bar = bar_of(total=len(todo), desc="trials", **({} if progress else {"disable": True}))
    try:
        if client == "sync":
            for s, i in todo:
                _run_one(fn, s, i, str(out), config)
                res["n_computed"] += 1
                bar.update(1)
            return res
        from dask.distributed import Client, LocalCluster, as_completed

        own = client is None
        if own:
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                   processes=processes, dashboard_address=None)
            client = Client(cluster)
        try:
            futs = [client.submit(_run_one, fn, s, i, str(out), config, pure=False)
                    for s, i in todo]
            for fut in as_completed(futs):
                fut.result()  # re-raises a trial's exception here
                res["n_computed"] += 1
                bar.update(1)
        finally:
            if own:
                client.close()
                cluster.close()
        return res
    finally:
        bar.close()


def load_trial(out_dir: str | Path, spec_or_id) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of one finished trial (by spec or id); errors name the file."""
    out = Path(out_dir)
    tid = spec_or_id if isinstance(spec_or_id, str) else trial_id(spec_or_id)
    npz, js = _paths(out, tid)
    if not js.is_file() or not npz.is_file():
        raise FileNotFoundError(f"trial {tid!r} has no finished result in {out}")
    try:
        meta = json.loads(js.read_text())
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, json.JSONDecodeError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{out}/{tid}: unreadable trial result ({type(exc).__name__}: {exc}); "
                         "delete its files and rerun run_trials") from None
    return meta, arrays


def load_trials(out_dir: str | Path, specs: Sequence[dict]) -> dict[str, np.ndarray]:
    """Stack the arrays of the given finished trials along a new axis 1 (trials): a result of
    shape (T, ...) becomes (T, B, ...); scalars become (B,). Shapes must agree."""
    per = [load_trial(out_dir, s)[1] for s in specs]
    if not per:
        raise ValueError("load_trials: no specs")
    keys = set(per[0])
    out = {}
    for k in sorted(keys):
        arrs = [p[k] for p in per if k in p]
        if len(arrs) != len(per) or len({a.shape for a in arrs}) != 1:
            raise ValueError(f"load_trials: array {k!r} is missing or differs in shape across "
                             "trials")
        out[k] = np.stack(arrs, axis=1 if arrs[0].ndim else 0)
    return out


def write_trial_wcon(path: str | Path, result: dict, *, ids=None, metadata: dict | None = None,
                     source: str = "wormlab.loop", body_length_um: float = 1000.0) -> Path:
    """Write a trial's track as WCON through :func:`wormlab.body.write_wcon`.

    ``result`` holds ``t_s`` (T,), ``com_um`` (T, 2) or (T, B, 2) and ``tangent_rad``
    (T, 25) or (T, B, 25) (the body's rod angles, as :class:`wormlab.body.Trajectory`).
    """
    from wormlab.body import Trajectory, write_wcon

    for k in ("t_s", "com_um", "tangent_rad"):
        if k not in result:
            raise KeyError(f"write_trial_wcon: the trial result lacks {k!r} (has "
                           f"{sorted(result)})")
    com = np.asarray(result["com_um"], dtype=float)
    tan = np.asarray(result["tangent_rad"], dtype=float)
    if com.ndim == 2:
        com, tan = com[:, None], tan[:, None]
    t = np.asarray(result["t_s"], dtype=float).reshape(-1)
    if com.shape[0] != len(t) or tan.shape[:2] != com.shape[:2] or tan.shape[-1] != 25:
        raise ValueError(f"write_trial_wcon: shapes disagree: t_s {t.shape}, com_um "
                         f"{com.shape}, tangent_rad {tan.shape} (expected (T,), (T, B, 2), "
                         "(T, B, 25))")
    traj = Trajectory(t, com, tan, body_length_um=body_length_um, source=source)
    return write_wcon(path, traj, ids=ids, metadata=metadata)


# ---- synthetic stand-in trial -------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticWalk:
    """A SYNTHETIC trial: a run-and-pirouette random walk in an arena (no circuit, no body).

    Klinokinesis as described by Pierce-Shimomura, Morse & Lockery 1999: the worm crawls
    at ``speed_um_s`` with rotational diffusion, and turns to a uniformly random heading at a
    rate ``turn_rate_per_s * exp(-gain * dC/dt)``, ``dC/dt`` being the change of the value
    sensed at the head (``modality``, in its unit per s) over the last ``memory_s``. It exists
    to test and demonstrate the sweep and the taxis measures, never as a model result.

    Spec keys: ``seed`` (int), ``start_um`` [x, y] (centre of mass), ``heading_deg``,
    ``condition``: ``"gradient"`` (the arena), ``"no_gradient"`` (the sensed value frozen at
    its start: the no-gradient control), ``"blind"`` (gain 0, a stand-in for ablated sensory
    neurons).

    Returns ``t_s`` (T,), ``com_um`` (T, 2), ``head_um`` (T, 2), ``tangent_rad`` (T, 25) (a
    straight body along the heading), ``sensed`` (T,), ``turns`` (T,) bool.
    """

    arena: object
    modality: str = "nacl"
    duration_s: float = 60.0
    dt_s: float = 0.04
    speed_um_s: float = 100.0
    turn_rate_per_s: float = 0.035
    gain: float = 1.0
    memory_s: float = 1.0
    rot_diffusion_rad2_s: float = 0.02
    body_length_um: float = 1000.0

    def config(self) -> dict:
        """The walk's settings as JSON (for ``run_trials(..., config=walk.config())``)."""
        import dataclasses

        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "arena"}
        return {"synthetic_walk": d, "arena": self.arena.to_dict()}

    def __call__(self, spec: dict) -> dict:
        cond = spec.get("condition", "gradient")
        if cond not in ("gradient", "no_gradient", "blind"):
            raise ValueError(f"SyntheticWalk: condition={cond!r}; valid: 'gradient', "
                             "'no_gradient', 'blind'")
        rng = np.random.default_rng(int(spec.get("seed", 0)))
        T = int(round(self.duration_s / self.dt_s)) + 1
        half = self.body_length_um / 2
        pos = np.asarray(spec.get("start_um", (0.0, 0.0)), dtype=float).reshape(2)
        th = math.radians(float(spec.get("heading_deg", 0.0)))
        R = self.arena.radius_um
        if np.hypot(*pos) + half > R:
            raise ValueError(f"SyntheticWalk: start {pos.tolist()} um puts the body off the "
                             f"plate (radius {R:.0f} um)")
        gain = 0.0 if cond == "blind" else self.gain
        lag = max(1, int(round(self.memory_s / self.dt_s)))
        com = np.zeros((T, 2))
        head = np.zeros((T, 2))
        heading = np.zeros(T)
        sensed = np.zeros(T)
        turns = np.zeros(T, dtype=bool)
        frozen = None
        for t in range(T):
            h = pos + half * np.array([math.cos(th), math.sin(th)])
            v = float(self.arena.sample(h[None], t * self.dt_s, clip=True)[self.modality][0])
            if cond == "no_gradient":
                frozen = v if frozen is None else frozen
                v = frozen
            com[t], head[t], heading[t], sensed[t] = pos, h, th, v
            if t == T - 1:
                break
            dcdt = (v - sensed[max(0, t - lag)]) / (min(t, lag) * self.dt_s) if t else 0.0
            rate = self.turn_rate_per_s * math.exp(float(np.clip(-gain * dcdt, -5, 5)))
            if rng.random() < 1 - math.exp(-rate * self.dt_s):
                th = rng.uniform(-math.pi, math.pi)
                turns[t + 1] = True
            th += math.sqrt(2 * self.rot_diffusion_rad2_s * self.dt_s) * rng.standard_normal()
            step = self.speed_um_s * self.dt_s * np.array([math.cos(th), math.sin(th)])
            new = pos + step
            if np.hypot(*(new + half * step / np.linalg.norm(step))) > R:
                th = th + math.pi  # the plate wall: turn back
                new = pos
            pos = new
        # Trajectory's rod angles point from head to tail, i.e. against the heading
        tangent = np.repeat(heading[:, None] + math.pi, 25, axis=1)
        return {"t_s": np.arange(T) * self.dt_s, "com_um": com, "head_um": head,
                "tangent_rad": tangent, "sensed": sensed, "turns": turns}
