"""The closed sensorimotor loop (issue 18 item 4): body position -> local stimulus at the head
-> learned transducer -> current into the sensory neurons -> c302 circuit -> muscles -> body.

The motor part is the crawling worm of :mod:`wormlab.worm` (its fitted parameters, stretch
conductances, muscle activation and ElegansBot body, stepped in 40 ms frames); this module
adds the modality's sensory neurons and the first interneuron layers of the chemotaxis /
thermotaxis circuit to that network, with c302's wiring among them and to the motor circuit,
and injects the transducer's current each frame. Nothing steers the worm but that wiring: no
turn, reversal or bias is scripted.

What the loop can and cannot do (written down, not hidden):

* The tonic drive decides the direction (AVB forward or AVA/AVD/AVE backward, as in
  :func:`wormlab.worm.run_loop`) and only that direction's proprioception is present, so the
  worm cannot reverse or pirouette: klinokinesis (Pierce-Shimomura et al. 1999) is out of
  reach; only a curving of the forward path (klinotaxis / weathervaning, Iino & Yoshida 2009)
  can emerge, through the head motor neurons (SMB, SMD) that the interneurons reach.
* The body is ElegansBot (physics). The FNO surrogate maps a whole 4 s window of muscle
  activation, not one 40 ms frame, so it cannot close a frame-by-frame loop.

ElegansBot's body is isotropic on agar (translation and rotation invariant), so each trial is
simulated in ElegansBot's own frame and placed in the arena by a rigid motion: the initial
centre of mass goes to the trial's start and the initial head direction to its heading.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

#: first interneuron layers of the chemosensory / thermosensory circuit and their outputs
#: (Gray, Hill & Bargmann 2005 PNAS; Iino & Yoshida 2009 J Neurosci; Mori & Ohshima 1995
#: Nature; Piggott et al. 2011 Cell): AIY, AIZ, AIB, AIA, RIA, RIB, RIM. The head motor neurons
#: (SMB, SMD) and the command interneurons are already in the motor circuit.
PATH_INTERNEURONS: tuple[str, ...] = (
    "AIYL", "AIYR", "AIZL", "AIZR", "AIBL", "AIBR", "AIAL", "AIAR", "RIAL", "RIAR", "RIBL",
    "RIBR", "RIML", "RIMR")


@dataclass(frozen=True)
class ClosedLoopConfig:
    """One closed-loop run (a batch of trials). Units: s, um, rad.

    ``modality``: the transducer (:data:`wormlab.sensory.MODALITIES`) and the arena field it
    reads. ``ablate``: cells held silent and cut from every path (e.g. ``("ASEL", "ASER")``).
    ``adapt_s``: the transducer starts from its state adapted to the start position's
    stimulus (``initial_state(B, x0)``: the worm has sat there, so a trial does not begin
    with an onset transient) and runs this much longer there.
    ``path_cells``: interneurons added to the motor circuit (default
    :data:`PATH_INTERNEURONS`). ``path_syn_scale``: class-level scale (0-1000, c302 = 1) of
    every chemical synapse whose presynaptic cell is a sensory or path cell, the pathway's
    analogue of the crawl's neuromuscular scales: c302's graded synapses half-activate at
    0 mV, and a sensory neuron depolarised to about -36 mV by its stimulus releases almost
    nothing (docs/sensory.md). ``sensory_syn_scale`` and ``path_out_scale`` (0-1000,
    c302 = 1) multiply, on top of it, the synapses whose presynaptic cell is a sensory neuron
    and those from a path cell onto a cell of the motor circuit (head motor neurons, command
    interneurons), so that the pathway's stages can be set apart. ``cell_syn_scales``:
    ``((cell, scale), ...)`` (0-1000) multiplies, on top of those, every synapse whose
    presynaptic cell is ``cell`` (a class-level choice per cell, e.g. ASEL's and ASER's
    outputs apart: ASEL is an ON cell, ASER an OFF cell). ``bend_seeds``: one seed per
    trial for its initial bend (default: one seeded draw per trial from ``seed``), so that
    trials in different batches can start from the same bend."""

    modality: str = "nacl"
    duration_s: float = 20.0
    direction: str = "forward"
    ablate: tuple[str, ...] = ()
    adapt_s: float = 2.0
    path_cells: tuple[str, ...] = PATH_INTERNEURONS
    path_syn_scale: float = 1.0
    sensory_syn_scale: float = 1.0
    path_out_scale: float = 1.0
    cell_syn_scales: tuple[tuple[str, float], ...] = ()
    bend_seeds: tuple[int, ...] = ()
    frame_dt_s: float = 0.04
    circuit_dt_ms: float = 1.0
    seed: int = 0


@dataclass
class ClosedLoopResult:
    """Time-first records of a closed-loop batch (T frames, B trials), arena frame."""

    t_s: np.ndarray
    head_um: np.ndarray          # (T, B, 2)
    com_um: np.ndarray           # (T, B, 2)
    tangent_rad: np.ndarray      # (T, B, 25), arena frame
    stimulus: np.ndarray         # (T, B) at the head, in ``units``
    units: str
    current_nA: np.ndarray       # (T, B, K) transducer output
    sensory_neurons: list[str]
    v_mV: np.ndarray             # (T, B, R) recorded cells
    recorded: list[str]
    diverged: np.ndarray         # (B,)
    wall_s: float
    config: ClosedLoopConfig
    starts_um: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    headings_rad: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def trajectory(self):
        """The trials as a :class:`wormlab.body.Trajectory` in the arena frame (for WCON)."""
        from wormlab.body._physics import Trajectory

        return Trajectory(self.t_s, self.com_um, self.tangent_rad, body_length_um=1000.0)

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays (for :func:`wormlab.loop.run_trials` result files)."""
        return {"t_s": self.t_s, "head_um": self.head_um, "com_um": self.com_um,
                "tangent_rad": self.tangent_rad, "stimulus": self.stimulus,
                "current_nA": self.current_nA, "v_mV": self.v_mV,
                "diverged": self.diverged.astype(np.int8), "starts_um": self.starts_um,
                "headings_rad": self.headings_rad}


