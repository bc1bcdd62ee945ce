"""The fitted crawl circuit as NeuroML, and its check in NEURON (issue 17 item 6).

:func:`export_crawl` writes the motor sub-circuit (c302 C1 restricted to
:func:`~wormlab.worm.motor_cells`, 184 cells, C1 mechanisms only) with the crawl's *network*
parameters applied (:data:`NETWORK_PARAMS`: class-level scales of the c302 synapse and
gap-junction weights, and the neuromuscular graded synapses' half-activation ``nmj_vth_mV``
written as the ``Vth`` of the ``neuron_to_muscle_*`` synapse types) through
:func:`wormlab.fit.export_neuroml`, so that ``circuit.build_network(path)`` reads the same
circuit back. Everything else in :data:`~wormlab.worm.PARAMS` belongs to the closed loop, not
to NeuroML (the tonic drive, the proprioceptive stretch conductances' gains and receptive
field, motor-neuron adaptation, the muscle [Ca] -> activation mapping and its lag): it goes
to a JSON sidecar ``<name>.loop.json`` next to the ``.net.nml``, with units, bounds and
meaning.

:func:`neuron_check` runs the exported network in NEURON (jNeuroML -> NEURON, CVODE) and the
torch circuit of the loop (``build_motor_network()`` with the same parameters, stretch
conductances closed) on one *open-loop* input, the crawl's tonic drive, and compares V of
every cell and [Ca] of the muscles. Proprioception is not in the check: the loop sets a
stretch *conductance* per cell every 40 ms frame, which is neither a current (its current
follows V) nor expressible in c302's NeuroML (one ``<cell>`` per type, constant densities).
The closed loop itself (body, curvature) is not in NEURON.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# crawl parameters that change the circuit itself (wormlab.worm._loop._network_params)
NETWORK_PARAMS = ("nmj_vth_mV", "syn_cmd_mn", "syn_nmj_exc", "syn_nmj_inh", "syn_mn_mn",
                  "gap_cmd_mn", "gap_mn_mn")
SIDECAR_FORMAT = "wormlab.worm.crawl_loop"


def loop_params() -> tuple[str, ...]:
    """The crawl parameters that are not network parameters (they live in the sidecar)."""
    from wormlab.worm._loop import PARAMS

    return tuple(k for k in PARAMS if k not in NETWORK_PARAMS)


def _params(params) -> tuple[dict[str, torch.Tensor], str]:
    """Checked crawl parameters (one set) and where they came from."""
    from wormlab.worm._config import read_crawl_params
    from wormlab.worm._loop import check_params

    source = "defaults"
    if isinstance(params, str | Path):
        source = str(params)
        params = read_crawl_params(params)
    elif params is None:
        params = {}
    elif not isinstance(params, dict):
        raise TypeError(f"params must be a dict or a crawl parameter file, got "
                        f"{type(params).__name__}")
    else:
        source = "dict"
    try:
        p = check_params(params)
    except (KeyError, ValueError) as exc:
        if source in ("dict", "defaults"):
            raise
        msg = exc.args[0] if exc.args else str(exc)
        raise ValueError(f"{source}: {msg}") from None
    n = p["drive_nA"].numel()
    if n != 1:
        raise ValueError(f"export one parameter set at a time (got {n} sets)")
    return p, source


def _c1_motor_network():
    """The motor network with c302 C1 mechanisms only: a mechanism without a NeuroML form
    (e.g. a stretch-receptor conductance for proprioception) is left out when
    ``build_motor_network`` offers a keyword for it."""
    from wormlab.worm._motor import build_motor_network

    sig = inspect.signature(build_motor_network).parameters
    kw = {k: False for k in sig if "stretch" in k}
    return build_motor_network(**kw)


def crawl_network(params=None, c1_only: bool = True):
    """The (unbatched) motor network with the crawl's network parameters applied, exactly as
    :func:`wormlab.worm.run_loop` sets them (``_network_params``). ``c1_only``: C1
    mechanisms only (what NeuroML holds); False: the loop's own network
    (``build_motor_network()``, proprioceptive conductances closed)."""
    from wormlab.worm._loop import ADAPTING_CLASSES, _network_params
    from wormlab.worm._motor import build_motor_network, connection_groups

    p, _ = _params(params)
    if c1_only:  # motor-neuron adaptation is not a C1 mechanism: it goes to the sidecar
        p = {**p, **{k: torch.zeros_like(p[k]) for k in ADAPTING_CLASSES}}
    net = _c1_motor_network() if c1_only else build_motor_network()
    over = _network_params(net, p, connection_groups(net))
    with torch.no_grad():
        for k, v in over.items():
            net.params[k].copy_(v[0].to(net.params[k].dtype))
    return net


def _sidecar(p: dict, source: str, nml_name: str, drive: str | None) -> dict:
    from dataclasses import asdict

    from wormlab.worm._loop import PARAMS, LoopConfig
    from wormlab.worm._motor import BACKWARD_DRIVE, FORWARD_DRIVE

    val = {k: float(v[0]) for k, v in p.items()}
    loop = {k: {"value": val[k], "unit": PARAMS[k][3], "bounds": [PARAMS[k][1], PARAMS[k][2]],
                "meaning": PARAMS[k][4]} for k in loop_params()}
    cfg = asdict(LoopConfig())
    for k in ("direction", "ablate", "seed", "on_diverge", "duration_s"):
        cfg.pop(k)
    return {
        "format": SIDECAR_FORMAT, "version": 1, "network": nml_name, "source": source,
        "params": loop,
        "in_neuroml": {k: {"value": val[k], "unit": PARAMS[k][3], "meaning": PARAMS[k][4]}
                       for k in NETWORK_PARAMS},
        "drive": {"forward": list(FORWARD_DRIVE), "backward": list(BACKWARD_DRIVE),
                  "nA": val["drive_nA"], "in_neuroml": drive,
                  "note": ("the tonic drive is also written as pulseGenerator inputs into the "
                           f"{drive} drive cells" if drive else
                           "no drive input in the NeuroML file")},
        "loop_defaults": {"values": cfg, "note": (
            "wormlab.worm.LoopConfig defaults of the closed loop (frame_dt_s s, circuit_dt_ms "
            "ms, warmup_ms ms, physics_dt_s s, joint_gain_rad rad per unit activation, "
            "init_bend_rad rad): how the loop steps, not NeuroML")},
        "not_in_neuroml": (
            "proprioception: stretch-gated conductances (cation, E 0 mV / K+, E -60 mV) in "
            "DB/VB (forward) or DA/VA (backward) and the head motor neurons, set every frame "
            "to gain x curvature of the receptive field (wormlab.worm.Stretch; per cell and "
            "time-varying, so not expressible as c302 NeuroML); muscle activation (first-order "
            "lag tau_act_ms of min(1, [Ca]/max_ca_mM)); the body (ElegansBot) and the "
            "activation -> joint-angle mapping; motor-neuron adaptation (wormlab.worm."
            "Adaptation: slow K+ of adapt_a_nS / adapt_b_nS per A/B-type motor neuron, time "
            "constant adapt_tau_ms; c302's NeuroML has one cell type for all neurons, so a channel on "
            "A/B-type cells only needs cell types this export does not write yet)"),
    }


def _drive_stimulus(p: dict, direction: str | None, duration_ms: float = math.inf):
    from wormlab import circuit
    from wormlab.worm._motor import BACKWARD_DRIVE, FORWARD_DRIVE

    if direction is None:
        return circuit.Stimulus()
    if direction not in ("forward", "backward"):
        raise ValueError(f"drive={direction!r}; choose 'forward', 'backward' or None")
    cells = FORWARD_DRIVE if direction == "forward" else BACKWARD_DRIVE
    return circuit.Stimulus.step(list(cells), float(p["drive_nA"][0]), 0.0, duration_ms)


def _writable_dir(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".export.", dir=out_dir))
    except OSError as exc:
        raise ValueError(f"cannot write the export to {out_dir}: {exc.strerror or exc}") \
            from None
    return tmp


def export_crawl(params=None, out_dir: str | Path = "crawl_neuroml", name: str = "crawl_c1",
                 drive: str | None = "forward") -> Path:
    """Write the crawl circuit as c302-style NeuroML into ``out_dir``; returns the
    ``<name>.net.nml`` path (next to it: ``cell_C.xml`` and the sidecar ``<name>.loop.json``).

    Args:
        params: crawl parameters (``{name: value}``, a parameter file path, or None for the
            defaults), checked against :data:`~wormlab.worm.PARAMS` (names, bounds).
        out_dir: output folder (created).
        name: NeuroML network id and file stem (letters, digits, _).
        drive: ``"forward"`` (AVBL/R), ``"backward"`` (AVA/AVD/AVE L/R) or None: write the
            tonic ``drive_nA`` as constant pulse inputs into those cells.

    Every file is written into a temporary folder inside ``out_dir`` first and moved into
    place only when all are written; bad input raises before anything is written.
    """
    from wormlab.fit._neuroml import export_neuroml

    p, source = _params(params)
    stim = _drive_stimulus(p, drive)
    net = crawl_network({k: float(v[0]) for k, v in p.items()})
    tmp = _writable_dir(Path(out_dir))
    try:
        path = export_neuroml(net, tmp, name=name, stimulus=stim if stim.pulses else None)
        side = tmp / f"{name}.loop.json"
        side.write_text(json.dumps(_sidecar(p, source, path.name, drive), indent=1) + "\n")
        files = [f for f in tmp.iterdir() if not f.name.startswith(".")]
        for f in files:
            os.replace(f, Path(out_dir) / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Path(out_dir) / path.name


def read_sidecar(path: str | Path) -> dict:
    """Read a ``<name>.loop.json`` sidecar (checked: format, every loop parameter present and
    within :data:`~wormlab.worm.PARAMS`' bounds); returns ``{name: value}`` of the loop
    parameters."""
    from wormlab.worm._loop import check_params

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sidecar {path} does not exist")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON sidecar ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{path}: format is not {SIDECAR_FORMAT!r}")
    got = doc.get("params")
    if not isinstance(got, dict) or set(got) != set(loop_params()):
        raise ValueError(f"{path}: params must list exactly {sorted(loop_params())}")
    vals = {}
    for k, v in got.items():
        x = v.get("value") if isinstance(v, dict) else None
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise ValueError(f"{path}: params.{k}.value must be a number, got {x!r}")
        vals[k] = float(x)
    check_params(vals)
    return vals




# ---------------------------------------------------------------------------- the NEURON check
def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.std() < 1e-9 or b.std() < 1e-9:
        return None  # a flat trace has no defined correlation
    return float(np.corrcoef(a, b)[0, 1])


def _summary(per_cell: dict, key: str, worst=max) -> dict:
    vals = {c: d[key] for c, d in per_cell.items() if d[key] is not None}
    if not vals:
        return {"n": 0}
    c = worst(vals, key=vals.get)
    arr = np.array(list(vals.values()))
    return {"n": len(vals), "median": float(np.median(arr)),
            "worst": float(vals[c]), "worst_cell": c}


def compare_traces(t_ms: np.ndarray, v_torch: np.ndarray, ref, names: list[str],
                   ca_torch: np.ndarray | None = None, muscles: list[str] = (),
                   window_ms: float = 100.0) -> dict:
    """Per-cell agreement of torch traces with NEURON's (``ref``: ReferenceTraces, Ca in
    ``ref.meta``), both on the torch grid ``t_ms`` (T,): ``v_torch`` (T, K) mV for ``names``,
    ``ca_torch`` (T, M) mM for ``muscles``.

    Per cell: ``max_dv_mV_window`` (max |dV| over the first ``window_ms``),
    ``max_dv_mV_after`` (after it), ``max_dv_mV`` (whole run), ``corr`` (Pearson r of the V traces over the run; None for a flat trace),
    ``mean_dv_mV`` (difference of the time-mean V); per muscle also ``ca_rel_err`` (max |d[Ca]|
    over the run / NEURON's peak [Ca]), ``ca_rel_err_window``, ``ca_rel_err_after`` (first
    ``window_ms`` / after it, same scale) and ``ca_peak_ratio`` (torch /
    NEURON peak)."""
    col = {n: k for k, n in enumerate(ref.names)}
    k = ref.covered(t_ms)
    t = t_ms[:k]
    r = ref.on_grid(t)
    win = t <= window_ms + 1e-9
    out: dict = {}
    for j, n in enumerate(names):
        a, b = v_torch[:k, j], r[:, col[n]]
        d = np.abs(a - b)
        out[n] = {"max_dv_mV_window": float(d[win].max()),
                  "max_dv_mV_after": float(d[~win].max()) if (~win).any() else None,
                  "max_dv_mV": float(d.max()),
                  "corr": _corr(a, b), "mean_dv_mV": float(a.mean() - b.mean())}
    if ca_torch is not None and len(muscles):
        cols = {n: i for i, n in enumerate(ref.meta["ca_cells"])}
        for j, m in enumerate(muscles):
            b = np.interp(t, ref.meta["ca_t_ms"], ref.meta["ca_mM"][:, cols[m]])
            a = ca_torch[:k, j]
            peak = max(float(np.abs(b).max()), 1e-30)
            d = np.abs(a - b)
            out.setdefault(m, {}).update(
                ca_rel_err=float(d.max() / peak), ca_rel_err_window=float(d[win].max() / peak),
                ca_rel_err_after=float(d[~win].max() / peak) if (~win).any() else None,
                ca_peak_ratio=float(np.abs(a).max() / peak), ca_peak_mM=peak)
    return {"cells": out, "t_end_ms": float(t[-1]), "window_ms": float(window_ms)}


def torch_vs_neuron(net, stim, ref, duration_ms: float, solver: str = "exp2",
                    dt_ms: float = 0.05, window_ms: float = 100.0, per_cell: bool = True) -> dict:
    """Simulate ``net`` (torch) under ``stim`` and compare it with NEURON's traces ``ref``
    (:func:`compare_traces`); summaries (median and worst cell) for the motor neurons (every
    non-muscle cell) and the muscles."""
    from wormlab import circuit
    from wormlab.body._muscles import MUSCLES

    names = list(net.names)
    muscles = [m for m in MUSCLES if m in net.index]
    neurons = [n for n in names if n not in set(muscles)]
    t1 = time.perf_counter()
    with torch.no_grad():
        res = circuit.simulate(net, stim, duration_ms, dt_ms, solver=solver,
                               record={"v": names, "ca": muscles}, dtype=torch.float64)
    wall = time.perf_counter() - t1
    cmp = compare_traces(res.t_ms.numpy(), res.states["v"][:, 0].numpy(), ref, names,
                         res.states["ca"][:, 0].numpy(), muscles, window_ms)
    cells = cmp.pop("cells")
    groups = {}
    for g, members in (("motor_neurons", neurons), ("muscles", muscles)):
        sub = {c: cells[c] for c in members}
        groups[g] = {"max_dv_mV_window": _summary(sub, "max_dv_mV_window"),
                     "max_dv_mV_after": _summary(sub, "max_dv_mV_after"),
                     "max_dv_mV": _summary(sub, "max_dv_mV"),
                     "corr": _summary(sub, "corr", worst=min),
                     "mean_dv_mV": _summary(
                         {c: {"a": abs(v["mean_dv_mV"])} for c, v in sub.items()}, "a")}
        if g == "muscles":
            for key in ("ca_rel_err_window", "ca_rel_err_after", "ca_rel_err"):
                groups[g][key] = _summary(sub, key)
    return {"solver": solver, "dt_ms": dt_ms, "wall_s": round(wall, 2), **cmp, **groups,
            **({"per_cell": cells} if per_cell else {})}


def neuron_check(params=None, out_dir: str | Path = "crawl_neuroml", duration_ms: float = 1000.0,
                 direction: str = "forward", window_ms: float = 100.0,
                 torch_runs: tuple = (("exp2", 0.05), ("exp2", 1.0)), tol: float = 1e-6,
                 per_cell: bool = True) -> dict:
    """Run the exported crawl circuit in NEURON and the loop's torch circuit on the crawl's
    tonic drive (open loop, no proprioception) and compare them.

    Writes the export with the drive input into ``out_dir/neuron_check`` and NEURON's files
    next to it; NEURON runs CVODE with rtol = atol = ``tol``. ``torch_runs``: (solver,
    dt_ms) pairs, by default exp2 at 0.05 ms and at 1 ms (the loop's own step); RK4 is not
    used: with the fitted weights a motor neuron's membrane time constant falls to ~3 us when
    its synapses open (DD3: 290 nS on 0.79 pF), and RK4 diverges at 0.05 ms within 30 ms.
    Returns a JSON-able dict:
    per torch run, summaries (median and worst cell) of max |dV| over the first
    ``window_ms`` and the run, V correlation and muscle [Ca] relative error, for the motor
    neurons (every non-muscle cell: command, head and ventral-cord) and the muscles; with
    ``per_cell`` every cell's numbers. Raises ``NeuronStackMissing`` when NEURON is absent.
    """
    from wormlab.body._muscles import MUSCLES
    from wormlab.circuit import reference
    from wormlab.fit._neuroml import run_neuroml

    p, source = _params(params)
    if not (0 < window_ms <= duration_ms):
        raise ValueError(f"window_ms={window_ms} must lie in (0, duration_ms={duration_ms}]")
    reference.require_neuron("the NEURON check of the crawl export")
    vals = {k: float(v[0]) for k, v in p.items()}
    d = Path(out_dir) / "neuron_check"
    t0 = time.perf_counter()
    path = export_crawl(vals, d, drive=direction)
    ref = run_neuroml(path, duration_ms, tol=tol, ca_cells=list(MUSCLES))
    wall_neuron = time.perf_counter() - t0
    # the loop's torch circuit with its non-C1 conductances closed (stretch: by default;
    # adaptation: here), so both sides hold the same mechanisms
    from wormlab.worm._loop import ADAPTING_CLASSES

    net = crawl_network({**vals, **dict.fromkeys(ADAPTING_CLASSES, 0.0)}, c1_only=False)
    stim = _drive_stimulus(p, direction)
    runs = {f"{solver}@{dt}ms": torch_vs_neuron(net, stim, ref, duration_ms, solver, dt,
                                                window_ms, per_cell)
            for solver, dt in torch_runs}
    tn = ref.t_ms
    late = tn > window_ms
    activity = {"cells_v_range_over_40mV": int((np.ptp(ref.v_mV, 0) > 40.0).sum()),
                "cells_v_range_over_5mV_after_window": int(
                    (np.ptp(ref.v_mV[late], 0) > 5.0).sum()) if late.any() else 0,
                "muscle_ca_peak_mM": float(ref.meta["ca_mM"].max())}
    return {
        "params": source, "direction": direction, "drive_nA": vals["drive_nA"],
        "duration_ms": duration_ms, "nml": str(path),
        "neuron": {"method": ref.meta["method"], "tol": ref.meta["tol"],
                   "neuron_sim_s": round(ref.wall_s, 2),
                   "wall_s_export_convert_run": round(wall_neuron, 2), **activity},
        "torch": runs,
        "covers": ("the exported network (184 cells, C1 mechanisms, crawl network parameters) "
                   "in NEURON CVODE vs the loop's torch circuit, open loop, tonic drive only: V "
                   "of the 89 neurons and 95 muscles, muscle [Ca]"),
        "does_not_cover": ("proprioception (stretch conductances set each frame from the "
                           "body's curvature: not expressible as current pulses or c302 "
                           "NeuroML), motor-neuron adaptation (closed on both sides: not "
                           "exported yet), muscle activation, the body, the closed loop"),
    }
