"""Time integration: one :class:`SimConfig`, one :data:`SOLVERS` registry, any-state recording,
and a discrete adjoint of the fused RK4 step for fast exact gradients."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from wormlab.circuit import _mechanisms as mech
from wormlab.circuit._network import CircuitBlowUpError, Network
from wormlab.circuit._stimulus import Stimulus

#: The one documented default time step (ms) of every component that simulates the circuit:
#: RK4 at 0.1 ms matches NEURON CVODE (1e-7) within 0.05 % of every cell's range over 1 s of
#: C1 Full (docs/circuit.md); 0.2 ms is unstable.
DEFAULT_DT_MS = 0.1
V_DIVERGED_MV = 1000.0  # |V| beyond this is a diverging integration, not physiology
DTYPES = {"float32": torch.float32, "float64": torch.float64}
GRADIENTS = ("auto", "adjoint", "checkpoint", "autograd")


# ---------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SimConfig:
    """How to simulate (JSON-able; ``simulate(..., config=SimConfig(...))``).

    Args:
        solver: a key of :data:`SOLVERS` (default ``"rk4_fused"``).
        dt_ms: time step and output grid spacing, ms (default :data:`DEFAULT_DT_MS`).
        dtype: ``"float64"`` or ``"float32"``; empty keeps the network's dtype.
        device: torch device string (``"cpu"``, ``"cuda"``); empty keeps the network's device.
        record: what to record: None (V of every cell), a list of cell names (their V), a list
            of ``"state:cell"`` strings (``"ca:MDL07"``, ``"n:AVAL"``, ``"s:AVAL"``) or a dict
            ``{state: [cells] | None}``.
        record_every: keep every k-th step (k * dt_ms output spacing).
        gradient: ``"auto"`` (the discrete adjoint for ``rk4_fused`` when gradients are needed,
            else plain autograd), ``"adjoint"``, ``"checkpoint"`` (segment recomputation,
            ``checkpoint_ms``) or ``"autograd"`` (store everything).
        checkpoint_ms: segment length for ``gradient="checkpoint"``; with ``"auto"`` setting it
            selects checkpointing (the behaviour of earlier versions).
        adjoint_memory_mb: the adjoint stores every step's state while they fit in this budget,
            else it stores segment starts and recomputes each segment once in the backward.
        compile: run the step (and the adjoint's step VJP) under ``torch.compile``.
        rtol, atol: tolerances of adaptive torchdiffeq solvers.
        check_every: test the state for NaN/Inf every this many steps (0: never).
        show_progress: a tqdm bar over the steps.
    """

    solver: str = "rk4_fused"
    dt_ms: float = DEFAULT_DT_MS
    dtype: str = ""
    device: str = ""
    record: tuple | dict | None = None
    record_every: int = 1
    gradient: str = "auto"
    checkpoint_ms: float | None = None
    adjoint_memory_mb: float = 512.0
    compile: bool = False
    rtol: float = 1e-7
    atol: float = 1e-7
    check_every: int = 200
    show_progress: bool = False

    def __post_init__(self):
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; choose from {sorted(SOLVERS)}")
        if not (self.dt_ms > 0 and math.isfinite(self.dt_ms)):
            raise ValueError(f"dt_ms must be a finite number > 0, got {self.dt_ms}")
        if self.dtype and self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r}; choose from {sorted(DTYPES)}")
        if self.gradient not in GRADIENTS:
            raise ValueError(f"gradient {self.gradient!r}; choose from {GRADIENTS}")
        if self.record_every < 1:
            raise ValueError(f"record_every must be >= 1, got {self.record_every}")
        if self.checkpoint_ms is not None and not self.checkpoint_ms > 0:
            raise ValueError(f"checkpoint_ms must be > 0, got {self.checkpoint_ms}")

    def to_dict(self) -> dict:
        from wormlab.io import config_to_dict

        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SimConfig:
        """From a (JSON-loaded) dict; an unknown key is a ValueError listing the fields."""
        from wormlab.io import config_from_dict

        return config_from_dict(cls, d)

    @property
    def torch_dtype(self) -> torch.dtype | None:
        return DTYPES[self.dtype] if self.dtype else None


@dataclass
class Result:
    """Output of :func:`simulate`.

    Attributes:
        t_ms: (T,) sample times in ms (t = 0 is the initial state).
        v_mV: (T, B, K) membrane potential of the cells recorded for "v", mV.
        names: the K cells of ``v_mV``.
        y_final: (B, S, N) final state (for continuing a run).
        info: solver, dt, wall time, number of steps.
        states: state name -> (T, B, K_s) recorded traces (``"v"`` included; units: V mV,
            [Ca] mM, gates and synaptic activations dimensionless).
        state_cells: state name -> the K_s cell names of ``states[name]``.
    """

    t_ms: torch.Tensor
    v_mV: torch.Tensor
    names: list[str]
    y_final: torch.Tensor
    info: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)
    state_cells: dict = field(default_factory=dict)

    def trace(self, name: str, state: str = "v") -> torch.Tensor:
        """(T, B) trace of state ``state`` (default V, mV) of one recorded cell."""
        cells = self.state_cells.get(state, self.names if state == "v" else None)
        if cells is None:
            raise KeyError(f"state {state!r} was not recorded; recorded: {list(self.states)}")
        if name not in cells:
            raise KeyError(f"{name!r} was not recorded for {state!r}; recorded: {cells[:8]}...")
        x = self.states.get(state, self.v_mV if state == "v" else None)
        return x[:, :, cells.index(name)]

    def to_frame(self, batch: int = 0, state: str = "v"):
        """pandas DataFrame (time x cells) of batch element ``batch`` for one state."""
        import pandas as pd

        x = self.states.get(state, self.v_mV if state == "v" else None)
        if x is None:
            raise KeyError(f"state {state!r} was not recorded; recorded: {list(self.states)}")
        return pd.DataFrame(x[:, batch].detach().cpu().numpy(),
                            index=pd.Index(self.t_ms.cpu().numpy(), name="t_ms"),
                            columns=self.state_cells.get(state, self.names))


# ---------------------------------------------------------------------------- blow-up checks
def _describe_cell(net: Network, P: dict, b: int, i: int) -> str:
    vals = []
    for k in ("g_leak", "g_kslow", "g_kfast", "g_ca", "c_m"):
        x = P[k].detach()
        x = x[b] if x.dim() == 2 else x
        vals.append(f"{k}={float(x[i]):.4g}")
    return ", ".join(vals)


def check_state(net: Network, P: dict, y: torch.Tensor, t_ms: float) -> None:
    """Raise :class:`CircuitBlowUpError` naming time, cell, state and parameters on NaN/Inf."""
    bad = ~torch.isfinite(y)
    # a diverging explicit step reaches absurd but finite voltages before Inf: |V| > 1 V
    bad[:, 0] |= y[:, 0].abs() > V_DIVERGED_MV
    if bool(bad.any()):
        cells = bad.any(1)  # (B, N)
        b, i = (int(x) for x in cells.nonzero()[0])
        s = int(bad[b, :, i].nonzero()[0])
        all_bad = [net.names[j] for j in cells[b].nonzero().flatten().tolist()]
        state = net.state_names[s]
        details = "; ".join(f"{net.names[j]}: {_describe_cell(net, P, b, j)}"
                            for j in cells[b].nonzero().flatten().tolist()[:4])
        raise CircuitBlowUpError(
            f"non-finite or diverging state at t={t_ms:.3f} ms (checked every few steps): cell "
            f"{net.names[i]} (batch {b}), state {state}={float(y[b, s, i])}; non-finite cells: "
            f"{all_bad[:10]}{' ...' if len(all_bad) > 10 else ''}; parameters: {details}. "
            f"Reduce dt_ms or check the parameters.")


def check_gradients(net: Network) -> None:
    """Raise :class:`CircuitBlowUpError` if any parameter gradient holds NaN/Inf, naming the
    parameter, the cells (or connections) affected and their values."""
    for k, p in net.params.items():
        if p.grad is None:
            continue
        bad = ~torch.isfinite(p.grad)
        if bool(bad.any()):
            pos = bad.nonzero()[0].tolist()
            j = pos[-1]
            if k in net.cell_param_names:
                cells = [net.names[i] for i in range(net.n_cells)
                         if int(net.group[i]) == j][:5]
                where = f"group {net.group_names[j]} (cells {cells})"
            elif k == "w_syn":
                where = (f"synapse {net.names[int(net.syn_pre[j])]}->"
                         f"{net.names[int(net.syn_post[j])]}")
            elif k == "w_gap":
                where = f"gap {net.names[int(net.gap_a[j])]}-{net.names[int(net.gap_b[j])]}"
            else:
                where = f"index {pos}"
            raise CircuitBlowUpError(
                f"non-finite gradient of {k} at {where}: grad={float(p.grad[tuple(pos)])}, "
                f"value={float(p.detach()[tuple(pos)]):.4g}")


# ---------------------------------------------------------------------------- fixed steps
def exp_decays(P: dict, dt_ms: float, net: Network | None = None) -> dict[str, torch.Tensor]:
    """exp(-h/tau) for the gates (..., G, N) and for every custom state whose linear form
    names a tau parameter, for h = dt and dt/2."""
    out = {}
    taus = ["tau_ca"] if net is None else sorted({
        p for m in net.cell_mechanisms if m.states
        for p in (x.name for x in m.params) if p.startswith("tau_")})
    for suffix, h in (("", dt_ms), ("_half", 0.5 * dt_ms)):
        out["gates" + suffix] = torch.exp(-h / P["gate_tau"])
        for t in taus:
            if t in P:
                out[t + suffix] = torch.exp(-h / P[t])
    return out


def _exp_rates(net: Network, P: dict, y: torch.Tensor, i_stim):
    """Write every state as dx/dt = k(y) (x_inf(y) - x); return the x_inf's and the rates."""
    v = y[:, 0]
    a, bc, aux = net.drive(P, y, i_stim)
    ginf = net.gate_inf(P, v)
    lin = {}
    for m in net.cell_mechanisms:
        if m.states:
            lin.update(m.linear_form(P, aux["S"], v, aux))
    sinf, comp = mech.graded_s_inf(v.unsqueeze(1), P["syn_vth"], P["syn_delta"])
    return a / bc, bc / P["c_m"], ginf, lin, sinf, P["syn_k"] / comp, comp


def _exp_apply(net, y, rates, D, h, suffix=""):
    vinf, kv, ginf, lin, sinf, ks, comp = rates
    L = net.layout
    v_new = vinf + (y[:, 0] - vinf) * torch.exp(-h * kv)
    g_new = ginf + (y[:, L.gate_slice] - ginf) * D["gates" + suffix]
    custom = []
    for s in L.custom:
        x_inf, decay = lin[s]
        fac = D[decay + suffix] if isinstance(decay, str) else torch.exp(-h * decay)
        x = x_inf + (y[:, L.index(s)] - x_inf) * fac
        custom.append((x.clamp_min(0.0) if s in L.nonnegative else x).unsqueeze(1))
    s_new = sinf + (y[:, L.syn_slice] - sinf) * torch.exp(-h * ks)
    s_new = torch.where(comp < mech.SYN_CLAMP, sinf, s_new)
    return torch.cat([v_new.unsqueeze(1), g_new, *custom, s_new], 1)


def exp_euler_step(net: Network, P: dict, D: dict, y: torch.Tensor, i_stim, dt_ms: float
                   ) -> torch.Tensor:
    """One exponential-Euler step (Rush-Larsen): every state obeys dx/dt = k(y)(x_inf(y) - x)
    and is advanced as x' = x_inf + (x - x_inf) exp(-k dt) with k, x_inf frozen at the start.
    Exact for frozen rates, unconditionally stable, first order (NEURON's ``cnexp`` class)."""
    return _exp_apply(net, y, _exp_rates(net, P, y, i_stim), D, dt_ms)


def exp_midpoint_step(net: Network, P: dict, D: dict, y: torch.Tensor, i_stim, dt_ms: float
                      ) -> torch.Tensor:
    """Second-order Rush-Larsen (exponential midpoint): an exponential-Euler half step gives
    y_1/2; the full step from y uses k and x_inf evaluated at y_1/2."""
    y_half = _exp_apply(net, y, _exp_rates(net, P, y, i_stim), D, 0.5 * dt_ms, "_half")
    return _exp_apply(net, y, _exp_rates(net, P, y_half, i_stim), D, dt_ms)


def rk4_step(net: Network, P: dict, D: dict, y: torch.Tensor, i_stim, dt_ms: float
             ) -> torch.Tensor:
    """Classical fourth-order Runge-Kutta on :meth:`Network.derivative` (stimulus held over the
    step), with NEURON's clamp of concentrations at 0. Stable here up to dt ~ 0.1 ms (fastest
    rates: Ca gate e, tau 0.1 ms, and the membrane, tau ~ 0.1-0.3 ms)."""
    f = net.derivative
    k1 = f(P, y, i_stim)
    k2 = f(P, y + (0.5 * dt_ms) * k1, i_stim)
    k3 = f(P, y + (0.5 * dt_ms) * k2, i_stim)
    k4 = f(P, y + dt_ms * k3, i_stim)
    y_new = y + (dt_ms / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)
    return net.clamp_nonnegative(y_new)


@dataclass(frozen=True)
class Solver:
    """One entry of :data:`SOLVERS`: a fixed-step scheme (``step``) or a torchdiffeq method."""

    name: str
    kind: str  # "fixed" | "odeint"
    order: int
    doc: str
    step: Callable | None = None
    adaptive: bool = False


SOLVERS: dict[str, Solver] = {
    "rk4_fused": Solver("rk4_fused", "fixed", 4, "classical RK4 on the fused network step "
                        "(default; matches NEURON CVODE at 0.1 ms)", rk4_step),
    "exp2": Solver("exp2", "fixed", 2, "exponential midpoint (second-order Rush-Larsen)",
                   exp_midpoint_step),
    "expeuler": Solver("expeuler", "fixed", 1, "exponential Euler (Rush-Larsen, cnexp class)",
                       exp_euler_step),
    **{m: Solver(m, "odeint", o, f"torchdiffeq {m}", adaptive=a) for m, o, a in (
        ("dopri5", 5, True), ("dopri8", 8, True), ("bosh3", 3, True),
        ("adaptive_heun", 2, True), ("rk4", 4, False), ("midpoint", 2, False),
        ("euler", 1, False), ("explicit_adams", 4, False), ("implicit_adams", 4, False))},
}
# kept for callers of earlier versions
FIXED_SOLVERS = tuple(k for k, s in SOLVERS.items() if s.kind == "fixed")
ODEINT_SOLVERS = tuple(k for k, s in SOLVERS.items() if s.kind == "odeint")


def _plain_step(net, P, D, y, stim_row, onehot, dt_ms, solver="rk4_fused"):
    i_stim = stim_row @ onehot if onehot is not None else None
    return SOLVERS[solver].step(net, P, D, y, i_stim, dt_ms)


_COMPILED: dict = {}


def compiled_step():
    """``torch.compile`` of one fixed step (inductor fuses the element-wise ops into a few
    loops). Cached per process; recompiles per dt, dtype and batch size."""
    if "step" not in _COMPILED:
        _COMPILED["step"] = torch.compile(_plain_step, dynamic=False, fullgraph=False)
    return _COMPILED["step"]


# ---------------------------------------------------------------------------- recording
def _record_plan(net: Network, record) -> tuple[dict[str, list[str]], torch.Tensor]:
    """Normalise ``record`` to {state: [cells]} and the flat (row * N + cell) gather index."""
    if record is None:
        plan = {"v": list(net.names)}
    elif isinstance(record, dict):
        plan = {}
        for st, cells in record.items():
            net.state_index(st)
            plan[st] = list(net.names) if cells is None else list(cells)
    else:
        if isinstance(record, str):
            raise TypeError("record must be a list of names, not a string: "
                            f"record=[{record!r}]")
        plan = {}
        for item in record:
            st, _, cell = str(item).rpartition(":")
            plan.setdefault(st or "v", []).append(cell)
    flat = []
    for st, cells in plan.items():
        row = net.state_index(st)
        flat += [row * net.n_cells + i for i in net.indices(cells)]
    return plan, torch.tensor(flat, dtype=torch.long)


def _gather(y: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    return y.reshape(y.shape[0], -1)[:, flat]


# ---------------------------------------------------------------------------- main entry
def simulate(network: Network, stimulus=None, duration_ms: float = 100.0,
             dt_ms: float | None = None, record=None, *, config: SimConfig | dict | None = None,
             batch: int | None = None, y0: torch.Tensor | None = None,
             dtype: torch.dtype | None = None, params: dict | None = None,
             **overrides) -> Result:
    """Simulate ``network`` for ``duration_ms`` and return the recorded traces.

    Args:
        network: a :class:`Network` (or a :class:`NetworkConfig` / dict, built on the fly).
        stimulus: None, a :class:`Stimulus`, ``"c302"`` (the inputs of the NeuroML file, e.g.
            c302's PLML/PLMR offset current) or ``{cell: nA | tensor (T,)/(T, B)}`` with a
            ``dt_ms`` entry for tensors. Currents in nA, time-first.
        duration_ms: simulated time, ms.
        dt_ms, record: shortcuts for the :class:`SimConfig` fields of the same name.
        config: a :class:`SimConfig` (or its dict); keyword ``overrides`` set its fields
            (``solver=``, ``record_every=``, ``checkpoint_ms=``, ``compile=``, ``device=``...).
        batch: batch size B (default: the network's parameter batch, the stimulus batch, or 1).
        y0: (B, S, N) initial state (default: :meth:`Network.initial_state`).
        dtype: torch dtype (overrides ``config.dtype``).
        params: ``{name: tensor}`` used instead of ``network.params`` (functional use).

    Returns:
        :class:`Result` with ``t_ms`` (T,), ``v_mV`` (T, B, K) and ``states``.
    """
    if isinstance(config, dict):
        config = SimConfig.from_dict(config)
    cfg = config or SimConfig()
    if dt_ms is not None:
        overrides["dt_ms"] = dt_ms
    if record is not None:
        overrides["record"] = record
    if overrides:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(SimConfig)}
        if unknown:
            raise TypeError(f"simulate() got unknown options {sorted(unknown)}; SimConfig "
                            f"fields: {[f.name for f in dataclasses.fields(SimConfig)]}")
        cfg = dataclasses.replace(cfg, **overrides)

    if not isinstance(network, Network):
        from wormlab.circuit import build_network

        network = build_network(network)
    net = network
    # the network is never converted in place: its materialized tensors are cast instead, so
    # gradients still reach net.params and a shared network keeps its dtype and device
    dtype = dtype or cfg.torch_dtype or net.dtype
    device = torch.device(cfg.device) if cfg.device else net.device
    dt_ms = cfg.dt_ms
    if not (duration_ms > 0 and math.isfinite(duration_ms)):
        raise ValueError(f"duration_ms must be a finite number > 0, got {duration_ms}")
    n_steps = int(round(duration_ms / dt_ms))
    if abs(n_steps * dt_ms - duration_ms) > 1e-6 * max(1.0, duration_ms):
        raise ValueError(f"duration_ms={duration_ms} is not a multiple of dt_ms={dt_ms}")
    record_every = cfg.record_every
    if n_steps % record_every:
        raise ValueError(f"record_every={record_every} must divide the {n_steps} steps")
    if isinstance(stimulus, str):
        if stimulus != "c302":
            raise ValueError(f"unknown stimulus {stimulus!r}; use 'c302', None, a dict or "
                             "a Stimulus")
        from wormlab.circuit import default_stimulus

        stimulus = default_stimulus(net)
    stim = Stimulus.from_any(stimulus)
    sizes = {x for x in (net.batch_size, stim.batch_size(), batch,
                         None if y0 is None else y0.shape[0]) if x is not None and x != 1}
    if len(sizes) > 1:
        raise ValueError(f"batch sizes disagree (network/stimulus/batch/y0): {sorted(sizes)}")
    B = sizes.pop() if sizes else 1
    plan, flat = _record_plan(net, cfg.record)
    flat = flat.to(device)

    P = {k: (v.to(dtype=dtype, device=device) if v.is_floating_point() else v.to(device))
         for k, v in net.materialize(params).items()}
    y = (net.initial_state(B, params) if y0 is None else y0)
    y = y.to(dtype=dtype, device=device).clone()
    if y.shape != (B, net.n_states, net.n_cells):
        y = y.expand(B, net.n_states, net.n_cells).clone() if y.shape[0] == 1 else y
        if y.shape != (B, net.n_states, net.n_cells):
            raise ValueError(f"y0 must be (B, {net.n_states}, {net.n_cells}) with states "
                             f"{list(net.state_names)}, got {tuple(y.shape)}")
    solver = SOLVERS[cfg.solver]
    t0 = time.perf_counter()
    mode = "none"
    if solver.kind == "fixed":
        D = exp_decays(P, dt_ms, net)
        vals, onehot = stim.grid(net, n_steps, dt_ms, B, dtype)
        if vals is None:
            vals = torch.zeros(n_steps, B, 0, dtype=dtype)
            onehot = torch.zeros(0, net.n_cells, dtype=dtype)
        vals, onehot = vals.to(device), onehot.to(device)
        mode = _gradient_mode(cfg, solver, y, vals, P)
        run = _FixedRun(net, cfg, D, onehot, flat, n_steps, dtype)
        if mode == "adjoint":
            used = _used_keys(run, P, y, vals)
            keys = [k for k, v in P.items() if v.is_floating_point() and k in used]
            static = {k: v for k, v in P.items() if k not in keys}
            run.keys, run.static = keys, static
            y, rec = _Adjoint.apply(run, y, vals, *[P[k] for k in keys])
        else:
            y, rec = run.forward(P, y, vals, checkpoint=(mode == "checkpoint"))
    else:
        rec, y = _odeint(net, P, stim, y, n_steps, dt_ms, B, dtype, flat, cfg.solver,
                         cfg.rtol, cfg.atol, record_every)
        check_state(net, P, y.detach(), duration_ms)
    wall = time.perf_counter() - t0
    t = torch.arange(0, n_steps + 1, record_every, dtype=torch.float64) * dt_ms
    states, k = {}, 0
    for st, cells in plan.items():
        states[st] = rec[:, :, k:k + len(cells)]
        k += len(cells)
    v = states.get("v", rec[:, :, :0])
    return Result(t_ms=t, v_mV=v, names=plan.get("v", []), y_final=y,
                  info={"solver": cfg.solver, "dt_ms": dt_ms, "steps": n_steps, "wall_s": wall,
                        "batch": B, "dtype": str(dtype).replace("torch.", ""),
                        "device": str(device), "gradient": mode},
                  states=states, state_cells=plan)


def _gradient_mode(cfg: SimConfig, solver: Solver, y, vals, P) -> str:
    needs = torch.is_grad_enabled() and (
        y.requires_grad or vals.requires_grad or any(v.requires_grad for v in P.values()))
    if not needs:
        return "none"
    if cfg.gradient == "auto":
        if cfg.checkpoint_ms is not None:
            return "checkpoint"
        return "adjoint" if solver.name == "rk4_fused" else "autograd"
    if cfg.gradient == "adjoint" and solver.name != "rk4_fused":
        raise ValueError(f"gradient='adjoint' is implemented for solver 'rk4_fused', not "
                         f"{solver.name!r}")
    if cfg.gradient == "checkpoint" and cfg.checkpoint_ms is None:
        raise ValueError("gradient='checkpoint' needs checkpoint_ms")
    return cfg.gradient


class _KeyLog(dict):
    def __init__(self, *a):
        super().__init__(*a)
        self.used: set[str] = set()

    def __getitem__(self, k):
        self.used.add(k)
        return super().__getitem__(k)


def _used_keys(run: _FixedRun, P: dict, y, vals) -> set[str]:
    """Materialized tensors one step reads (the adjoint differentiates only those: e.g. the
    per-cell gate midpoints enter the step through the stacked ``gate_mid``)."""
    log = _KeyLog(P)
    with torch.no_grad():
        _plain_step(run.net, log, run.D, y.detach(),
                    vals[0] if len(vals) else vals.new_zeros(y.shape[0], 0), run.onehot,
                    run.cfg.dt_ms, run.cfg.solver)
    return log.used


class _FixedRun:
    """State of one fixed-step run: advances, records and checks; shared by the plain forward,
    the checkpointed forward and the adjoint."""

    def __init__(self, net, cfg: SimConfig, D, onehot, flat, n_steps, dtype):
        self.net, self.cfg, self.D, self.onehot, self.flat = net, cfg, D, onehot, flat
        self.n_steps, self.dtype = n_steps, dtype
        self.step_fn = compiled_step() if cfg.compile else _plain_step
        self.keys: list[str] = []
        self.static: dict = {}
        self.seg_store = 1

    def step(self, P, y, u):
        return self.step_fn(self.net, P, self.D, y, u, self.onehot, self.cfg.dt_ms,
                            self.cfg.solver)

    def forward(self, P, y, vals, checkpoint=False, store=None):
        """Run all steps; returns (y_final, rec (T_rec, B, R)). ``store``: a list that gets the
        state before every step (adjoint), or a dict {step: state} of segment starts."""
        cfg, n = self.cfg, self.n_steps
        every = cfg.record_every
        outs = [_gather(y, self.flat)]
        if checkpoint:
            seg = max(1, int(round(cfg.checkpoint_ms / cfg.dt_ms)))
        else:
            seg = cfg.check_every if cfg.check_every else n
        from wormlab.runs import progress

        bar = progress(total=n, desc="circuit", disable=not cfg.show_progress)
        step = 0
        while step < n:
            m = min(seg, n - step)
            if checkpoint:
                y, rec = self._checkpointed(P, y, vals, step, m)
                outs.extend(rec)
            else:
                for j in range(step, step + m):
                    if isinstance(store, list):
                        store.append(y)
                    elif isinstance(store, dict) and j % self.seg_store == 0:
                        store[j] = y
                    y = self.step(P, y, vals[j])
                    if (j + 1) % every == 0:
                        outs.append(_gather(y, self.flat))
            step += m
            bar.update(m)
            if cfg.check_every:
                check_state(self.net, P, y.detach(), step * cfg.dt_ms)
                if y.requires_grad:
                    _guard_grad(y, self.net, step * cfg.dt_ms)
        bar.close()
        return y, torch.stack(outs)

    def _checkpointed(self, P, y, vals, start, m):
        from torch.utils.checkpoint import checkpoint

        keys = list(P)
        every = self.cfg.record_every

        def fn(y_in, *flat):
            PP = dict(zip(keys, flat))
            out = []
            for j in range(start, start + m):
                y_in = self.step(PP, y_in, vals[j])
                if (j + 1) % every == 0:
                    out.append(_gather(y_in, self.flat))
            rec = torch.stack(out) if out else y_in.new_zeros(0, y_in.shape[0], len(self.flat))
            return y_in, rec

        y, rec = checkpoint(fn, y, *P.values(), use_reentrant=True)
        return y, list(rec)


# ---------------------------------------------------------------------------- discrete adjoint
def _step_vjp(net, keys, static, D, onehot, dt_ms, solver, y, u, ybar, acc, pvals,
              need_u, inj, flat):
    """VJP of one fixed step at (y, u) with respect to y, u and the parameters ``pvals`` (named
    ``keys``; other materialized tensors are in ``static``), for the adjoint ``ybar`` of the
    step's output plus the recorded traces' gradient ``inj`` (B, R) at the rows/cells ``flat``.
    Returns (ybar_prev, ubar, [acc_i + pbar_i]). torch.func form, for torch.compile."""
    import torch.func as tf

    ybar = ybar.reshape(ybar.shape[0], -1).index_add(1, flat, inj).reshape(ybar.shape)
    if need_u:
        def f(y_, u_, *pv):
            P = {**static, **dict(zip(keys, pv))}
            return _plain_step(net, P, D, y_, u_, onehot, dt_ms, solver)

        _, vjp = tf.vjp(f, y, u, *pvals)
        g = vjp(ybar)
        return g[0], g[1], [a + b for a, b in zip(acc, g[2:])]

    def f(y_, *pv):
        P = {**static, **dict(zip(keys, pv))}
        return _plain_step(net, P, D, y_, u, onehot, dt_ms, solver)

    _, vjp = tf.vjp(f, y, *pvals)
    g = vjp(ybar)
    return g[0], None, [a + b for a, b in zip(acc, g[1:])]


def _step_vjp_eager(net, keys, static, D, onehot, dt_ms, solver, y, u, ybar, acc, pvals,
                    need_u, inj, flat):
    """The same VJP with torch.autograd.grad on a one-step graph (faster than torch.func in
    eager mode: no functional wrappers)."""
    ybar = ybar.reshape(ybar.shape[0], -1).index_add(1, flat, inj).reshape(ybar.shape)
    with torch.enable_grad():
        y_ = y.detach().requires_grad_(True)
        u_ = u.detach().requires_grad_(need_u)
        pv = [p.detach().requires_grad_(True) for p in pvals]
        P = {**static, **dict(zip(keys, pv))}
        out = _plain_step(net, P, D, y_, u_, onehot, dt_ms, solver)
        ins = [y_, u_, *pv] if need_u else [y_, *pv]
        g = list(torch.autograd.grad(out, ins, ybar, allow_unused=True))
    if not need_u:
        g.insert(1, None)
    pb = [a if b is None else a + b for a, b in zip(acc, g[2:])]
    return g[0], g[1], pb


def _step_vjp_compiled():
    if "vjp" not in _COMPILED:
        _COMPILED["vjp"] = torch.compile(_step_vjp, dynamic=False, fullgraph=False)
    return _COMPILED["vjp"]


class _Adjoint(torch.autograd.Function):
    """Exact gradients of a fixed-step run without storing the autograd graph: the forward
    stores each step's input state (or segment starts, recomputed once), the backward walks the
    steps in reverse applying the VJP of one step (the discrete adjoint of the fused RK4 step:
    identical to autograd through the same arithmetic, up to summation order)."""

    @staticmethod
    def forward(ctx, run: _FixedRun, y0, vals, *pvals):
        P = {**run.static, **dict(zip(run.keys, pvals))}
        B, S, N = y0.shape
        item = y0.element_size()
        total_mb = run.n_steps * B * S * N * item / 1e6
        budget = run.cfg.adjoint_memory_mb
        if total_mb <= budget:
            store: list | dict = []
            run.seg_store = 1
        else:  # segment starts only; each segment recomputed once in the backward
            run.seg_store = max(1, int(budget * 1e6 / (B * S * N * item)))
            store = {}
        with torch.no_grad():
            y, rec = run.forward(P, y0.detach(), vals.detach(), store=store)
        ctx.run, ctx.store = run, store
        ctx.save_for_backward(vals, *pvals)
        return y, rec

    @staticmethod
    def backward(ctx, g_y, g_rec):
        run: _FixedRun = ctx.run
        vals, *pvals = ctx.saved_tensors
        cfg, net = run.cfg, run.net
        n, every = run.n_steps, cfg.record_every
        # only the parameters whose gradient is asked for are differentiated; the rest are
        # constants of the step (a gradient panel on one parameter pays for one)
        need = [bool(x) for x in ctx.needs_input_grad[3:]]
        keys = [k for k, w in zip(run.keys, need) if w]
        pdet = [p.detach() for p, w in zip(pvals, need) if w]
        static = {**run.static, **{k: p.detach() for k, p, w in zip(run.keys, pvals, need)
                                   if not w}}
        P = {**static, **dict(zip(keys, pdet))}
        ybar = (torch.zeros_like(ctx.store[0]) if g_y is None else g_y).clone()
        flat = run.flat
        need_u = bool(ctx.needs_input_grad[2]) and vals.shape[-1] > 0
        B = ctx.store[0].shape[0]
        if g_rec is None:
            g_rec = torch.zeros(n // every + 1, B, len(run.flat), dtype=vals.dtype,
                                device=vals.device)
        no_inj = torch.zeros_like(g_rec[0])
        vbar = torch.zeros_like(vals) if need_u else None
        acc = [torch.zeros_like(p) for p in pdet]
        vjp = _step_vjp_compiled() if cfg.compile else _step_vjp_eager
        store = ctx.store
        seg = n if isinstance(store, list) else run.seg_store
        for s0 in reversed(range(0, n, seg)):
            s1 = min(n, s0 + seg)
            if isinstance(store, list):
                ys = store
            else:  # recompute this segment's states
                ys, y = {}, store[s0]
                with torch.no_grad():
                    for j in range(s0, s1):
                        ys[j] = y
                        y = run.step(P, y, vals[j])
            for j in range(s1 - 1, s0 - 1, -1):
                inj = g_rec[(j + 1) // every] if (j + 1) % every == 0 else no_inj
                ybar, ub, acc = vjp(net, keys, static, run.D, run.onehot, cfg.dt_ms,
                                    cfg.solver, ys[j], vals[j], ybar, acc, pdet, need_u, inj,
                                    flat)
                if need_u and ub is not None:
                    vbar[j] = ub
                if cfg.check_every and j % cfg.check_every == 0 and not bool(
                        torch.isfinite(ybar).all()):
                    b, s, i = (int(x) for x in (~torch.isfinite(ybar)).nonzero()[0])
                    raise CircuitBlowUpError(
                        f"non-finite adjoint (gradient) at t={j * cfg.dt_ms:.3f} ms: cell "
                        f"{net.names[i]} (batch {b}), state {net.state_names[s]}")
        ybar.reshape(ybar.shape[0], -1).index_add_(1, flat, g_rec[0])
        it = iter(acc)
        grads = [next(it) if w else None for w in need]
        return (None, ybar, vbar, *grads)


def _guard_grad(y: torch.Tensor, net: Network, t_ms: float) -> None:
    def hook(g):
        if g is not None and not bool(torch.isfinite(g).all()):
            b, s, i = (int(x) for x in (~torch.isfinite(g)).nonzero()[0])
            raise CircuitBlowUpError(
                f"non-finite gradient flowing into the state at t={t_ms:.3f} ms: cell "
                f"{net.names[i]} (batch {b}), state {net.state_names[s]}; state V there was "
                f"{float(y.detach()[b, 0, i]):.4g} mV")
        return g

    y.register_hook(hook)


def _odeint(net, P, stim, y, n_steps, dt_ms, B, dtype, flat, solver, rtol, atol, record_every):
    from torchdiffeq import odeint

    class _F(torch.nn.Module):
        def forward(self, t, yy):
            i = stim.current_at(net, float(t), B, dtype)
            if i is not None:
                i = i.to(yy.device)
            return net.derivative(P, yy, i)

    f = _F()
    ts = torch.arange(0, n_steps + 1, record_every, dtype=dtype) * dt_ms
    # split at stimulus edges so adaptive steps never straddle a discontinuity
    edges = [e for e in stim.breakpoints() if 0 < e < float(ts[-1])]
    bounds = [0.0, *edges, float(ts[-1])]
    got: dict[int, torch.Tensor] = {}
    cur = y
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        inside = ts[(ts > lo + 1e-9) & (ts < hi - 1e-9)]
        tt = torch.cat([torch.tensor([lo], dtype=dtype), inside,
                        torch.tensor([hi], dtype=dtype)]).to(y.device)
        opts = {"step_size": dt_ms} if not SOLVERS[solver].adaptive else None
        kw = {"rtol": rtol, "atol": atol} if opts is None else {}
        sol = odeint(f, cur, tt, method=solver, options=opts, **kw)
        for tk, yk in zip(tt.tolist(), sol):
            k = round(tk / (dt_ms * record_every))
            if abs(k * dt_ms * record_every - tk) < 1e-7 and k not in got:
                got[k] = _gather(yk, flat)
        cur = sol[-1]
    if len(got) != ts.shape[0]:
        raise RuntimeError(f"internal: {len(got)} samples for a {ts.shape[0]}-point grid")
    return torch.stack([got[k] for k in range(ts.shape[0])]), cur


def gradient_memory_estimate_mb(net: Network, duration_ms: float, dt_ms: float,
                                checkpoint_ms: float, batch: int = 1) -> float:
    """Rough peak memory (MB) of a checkpointed backward pass (for planning)."""
    itemsize = torch.finfo(net.dtype).bits // 8
    per_step = 40 * batch * net.n_cells * itemsize  # saved activations per recomputed step
    seg_steps = checkpoint_ms / dt_ms
    edges = math.ceil(duration_ms / checkpoint_ms) * batch * net.n_states * net.n_cells
    return (per_step * seg_steps + edges * itemsize) / 1e6
