"""Time integration: exponential-Euler fast path, torchdiffeq solvers, checkpointed gradients."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from wormlab.circuit import _mechanisms as mech
from wormlab.circuit._network import (
    CELL_PARAMS,
    N_CELL_STATES,
    STATE_NAMES,
    CircuitBlowUpError,
    Network,
)
from wormlab.circuit._stimulus import Stimulus

FIXED_SOLVERS = ("rk4_fused", "exp2", "expeuler")
ODEINT_SOLVERS = ("dopri5", "dopri8", "bosh3", "adaptive_heun", "rk4", "midpoint", "euler",
                  "explicit_adams", "implicit_adams")


@dataclass
class Result:
    """Output of :func:`simulate`.

    Attributes:
        t_ms: (T,) sample times in ms (t = 0 is the initial state).
        v_mV: (T, B, K) membrane potential of the recorded cells, mV.
        names: the K recorded cell names.
        y_final: (B, S, N) final state (for continuing a run).
        info: solver, dt, wall time, number of steps.
    """

    t_ms: torch.Tensor
    v_mV: torch.Tensor
    names: list[str]
    y_final: torch.Tensor
    info: dict = field(default_factory=dict)

    def trace(self, name: str) -> torch.Tensor:
        """(T, B) voltage of one recorded cell."""
        if name not in self.names:
            raise KeyError(f"{name!r} was not recorded; recorded: {self.names[:8]}...")
        return self.v_mV[:, :, self.names.index(name)]

    def to_frame(self, batch: int = 0):
        """pandas DataFrame (time x cells) of batch element ``batch``."""
        import pandas as pd

        return pd.DataFrame(self.v_mV[:, batch].detach().cpu().numpy(),
                            index=pd.Index(self.t_ms.cpu().numpy(), name="t_ms"),
                            columns=self.names)


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
    if bool(bad.any()):
        cells = bad.any(1)  # (B, N)
        # the cell whose parameters are most suspicious first: non-finite V before others
        b, i = (int(x) for x in cells.nonzero()[0])
        s = int(bad[b, :, i].nonzero()[0])
        all_bad = [net.names[j] for j in cells[b].nonzero().flatten().tolist()]
        state = STATE_NAMES[s] if s < N_CELL_STATES else f"s[{s - N_CELL_STATES}]"
        details = "; ".join(f"{net.names[j]}: {_describe_cell(net, P, b, j)}"
                            for j in cells[b].nonzero().flatten().tolist()[:4])
        raise CircuitBlowUpError(
            f"non-finite state at t={t_ms:.3f} ms (checked every few steps): cell "
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
            if k in CELL_PARAMS:
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


# ---------------------------------------------------------------------------- fast step
def exp_decays(P: dict, dt_ms: float) -> dict[str, torch.Tensor]:
    """exp(-h/tau) for the gates (..., 5, N) and the Ca pool, for h = dt and dt/2."""
    out = {}
    for suffix, h in (("", dt_ms), ("_half", 0.5 * dt_ms)):
        out["gates" + suffix] = torch.exp(-h / P["gate_tau"])
        out["ca" + suffix] = torch.exp(-h / P["tau_ca"])
    return out


def _exp_rates(net: Network, P: dict, y: torch.Tensor, i_stim):
    """Write every state as dx/dt = k(y) (x_inf(y) - x); return the x_inf's and the k's that
    are not constant (V: total conductance / C_m; s: k_syn / (1 - s_inf))."""
    v = y[:, 0]
    a, bc, aux = net.drive(P, y, i_stim)
    ginf = net.gate_inf(P, v)
    ca_inf = (P["rho_ca"] * mech.RHO_SI_TO_MM_PER_MS * aux["gca"] * (P["e_ca"] - v)
              * P["tau_ca"] + net.ca_rest)
    sinf, comp = mech.graded_s_inf(v.unsqueeze(1), P["syn_vth"], P["syn_delta"])
    return a / bc, bc / P["c_m"], ginf, ca_inf, sinf, P["syn_k"] / comp, comp


def _exp_apply(y, rates, D, h, suffix=""):
    vinf, kv, ginf, ca_inf, sinf, ks, comp = rates
    v_new = vinf + (y[:, 0] - vinf) * torch.exp(-h * kv)
    g_new = ginf + (y[:, 1:6] - ginf) * D["gates" + suffix]
    ca_new = (ca_inf + (y[:, 6] - ca_inf) * D["ca" + suffix]).clamp_min(0.0)
    s_new = sinf + (y[:, N_CELL_STATES:] - sinf) * torch.exp(-h * ks)
    s_new = torch.where(comp < mech.SYN_CLAMP, sinf, s_new)
    return torch.cat([v_new.unsqueeze(1), g_new, ca_new.unsqueeze(1), s_new], 1)


def exp_euler_step(net: Network, P: dict, D: dict, y: torch.Tensor, i_stim, dt_ms: float
                   ) -> torch.Tensor:
    """One exponential-Euler step (Rush-Larsen): every state obeys dx/dt = k(y)(x_inf(y) - x)
    and is advanced as x' = x_inf + (x - x_inf) exp(-k dt) with k, x_inf frozen at the start.
    Exact for frozen rates, unconditionally stable (V's k includes channel, synaptic and the
    diagonal gap conductance), first order — the scheme class of NEURON's ``cnexp`` gates."""
    return _exp_apply(y, _exp_rates(net, P, y, i_stim), D, dt_ms)


