"""The fitted crawl circuit as NeuroML, and its check in NEURON (issue 17 item 6).

:func:`export_crawl` writes the motor sub-circuit (c302 C1 restricted to
:func:`~wormlab.worm.motor_cells`, 184 cells) with the crawl's *network* parameters applied
(:data:`NETWORK_PARAMS`: class-level scales of the c302 synapse and gap-junction weights, the
neuromuscular graded synapses' half-activation ``nmj_vth_mV`` written as the ``Vth`` of the
``neuron_to_muscle_*`` synapse types, and the motor-neuron adaptation of
:class:`~wormlab.worm.Adaptation`). The C1 part goes through :func:`wormlab.fit.export_neuroml`;
the adaptation is added to it as one more ``ionChannelHH`` (:data:`ADAPT_CHANNEL`, one gate
``w``: the mechanism's sigmoid steady state and fixed time constant ``adapt_tau_ms``) in
``cell_C.xml`` and two more cell types, copies of c302's ``GenericNeuronCell`` with its
``channelDensity`` (``adapt_a_nS`` / ``adapt_b_nS`` over the cell's area, as the loop sets
it): ``GenericNeuronCell_adapt_A`` for DA, VA, AS and ``GenericNeuronCell_adapt_B`` for DB,
VB. Every other cell keeps c302's type. ``circuit.build_network(path)`` reads the same
circuit back (the adaptation as a :class:`wormlab.circuit._mechanisms.ChannelHH` with the
parameter names of :class:`~wormlab.worm.Adaptation`). Everything else in
:data:`~wormlab.worm.PARAMS` belongs to the closed loop, not to NeuroML (the tonic drive, the
proprioceptive stretch conductances' gains and receptive field, the muscle [Ca] -> activation
mapping and its lag): it goes to a JSON sidecar ``<name>.loop.json`` next to the
``.net.nml``, with units, bounds and meaning.

:func:`neuron_check` runs the exported network in NEURON (jNeuroML -> NEURON, CVODE) and the
torch circuit of the loop (``build_motor_network()`` with the same parameters, adaptation
included, stretch conductances closed) on one *open-loop* input, the crawl's tonic drive, and
compares V of every cell and [Ca] of the muscles. Proprioception is not in the check: the
loop sets a stretch *conductance* per cell every 40 ms frame, which is neither a current (its
current follows V) nor expressible in c302's NeuroML (constant densities). The closed loop
itself (body, curvature) is not in NEURON.
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
C1_PARAMS = ("nmj_vth_mV", "syn_cmd_mn", "syn_nmj_exc", "syn_nmj_inh", "syn_mn_mn",
             "gap_cmd_mn", "gap_mn_mn")
ADAPT_PARAMS = ("adapt_a_nS", "adapt_b_nS", "adapt_tau_ms")
NETWORK_PARAMS = C1_PARAMS + ADAPT_PARAMS
SIDECAR_FORMAT = "wormlab.worm.crawl_loop"
# version 2: the adaptation parameters are in the NeuroML (version 1 had them in "params")
SIDECAR_VERSION = 2
# the adaptation in NeuroML: channel id, its gate id (so that the reader's ChannelHH names
# are Adaptation's: g_adapt, e_adapt, tau_adapt, mid_adapt, scale_adapt, state w_adapt), and
# the cell type of each adapting group (copies of c302's neuron cell type)
ADAPT_CHANNEL, ADAPT_GATE = "adapt", "w"
NEURON_CELL = "GenericNeuronCell"
ADAPT_CELL_TYPES = {"adapt_a_nS": f"{NEURON_CELL}_adapt_A", "adapt_b_nS": f"{NEURON_CELL}_adapt_B"}


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
    mechanisms only, adaptation closed (what :func:`wormlab.fit.export_neuroml` writes before
    :func:`export_crawl` adds the adaptation channel); False: the loop's own network
    (``build_motor_network()``, with adaptation, proprioceptive conductances closed), the one
    the exported file reads back as."""
    from wormlab.worm._loop import ADAPTING_CLASSES, _network_params
    from wormlab.worm._motor import build_motor_network, connection_groups

    p, _ = _params(params)
    if c1_only:  # the adaptation is added to the file by _write_adaptation
        p = {**p, **{k: torch.zeros_like(p[k]) for k in ADAPTING_CLASSES}}
    net = _c1_motor_network() if c1_only else build_motor_network()
    over = _network_params(net, p, connection_groups(net))
    with torch.no_grad():
        for k, v in over.items():
            net.params[k].copy_(v[0].to(net.params[k].dtype))
    return net