def closed_loop_network(sensory_neurons, path_cells=PATH_INTERNEURONS):
    """The crawl's motor network plus ``sensory_neurons`` and ``path_cells`` (c302 wiring)."""
    from wormlab import connectome
    from wormlab.worm import build_motor_network

    extra = tuple(sensory_neurons) + tuple(path_cells)
    unknown = [c for c in extra if c not in connectome.NEURONS]
    if unknown:
        raise KeyError(f"unknown neuron(s) {unknown} for the closed loop (not in the "
                       "connectome's 302)")
    groups = tuple((label, tuple(cells)) for label, cells in
                   (("sensory", sensory_neurons), ("path", path_cells)) if cells)
    return build_motor_network(extra_cells=extra, presyn_types=groups)


#: class-level parameters of the sensory pathway that may differ per trial (the taxis fit,
#: :func:`wormlab.loop.fit_taxis`): name -> (c302 value, lower, upper, unit, meaning). Besides
#: these, ``"w:<CELL>"`` (0-1000, c302 = 1) multiplies every synapse from CELL.
PATHWAY_PARAMS: dict[str, tuple[float, float, float, str, str]] = {
    "sensory_vth_mV": (0.0, -70.0, 0.0, "mV",
                       "half-activation potential of the graded synapses from the sensory "
                       "neurons"),
    "sensory_delta_mV": (5.0, 0.5, 10.0, "mV", "slope factor of those synapses"),
    "path_vth_mV": (0.0, -70.0, 0.0, "mV",
                    "half-activation potential of the graded synapses from the path "
                    "interneurons"),
    "path_delta_mV": (5.0, 0.5, 10.0, "mV", "slope factor of those synapses"),
    "path_inter_scale": (1.0, 0.0, 1000.0, "x",
                         "scale of the synapses from path interneurons onto sensory or path "
                         "cells"),
    "path_out_scale": (1.0, 0.0, 1000.0, "x",
                       "scale of the synapses from path interneurons onto the motor circuit "
                       "(head motor neurons, command interneurons)"),
    "path_command_scale": (1.0, 0.0, 1000.0, "x",
                           "further scale of those onto the command interneurons (AVA, AVB, "
                           "AVD, AVE, PVC)"),
}