def exp_midpoint_step(net: Network, P: dict, D: dict, y: torch.Tensor, i_stim, dt_ms: float
                      ) -> torch.Tensor:
    """Second-order Rush-Larsen (exponential midpoint): an exponential-Euler half step gives
    y_1/2; the full step from y uses k and x_inf evaluated at y_1/2. Two right-hand-side
    evaluations per step, still unconditionally stable for the linear parts."""
    y_half = _exp_apply(y, _exp_rates(net, P, y, i_stim), D, 0.5 * dt_ms, "_half")
    return _exp_apply(y, _exp_rates(net, P, y_half, i_stim), D, dt_ms)


def rk4_step(net: Network, P: dict, D: dict, y: torch.Tensor, i_stim, dt_ms: float
             ) -> torch.Tensor:
    """Classical fourth-order Runge-Kutta on :meth:`Network.derivative` (stimulus held over the
    step), with NEURON's [Ca] >= 0 clamp. Stable here up to dt ~ 0.1 ms (fastest rates:
    Ca gate e, tau 0.1 ms, and the membrane, tau ~ 0.1-0.3 ms)."""
    f = net.derivative
    k1 = f(P, y, i_stim)
    k2 = f(P, y + (0.5 * dt_ms) * k1, i_stim)
    k3 = f(P, y + (0.5 * dt_ms) * k2, i_stim)
    k4 = f(P, y + dt_ms * k3, i_stim)
    y_new = y + (dt_ms / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)
    ca = y_new[:, 6:7].clamp_min(0.0)
    return torch.cat([y_new[:, :6], ca, y_new[:, 7:]], 1)


STEPS = {"expeuler": exp_euler_step, "exp2": exp_midpoint_step, "rk4_fused": rk4_step}
ORDER = {"expeuler": 1, "exp2": 2, "rk4_fused": 4}


def _plain_step(net, P, D, y, stim_row, onehot, dt_ms, order=2):
    i_stim = stim_row @ onehot if onehot is not None else None
    if order == 4:
        return rk4_step(net, P, D, y, i_stim, dt_ms)
    if order == 2:
        return exp_midpoint_step(net, P, D, y, i_stim, dt_ms)
    return exp_euler_step(net, P, D, y, i_stim, dt_ms)


_COMPILED: dict = {}


def compiled_step():
    """``torch.compile`` of one exponential-Euler step (inductor fuses the ~60 element-wise ops
    into a few loops). Cached per process; recompiles per dt, dtype and batch size."""
    if "step" not in _COMPILED:
        _COMPILED["step"] = torch.compile(_plain_step, dynamic=False, fullgraph=False)
    return _COMPILED["step"]


def _run_segment(net, P, D, y, stim_vals, onehot, rec_idx, dt_ms, record_every, start_step,
                 step_fn=_plain_step, order=2):
    """Advance ``y`` through ``stim_vals.shape[0]`` steps, recording V after each step whose
    global index + 1 is a multiple of ``record_every``."""
    outs = []
    n = stim_vals.shape[0]
    for j in range(n):
        y = step_fn(net, P, D, y, stim_vals[j], onehot, dt_ms, order)
        if (start_step + j + 1) % record_every == 0:
            outs.append(y[:, 0, rec_idx])
    return y, outs


