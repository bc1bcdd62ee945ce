"""Synaptic weights and polarities (issue 16 item 4): a differentiable per-class (pre-class ->
post-class) or per-connection weight scale and sign, a penalty for disagreeing with the
presynaptic neuron's transmitter (Wang et al. 2024, eLife 13:RP95402, via
:func:`wormlab.connectome.transmitter_table`), and a report of the polarities a fit flipped.

How the sign enters the circuit without touching it: :func:`polarity_network` gives every
chemical connection a *twin* of the opposite synapse type (c302's ``*_exc_syn`` <-> ``*_inh_syn``,
same kinetics, weight 0), so the network's traces are unchanged (bitwise: adding zero
contributions). :class:`SynapticPolarity` then writes both rows of each pair::

    w_exc = w0 * m * (1 + sigma) / 2        w_inh = w0 * m * (1 - sigma) / 2
    m = exp(log_m) >= 0 (weight scale, 1 = c302), sigma = tanh(a) in (-1, 1) (+1 excitatory)

so the connection's current is ``w0 m s_pre [p g_exc (E_exc - V) + (1 - p) g_inh (E_inh - V)]``
with ``p = (1 + sigma)/2``: a per-connection reversal potential between the inhibitory (-70 mV in
C1) and excitatory (0 mV) values, weighted by their conductances. ``w0`` is c302's weight
(contact count), kept.

Transmitter -> expected sign (:data:`TRANSMITTER_SIGN`): acetylcholine +1 (fast nicotinic
receptors; Pereira et al. 2015 list ACh-gated Cl- channels too, ignored here), GABA -1 (UNC-49;
the excitatory EXP-1 is ignored), glutamate **free by default** (AMPA/NMDA-type GLR receptors
excite, the GluCl channels AVR-14/GLC-3 inhibit, and Wang 2024 gives no receptor per synapse;
``glutamate="excitatory"`` follows c302's convention instead), neuromodulator-only or unknown:
free. A neuron's main transmitter is ``transmitter_table()["transmitter"]`` (GABA before ACh
before Glu).

Penalty: ``lam * mean over constrained pairs of ((sigma - e) / 2)^2`` with ``e`` the expected
sign; 0 when a pair's sign equals its transmitter's, 1 per pair fully flipped.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from wormlab import circuit
from wormlab.circuit import Network

#: main fast transmitter (Wang et al. 2024) -> expected sign; 0 = unconstrained
TRANSMITTER_SIGN = {"Acetylcholine": 1, "GABA": -1, "Glutamate": 0}
GLUTAMATE = {"free": 0, "excitatory": 1, "inhibitory": -1}
LEVELS = ("class", "connection")


class PolarityError(ValueError):
    """A network or option the polarity parameterisation cannot handle (names the problem)."""


def _type_sign(name: str) -> int:
    if "_exc_" in name or name.endswith("_exc"):
        return 1
    if "_inh_" in name or name.endswith("_inh"):
        return -1
    raise PolarityError(f"synapse type {name!r}: neither '_exc_' nor '_inh_' in its id, so its "
                        "polarity (and its twin) is unknown")


def _twin_name(name: str) -> str:
    return (name.replace("_exc_", "_inh_") if _type_sign(name) > 0
            else name.replace("_inh_", "_exc_"))


def polarity_network(net: Network) -> Network:
    """Copy of ``net`` (batch 1, from a NeuroML-derived spec) whose every chemical connection has
    a twin of the opposite polarity with weight 0, appended after the original connections
    (``w_syn[:C]`` original, ``w_syn[C:]`` twins in the same order). Same traces as ``net``.

    Raises :class:`PolarityError` naming a synapse type without an opposite-polarity type."""
    if getattr(net, "n_original_connections", None) is not None:
        raise PolarityError(f"network {net.spec.name!r} is already a polarity network")
    spec = net.spec
    ids = [s.id for s in spec.syn_types]
    twin_of = {}
    for i, sid in enumerate(ids):
        t = _twin_name(sid)
        if t not in ids:
            raise PolarityError(f"synapse type {sid!r} has no opposite-polarity type {t!r} in "
                                f"network {spec.name!r} (types: {ids})")
        twin_of[i] = ids.index(t)
    chem = list(spec.chem)
    w_now = net.params["w_syn"].detach().tolist()
    if len(w_now) != len(chem):
        raise PolarityError(f"network has {len(w_now)} weights for {len(chem)} connections "
                            "(already a polarity network?)")
    orig = [(a, b, t, float(w)) for (a, b, t, _), w in zip(chem, w_now)]
    twins = [(a, b, twin_of[t], 0.0) for a, b, t, _ in orig]
    spec2 = dataclasses.replace(spec, chem=orig + twins, name=f"{spec.name}_polarity")
    cfg = getattr(net, "config", None)
    out = circuit.build_network(spec2, share=net.share,
                                **({"syn_kinetics": cfg.syn_kinetics} if cfg else {}))
    # every other parameter as in net (fitted values, provenance)
    with torch.no_grad():
        for k, p in net.params.items():
            if k != "w_syn":
                out.params[k].copy_(p)
    out.provenance.update({k: dict(v) for k, v in net.provenance.items()})
    out.n_original_connections = len(orig)
    return out


def _cell_class(name: str) -> str:
    from wormlab.connectome import neuron_class
    from wormlab.connectome._cells import NEURONS

    return neuron_class(name) if name in NEURONS else name


def expected_signs(cells, glutamate: str = "free") -> dict[str, tuple[str | None, int]]:
    """cell -> (main transmitter (Wang et al. 2024) or None, expected sign +1/-1/0)."""
    if glutamate not in GLUTAMATE:
        raise PolarityError(f"glutamate={glutamate!r}; choose from {sorted(GLUTAMATE)}")
    from wormlab.connectome import transmitter_table

    tt = transmitter_table()
    out = {}
    for c in cells:
        nt = tt.at[c, "transmitter"] if c in tt.index else None
        nt = nt if isinstance(nt, str) else None
        sign = (GLUTAMATE[glutamate] if nt == "Glutamate" else TRANSMITTER_SIGN.get(nt, 0))
        out[c] = (nt, int(sign))
    return out


class SynapticPolarity(nn.Module):
    """Fittable weight scale and sign per class pair (``level="class"``: pre-class ->
    post-class, AVAL -> AVA; muscles keep their name) or per connection, on a
    :func:`polarity_network`.

    ``forward()`` returns ``{"w_syn": (2C,)}`` for ``circuit.simulate(..., params=...)``.

    Args:
        net: a network from :func:`polarity_network`.
        level: ``"class"`` or ``"connection"``.
        glutamate: how glutamatergic neurons are constrained: ``"free"`` (default, no penalty),
            ``"excitatory"`` (c302's convention) or ``"inhibitory"``.
        sign_init: |sigma| at the start, with c302's sign (tanh never reaches 1, so the start
            moves ``(1 - sign_init)/2`` of each weight to the opposite polarity; 0.995 default).
        only_neurons: fit only neuron -> neuron connections (neuromuscular ones keep c302's).
        free: pair labels ``"PRE->POST"`` (see :meth:`labels`) whose scale and sign are fitted;
            the others keep their starting values (no gradient). None = all pairs.
    """

    def __init__(self, net: Network, level: str = "class", glutamate: str = "free",
                 sign_init: float = 0.995, only_neurons: bool = True, free=None):
        super().__init__()
        if level not in LEVELS:
            raise PolarityError(f"level={level!r}; choose from {LEVELS}")
        if not 0.0 < sign_init < 1.0:
            raise PolarityError(f"sign_init must be in (0, 1), got {sign_init!r}")
        C = getattr(net, "n_original_connections", None)
        if C is None or 2 * C != net.params["w_syn"].numel():
            raise PolarityError("net is not a polarity network: build it with "
                                "wormlab.fit.polarity_network(net)")
        # the network is not a submodule: its parameters must not join pol.parameters() (an
        # optimiser over them would move every circuit parameter) nor pol.state_dict()
        object.__setattr__(self, "net", net)
        self.level, self.glutamate = level, glutamate
        pre = net.syn_pre[:C].tolist()
        post = net.syn_post[:C].tolist()
        typ = net.syn_type[:C].tolist()
        names = list(net.names)
        kinds = list(net.kinds)
        s0 = [_type_sign(net.syn_type_names[t]) for t in typ]
        w_all = net.params["w_syn"].detach()
        w0 = w_all[:C] + w_all[C:]  # the twins may already hold weight (a fitted network)
        fit_mask = [not only_neurons or (kinds[b] == "neuron" and kinds[a] == "neuron")
                    for a, b in zip(pre, post)]
        exp = expected_signs(names, glutamate)
        keys, rows, index = {}, [], []
        for c in range(C):
            if not fit_mask[c]:
                index.append(-1)
                continue
            if level == "class":
                key = (_cell_class(names[pre[c]]), _cell_class(names[post[c]]), s0[c])
            else:
                key = (names[pre[c]], names[post[c]], c)
            if key not in keys:
                keys[key] = len(rows)
                nt, e = exp[names[pre[c]]]
                rows.append({"pre": key[0], "post": key[1], "c302_sign": s0[c],
                             "transmitter": nt, "expected_sign": e, "n_connections": 0,
                             "contacts": 0.0})
            elif level == "class":
                nt, e = exp[names[pre[c]]]
                r = rows[keys[key]]
                if e != r["expected_sign"]:  # left/right partners with different transmitters
                    r["expected_sign"], r["transmitter"] = 0, "mixed"
            i = keys[key]
            rows[i]["n_connections"] += 1
            rows[i]["contacts"] += float(w0[c])
            index.append(i)
        if not rows:
            raise PolarityError("no connection to fit (only_neurons=True and no neuron -> "
                                "neuron connection in the network)")
        self.pairs = pd.DataFrame(rows)
        self.register_buffer("index", torch.tensor(index, dtype=torch.long))
        self.register_buffer("w0", w0.clone())
        self.register_buffer("s0_conn", torch.tensor(s0, dtype=torch.float64))
        self.register_buffer("c302_sign", torch.tensor(self.pairs["c302_sign"].to_numpy(
            dtype=np.float64)))
        self.register_buffer("expected", torch.tensor(self.pairs["expected_sign"].to_numpy(
            dtype=np.float64)))
        # the current share of excitation per connection (a fitted network's twins may hold it)
        frac_exc = torch.where(self.s0_conn > 0, w_all[:C], w_all[C:]) / w0.clamp_min(1e-300)
        self.register_buffer("fixed_exc", torch.where(w0 > 0, frac_exc,
                                                      (self.s0_conn > 0).double()))
        self.log_m = nn.Parameter(torch.zeros(len(rows), dtype=torch.float64))
        self.a = nn.Parameter(self.c302_sign * math.atanh(sign_init))
        self.n_connections = C
        labels = self.labels()
        if free is None:
            mask = [True] * len(rows)
        else:
            free = [free] if isinstance(free, str) else list(free)
            unknown = [f for f in free if f not in labels]
            if unknown:
                raise PolarityError(f"free: unknown pairs {unknown}; this network's pairs: "
                                    f"{sorted(set(labels))}")
            mask = [lab in free for lab in labels]
        self.register_buffer("free", torch.tensor(mask, dtype=torch.bool))

    # ------------------------------------------------------------------ parameters
    def labels(self) -> list[str]:
        """``"PRE->POST"`` per pair (class or cell names)."""
        return [f"{a}->{b}" for a, b in zip(self.pairs["pre"], self.pairs["post"])]

    def _free(self, x: torch.Tensor) -> torch.Tensor:
        return x if bool(self.free.all()) else torch.where(self.free, x, x.detach())

    def sign(self) -> torch.Tensor:
        """sigma per pair (P,), in (-1, 1); +1 excitatory."""
        return torch.tanh(self._free(self.a))

    def scale(self) -> torch.Tensor:
        """Weight scale per pair (P,), >= 0 (1 = c302's weights)."""
        return torch.exp(self._free(self.log_m))

    def forward(self) -> dict[str, torch.Tensor]:
        """``{"w_syn": (2C,)}``: original rows then twins (see the module docstring)."""
        fitted = self.index >= 0
        idx = self.index.clamp_min(0)
        p_exc = torch.where(fitted, (1.0 + self.sign()[idx]) / 2, self.fixed_exc)
        m = torch.where(fitted, self.scale()[idx], torch.ones_like(self.w0))
        w = self.w0 * m
        exc_row_is_orig = self.s0_conn > 0
        w_orig = torch.where(exc_row_is_orig, w * p_exc, w * (1 - p_exc))
        w_twin = torch.where(exc_row_is_orig, w * (1 - p_exc), w * p_exc)
        return {"w_syn": torch.cat([w_orig, w_twin])}

    def penalty(self, lam: float = 1.0) -> torch.Tensor:
        """``lam`` times the mean over transmitter-constrained pairs of ((sigma - e)/2)^2
        (0 if no pair is constrained)."""
        on = self.expected != 0
        if not bool(on.any()):
            return self.a.sum() * 0.0
        d = (self.sign()[on] - self.expected[on]) / 2
        return lam * (d * d).mean()

    def table(self) -> pd.DataFrame:
        """One row per pair: pre, post, c302_sign, transmitter, expected_sign, n_connections,
        contacts, fitted scale and sign, ``flipped`` (sign differs from c302's) and
        ``disagrees`` (differs from a constrained transmitter sign)."""
        df = self.pairs.copy()
        s = self.sign().detach().numpy()
        df["scale"] = self.scale().detach().numpy()
        df["sign"] = s
        df["flipped"] = np.sign(s) != df["c302_sign"].to_numpy()
        e = df["expected_sign"].to_numpy()
        df["disagrees"] = (e != 0) & (np.sign(s) != e)
        return df

    def write(self, net: Network | None = None) -> Network:
        """Copy the current weights into ``net`` (default the polarity network) and tag
        ``w_syn`` as fitted."""
        net = net or self.net
        with torch.no_grad():
            net.params["w_syn"].copy_(self()["w_syn"])
        return net


def flipped_polarities(pol: SynapticPolarity, reference: str = "c302") -> dict:
    """Pairs whose fitted sign differs from ``reference`` (``"c302"``: the model's starting
    sign; ``"transmitter"``: the Wang 2024 expected sign, constrained pairs only).

    Returns ``{"count": int, "of": number of pairs compared, "flipped": ["AVA->AVB (ACh,
    c302 +1, fitted -0.93)", ...], "table": DataFrame of those rows}``."""
    if reference not in ("c302", "transmitter"):
        raise PolarityError(f"reference={reference!r}; choose 'c302' or 'transmitter'")
    df = pol.table()
    col = "flipped" if reference == "c302" else "disagrees"
    n = len(df) if reference == "c302" else int((df["expected_sign"] != 0).sum())
    rows = df[df[col]]
    lines = [f"{r.pre}->{r.post} ({r.transmitter or 'unknown'}, c302 {r.c302_sign:+d}, "
             f"fitted {r.sign:+.2f})" for r in rows.itertuples()]
    return {"count": len(rows), "of": n, "flipped": lines, "table": rows.reset_index(drop=True)}


def fit_polarity(pol: SynapticPolarity, stimulus, duration_ms: float, target_v: torch.Tensor,
                 record, *, epochs: int = 40, lr: float = 0.1, lam: float = 0.0,
                 dt_ms: float | None = None, show_progress: bool = False) -> list[dict]:
    """Adam on the weight scales and signs (exact gradients, the circuit's adjoint) against a
    target trace ``target_v`` (T, K) of the cells ``record``: loss = trace MSE (mV^2) +
    ``pol.penalty(lam)``. Short runs only (the network is chaotic: use windows of a few ms to
    tens of ms). Returns the history (epoch, loss, mse, penalty); the best epoch's parameters are
    left in ``pol``."""
    from wormlab.fit._losses import trace_mse
    from wormlab.runs import progress

    dt = dt_ms or circuit.DEFAULT_DT_MS
    opt = torch.optim.Adam(pol.parameters(), lr=lr)
    hist, best, best_state = [], math.inf, None
    bar = progress(total=epochs, desc="fit polarity", disable=not show_progress)
    for ep in range(epochs):
        opt.zero_grad()
        r = circuit.simulate(pol.net, stimulus, duration_ms, dt, record=list(record),
                             params=pol(), check_every=0)
        mse = trace_mse(r.v_mV, target_v).sum()
        pen = pol.penalty(lam) if lam else mse * 0.0
        loss = mse + pen
        if not bool(torch.isfinite(loss)):
            raise circuit.CircuitBlowUpError(f"fit_polarity: loss {float(loss)} at epoch {ep}")
        loss.backward()
        lv = float(loss.detach())
        if lv < best:
            best = lv
            best_state = {k: v.detach().clone() for k, v in pol.state_dict().items()}
        opt.step()
        hist.append({"epoch": ep + 1, "loss": lv, "mse": float(mse.detach()),
                     "penalty": float(pen.detach())})
        bar.update(1)
    bar.close()
    if best_state is not None:
        pol.load_state_dict(best_state)
    return hist


# ------------------------------------------------------------------ real data: correlation fit
#: fields of a polarity-fit config (YAML/JSON) and their defaults
POLARITY_CONFIG = {
    "name": None,            # run folder name (required)
    "params": None,          # parameter file to start from (wormlab.fit.save_params); None = c302
    "cells": None,           # without "params": a c302 sub-circuit (None = all 397 cells)
    "target": {"kind": "correlation", "recording": "kato2015", "worm": 0, "max_neurons": 40},
    "stimulus": "c302",
    "window_ms": 100.0,
    "n_windows": 3,          # simulated windows per epoch (gradient cut at each edge)
    "discard_windows": 1,    # the first ones are the transient: simulated without gradient
    "level": "class",
    "glutamate": "free",
    "sign_init": 0.95,
    "lam": 1.0,              # transmitter penalty weight
    "epochs": 12,
    "lr": 0.2,
    "out_dir": None,         # default data/cache/fit/<name>
}


def _polarity_config(config) -> dict:
    from pathlib import Path

    if isinstance(config, (str, Path)):
        import yaml

        path = Path(config)
        try:
            d = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PolarityError(f"polarity config {path}: cannot read it ({exc})") from exc
    else:
        d = dict(config)
    bad = sorted(set(d) - set(POLARITY_CONFIG))
    if bad:
        raise PolarityError(f"polarity config: unknown field(s) {bad}; valid: "
                            f"{sorted(POLARITY_CONFIG)}")
    cfg = {**POLARITY_CONFIG, **d}
    if not cfg["name"]:
        raise PolarityError("polarity config: 'name' is required")
    if not 0 <= int(cfg["discard_windows"]) < int(cfg["n_windows"]):
        raise PolarityError(f"polarity config: discard_windows must be in [0, n_windows="
                            f"{cfg['n_windows']}), got {cfg['discard_windows']!r}")
    if int(cfg["epochs"]) < 0 or not float(cfg["lr"]) > 0 or float(cfg["lam"]) < 0:
        raise PolarityError("polarity config: epochs >= 0, lr > 0 and lam >= 0 are required")
    return cfg


def run_polarity_fit(config, *, show_progress: bool = True) -> dict:
    """Fit class-level (or per-connection) synaptic scales and signs of a network to the
    correlation matrix of a real recording's identified neurons, with the transmitter penalty.

    Each epoch simulates ``n_windows`` windows of ``window_ms`` from the initial state (the
    first ``discard_windows`` without gradient), the loss is the mean over the other windows
    of :func:`~wormlab.fit.correlation_mse` plus ``pol.penalty(lam)``; Adam on ``(log_m, a)``.
    Resumable: the parameters, Adam's moments and the history are written atomically after
    every epoch to ``<out>/polarity_state.safetensors``; re-running continues. Writes
    ``<out>/polarity.csv`` (the pair table at the best epoch) and ``<out>/polarity_result.json``
    (history, flips vs c302 and vs the transmitters). Returns the result dict."""
    import json
    import time
    from pathlib import Path

    from wormlab.fit._fit import _correlation_target, _shift
    from wormlab.fit._losses import correlation_mse
    from wormlab.runs import atomic_path, emit_json, progress

    cfg = _polarity_config(config)
    if cfg["params"]:
        from wormlab.fit._registry import load_params

        base = load_params(cfg["params"])
    else:
        base = circuit.build_network(**({"cells": tuple(cfg["cells"])} if cfg["cells"] else {}))
    net = polarity_network(base)
    pol = SynapticPolarity(net, level=cfg["level"], glutamate=cfg["glutamate"],
                           sign_init=float(cfg["sign_init"]))
    if cfg["out_dir"]:
        out = Path(cfg["out_dir"])
    else:
        from wormlab.paths import cache_dir

        out = cache_dir("fit", cfg["name"])
    out.mkdir(parents=True, exist_ok=True)
    target, record, label = _correlation_target(cfg["target"], net)
    stim = circuit.Stimulus.from_any(circuit.default_stimulus(net) if cfg["stimulus"] == "c302"
                                     else cfg["stimulus"])
    W, n, skip = float(cfg["window_ms"]), int(cfg["n_windows"]), int(cfg["discard_windows"])
    lam = float(cfg["lam"])
    opt = torch.optim.Adam([pol.log_m, pol.a], lr=float(cfg["lr"]))
    key = json.loads(json.dumps({k: v for k, v in cfg.items() if k not in ("epochs", "out_dir")},
                                default=str))
    state = out / "polarity_state.safetensors"
    hist, best = [], {"loss": math.inf, "epoch": 0}
    best_t = {"log_m": pol.log_m.detach().clone(), "a": pol.a.detach().clone()}
    if state.exists():
        from wormlab.io import read_safetensors
        from wormlab.runs import remove_orphan_tmp

        remove_orphan_tmp(out)
        t, md = read_safetensors(state, "polarity checkpoint")
        meta = json.loads(md["meta"])
        if meta["config"] != key:
            raise PolarityError(f"checkpoint {state} belongs to another configuration; use "
                                "another name/out_dir or delete it")
        with torch.no_grad():
            pol.log_m.copy_(t["log_m"])
            pol.a.copy_(t["a"])
        for p, nm in ((pol.log_m, "log_m"), (pol.a, "a")):
            opt.state[p] = {"step": t[f"step_{nm}"], "exp_avg": t[f"m_{nm}"].clone(),
                            "exp_avg_sq": t[f"v_{nm}"].clone()}
        best_t = {"log_m": t["best_log_m"].clone(), "a": t["best_a"].clone()}
        hist, best = meta["history"], meta["best"]
    start_epoch = len(hist)
    bar = progress(total=int(cfg["epochs"]), initial=start_epoch, desc=f"polarity {cfg['name']}",
                   disable=not show_progress)
    t_run = time.perf_counter()
    for ep in range(start_epoch, int(cfg["epochs"]) + 1):  # the last pass only scores
        opt.zero_grad()
        params = pol()
        y = net.initial_state(1)
        mse = 0.0
        for k in range(n):
            grad = k >= skip and ep < int(cfg["epochs"])
            with torch.set_grad_enabled(grad):
                r = circuit.simulate(net, _shift(stim, k * W), W, record=record, y0=y.detach(),
                                     params=params if grad else {k2: v.detach() for k2, v in
                                                                 params.items()},
                                     check_every=0)
            if k >= skip:
                mse = mse + correlation_mse(r.v_mV, target).sum() / (n - skip)
            y = r.y_final
        pen = pol.penalty(lam) if lam else torch.zeros((), dtype=torch.float64)
        loss = mse + pen
        lv = float(loss.detach())
        if not math.isfinite(lv):
            raise circuit.CircuitBlowUpError(f"run_polarity_fit: loss {lv} at epoch {ep}")
        rec = {"epoch": ep, "loss": lv, "corr_mse": float(mse.detach()),
               "penalty": float(pen.detach()),
               "flipped_vs_c302": int(flipped_polarities(pol)["count"]),
               "disagree_transmitter": int(flipped_polarities(pol, "transmitter")["count"]),
               "wall_s": time.perf_counter() - t_run}
        if lv < best["loss"]:
            best = {"loss": lv, "epoch": ep}
            best_t = {"log_m": pol.log_m.detach().clone(), "a": pol.a.detach().clone()}
        hist.append(rec)
        if ep == int(cfg["epochs"]):
            break
        loss.backward()
        opt.step()
        tensors = {"log_m": pol.log_m, "a": pol.a, "best_log_m": best_t["log_m"],
                   "best_a": best_t["a"]}
        for p, nm in ((pol.log_m, "log_m"), (pol.a, "a")):
            s = opt.state[p]
            tensors.update({f"step_{nm}": torch.as_tensor(s["step"]).reshape(()),
                            f"m_{nm}": s["exp_avg"], f"v_{nm}": s["exp_avg_sq"]})
        from safetensors.torch import save_file

        with atomic_path(state) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                      metadata={"meta": json.dumps({"config": key, "history": hist,
                                                    "best": best})})
        bar.update(1)
        bar.set_postfix(loss=f"{lv:.4g}", flips=rec["flipped_vs_c302"])
    bar.close()
    with torch.no_grad():
        pol.log_m.copy_(best_t["log_m"])
        pol.a.copy_(best_t["a"])
    table = pol.table()
    with atomic_path(out / "polarity.csv") as tmp:
        table.to_csv(tmp, index=False)
    flips = flipped_polarities(pol)
    disagree = flipped_polarities(pol, "transmitter")
    res = {"name": cfg["name"], "data": label, "config": key, "best": best, "history": hist,
           "pairs": len(table), "constrained_pairs": disagree["of"],
           "flipped_vs_c302": {"count": flips["count"], "of": flips["of"],
                               "pairs": flips["flipped"]},
           "disagree_with_transmitter": {"count": disagree["count"], "of": disagree["of"],
                                         "pairs": disagree["flipped"]},
           "out_dir": str(out)}
    emit_json(res, out / "polarity_result.json", echo=False)
    return res