def _pathway_bounds(name: str) -> tuple[float, float, str]:
    if name.startswith("w:") and len(name) > 2:
        return 0.0, 1000.0, "x"
    if name in PATHWAY_PARAMS:
        return PATHWAY_PARAMS[name][1:4]
    raise KeyError(f"unknown pathway parameter {name!r}; valid: {sorted(PATHWAY_PARAMS)} "
                   "and 'w:<CELL>'")


def read_pathway(path) -> dict:
    """A pathway file: ``{"modality": str, "pathway": {name: value}, "crawl": {crawl
    parameter: value}, ...}`` (the taxis fit writes one; other keys are kept as provenance).
    Names and bounds are checked here (cells when the loop runs)."""
    import json
    from pathlib import Path

    from wormlab.worm._loop import PARAMS

    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"pathway file {p} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"pathway file {p} is not JSON: {exc}") from None
    if not isinstance(d, dict) or not isinstance(d.get("pathway"), dict) \
            or not isinstance(d.get("modality"), str):
        raise ValueError(f"pathway file {p} needs 'modality' (str) and 'pathway' "
                         "(object of name: value)")
    crawl = d.get("crawl", {})
    if not isinstance(crawl, dict):
        raise ValueError(f"pathway file {p}: 'crawl' must be an object")
    for k, v in d["pathway"].items():
        try:
            lo, hi, _ = _pathway_bounds(k)
        except KeyError as exc:
            raise ValueError(f"pathway file {p}: {exc.args[0]}") from None
        if not isinstance(v, int | float) or not (lo <= v <= hi):
            raise ValueError(f"pathway file {p}: {k}={v!r} outside [{lo}, {hi}]")
    for k, v in crawl.items():
        if k not in PARAMS:
            raise ValueError(f"pathway file {p}: unknown crawl parameter {k!r}")
        _, lo, hi, unit, _ = PARAMS[k]
        if not isinstance(v, int | float) or not (lo <= v <= hi):
            raise ValueError(f"pathway file {p}: crawl {k}={v!r} {unit} outside [{lo}, {hi}]")
    return {**d, "crawl": crawl}


def check_pathway(pathway: dict | None, net, batch: int) -> dict[str, torch.Tensor]:
    """Validated per-trial pathway parameters: ``{name: (B,) float64}``."""
    out = {}
    for k, v in (pathway or {}).items():
        lo, hi, unit = _pathway_bounds(k)
        if k.startswith("w:") and k[2:] not in net.index:
            raise KeyError(f"pathway parameter {k!r}: {k[2:]!r} is not a cell of the "
                           "closed-loop network")
        x = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
        if x.numel() == 1:
            x = x.expand(batch).clone()
        if x.numel() != batch:
            raise ValueError(f"pathway parameter {k} has {x.numel()} values for {batch} trials")
        if not torch.all(torch.isfinite(x)) or torch.any(x < lo) or torch.any(x > hi):
            raise ValueError(f"pathway parameter {k}={x.tolist()[:4]} {unit} outside "
                             f"[{lo}, {hi}] or not finite")
        out[k] = x
    return out


