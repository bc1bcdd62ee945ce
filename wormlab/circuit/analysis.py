"""Comparisons with NEURON, parameter tweaks and gradient inspection (used by the notebook and
the widget, tested in tests/circuit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from wormlab.circuit._network import Network
from wormlab.circuit._simulate import Result, simulate
from wormlab.circuit._stimulus import Stimulus

# what the widget's sliders scale (multiplicative factors on the c302 values)
TWEAKS = ("g_syn", "g_gap", "g_leak", "g_kslow", "g_kfast", "g_ca")


def error_table(res: Result, ref, window_ms: float | None = None, batch: int = 0
                ) -> pd.DataFrame:
    """Per-cell comparison of a simulation with NEURON reference traces.

    Columns: ``range_mV`` (NEURON max - min in the window), ``max_abs_err_mV``,
    ``rel_err`` (max |dV| / range: the issue's +-5% criterion), ``mean_v_ours/neuron``
    (mV, whole run), ``mean_v_rel_err`` (|mean difference| / whole-run range) and the
    ``within_5pct`` flags of both. Sorted by ``rel_err`` (worst first).
    """
    t = res.t_ms.numpy()
    t = t[:ref.covered(t)]
    ours = res.v_mV[:len(t), batch].detach().cpu().numpy()
    idx = [ref.names.index(n) for n in res.names]
    theirs = ref.on_grid(t)[:, idx]
    k = len(t) if window_ms is None else int(np.searchsorted(t, window_ms, side="right"))
    rng = theirs[:k].max(0) - theirs[:k].min(0)
    err = np.abs(ours[:k] - theirs[:k]).max(0)
    full = theirs.max(0) - theirs.min(0)
    df = pd.DataFrame({
        "range_mV": rng, "max_abs_err_mV": err, "rel_err": err / np.maximum(rng, 1e-6),
        "mean_v_ours": ours.mean(0), "mean_v_neuron": theirs.mean(0),
    }, index=pd.Index(res.names, name="cell"))
    df["mean_v_rel_err"] = np.abs(df.mean_v_ours - df.mean_v_neuron) / np.maximum(full, 1e-6)
    df["within_5pct"] = df.rel_err <= 0.05
    df["mean_v_within_5pct"] = df.mean_v_rel_err <= 0.05
    return df.sort_values("rel_err", ascending=False)


def divergence_curve(res: Result, ref, batch: int = 0, step_ms: float = 10.0) -> pd.DataFrame:
    """Max over cells of |dV| / range as a function of time (windows ending at t)."""
    t = res.t_ms.numpy()
    t = t[:ref.covered(t)]
    ours = res.v_mV[:len(t), batch].detach().cpu().numpy()
    idx = [ref.names.index(n) for n in res.names]
    theirs = ref.on_grid(t)[:, idx]
    rows = []
    for end in np.arange(step_ms, t[-1] + 1e-9, step_ms):
        k = int(np.searchsorted(t, end, side="right"))
        rng = np.maximum(theirs[:k].max(0) - theirs[:k].min(0), 1e-6)
        rel = np.abs(ours[:k] - theirs[:k]).max(0) / rng
        rows.append({"t_ms": end, "max_rel_err": rel.max(),
                     "frac_within_5pct": float((rel <= 0.05).mean())})
    return pd.DataFrame(rows)


def tweak_overrides(net: Network, **scales: float) -> dict[str, torch.Tensor]:
    """Parameter overrides multiplying c302 values: ``tweak_overrides(net, g_syn=2.0)``."""
    bad = set(scales) - set(net.params)
    if bad:
        raise KeyError(f"unknown parameters {sorted(bad)}; tweakable: {TWEAKS}")
    return {k: net.params[k].detach() * float(v) for k, v in scales.items() if v != 1.0}


def tweak_and_run(net: Network, target: str = "PLML", amplitude_pA: float = 5.0,
                  duration_ms: float = 60.0, dt_ms: float = 0.1, record=None,
                  start_ms: float = 5.0, **scales: float) -> Result:
    """A short simulation with a current step into ``target`` and scaled parameters."""
    stim = Stimulus.step(target, amplitude_pA * 1e-3, start_ms=start_ms)
    with torch.no_grad():
        return simulate(net, stim, duration_ms, dt_ms, record=record,
                        params=tweak_overrides(net, **scales))


def class_members(net: Network, cls: str) -> list[str]:
    out = [n for n, c in zip(net.names, net.classes) if c == cls or n == cls]
    if not out:
        import difflib

        raise KeyError(f"unknown neuron class {cls!r}; close: "
                       f"{difflib.get_close_matches(cls, sorted(set(net.classes)), n=4)}")
    return out


def gradient_table(net: Network, loss_class: str = "AVA", param: str = "g_ca",
                   duration_ms: float = 30.0, dt_ms: float = 0.1, stimulus="c302",
                   checkpoint_ms: float | None = None, compile: bool = False) -> pd.DataFrame:
    """d(mean voltage of ``loss_class`` over the run) / d(``param``), one row per parameter
    group (cell, class or type, per ``net.share``) or per presynaptic cell for ``w_syn`` /
    ``w_gap``. Columns: ``grad`` (mV per unit of the parameter), ``value``, ``grad_x_value``
    (sensitivity to a relative change: mV per 100% change), sorted by |grad_x_value|.
    The gradient is the discrete adjoint of the RK4 step (exact); ``compile=True`` runs the
    step and its VJP under torch.compile (fast after a one-time compile). ``df.attrs`` holds
    the loss, its value and the wall time of the forward+backward."""
    import time

    if param not in net.params:
        raise KeyError(f"unknown parameter {param!r}; known: {sorted(net.params)}")
    members = class_members(net, loss_class)
    if isinstance(stimulus, str) and stimulus == "c302" and not net.spec.inputs:
        stimulus = None
    p = {param: net.params[param].detach().clone().requires_grad_(True)}
    t0 = time.perf_counter()
    res = simulate(net, stimulus, duration_ms, dt_ms, record=members, params=p,
                   checkpoint_ms=checkpoint_ms, compile=compile)
    loss = res.v_mV.mean()
    (g,) = torch.autograd.grad(loss, p[param])
    wall = time.perf_counter() - t0
    g = g.detach().numpy()
    val = p[param].detach().numpy()
    if param in net.cell_param_names:
        index = net.group_names
    elif param == "w_syn":
        index = [f"{net.names[int(a)]}->{net.names[int(b)]}"
                 for a, b in zip(net.syn_pre, net.syn_post)]
    elif param == "w_gap":
        index = [f"{net.names[int(a)]}-{net.names[int(b)]}" for a, b in zip(net.gap_a, net.gap_b)]
    elif param in ("g_syn", "e_syn"):
        index = net.syn_type_names
    elif param == "g_gap":
        index = net.gap_type_names
    else:
        index = [f"{param}[{i}]" for i in range(len(g))]
    df = pd.DataFrame({"grad": g, "value": val, "grad_x_value": g * val},
                      index=pd.Index(index, name="group"))
    df.attrs.update(loss=f"mean V of {loss_class} ({', '.join(members)}) over {duration_ms} ms",
                    loss_value_mV=float(loss.detach()), wall_s=wall,
                    gradient=res.info["gradient"])
    return df.reindex(df.grad_x_value.abs().sort_values(ascending=False).index)
