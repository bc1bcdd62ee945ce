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
    nothing (docs/sensory.md)."""

    modality: str = "nacl"
    duration_s: float = 20.0
    direction: str = "forward"
    ablate: tuple[str, ...] = ()
    adapt_s: float = 2.0
    path_cells: tuple[str, ...] = PATH_INTERNEURONS
    path_syn_scale: float = 1.0
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
    return build_motor_network(extra_cells=extra)


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
                    frame_hook=None) -> ClosedLoopResult:
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
    if not 0.0 <= config.path_syn_scale <= 1000.0:
        raise ValueError(f"path_syn_scale={config.path_syn_scale} outside [0, 1000]")
    if config.path_syn_scale != 1.0:
        pre = torch.tensor(net.indices([*neurons, *config.path_cells]))
        sel = torch.isin(net.syn_pre, pre)
        with torch.no_grad():
            net.params["w_syn"][sel] *= config.path_syn_scale
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
                         bend_per_member=True)
    rec = tuple(dict.fromkeys(tuple(neurons) + tuple(record)))
    t0 = time.perf_counter()
    res = worm.run_loop(p, lc, net=net, record=rec,
                        progress=progress, frame_input=frame_input)
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