def adaptation_densities(p: dict, net) -> dict[str, dict]:
    """The adaptation as NeuroML holds it, per adapting group (``adapt_a_nS``,
    ``adapt_b_nS``): its cell type, cells, and density (mS/cm^2) computed as the loop does
    (``_network_params``: nS x 100 / area um^2, in float64), which must be one value per group
    (c302's neurons share one morphology)."""
    from wormlab.circuit._mechanisms import PA_TO_UA_PER_CM2_TIMES_AREA_UM2
    from wormlab.worm._loop import ADAPTING_CLASSES
    from wormlab.worm._motor import motor_class

    out = {}
    for k, classes in ADAPTING_CLASSES.items():
        idx = [i for i, n in enumerate(net.names) if motor_class(n) in classes]
        dens = PA_TO_UA_PER_CM2_TIMES_AREA_UM2 / net.area_um2[idx].double()
        g = p[k][:1, None] * dens[None]  # (1, cells), the loop's expression
        vals = sorted(set(g[0].tolist()))
        if len(vals) != 1:
            raise ValueError(f"{k}: the adapting cells differ in area ({vals[:3]} mS/cm^2): "
                             "one NeuroML cell type cannot hold them")
        out[k] = {"cell_type": ADAPT_CELL_TYPES[k], "cells": [net.names[i] for i in idx],
                  "g_mS_per_cm2": vals[0], "nS": float(p[k][0])}
    return out


def _adapt_mechanism_values() -> dict[str, float]:
    """The fixed parameters of :class:`~wormlab.worm.Adaptation` (reversal, gate midpoint and
    slope: not crawl parameters, so the mechanism's defaults)."""
    from wormlab.worm._motor import Adaptation

    return {q.name: q.default for q in Adaptation().params}


def _write_adaptation(net_path: Path, adapt: dict, tau_ms: float) -> None:
    """Add the adaptation channel to the exported ``cell_C.xml`` and the adapting cell types to
    ``net_path`` (copies of ``GenericNeuronCell`` plus one ``channelDensity``); the adapting
    cells' populations and every cell path that names them (``preCell``, ``postCell``,
    input ``target``) switch to their type. Rewrites both files atomically."""
    import copy
    import re
    import xml.etree.ElementTree as ET

    from wormlab.fit._neuroml import _NS, NeuroMLExportError, _num, _register_namespaces
    from wormlab.runs import atomic_path

    mv = _adapt_mechanism_values()
    _register_namespaces()
    root = ET.parse(net_path).getroot()
    cell_file = net_path.parent / root.find(f"{_NS}include").get("href")
    croot = ET.parse(cell_file).getroot()
    if any(c.get("id") == ADAPT_CHANNEL for c in croot.findall(f"{_NS}ionChannel")):
        raise NeuroMLExportError(f"{cell_file.name} already has a channel {ADAPT_CHANNEL!r}")
    # non_specific (no species): its reversal is its own, not NEURON's shared ek of the cell
    ch = ET.SubElement(croot, f"{_NS}ionChannel", {
        "id": ADAPT_CHANNEL, "conductance": "10pS", "type": "ionChannelHH"})
    ET.SubElement(ch, f"{_NS}notes").text = (
        "wormlab motor-neuron adaptation (wormlab.worm.Adaptation): slow voltage-gated K+, "
        "I = g w (E - V), w_inf = 1/(1+exp(-(V-midpoint)/scale)), dw/dt = (w_inf - w)/tau")
    gate = ET.SubElement(ch, f"{_NS}gateHHtauInf", {"id": ADAPT_GATE, "instances": "1"})
    ET.SubElement(gate, f"{_NS}timeCourse", {"type": "fixedTimeCourse",
                                             "tau": f"{_num(tau_ms)} ms"})
    ET.SubElement(gate, f"{_NS}steadyState", {
        "type": "HHSigmoidVariable", "rate": "1", "scale": f"{_num(mv['scale_adapt'])} mV",
        "midpoint": f"{_num(mv['mid_adapt'])} mV"})
    ET.indent(ch, space="    ", level=1)
    if len(croot) > 1:
        croot[-2].tail = "\n\n    "
    ch.tail = "\n\n"

    cells = {c.get("id"): c for c in root.findall(f"{_NS}cell")}
    if NEURON_CELL not in cells:
        raise NeuroMLExportError(f"{net_path.name}: no cell type {NEURON_CELL!r} to copy")
    base = cells[NEURON_CELL]
    at = list(root).index(base) + 1
    new_type = {}
    for a in adapt.values():
        el = copy.deepcopy(base)
        el.set("id", a["cell_type"])
        mp = el.find(f"{_NS}biophysicalProperties/{_NS}membraneProperties")
        last = mp.findall(f"{_NS}channelDensity")[-1]
        cd = ET.Element(f"{_NS}channelDensity", {
            "id": f"{ADAPT_CHANNEL}_all", "ionChannel": ADAPT_CHANNEL,
            "condDensity": f"{_num(a['g_mS_per_cm2'])} mS_per_cm2",
            "erev": f"{_num(mv['e_adapt'])} mV", "ion": "non_specific"})
        cd.tail = last.tail
        mp.insert(list(mp).index(last) + 1, cd)
        root.insert(at, el)
        at += 1
        new_type.update(dict.fromkeys(a["cells"], a["cell_type"]))
    network = root.find(f"{_NS}network")
    for pop in network.findall(f"{_NS}population"):
        if pop.get("id") in new_type:
            if pop.get("component") != NEURON_CELL:
                raise NeuroMLExportError(f"population {pop.get('id')} is a "
                                         f"{pop.get('component')}, not a {NEURON_CELL}")
            pop.set("component", new_type[pop.get("id")])
    path_re = re.compile(r"^\.\./([^/]+)/0/" + NEURON_CELL + "$")
    for el in network.iter():
        for attr in ("preCell", "postCell", "target"):
            m = path_re.match(el.get(attr, ""))
            if m and m.group(1) in new_type:
                el.set(attr, f"../{m.group(1)}/0/{new_type[m.group(1)]}")
    with atomic_path(cell_file) as tmp:
        ET.ElementTree(croot).write(tmp, encoding="UTF-8", xml_declaration=True)
    with atomic_path(net_path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)