# ---------------------------------------------------------------------------- main entry
def simulate(network: Network, stimulus=None, duration_ms: float = 100.0, dt_ms: float = 0.05,
             record=None, *, solver: str = "rk4_fused", batch: int | None = None,
             y0: torch.Tensor | None = None, dtype: torch.dtype | None = None,
             record_every: int = 1, checkpoint_ms: float | None = None,
             check_every: int = 200, rtol: float = 1e-7, atol: float = 1e-7,
             compile: bool = False, params: dict | None = None,
             show_progress: bool = False) -> Result:
    """Simulate ``network`` for ``duration_ms`` and return recorded voltages.

    Args:
        network: a :class:`Network` (or a :class:`NetworkConfig` / dict, built on the fly).
        stimulus: None, a :class:`Stimulus`, ``"c302"`` (the inputs in the NeuroML file, e.g.
            c302's PLML/PLMR offset current) or ``{cell: nA | tensor (T,)/(T, B)}`` with a
            ``dt_ms`` entry for tensors. Currents in nA, time-first.
        duration_ms, dt_ms: simulated time and step (the output grid for every solver).
        record: cell names to record (default: all cells).
        solver: fixed-step fast paths ``"rk4_fused"`` (default; classical RK4, matches
            NEURON-CVODE at dt 0.1 ms, see docs/circuit.md), ``"exp2"`` (second-order
            exponential midpoint), ``"expeuler"`` (first-order exponential Euler) or a torchdiffeq method (``"dopri5"`` adaptive with
            ``rtol/atol``, ``"rk4"`` fixed step ``dt_ms``, ...).
        batch: batch size B (default: the network's parameter batch, the stimulus batch, or 1).
        y0: (B, S, N) initial state (default: :meth:`Network.initial_state`).
        dtype: float32 or float64 (default: the network's dtype).
        record_every: keep every k-th step (k * dt_ms output spacing).
        checkpoint_ms: with gradients, recompute segments of this length in the backward pass
            (``torch.utils.checkpoint``): memory ~ states at segment edges + recorded traces.
        compile: run the exponential-Euler step under ``torch.compile`` (fast for long runs
            and batches; the first call compiles for ~30-60 s, cached in TORCHINDUCTOR_CACHE_DIR).
        params: optional ``{name: tensor}`` used instead of ``network.params`` (functional
            use: gradcheck, finite differences, torch.func).
        check_every: test the state for NaN/Inf every this many steps
            (raises :class:`CircuitBlowUpError` naming time, cell and parameter values).

    Returns:
        :class:`Result` with ``t_ms`` (T,), ``v_mV`` (T, B, K).
    """
    import time

    if not isinstance(network, Network):
        from wormlab.circuit import build_network

        network = build_network(network)
    net = network
    if dtype is not None and dtype != net.dtype:
        net = net.to(dtype)
    dtype = net.dtype
    if duration_ms <= 0 or dt_ms <= 0:
        raise ValueError(f"duration_ms and dt_ms must be > 0 (got {duration_ms}, {dt_ms})")
    n_steps = int(round(duration_ms / dt_ms))
    if abs(n_steps * dt_ms - duration_ms) > 1e-6 * max(1.0, duration_ms):
        raise ValueError(f"duration_ms={duration_ms} is not a multiple of dt_ms={dt_ms}")
    if record_every < 1 or n_steps % record_every:
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
    names = list(net.names) if record is None else list(record)
    rec_idx = torch.tensor(net.indices(names), dtype=torch.long)

    P = net.materialize(params)
    y = (net.initial_state(B, params) if y0 is None else y0.to(dtype)).clone()
    if y.shape != (B, net.n_states, net.n_cells):
        y = y.expand(B, net.n_states, net.n_cells).clone() if y.shape[0] == 1 else y
        if y.shape != (B, net.n_states, net.n_cells):
            raise ValueError(f"y0 must be (B, {net.n_states}, {net.n_cells}), got "
                             f"{tuple(y.shape)}")
    t0 = time.perf_counter()
    if solver in FIXED_SOLVERS:
        D = exp_decays(P, dt_ms)
        vals, onehot = stim.grid(net, n_steps, dt_ms, B, dtype)
        if vals is None:
            vals = torch.zeros(n_steps, B, 0, dtype=dtype)
            onehot = torch.zeros(0, net.n_cells, dtype=dtype)
        outs = [y[:, 0, rec_idx]]
        use_ckpt = checkpoint_ms is not None and torch.is_grad_enabled()
        if use_ckpt:
            seg = max(1, int(round(checkpoint_ms / dt_ms)))
        else:
            seg = check_every if check_every else n_steps
        from wormlab.runs import progress

        bar = progress(total=n_steps, desc="circuit", disable=not show_progress)
        step = 0
        step_fn = compiled_step() if compile else _plain_step
        order = ORDER[solver]
        tensors = list(P.items())
        dkeys = list(D.items())
        while step < n_steps:
            m = min(seg, n_steps - step)
            sv = vals[step:step + m]
            if use_ckpt:
                y, rec = _checkpointed(net, tensors, dkeys, y, sv, onehot, rec_idx, dt_ms,
                                       record_every, step, step_fn, order)
            else:
                y, rec = _run_segment(net, P, D, y, sv, onehot, rec_idx, dt_ms, record_every,
                                      step, step_fn, order)
                rec = torch.stack(rec) if rec else None
            if rec is not None:
                outs.append(rec)
            step += m
            bar.update(m)
            if check_every:
                check_state(net, P, y.detach(), step * dt_ms)
                if y.requires_grad:
                    _guard_grad(y, net, step * dt_ms)
        bar.close()
        v = torch.cat([outs[0].unsqueeze(0)] + [o if o.dim() == 3 else o.unsqueeze(0)
                                                 for o in outs[1:]], 0)
    elif solver in ODEINT_SOLVERS:
        v, y = _odeint(net, P, stim, y, n_steps, dt_ms, B, dtype, rec_idx, solver, rtol, atol,
                       record_every)
        check_state(net, P, y.detach(), duration_ms)
    else:
        raise ValueError(f"unknown solver {solver!r}; choose from {FIXED_SOLVERS + ODEINT_SOLVERS}")
    wall = time.perf_counter() - t0
    t = torch.arange(0, n_steps + 1, record_every, dtype=torch.float64) * dt_ms
    return Result(t_ms=t, v_mV=v, names=names, y_final=y,
                  info={"solver": solver, "dt_ms": dt_ms, "steps": n_steps, "wall_s": wall,
                        "batch": B, "dtype": str(dtype).replace("torch.", "")})