def _pathway_hook(net, pw: dict[str, torch.Tensor], sensory_neurons, path_cells):
    """The ``param_hook`` of :func:`wormlab.worm.run_loop` that sets ``pw`` per member."""
    names = net.syn_type_names
    m = _synapse_masks(net, sensory_neurons, path_cells)
    stage = {"path_inter_scale": m["from_path"] & m["onto_pathway"],
             "path_out_scale": m["from_path"] & ~m["onto_pathway"],
             "path_command_scale": m["from_path"] & m["onto_command"]}

    def hook(over):
        B = over["w_syn"].shape[0]
        delta = net.params["syn_delta"].detach().double()[None].repeat(B, 1)
        for group in ("sensory", "path"):
            cols = [i for i, n in enumerate(names) if n.startswith(f"{group}_")]
            if f"{group}_vth_mV" in pw and cols:
                over["syn_vth"][:, cols] = pw[f"{group}_vth_mV"][:, None]
            if f"{group}_delta_mV" in pw and cols:
                delta[:, cols] = pw[f"{group}_delta_mV"][:, None]
        over["syn_delta"] = delta
        for k, sel in stage.items():
            if k in pw:
                over["w_syn"][:, sel] *= pw[k][:, None]
        for k, v in pw.items():
            if k.startswith("w:"):
                sel = net.syn_pre == net.index[k[2:]]
                over["w_syn"][:, sel] *= v[:, None]

    return hook


def _synapse_masks(net, sensory_neurons, path_cells) -> dict[str, torch.Tensor]:
    """Boolean masks over ``net``'s chemical synapses: from a sensory neuron, from a path
    interneuron, onto a pathway cell (sensory or path), onto a command interneuron."""
    from wormlab.worm._motor import COMMAND

    def cells(names):
        return torch.tensor(net.indices(list(names)), dtype=torch.long)

    return {"from_sensory": torch.isin(net.syn_pre, cells(sensory_neurons)),
            "from_path": torch.isin(net.syn_pre, cells(path_cells)),
            "onto_pathway": torch.isin(net.syn_post,
                                       cells([*sensory_neurons, *path_cells])),
            "onto_command": torch.isin(net.syn_post, cells(COMMAND))}


def scale_path_synapses(net, sensory_neurons, config: ClosedLoopConfig) -> None:
    """Apply ``config``'s pathway scales to ``net``'s synapse weights in place: every synapse
    from a sensory or path cell by ``path_syn_scale``, those from a sensory neuron also by
    ``sensory_syn_scale``, those from a path cell onto any other cell (the motor circuit)
    also by ``path_out_scale``."""
    for k in ("path_syn_scale", "sensory_syn_scale", "path_out_scale"):
        v = getattr(config, k)
        if not 0.0 <= v <= 1000.0:
            raise ValueError(f"{k}={v} outside [0, 1000]")
    m = _synapse_masks(net, sensory_neurons, config.path_cells)
    scale = torch.ones(net.syn_pre.shape[0], dtype=net.params["w_syn"].dtype)
    scale[m["from_sensory"] | m["from_path"]] *= config.path_syn_scale
    scale[m["from_sensory"]] *= config.sensory_syn_scale
    scale[m["from_path"] & ~m["onto_pathway"]] *= config.path_out_scale
    for cell, v in config.cell_syn_scales:
        if cell not in net.index:
            raise KeyError(f"cell_syn_scales names {cell!r}, not a cell of the closed-loop "
                           "network")
        if not 0.0 <= float(v) <= 1000.0:
            raise ValueError(f"cell_syn_scales[{cell!r}]={v} outside [0, 1000]")
        scale[net.syn_pre == net.index[cell]] *= float(v)
    with torch.no_grad():
        net.params["w_syn"].mul_(scale)


def _rigid(headings_rad, com0, head0):
    """Rotation (B, 2, 2) and its angle (B,) turning each body's initial head direction
    (``head0 - com0`` in ElegansBot's frame) to ``headings_rad``."""
    d = head0 - com0
    phi0 = np.arctan2(d[:, 1], d[:, 0])
    a = headings_rad - phi0
    c, s = np.cos(a), np.sin(a)
    R = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (B, 2, 2)
    return R, a