def _sidecar(p: dict, source: str, nml_name: str, drive: str | None,
             adapt: dict | None = None) -> dict:
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
        "format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "network": nml_name,
        "source": source, "params": loop,
        "in_neuroml": {k: {"value": val[k], "unit": PARAMS[k][3], "meaning": PARAMS[k][4]}
                       for k in NETWORK_PARAMS},
        "adaptation_in_neuroml": {
            "channel": ADAPT_CHANNEL, "gate": ADAPT_GATE, "file": "cell_C.xml",
            "cell_types": {a["cell_type"]: {"param": k, "nS": a["nS"],
                                            "g_mS_per_cm2": a["g_mS_per_cm2"],
                                            "cells": a["cells"]}
                           for k, a in (adapt or {}).items()},
            "note": ("wormlab.worm.Adaptation as a NeuroML ionChannelHH (one gate, fixed time "
                     "constant adapt_tau_ms, sigmoid steady state) with a channelDensity on "
                     "copies of GenericNeuronCell for the A-type (DA, VA, AS) and B-type (DB, "
                     "VB) motor neurons: density = nS x 100 / cell area um^2")},
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
            "activation -> joint-angle mapping"),
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
    ``<name>.net.nml`` path (next to it: ``cell_C.xml``, with the adaptation channel, and the
    sidecar ``<name>.loop.json``).

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
    adapt = adaptation_densities(p, net)
    tmp = _writable_dir(Path(out_dir))
    try:
        path = export_neuroml(net, tmp, name=name, stimulus=stim if stim.pulses else None)
        _write_adaptation(path, adapt, float(p["adapt_tau_ms"][0]))
        side = tmp / f"{name}.loop.json"
        side.write_text(json.dumps(_sidecar(p, source, path.name, drive, adapt), indent=1)
                        + "\n")
        files = [f for f in tmp.iterdir() if not f.name.startswith(".")]
        for f in files:
            os.replace(f, Path(out_dir) / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Path(out_dir) / path.name


def read_sidecar(path: str | Path) -> dict:
    """Read a ``<name>.loop.json`` sidecar (checked: format, every loop parameter present and
    within :data:`~wormlab.worm.PARAMS`' bounds); returns ``{name: value}`` of the parameters
    its NeuroML does not hold.

    Version 2 (this export) lists :func:`loop_params`. Version 1 (exports before the
    adaptation was written as NeuroML) listed ``adapt_a_nS``, ``adapt_b_nS`` and
    ``adapt_tau_ms`` there as well, or (exports before adaptation existed) not at all; they
    are read and returned with the loop parameters, since that export's NeuroML lacks them."""
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
    version = doc.get("version", 1)
    if version not in (1, SIDECAR_VERSION):
        raise ValueError(f"{path}: sidecar version {version!r}; this wormlab reads 1 and "
                         f"{SIDECAR_VERSION}")
    got = doc.get("params")
    want = [set(loop_params())]
    if version == 1:  # adaptation listed with the loop parameters (or predating them)
        want = [want[0] | set(ADAPT_PARAMS), want[0]]
    if not isinstance(got, dict) or set(got) not in want:
        raise ValueError(f"{path}: params must list exactly {sorted(want[0])} "
                         f"(sidecar version {version})")
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
                    dt_ms: float = 0.05, window_ms: float = 100.0, per_cell: bool = True,
                    subgroups: dict | None = None) -> dict:
    """Simulate ``net`` (torch) under ``stim`` and compare it with NEURON's traces ``ref``
    (:func:`compare_traces`); summaries (median and worst cell) for the motor neurons (every
    non-muscle cell) and the muscles, and for each ``subgroups`` entry (``{name: cells}``,
    e.g. the adapting A- and B-type motor neurons; V only)."""
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
    for g, members in (("motor_neurons", neurons), ("muscles", muscles),
                       *(subgroups or {}).items()):
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
                 torch_runs: tuple = (("exp2", 0.05), ("exp2", 0.02), ("exp2", 1.0)),
                 tol: float = 1e-6,
                 per_cell: bool = True) -> dict:
    """Run the exported crawl circuit in NEURON and the loop's torch circuit on the crawl's
    tonic drive (open loop, no proprioception) and compare them.

    Writes the export with the drive input into ``out_dir/neuron_check`` and NEURON's files
    next to it; NEURON runs CVODE with rtol = atol = ``tol``. ``torch_runs``: (solver,
    dt_ms) pairs, by default exp2 at 0.05 ms, at 0.02 ms (the onset spikes' step error at
    0.05 ms shrinks to NEURON's tolerance) and at 1 ms (the loop's own step); RK4 is not
    used: with the fitted weights a motor neuron's membrane time constant falls to ~3 us when
    its synapses open (DD3: 290 nS on 0.79 pF), and RK4 diverges at 0.05 ms within 30 ms.
    Returns a JSON-able dict:
    per torch run, summaries (median and worst cell) of max |dV| over the first
    ``window_ms`` and the run, V correlation and muscle [Ca] relative error, for the motor
    neurons (every non-muscle cell: command, head and ventral-cord), the muscles and, apart,
    the adapting motor neurons (``adapt_a_nS``: DA, VA, AS; ``adapt_b_nS``: DB, VB); with
    ``per_cell`` every cell's numbers. Both sides hold the motor-neuron adaptation of
    ``params``. Raises ``NeuronStackMissing`` when NEURON is absent.
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
    # the loop's torch circuit, adaptation included, stretch conductances closed (they are
    # set per frame by the body and are not in the file)
    net = crawl_network(vals, c1_only=False)
    stim = _drive_stimulus(p, direction)
    adapting = {k: a["cells"] for k, a in adaptation_densities(p, net).items()}
    runs = {f"{solver}@{dt}ms": torch_vs_neuron(net, stim, ref, duration_ms, solver, dt,
                                                window_ms, per_cell, adapting)
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
        "adaptation": {k: {"nS": vals[k], "cells": len(c)} for k, c in adapting.items()}
        | {"adapt_tau_ms": vals["adapt_tau_ms"]},
        "covers": ("the exported network (184 cells, C1 mechanisms, motor-neuron adaptation, "
                   "crawl network parameters) in NEURON CVODE vs the loop's torch circuit, "
                   "open loop, tonic drive only: V of the 89 neurons (the adapting A- and "
                   "B-type motor neurons also summarised apart) and 95 muscles, muscle [Ca]"),
        "does_not_cover": ("proprioception (stretch conductances set each frame from the "
                           "body's curvature: not expressible as current pulses or c302 "
                           "NeuroML), muscle activation, the body, the closed loop"),
    }
