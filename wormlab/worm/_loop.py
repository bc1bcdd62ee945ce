"""The closed loop: circuit -> muscle [Ca] -> activation -> body -> curvature -> circuit.

Time-stepped in frames of ``frame_dt_s`` (default 40 ms, the body component's 25 Hz grid): the
circuit (exponential-Euler "exp2" at 1 ms, or RK4) runs one frame with the stretch
conductances set from the body's curvature at the start of the frame and held constant (the
current through them follows each cell's voltage within the frame); the muscles' [Ca] at
the end of the frame becomes an activation (first-order lag) and ElegansBot's target joint
angles; the physics then runs the frame. Batched over population members (B): the circuit in
one batched call, one ElegansBot body per member.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from wormlab.body._muscles import MUSCLES, joint_matrix
from wormlab.body._physics import N_RODS, Trajectory
from wormlab.circuit._mechanisms import PA_TO_UA_PER_CM2_TIMES_AREA_UM2
from wormlab.worm._motor import (
    BACKWARD_DRIVE,
    FORWARD_DRIVE,
    build_motor_network,
    connection_groups,
    head_matrix,
    motor_class,
    proprioceptive_matrix,
)

# cholinergic motor neurons with adaptation: crawl parameter -> classes
ADAPTING_CLASSES = {"adapt_a_nS": ("DA", "VA", "AS"), "adapt_b_nS": ("DB", "VB")}

# class-level parameters of the crawling worm: name -> (default, lower, upper, unit, meaning)
PARAMS: dict[str, tuple[float, float, float, str, str]] = {
    "drive_nA": (0.003, 0.0, 0.02, "nA", "tonic current into the drive neurons (AVB or AVA/AVD/AVE)"),
    "nmj_vth_mV": (0.0, -60.0, 0.0, "mV",
                   "half-activation potential of the neuromuscular graded synapses (c302: 0 mV)"),
    "syn_cmd_mn": (1.0, 0.0, 100.0, "x", "scale of command -> motor neuron synapse weights"),
    "syn_nmj_exc": (1.0, 0.0, 100.0, "x", "scale of cholinergic motor neuron -> muscle weights"),
    "syn_nmj_inh": (1.0, 0.0, 100.0, "x", "scale of GABAergic D-type -> muscle weights"),
    "syn_mn_mn": (1.0, 0.0, 100.0, "x", "scale of motor neuron -> motor neuron weights"),
    "gap_cmd_mn": (1.0, 0.0, 1000.0, "x", "scale of command <-> motor neuron gap junctions"),
    "gap_mn_mn": (1.0, 0.0, 1000.0, "x", "scale of motor neuron <-> motor neuron gap junctions"),
    "prop_gain_nS_rad": (0.0, -1.0, 1.0, "nS/rad",
                         "stretch conductance per rad of curvature in the receptive field "
                         "(positive: cation, E 0 mV; negative: K+, E -60 mV)"),
    "prop_offset_rows": (2.0, 0.0, 8.0, "rows", "receptive field offset (B: anterior, A: posterior)"),
    "self_gain_nS_rad": (0.0, -1.0, 1.0, "nS/rad",
                         "local stretch conductance per rad of the neuron's own segment "
                         "(negative: a bend opens K+ in the neurons that make it)"),
    "head_gain_nS_rad": (0.0, -1.0, 1.0, "nS/rad",
                         "local stretch conductance per rad into the head motor neurons "
                         "(SMB/SMD/URA; Yeon et al. 2018)"),
    "adapt_a_nS": (0.0, 0.0, 20.0, "nS",
                   "slow K+ adaptation conductance of the A-type motor neurons DA, VA, AS "
                   "(Adaptation)"),
    "adapt_b_nS": (0.0, 0.0, 20.0, "nS",
                   "slow K+ adaptation conductance of the B-type motor neurons DB, VB "
                   "(Adaptation)"),
    "adapt_tau_ms": (1000.0, 100.0, 5000.0, "ms", "time constant of that adaptation"),
    "max_ca_mM": (4e-7, 1e-12, 1e-5, "mM", "muscle [Ca] of full activation (Sibernetic 4e-7)"),
    "tau_act_ms": (100.0, 10.0, 2000.0, "ms", "muscle activation time constant"),
}


@dataclass(frozen=True)
class LoopConfig:
    """How the closed loop is stepped. ``direction``: ``"forward"`` drives AVB,
    ``"backward"`` AVA/AVD/AVE; the body is ElegansBot (physics, ground truth).
    ``bend_per_member``: each member starts from its own seeded random bend (independent
    trials) instead of a shared one. ``bend_seeds``: one seed per member; member ``b`` starts
    from the bend a single-member run with ``seed=bend_seeds[b]`` would start from (a fit
    scores each parameter set on several starts in one batch). ``on_diverge``: ``"raise"`` stops with
    :class:`~wormlab.circuit.CircuitBlowUpError` naming the member; ``"mark"`` (fits) holds a diverged member at its initial state from
    then on and reports it in ``LoopResult.diverged``."""

    duration_s: float = 4.0
    frame_dt_s: float = 0.04
    circuit_dt_ms: float = 1.0
    solver: str = "exp2"
    warmup_ms: float = 200.0
    direction: str = "forward"
    physics_dt_s: float = 1e-4
    scale_friction: float = 1.0
    joint_gain_rad: float = 0.7
    ablate: tuple[str, ...] = ()
    init_bend_rad: float = 0.05
    bend_per_member: bool = False
    bend_seeds: tuple[int, ...] = ()
    on_diverge: str = "raise"
    seed: int = 0


@dataclass
class LoopResult:
    """Time-first records of a closed-loop run (T frames, B members)."""

    t_s: np.ndarray
    trajectory: Trajectory
    activation: np.ndarray      # (T, B, 95)
    ca_mM: np.ndarray           # (T, B, 95)
    v_mV: np.ndarray            # (T, B, K) recorded neurons
    neurons: list[str]
    wall_s: float
    config: LoopConfig
    params: dict = field(default_factory=dict)
    diverged: np.ndarray | None = None  # (B,) bool: the circuit of that member diverged


def default_params(batch: int = 1) -> dict[str, torch.Tensor]:
    return {k: torch.full((batch,), v[0], dtype=torch.float64) for k, v in PARAMS.items()}


def check_params(p: dict) -> dict[str, torch.Tensor]:
    unknown = sorted(set(p) - set(PARAMS))
    if unknown:
        raise KeyError(f"unknown crawl parameters {unknown}; valid: {sorted(PARAMS)}")
    out = {}
    for k, (d, lo, hi, unit, _) in PARAMS.items():
        x = torch.as_tensor(p.get(k, d), dtype=torch.float64).reshape(-1)
        if not torch.all(torch.isfinite(x)):
            raise ValueError(f"crawl parameter {k} is not finite: {x.tolist()}")
        if torch.any(x < lo) or torch.any(x > hi):
            raise ValueError(f"crawl parameter {k}={x.tolist()} {unit} outside its bounds "
                             f"[{lo}, {hi}]")
        out[k] = x
    B = max(v.numel() for v in out.values())
    return {k: v.expand(B).clone() if v.numel() == 1 else v for k, v in out.items()}


def _network_params(net, p: dict, groups: dict) -> dict[str, torch.Tensor]:
    """Batched circuit parameter overrides (B, ...) from the class-level crawl parameters."""
    B = p["drive_nA"].numel()
    w_syn = net.params["w_syn"].detach().double()
    w_gap = net.params["w_gap"].detach().double()
    ws = w_syn[None].repeat(B, 1)
    wg = w_gap[None].repeat(B, 1)
    for g in ("syn_cmd_mn", "syn_nmj_exc", "syn_nmj_inh", "syn_mn_mn"):
        ws[:, groups[g]] *= p[g][:, None]
    for g in ("gap_cmd_mn", "gap_mn_mn"):
        wg[:, groups[g]] *= p[g][:, None]
    vth = net.params["syn_vth"].detach().double()[None].repeat(B, 1)  # (B, synapse types)
    nmj = [i for i, n in enumerate(net.syn_type_names) if "_to_muscle_" in n]
    if net.n_kin != len(net.syn_type_names) or not nmj:
        raise ValueError("the motor network needs per-type synapse kinetics with "
                         "neuron_to_muscle types (build_motor_network)")
    vth[:, nmj] = p["nmj_vth_mV"][:, None]
    out = {"w_syn": ws, "w_gap": wg, "syn_vth": vth}
    if "g_adapt" not in net.params:
        if any(torch.any(p[k] > 0) for k in ADAPTING_CLASSES):
            raise ValueError("adapt_a_nS or adapt_b_nS > 0 needs the Adaptation mechanism: "
                             "build the network with build_motor_network(stretch=True)")
        return out
    ga = net.params["g_adapt"].detach().double()[None].repeat(B, 1)
    ta = net.params["tau_adapt"].detach().double()[None].repeat(B, 1)
    for k, classes in ADAPTING_CLASSES.items():
        idx = [i for i, n in enumerate(net.names) if motor_class(n) in classes]
        # nS -> mS/cm^2 on each cell's membrane
        dens = PA_TO_UA_PER_CM2_TIMES_AREA_UM2 / net.area_um2[idx].double()
        ga[:, idx] = p[k][:, None] * dens[None]
        ta[:, idx] = p["adapt_tau_ms"][:, None]
    out.update(g_adapt=ga, tau_adapt=ta)
    return out


def run_loop(params: dict | None = None, config: LoopConfig = LoopConfig(), net=None,
             record: tuple[str, ...] = ("AVBL", "AVAL", "DB3", "VB5", "DA3", "VA5", "DD3", "VD5"),
             progress: bool = False, frame_input=None, param_hook=None) -> LoopResult:
    """Run the closed loop for every member of ``params`` (class-level values, (B,) each).

    ``frame_input``: an optional ``f(frame, t_s, points_um) -> {cell: (B,) nA}`` called at
    the start of every frame with the body's midline (B, 26, 2) (um, head first, in
    ElegansBot's frame); its currents are held over the frame (the sensory closed loop,
    :mod:`wormlab.loop`, injects its transducers' currents this way).
    ``param_hook``: an optional ``f(over)`` given the batched circuit parameters the loop sets
    (``{name: (B, ...) tensor}``, e.g. ``w_syn``, ``syn_vth``); it may change or add entries
    (per-member values of circuit parameters beyond the crawl's, e.g. the sensory pathway's
    in :mod:`wormlab.loop`)."""
    from elegansbot import Worm

    from wormlab import circuit

    if config.on_diverge not in ("raise", "mark"):
        raise ValueError(f"on_diverge must be 'raise' or 'mark', got {config.on_diverge!r}")
    if config.direction not in ("forward", "backward"):
        raise ValueError(f"direction must be 'forward' or 'backward', got {config.direction!r}")
    p = check_params(params or {})
    B = p["drive_nA"].numel()
    if config.bend_seeds:
        if len(config.bend_seeds) != B or config.bend_per_member:
            raise ValueError(f"bend_seeds has {len(config.bend_seeds)} seeds for {B} members "
                             "(one per member, and not together with bend_per_member)")
    net = net if net is not None else build_motor_network()
    base = net
    groups = connection_groups(base)
    over = _network_params(base, p, groups)
    if param_hook is not None:
        param_hook(over)
    bnet = base.batched(B)
    with torch.no_grad():
        for k, v in over.items():
            bnet.params[k].copy_(v)
    for n in config.ablate:
        if n not in base.index:
            raise KeyError(f"cannot ablate {n!r}: not a cell of the motor circuit")
    drive_cells = FORWARD_DRIVE if config.direction == "forward" else BACKWARD_DRIVE
    # direction-specific proprioception: B-type in forward, A-type in backward
    kind = "B" if config.direction == "forward" else "A"
    targets, M = proprioceptive_matrix(base, p["prop_offset_rows"], kind)
    gain = p["prop_gain_nS_rad"][:, None, None]
    _, M0 = proprioceptive_matrix(base, torch.zeros_like(p["prop_offset_rows"]), kind)
    sgain = p["self_gain_nS_rad"][:, None, None]
    head_names, MH = head_matrix(base)
    hgain = p["head_gain_nS_rad"][:, None]
    targets = targets + head_names
    if "g_stretch_cat" not in base.params:
        raise ValueError("the motor network has no stretch conductances: build it with "
                         "build_motor_network(stretch=True)")
    stretch_idx = torch.tensor(base.indices(targets))
    # nS -> mS/cm^2 on each target's membrane
    ns_to_density = PA_TO_UA_PER_CM2_TIMES_AREA_UM2 / base.area_um2[stretch_idx].double()
    ablate_idx = base.indices(list(config.ablate)) if config.ablate else []
    keep_stretch = torch.tensor([0.0 if n in config.ablate else 1.0 for n in targets],
                                dtype=torch.float64)
    J = joint_matrix().double()  # (95, 24)
    frame_ms = config.frame_dt_s * 1000.0
    n_frames = int(round(config.duration_s / config.frame_dt_s)) + 1
    cdt = config.circuit_dt_ms
    steps = int(round(frame_ms / cdt))
    if abs(steps * cdt - frame_ms) > 1e-9:
        raise ValueError(f"frame {frame_ms} ms is not a multiple of circuit_dt_ms {cdt}")
    muscle_idx = torch.tensor(base.indices(list(MUSCLES)))
    rec_idx = torch.tensor(base.indices(list(record)))
    ca_row = base.state_index("ca")
    t0 = time.perf_counter()

    def clamp_ablated(y):
        if ablate_idx:  # an ablated cell is held silent at rest and removed from every path
            y[:, 0, ablate_idx] = -70.0
        return y

    diverged = torch.zeros(B, dtype=torch.bool)

    def set_stretch(signal_nS):
        """Open the stretch conductances of every target: (B, K) signal in nS."""
        g = signal_nS * keep_stretch * ns_to_density
        g = torch.where(diverged[:, None], torch.zeros_like(g), g)
        with torch.no_grad():
            bnet.params["g_stretch_cat"][:, stretch_idx] = g.clamp_min(0.0)
            bnet.params["g_stretch_k"][:, stretch_idx] = (-g).clamp_min(0.0)

    def advance(y, ms, extra=None):
        names = list(drive_cells)
        vals = p["drive_nA"][:, None].expand(B, len(drive_cells))
        if extra:  # frame inputs: {cell: (B,) nA}
            names += list(extra)
            vals = torch.cat([vals, torch.stack([extra[n] for n in extra], 1)], 1)
        vals = torch.where(diverged[:, None], torch.zeros_like(vals), vals)
        if ablate_idx:
            keep = [i for i, n in enumerate(names) if n not in config.ablate]
            names = [names[i] for i in keep]
            vals = vals[:, keep]
        stim = circuit.Stimulus.waveform(names, vals[None].repeat(2, 1, 1), dt_ms=ms)
        try:
            with torch.no_grad():
                r = circuit.simulate(bnet, stim, ms, cdt, solver=config.solver, y0=y,
                                     record=None, record_every=int(round(ms / cdt)))
            y_new = r.y_final
        except circuit.CircuitBlowUpError:
            if config.on_diverge == "raise":
                raise
            y_new = None
        bad = (torch.zeros(B, dtype=torch.bool) if y_new is None
               else ~torch.isfinite(y_new).reshape(B, -1).all(1))
        if y_new is None or bad.any():
            if config.on_diverge == "raise":
                raise circuit.CircuitBlowUpError(
                    f"the circuit diverged during the closed loop (members "
                    f"{torch.nonzero(bad).flatten().tolist()})")
            if y_new is None:  # find the diverging members one frame at a time
                y_new = y.clone()
                for b in range(B):
                    if diverged[b]:
                        continue
                    one = _member(bnet, b)
                    st = circuit.Stimulus.waveform(names, vals[None, b:b + 1].repeat(2, 1, 1),
                                                   dt_ms=ms)
                    try:
                        with torch.no_grad():
                            rb = circuit.simulate(one, st, ms, cdt, solver=config.solver,
                                                  y0=y[b:b + 1], record=None,
                                                  record_every=int(round(ms / cdt)))
                        ok = bool(torch.isfinite(rb.y_final).all())
                    except circuit.CircuitBlowUpError:
                        ok = False
                    if ok:
                        y_new[b] = rb.y_final[0]
                    else:
                        bad[b] = True
            diverged[bad] = True
            y_new[diverged] = y_init[diverged]
        return clamp_ablated(y_new)

    with torch.no_grad():
        y_init = clamp_ablated(bnet.initial_state(B).detach())
    y = y_init.clone()
    if ablate_idx:
        bnet = _silence(bnet, base, ablate_idx)
    if config.warmup_ms > 0:
        y = advance(y, config.warmup_ms)
    bodies = []
    # seeded symmetry breaking: one initial bend for all members (a fit compares members on
    # the same start), or one per member (independent trials); member 0 is the same either way
    if config.bend_seeds:
        bends = np.stack([config.init_bend_rad * np.random.default_rng(int(s)).standard_normal(
            (1, N_RODS - 1))[0] for s in config.bend_seeds])
    else:
        bends = config.init_bend_rad * np.random.default_rng(config.seed).standard_normal(
            (B if config.bend_per_member else 1, N_RODS - 1))
    for b in range(B):
        bend0 = bends[b if (config.bend_per_member or config.bend_seeds) else 0]
        w = Worm(dt=config.physics_dt_s, scale_friction=config.scale_friction, simTime=None,
                 dt_snapshot=None)
        w.reset()
        w.record_init(simTime=config.duration_s, dt_snapshot=config.frame_dt_s)
        w.theta = bend0.copy()
        bodies.append(w)
    com = np.zeros((n_frames, B, 2))
    tan = np.zeros((n_frames, B, N_RODS))
    act_rec = np.zeros((n_frames, B, 95))
    ca_rec = np.zeros((n_frames, B, 95))
    v_rec = np.zeros((n_frames, B, len(record)))
    a = torch.zeros(B, 95, dtype=torch.float64)
    k_act = 1.0 - torch.exp(-frame_ms / p["tau_act_ms"])[:, None]
    it = range(n_frames)
    if progress:
        from wormlab.runs import progress as _p
        it = _p(it, desc=f"crawl ({config.direction})", total=n_frames)
    for f in it:
        s = np.stack([w.s for w in bodies])                      # (B, 25) rod angles
        kappa = torch.from_numpy(-(s[:, 1:] - s[:, :-1]))          # (B, 24) joint, + dorsal
        com[f] = np.stack([[w.xc * 1000.0, w.yc * 1000.0] for w in bodies])
        tan[f] = s
        inputs = None
        if frame_input is not None:
            inputs = _frame_inputs(frame_input, f, f * config.frame_dt_s, com[f], s, base, B)
        sig = torch.cat([gain[..., 0] * torch.einsum("bkj,bj->bk", M, kappa)
                         + sgain[..., 0] * torch.einsum("bkj,bj->bk", M0, kappa),
                         hgain * (kappa @ MH.T)], 1)
        ca = y[:, ca_row, muscle_idx].clamp_min(0.0)
        target = (ca / p["max_ca_mM"][:, None]).clamp(max=1.0)
        a = a + k_act * (target - a)
        act_rec[f], ca_rec[f] = a.numpy(), ca.numpy()
        v_rec[f] = y[:, 0, rec_idx].numpy()
        if f == n_frames - 1:
            break
        cmd = config.joint_gain_rad * (a @ J)                      # (B, 24) rad, + dorsal
        for b, w in enumerate(bodies):
            w.theta_ctrl = cmd[b].numpy()
            w.steps()
        set_stretch(sig)
        y = advance(y, frame_ms, inputs)
    traj = Trajectory(np.arange(n_frames) * config.frame_dt_s, com, np.unwrap(tan, axis=0),
                      body_length_um=1000.0)
    return LoopResult(t_s=traj.t_s, trajectory=traj, activation=act_rec, ca_mM=ca_rec,
                      v_mV=v_rec, neurons=list(record), wall_s=time.perf_counter() - t0,
                      config=config, params={k: v.tolist() for k, v in p.items()},
                      diverged=diverged.numpy().copy())


def _frame_inputs(fn, f, t_s, com_um, tangent, net, B) -> dict[str, torch.Tensor]:
    from wormlab.body._physics import body_points

    pts = body_points(com_um[None], tangent[None])[0]            # (B, 26, 2) um
    out = fn(f, t_s, pts)
    if not isinstance(out, dict):
        raise TypeError(f"frame_input must return a dict of cell -> (B,) nA, got {type(out)}")
    res = {}
    for n, v in out.items():
        if n not in net.index:
            raise KeyError(f"frame_input names {n!r}, which is not a cell of the loop's network")
        v = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
        if v.numel() != B or not torch.all(torch.isfinite(v)):
            raise ValueError(f"frame_input current for {n} must be {B} finite values (nA), "
                             f"got {v.tolist()[:4]}")
        res[n] = v
    return res


def _member(bnet, b):
    """Member ``b`` of a batched network as a batch of one (shares nothing with ``bnet``)."""
    import copy

    one = copy.deepcopy(bnet)
    with torch.no_grad():
        for k, v in one.params.items():
            one.params[k] = torch.nn.Parameter(v[b:b + 1].clone())
    return one


def _silence(bnet, base, idx):
    """Remove ablated cells from every synapse and gap junction (weights set to 0)."""
    sel = torch.tensor(idx)
    pre, post = base.syn_pre, base.syn_post
    a, b = base.gap_a, base.gap_b
    ms = torch.isin(pre, sel) | torch.isin(post, sel)
    mg = torch.isin(a, sel) | torch.isin(b, sel)
    with torch.no_grad():
        bnet.params["w_syn"][:, ms] = 0.0
        bnet.params["w_gap"][:, mg] = 0.0
    return bnet