def _place(x_um, R, com0, starts_um):
    """(..., B, 2) points from ElegansBot's frame to the arena's."""
    return np.einsum("bij,...bj->...bi", R, x_um - com0) + starts_um


def run_closed_loop(arena, starts_um, headings_rad, params: dict | None = None,
                    config: ClosedLoopConfig = ClosedLoopConfig(), transducer=None,
                    record: tuple[str, ...] = (), progress: bool = False,
                    frame_hook=None, pathway: dict | None = None) -> ClosedLoopResult:
    """Run B trials of the closed loop in ``arena`` (a :class:`wormlab.loop.Arena`).

    Args:
        starts_um: (B, 2) initial centre of mass of each trial (um, arena frame).
        headings_rad: (B,) initial head direction (rad from +x).
        params: crawl parameters (default: the shipped fit, ``wormlab/worm/data``).
        transducer: default ``wormlab.sensory.load_transducer(config.modality)``; any object
            with ``neurons``, ``units``, ``initial_state(B)`` and ``step(stim (B,), h) ->
            (current (B, K) nA, h)``.
        record: extra cells whose V (mV) is recorded (the sensory neurons always are).
        frame_hook: optional ``f(frame)`` called at the start of every frame (e.g. another
            organ stepped on the same clock, :class:`wormlab.worm._organs.IntestineClock`).
        pathway: per-trial sensory-pathway parameters (:data:`PATHWAY_PARAMS` and
            ``"w:<CELL>"``), scalars or (B,) values, on top of ``config``'s scales.

    Raises:
        ValueError / KeyError: bad shapes, a start outside the arena, a modality the arena
        lacks, unknown cells.
    """
    from wormlab import worm
    from wormlab.body._physics import body_points
    from wormlab.worm._config import read_crawl_params
    from wormlab.worm._loop import check_params

    starts = np.asarray(starts_um, dtype=np.float64)
    heads = np.asarray(headings_rad, dtype=np.float64).reshape(-1)
    if starts.ndim != 2 or starts.shape[1] != 2:
        raise ValueError(f"starts_um must be (B, 2) um, got shape {starts.shape}")
    B = starts.shape[0]
    if heads.shape != (B,):
        raise ValueError(f"headings_rad must be ({B},), got {heads.shape}")
    if not (np.all(np.isfinite(starts)) and np.all(np.isfinite(heads))):
        raise ValueError("starts_um and headings_rad must be finite")
    if config.modality not in arena.modalities:
        raise KeyError(f"arena {arena.name!r} has no {config.modality!r} field "
                       f"(it has {list(arena.modalities)})")
    inside = arena.inside(starts)
    if not np.all(inside):
        raise ValueError(f"trial {int(np.flatnonzero(~inside)[0])} starts outside arena "
                         f"{arena.name!r} (radius {arena.radius_um:.0f} um)")
    if transducer is None:
        from wormlab import sensory

        transducer = sensory.load_transducer(config.modality)
    neurons = list(transducer.neurons)
    net = closed_loop_network(neurons, config.path_cells)
    scale_path_synapses(net, neurons, config)
    for n in config.ablate:
        if n not in net.index:
            raise KeyError(f"cannot ablate {n!r}: not a cell of the closed-loop network")
    if params is None:
        from wormlab.paths import package_data

        params = read_crawl_params(package_data("worm", "data", "crawl_params.json"))
    p = check_params(params)
    p = {k: v.expand(B).clone() if v.numel() == 1 else v for k, v in p.items()}
    if p["drive_nA"].numel() != B:
        raise ValueError(f"params hold {p['drive_nA'].numel()} members for {B} trials")

    T = int(round(config.duration_s / config.frame_dt_s)) + 1
    stim_rec = np.full((T, B), np.nan)
    cur_rec = np.zeros((T, B, len(neurons)))
    dtype = torch.float64
    units = arena.units[config.modality]
    # the transducer's state adapted to the start stimulus (no onset transient), then
    # ``adapt_s`` more frames there
    x0 = arena.sample(starts, 0.0, clip=True)[config.modality]
    with torch.no_grad():
        h = transducer.initial_state(B, torch.as_tensor(x0, dtype=dtype))
        for _ in range(int(round(config.adapt_s / config.frame_dt_s))):
            _, h = transducer.step(torch.as_tensor(x0, dtype=dtype), h)
    state = {"h": h}

    def frame_input(f, t_s, points_um):
        if frame_hook is not None:
            frame_hook(f)
        if f == 0:  # the rigid motion from ElegansBot's frame: COM -> start, head -> heading
            com_b = (0.5 * (points_um[:, 1:] + points_um[:, :-1])).mean(1)
            state["R"], state["rot"] = _rigid(heads, com_b, points_um[:, 0])
            state["com0"] = com_b
        head_arena = _place(points_um[:, 0], state["R"], state["com0"], starts)  # (B, 2)
        vals = arena.sample(head_arena, t_s, clip=True)[config.modality]
        with torch.no_grad():
            i_nA, state["h"] = transducer.step(torch.as_tensor(vals, dtype=dtype), state["h"])
        stim_rec[f] = vals
        cur_rec[f] = i_nA.detach().double().numpy()
        return {n: i_nA[:, k].double() for k, n in enumerate(neurons)}

    lc = worm.LoopConfig(duration_s=config.duration_s, frame_dt_s=config.frame_dt_s,
                         circuit_dt_ms=config.circuit_dt_ms, direction=config.direction,
                         ablate=tuple(config.ablate), seed=config.seed, on_diverge="mark",
                         bend_per_member=not config.bend_seeds,
                         bend_seeds=tuple(config.bend_seeds))
    rec = tuple(dict.fromkeys(tuple(neurons) + tuple(record)))
    t0 = time.perf_counter()
    pw = check_pathway(pathway, net, B)
    res = worm.run_loop(p, lc, net=net, record=rec, progress=progress,
                        frame_input=frame_input,
                        param_hook=(_pathway_hook(net, pw, neurons, config.path_cells)
                                    if pw else None))
    traj = res.trajectory
    com = _place(traj.com_um, state["R"], state["com0"], starts)
    tan = traj.tangent_rad + state["rot"][None, :, None]
    head = body_points(com, tan)[..., 0, :]
    return ClosedLoopResult(
        t_s=res.t_s, head_um=head, com_um=com, tangent_rad=tan, stimulus=stim_rec,
        units=units, current_nA=cur_rec, sensory_neurons=neurons, v_mV=res.v_mV,
        recorded=list(rec), diverged=res.diverged, wall_s=time.perf_counter() - t0,
        config=config, starts_um=starts, headings_rad=heads)



def linear_arena(arena, modality: str, value_at_centre: float, slope_per_mm: float,
                 direction_deg: float = 0.0):
    """A copy of ``arena`` whose ``modality`` field is one linear ramp (the other fields kept);
    the arena's own checks apply (e.g. a concentration that would go negative on the plate)."""
    from wormlab.loop._arena import Arena, Field, Linear

    if modality not in arena.modalities:
        raise KeyError(f"arena {arena.name!r} has no {modality!r} field "
                       f"(it has {list(arena.modalities)})")
    new = Field(modality, arena.units[modality], (Linear(
        value_at_centre=float(value_at_centre), slope_per_mm=float(slope_per_mm),
        direction_deg=float(direction_deg)),))
    fields = tuple(new if f.modality == modality else f for f in arena.fields)
    return Arena(radius_mm=arena.radius_mm, fields=fields, name=f"{arena.name}_linear",
                 description=f"{arena.name} with a linear {modality} field")