def _guard_grad(y: torch.Tensor, net: Network, t_ms: float) -> None:
    def hook(g):
        if g is not None and not bool(torch.isfinite(g).all()):
            b, s, i = (int(x) for x in (~torch.isfinite(g)).nonzero()[0])
            raise CircuitBlowUpError(
                f"non-finite gradient flowing into the state at t={t_ms:.3f} ms: cell "
                f"{net.names[i]} (batch {b}), state "
                f"{STATE_NAMES[s] if s < N_CELL_STATES else 's'}; state V there was "
                f"{float(y.detach()[b, 0, i]):.4g} mV")
        return g

    y.register_hook(hook)


def _checkpointed(net, tensors, dkeys, y, sv, onehot, rec_idx, dt_ms, record_every, step,
                  step_fn, order):
    from torch.utils.checkpoint import checkpoint

    pk = [k for k, _ in tensors]
    dk = [k for k, _ in dkeys]
    n_p = len(pk)

    def fn(y_in, *flat):
        P = dict(zip(pk, flat[:n_p]))
        D = dict(zip(dk, flat[n_p:]))
        y_out, rec = _run_segment(net, P, D, y_in, sv, onehot, rec_idx, dt_ms, record_every,
                                  step, step_fn, order)
        if rec:
            return y_out, torch.stack(rec)
        return y_out, y_out.new_zeros(0, *y_out.shape[:1], len(rec_idx))

    y, rec = checkpoint(fn, y, *[v for _, v in tensors], *[v for _, v in dkeys],
                        use_reentrant=True)
    return y, (rec if rec.shape[0] else None)


def _odeint(net, P, stim, y, n_steps, dt_ms, B, dtype, rec_idx, solver, rtol, atol,
            record_every):
    from torchdiffeq import odeint

    class _F(torch.nn.Module):
        def forward(self, t, yy):
            i = stim.current_at(net, float(t), B, dtype)
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
                        torch.tensor([hi], dtype=dtype)])
        opts = {"step_size": dt_ms} if solver in ("rk4", "midpoint", "euler") else None
        kw = {"rtol": rtol, "atol": atol} if opts is None else {}
        sol = odeint(f, cur, tt, method=solver, options=opts, **kw)
        for tk, yk in zip(tt.tolist(), sol):
            k = round(tk / (dt_ms * record_every))
            if abs(k * dt_ms * record_every - tk) < 1e-7 and k not in got:
                got[k] = yk[:, 0][:, rec_idx]
        cur = sol[-1]
    if len(got) != ts.shape[0]:
        raise RuntimeError(f"internal: {len(got)} samples for a {ts.shape[0]}-point grid")
    v = torch.stack([got[k] for k in range(ts.shape[0])])
    return v, cur


def gradient_memory_estimate_mb(net: Network, duration_ms: float, dt_ms: float,
                                checkpoint_ms: float, batch: int = 1) -> float:
    """Rough peak memory (MB) of a checkpointed backward pass (for planning)."""
    itemsize = torch.finfo(net.dtype).bits // 8
    per_step = 40 * batch * net.n_cells * itemsize  # saved activations per recomputed step
    seg_steps = checkpoint_ms / dt_ms
    edges = math.ceil(duration_ms / checkpoint_ms) * batch * net.n_states * net.n_cells
    return (per_step * seg_steps + edges * itemsize) / 1e6
