"""The c302 C1 network as a torch module with physical-unit parameters."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wormlab.circuit import _mechanisms as mech
from wormlab.circuit._nml import CaGate, CellType, Channel, Gate, NetSpec, SynapseType

# Cell-parameter names and units of the C1 mechanisms (derived from them; plug-ins add more).
CELL_PARAMS: dict[str, str] = {p.name: p.unit for m in mech.C1_CELL_MECHANISMS for p in m.params}
# State rows of the default C1 layout (derived: V, gates, custom states, synaptic activation).
STATE_NAMES = ("v", *(g.state for m in mech.C1_CELL_MECHANISMS for g in m.gates),
               *(s for m in mech.C1_CELL_MECHANISMS for s in m.states))
SHARING = ("type", "class", "cell")


class CircuitBlowUpError(FloatingPointError):
    """A NaN/Inf appeared in the state or a gradient; the message names time, cell, values."""


@dataclass(frozen=True)
class NetworkConfig:
    """How to build a :class:`Network` (JSON-able).

    Args:
        source: ``"c302"`` (a c302-generated C1 ``*.net.nml``: exact c302 wiring) or
            ``"connectome"`` (wiring from :func:`wormlab.connectome.load` with C1 cells).
        dataset: connectome dataset when ``source="connectome"`` (Cook 2019 by default).
        nml_path: an explicit ``*.net.nml``; empty means the cached c302 C1 Full network.
        share: cell parameters shared per cell ``"type"`` (neuron/muscle, as in c302),
            per neuron ``"class"`` (AVAL+AVAR; muscles per quadrant) or per ``"cell"``.
        syn_kinetics: ``"shared"`` groups synapse types whose (delta, Vth, k) are equal so one
            activation s per presynaptic cell serves all of them (exact for C1: all four types
            have identical kinetics); ``"per_type"`` keeps one s per type and cell.
        cells: optional subset of cell names (a sub-circuit); empty = all.
        mechanisms: names of extra mechanisms from :data:`wormlab.circuit.MECHANISMS` added to
            C1's (e.g. ``("k_extra",)``); objects go to ``build_network(mechanisms=...)``.
    """

    source: str = "c302"
    dataset: str = "cook2019"
    nml_path: str = ""
    share: str = "type"
    syn_kinetics: str = "shared"
    cells: tuple[str, ...] = ()
    mechanisms: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self))


_C1_CHANNELS = frozenset({"Leak", "k_slow", "k_fast", "ca_boyle"})


def _extra_channels(spec: NetSpec) -> dict[str, Channel]:
    """Channels the file's cell types use beyond C1's four (in file order), each checked to be
    a one-gate HH channel (:class:`~wormlab.circuit._mechanisms.ChannelHH`)."""
    used = dict.fromkeys(c for ct in spec.cell_types.values() for c in ct.g_mS_per_cm2)
    out = {}
    for cid in used:
        if cid in _C1_CHANNELS:
            continue
        ch = spec.channels[cid]
        gate = next(iter(ch.gates.values()), None)
        if ch.ca_gate is not None or len(ch.gates) != 1 or gate.instances != 1 \
                or gate.rate != 1.0:
            raise ValueError(
                f"channel {cid!r}: beyond C1's channels only one-gate HH channels are read "
                "(one gateHHtauInf, instances 1, fixedTimeCourse, HHSigmoidVariable rate 1); "
                f"it has {len(ch.gates)} gate(s)"
                + (", a Ca gate" if ch.ca_gate is not None else "")
                + (f", instances {gate.instances}, rate {gate.rate}" if gate else ""))
        out[cid] = ch
    return out


def _cell_values(ct: CellType, ch: dict[str, Channel], pool: dict,
                 extra: dict[str, Channel] | None = None,
                 e_ref: dict[str, float] | None = None) -> dict[str, float]:
    def gate(cid: str, gid: str) -> Gate:
        g = ch[cid].gates[gid]
        if g.rate != 1.0:
            raise ValueError(f"{cid}.{gid}: steady-state rate {g.rate} != 1 is not supported")
        return g

    extra = extra or {}
    need = set(_C1_CHANNELS)
    if not need <= set(ct.g_mS_per_cm2) or not set(ct.g_mS_per_cm2) <= need | set(extra):
        raise ValueError(f"cell {ct.id}: channels {sorted(ct.g_mS_per_cm2)}, expected "
                         f"{sorted(need)} (c302 parameter set C/C1)"
                         + (f" and optionally {sorted(extra)}" if extra else ""))
    n, p, q = gate("k_slow", "n"), gate("k_fast", "p"), gate("k_fast", "q")
    e, f = gate("ca_boyle", "e"), gate("ca_boyle", "f")
    if (n.instances, p.instances, q.instances, e.instances, f.instances) != (1, 4, 1, 2, 1):
        raise ValueError("gate exponents differ from C1 (n, p^4 q, e^2 f)")
    h: CaGate = ch["ca_boyle"].ca_gate
    out = {
        "c_m": ct.c_uF_per_cm2,
        "g_leak": ct.g_mS_per_cm2["Leak"], "e_leak": ct.erev_mV["Leak"],
        "g_kslow": ct.g_mS_per_cm2["k_slow"], "e_kslow": ct.erev_mV["k_slow"],
        "g_kfast": ct.g_mS_per_cm2["k_fast"], "e_kfast": ct.erev_mV["k_fast"],
        "g_ca": ct.g_mS_per_cm2["ca_boyle"], "e_ca": ct.erev_mV["ca_boyle"],
        "tau_n": n.tau_ms, "mid_n": n.midpoint_mV, "scale_n": n.scale_mV,
        "tau_p": p.tau_ms, "mid_p": p.midpoint_mV, "scale_p": p.scale_mV,
        "tau_q": q.tau_ms, "mid_q": q.midpoint_mV, "scale_q": q.scale_mV,
        "tau_e": e.tau_ms, "mid_e": e.midpoint_mV, "scale_e": e.scale_mV,
        "tau_f": f.tau_ms, "mid_f": f.midpoint_mV, "scale_f": f.scale_mV,
        "h_alpha": h.alpha, "h_ca_half": h.ca_half_mM, "h_k": h.k_mM,
        "tau_ca": pool["decay_ms"], "rho_ca": pool["rho_SI"],
    }
    # a channel beyond C1's: its density on this cell type (0 where the type lacks it; the
    # reversal then is that of the first type that has it, so the value stays well defined)
    for cid, c in extra.items():
        x = next(iter(c.gates.values()))
        out.update({f"g_{cid}": ct.g_mS_per_cm2.get(cid, 0.0),
                    f"e_{cid}": ct.erev_mV.get(cid, (e_ref or {}).get(cid, 0.0)),
                    f"tau_{cid}": x.tau_ms, f"mid_{cid}": x.midpoint_mV,
                    f"scale_{cid}": x.scale_mV})
    return out


def _cell_class(name: str, kind: str) -> str:
    if kind == "muscle":
        return name[:3]  # MDL/MDR/MVL/MVR quadrant
    from wormlab.connectome import neuron_class

    try:
        return neuron_class(name)
    except Exception:  # a cell cect does not know: its own class
        return name


class Network(nn.Module):
    """c302 C1 network: single-compartment cells, graded synapses, gap junctions.

    The network is assembled from :mod:`mechanisms <wormlab.circuit._mechanisms>`: each declares
    its parameters, gates and states, and the network builds the state layout
    (:attr:`layout`: V, every gate, every custom state, the synaptic activations) from the
    mechanisms present. All parameters are ``nn.Parameter`` in physical units; cell parameters
    have shape ``(G,)`` with ``G`` groups (``share``); after :meth:`batched` every parameter
    gains a leading batch dimension ``B`` so B parameter sets run at once.

    ``forward(t, y)`` is the ODE right-hand side (no stimulus) for ``torchdiffeq.odeint``:
    ``y`` has shape ``(B, S, N)`` with ``S = len(net.state_names)``.
    """

    def __init__(self, spec: NetSpec, share: str = "type", syn_kinetics: str = "shared",
                 mechanisms=()):
        super().__init__()
        if share not in SHARING:
            raise ValueError(f"share={share!r}; choose one of {SHARING}")
        if syn_kinetics not in ("shared", "per_type"):
            raise ValueError(f"syn_kinetics={syn_kinetics!r}; choose 'shared' or 'per_type'")
        self.spec = spec
        self.share = share
        self.names: list[str] = list(spec.cells)
        self.n_cells = len(self.names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.kinds = ["muscle" if "Muscle" in t else "intestine" if "Intestin" in t
                      else "neuron" for t in spec.cell_type]
        self.classes = [_cell_class(n, k) for n, k in zip(self.names, self.kinds)]

        # --- mechanisms: C1's, then plug-ins; parameter names must be unique
        extra = mech.resolve(mechanisms)
        # channels the file adds to C1's (e.g. an exported adaptation conductance) become
        # mechanisms, unless a given mechanism declares the same gate and conductance
        file_channels = _extra_channels(spec)
        for cid, ch in file_channels.items():
            auto = mech.ChannelHH(channel=cid, gate=next(iter(ch.gates)))
            if not any(auto.stands_in(m) for m in extra):
                extra.append(auto)
        e_ref: dict[str, float] = {}
        for ct in spec.cell_types.values():
            for cid in file_channels:
                if cid in ct.erev_mV:
                    e_ref.setdefault(cid, ct.erev_mV[cid])
        self.cell_mechanisms: list[mech.Mechanism] = [*mech.C1_CELL_MECHANISMS, *extra]
        self.connection_mechanisms = list(mech.C1_CONNECTION_MECHANISMS)
        seen: dict[str, str] = {}
        for m in self.cell_mechanisms + self.connection_mechanisms:
            for p in m.params:
                if p.name in seen:
                    raise ValueError(f"parameter {p.name!r} of mechanism {m.name!r} is already "
                                     f"declared by {seen[p.name]!r}")
                seen[p.name] = m.name
        self.param_info: dict[str, mech.Param] = {
            p.name: p for m in self.cell_mechanisms + self.connection_mechanisms
            for p in m.params}
        self.param_mechanism = seen
        self.provenance: dict[str, dict] = {
            k: {"provenance": p.provenance, "source": p.source}
            for k, p in self.param_info.items()}

        # --- cell parameter groups
        if share == "type":
            keys = list(spec.cell_type)
        elif share == "class":
            keys = [f"{spec.cell_type[i]}:{self.classes[i]}" for i in range(self.n_cells)]
        else:
            keys = list(self.names)
        group_names = list(dict.fromkeys(keys))
        gidx = [group_names.index(k) for k in keys]
        self.group_names = group_names
        self.register_buffer("group", torch.tensor(gidx, dtype=torch.long), persistent=False)
        first = {g: i for i, g in reversed(list(enumerate(gidx)))}
        values: dict[str, list[float]] = {}
        for g in range(len(group_names)):
            i = first[g]
            ct = spec.cell_types[spec.cell_type[i]]
            v = _cell_values(ct, spec.channels, spec.ca_pool, file_channels, e_ref)
            for k, x in v.items():
                values.setdefault(k, []).append(x)
        self.cell_param_names: list[str] = []
        params: dict[str, nn.Parameter] = {}
        for m in self.cell_mechanisms:
            for p in m.params:
                if p.name in values:  # the file's value (C1, or a channel it adds)
                    vals = values[p.name]
                elif p.default is not None:
                    vals = [p.default] * len(group_names)
                else:
                    raise ValueError(f"parameter {p.name!r} of mechanism {m.name!r} has no "
                                     "default and the NeuroML file does not define it")
                params[p.name] = nn.Parameter(torch.tensor(vals, dtype=torch.float64))
                self.cell_param_names.append(p.name)
        self.params = nn.ParameterDict(params)
        # cells each mechanism acts on (None: all)
        self.mechanism_masks: dict[str, torch.Tensor | None] = {}
        for m in self.cell_mechanisms:
            if m.where:
                sel = set(m.where)
                mask = [float(n in sel or c in sel or k in sel)
                        for n, c, k in zip(self.names, self.classes, self.kinds)]
                if not any(mask):
                    raise KeyError(f"mechanism {m.name!r}: where={m.where} matches no cell, "
                                   "class or kind of this network")
                self.register_buffer(f"mask_{m.name}", torch.tensor(mask, dtype=torch.float64),
                                     persistent=False)
                self.mechanism_masks[m.name] = f"mask_{m.name}"
            else:
                self.mechanism_masks[m.name] = None

        area = [spec.cell_types[t].area_um2 for t in spec.cell_type]
        self.register_buffer("area_um2", torch.tensor(area, dtype=torch.float64))
        self.register_buffer("v_init", torch.tensor(
            [spec.cell_types[t].v_init_mV for t in spec.cell_type], dtype=torch.float64))
        self.register_buffer("ca_init", torch.tensor(
            [spec.cell_types[t].ca_init_mM for t in spec.cell_type], dtype=torch.float64))
        self.register_buffer("ca_rest", torch.tensor(spec.ca_pool["resting_mM"],
                                                     dtype=torch.float64))

        # --- chemical synapses
        st: list[SynapseType] = spec.syn_types
        self.syn_type_names = [s.id for s in st]
        if syn_kinetics == "shared":
            kin_keys = [(s.delta_mV, s.vth_mV, s.k_per_ms) for s in st]
            uniq = list(dict.fromkeys(kin_keys))
            kin_of_type = [uniq.index(k) for k in kin_keys]
        else:
            uniq = [(s.delta_mV, s.vth_mV, s.k_per_ms) for s in st]
            kin_of_type = list(range(len(st)))
        self.n_kin = max(1, len(uniq))
        self.register_buffer("kin_of_type", torch.tensor(kin_of_type, dtype=torch.long),
                             persistent=False)
        self.params["g_syn"] = nn.Parameter(torch.tensor([s.g_nS for s in st], dtype=torch.float64))
        self.params["e_syn"] = nn.Parameter(torch.tensor([s.erev_mV for s in st],
                                                         dtype=torch.float64))
        self.params["syn_delta"] = nn.Parameter(torch.tensor([u[0] for u in uniq] or [5.0],
                                                             dtype=torch.float64))
        self.params["syn_vth"] = nn.Parameter(torch.tensor([u[1] for u in uniq] or [0.0],
                                                           dtype=torch.float64))
        self.params["syn_k"] = nn.Parameter(torch.tensor([u[2] for u in uniq] or [0.025],
                                                         dtype=torch.float64))
        chem = np.array(spec.chem, dtype=np.float64).reshape(-1, 4)
        self.register_buffer("syn_pre", torch.tensor(chem[:, 0], dtype=torch.long),
                             persistent=False)
        self.register_buffer("syn_post", torch.tensor(chem[:, 1], dtype=torch.long),
                             persistent=False)
        self.register_buffer("syn_type", torch.tensor(chem[:, 2], dtype=torch.long),
                             persistent=False)
        self.params["w_syn"] = nn.Parameter(torch.tensor(chem[:, 3], dtype=torch.float64))

        # --- gap junctions (each NeuroML electrical connection acts on both of its cells)
        gaps = np.array(spec.gaps, dtype=np.float64).reshape(-1, 4)
        self.register_buffer("gap_a", torch.tensor(gaps[:, 0], dtype=torch.long),
                             persistent=False)
        self.register_buffer("gap_b", torch.tensor(gaps[:, 1], dtype=torch.long),
                             persistent=False)
        self.register_buffer("gap_type", torch.tensor(gaps[:, 2], dtype=torch.long),
                             persistent=False)
        self.gap_type_names = [g[0] for g in spec.gap_types]
        self.params["g_gap"] = nn.Parameter(torch.tensor([g[1] for g in spec.gap_types] or [0.0],
                                                         dtype=torch.float64))
        self.params["w_gap"] = nn.Parameter(torch.tensor(gaps[:, 3], dtype=torch.float64))

        # --- state layout, from the mechanisms present
        gates = tuple(g for m in self.cell_mechanisms for g in m.gates)
        custom = tuple(s for m in self.cell_mechanisms for s in m.states)
        syn = ("s",) if self.n_kin == 1 else tuple(f"s{k}" for k in range(self.n_kin))
        names = ("v", *(g.state for g in gates), *custom, *syn)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"state names declared twice by the mechanisms: {dup}")
        self.layout = mech.StateLayout(
            names=names, gates=gates, custom=custom, syn=syn,
            nonnegative=tuple(s for m in self.cell_mechanisms for s in m.nonnegative))
        self._nonneg_rows = [names.index(s) for s in self.layout.nonnegative]

    # ------------------------------------------------------------------ construction helpers
    @property
    def n_states(self) -> int:
        return len(self.layout.names)

    @property
    def state_names(self) -> tuple[str, ...]:
        """Row names of the state ``y`` (B, S, N): "v", the gates, custom states, "s"..."""
        return self.layout.names

    def state_index(self, name: str) -> int:
        """Row of state ``name`` in ``y``; unknown names raise a KeyError with suggestions."""
        return self.layout.index(name)

    @property
    def batch_size(self) -> int | None:
        """Leading batch dimension of the parameters (None when unbatched)."""
        p = self.params["g_leak"]
        return p.shape[0] if p.dim() == 2 else None

    @property
    def dtype(self) -> torch.dtype:
        return self.params["g_leak"].dtype

    @property
    def device(self) -> torch.device:
        return self.params["g_leak"].device

    def indices(self, names) -> list[int]:
        """Cell indices of ``names``; unknown names raise a KeyError with suggestions."""
        out = []
        for n in names:
            if n not in self.index:
                import difflib

                close = difflib.get_close_matches(str(n), self.names, n=3)
                raise KeyError(f"unknown cell {n!r}" + (f"; did you mean {close}?" if close
                                                        else f" ({self.n_cells} cells)"))
            out.append(self.index[n])
        return out

    def batched(self, batch: int) -> Network:
        """A copy whose parameters have a leading dimension ``batch`` (independent copies)."""
        if self.batch_size is not None:
            raise ValueError("network is already batched")
        import copy

        new = copy.deepcopy(self)
        for k, p in new.params.items():
            new.params[k] = nn.Parameter(p.detach().unsqueeze(0).repeat(
                batch, *([1] * p.dim())).clone())
        return new

    def perturbed(self, batch: int, rel_std: float = 0.1, seed: int = 0,
                  names: tuple[str, ...] = ("g_leak", "g_kslow", "g_kfast", "g_ca", "g_syn",
                                            "g_gap", "w_syn", "w_gap")) -> Network:
        """``batch`` parameter sets: each named parameter times lognormal(0, rel_std) noise
        (seeded). Set 0 keeps the original values."""
        new = self.batched(batch)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for k in names:
                p = new.params[k]
                noise = torch.exp(rel_std * torch.randn(p.shape, generator=gen,
                                                        dtype=torch.float64)).to(p.dtype)
                noise[0] = 1.0
                p.mul_(noise)
        return new

    def initial_state(self, batch: int = 1, overrides: dict | None = None) -> torch.Tensor:
        """c302 initial state: V = initMembPotential, gates at steady state, custom states from
        their mechanisms ([Ca] = initial concentration), synaptic activations zero."""
        P = self.materialize(overrides)
        dt = self.dtype
        v = self.v_init.to(dt).expand(batch, -1)
        y = torch.zeros(batch, self.n_states, self.n_cells, dtype=dt, device=v.device)
        y[:, 0] = v
        y[:, self.layout.gate_slice] = self.gate_inf(P, v)
        for m in self.cell_mechanisms:
            for s, x in m.initial(P, v, self).items():
                y[:, self.layout.index(s)] = x
        return y

    # ------------------------------------------------------------------ parameter metadata
    def parameter_table(self):
        """One row per parameter: mechanism, unit, kind, sharing, shape, current value range,
        bounds (with their source), provenance and value source. A pandas DataFrame."""
        import pandas as pd

        rows = []
        for k, p in self.params.items():
            info = self.param_info[k]
            x = p.detach().double()
            rows.append({
                "parameter": k, "mechanism": self.param_mechanism[k], "unit": info.unit,
                "kind": info.kind,
                "sharing": (f"cell ({self.share}: {len(self.group_names)} groups)"
                            if info.sharing == "cell" else info.sharing),
                "shape": tuple(p.shape), "min": float(x.min()), "max": float(x.max()),
                "lower": info.lower, "upper": info.upper,
                "open_lower": info.kind in mech.BOUND_OPEN_LOWER,
                "bounds_source": info.bounds_source,
                "provenance": self.provenance[k]["provenance"],
                "source": self.provenance[k]["source"],
                "in_bounds": bool(self.within_bounds(k).all()),
            })
        return pd.DataFrame(rows).set_index("parameter")

    def mechanism_table(self):
        """One row per mechanism: where it acts, its gates and states, parameters (with units),
        equation and source. A pandas DataFrame."""
        import pandas as pd

        rows = []
        for m in self.cell_mechanisms + self.connection_mechanisms:
            where = (", ".join(m.where) if m.where else
                     ("connections" if m in self.connection_mechanisms else "all cells"))
            states = [g.state for g in m.gates] + list(m.states)
            if m.name == "graded_synapse":
                states = list(self.layout.syn)
            rows.append({"mechanism": m.name, "acts on": where, "states": ", ".join(states),
                         "parameters": ", ".join(f"{p.name} [{p.unit}]" for p in m.params),
                         "equation": m.equation, "source": m.source})
        return pd.DataFrame(rows).set_index("mechanism")

    def bounds(self, name: str) -> tuple[float, float]:
        """(lower, upper) of parameter ``name`` in its unit (for slope kinds: of |x|)."""
        info = self.param_info[name]
        return info.lower, info.upper

    def within_bounds(self, name: str) -> torch.Tensor:
        """Elementwise: is parameter ``name`` inside its bounds (open lower bound where the
        kind says so, e.g. 0 < g)?"""
        info = self.param_info[name]
        x = self.params[name].detach()
        if info.kind in mech.ABS_KINDS:
            x = x.abs()
        lo, hi = info.lower, info.upper
        low_ok = x > lo if info.kind in mech.BOUND_OPEN_LOWER and lo == 0 else x >= lo
        # C1 sets some densities exactly to 0 (absent channels): 0 is allowed for weights only
        return low_ok & (x <= hi)

    def set_provenance(self, name: str, provenance: str, **info) -> None:
        """Tag parameter ``name`` (e.g. ``"fitted"`` with loss, data, date, run id)."""
        if name not in self.params:
            raise KeyError(f"unknown parameter {name!r}; known: {sorted(self.params)}")
        if provenance not in mech.PROVENANCE:
            raise ValueError(f"provenance {provenance!r}; choose from {mech.PROVENANCE}")
        self.provenance[name] = {**self.provenance[name], "provenance": provenance, **info}

    # ------------------------------------------------------------------ parameters -> tensors
    def materialize(self, overrides: dict | None = None) -> dict[str, torch.Tensor]:
        """Per-cell parameter tensors ``(..., N)`` and per-connection coefficients, built once
        per simulation so the time loop only gathers and scatters.

        Returns a dict with every cell parameter (per cell), ``area`` (um^2), ``gate_mid``,
        ``gate_inv_scale`` (1/mV), ``gate_tau`` (ms), each (..., G, N) for the gates of the
        layout; mechanism masks ``mask_<name>`` (N,); ``syn_g`` (nS) and ``syn_ge`` (nS mV) per
        connection (..., C); ``syn_src`` (C,) index into the flattened (K*N) synaptic
        activations; ``gap_g`` (nS, (..., 2E)) per directed gap edge with
        ``gap_dst``/``gap_src`` (2E,) and ``G_sum`` (nS, (..., N)).

        ``overrides`` maps parameter names to tensors used instead of ``self.params`` (for
        functional use: gradcheck, torch.func, finite differences).
        """
        p = dict(self.params.items())
        if overrides:
            unknown = set(overrides) - set(p)
            if unknown:
                raise KeyError(f"unknown parameters {sorted(unknown)}; known: {sorted(p)}")
            for k, v in overrides.items():
                if v.shape != p[k].shape:
                    raise ValueError(f"override {k}: shape {tuple(v.shape)} != "
                                     f"{tuple(p[k].shape)}")
            p.update(overrides)
        P: dict[str, torch.Tensor] = {}
        for k in self.cell_param_names:
            P[k] = p[k][..., self.group]
        gates = self.layout.gates
        P["gate_mid"] = torch.stack([P[g.mid] for g in gates], -2)
        P["gate_inv_scale"] = 1.0 / torch.stack([P[g.scale] for g in gates], -2)
        P["gate_tau"] = torch.stack([P[g.tau] for g in gates], -2)
        dt = self.dtype
        P["area"] = self.area_um2.to(dt)
        P["ca_rest"] = self.ca_rest.to(dt)
        for buf in self.mechanism_masks.values():
            if buf is not None:
                P[buf] = getattr(self, buf).to(dt)
        g = p["w_syn"] * p["g_syn"][..., self.syn_type]
        P["syn_g"] = g
        P["syn_ge"] = g * p["e_syn"][..., self.syn_type]
        P["syn_g_T"] = g.unsqueeze(-1) if g.dim() == 1 else g.t()
        P["syn_ge_T"] = (P["syn_ge"].unsqueeze(-1) if g.dim() == 1 else P["syn_ge"].t())
        P["syn_src"] = self.kin_of_type[self.syn_type] * self.n_cells + self.syn_pre
        P["syn_post"] = self.syn_post
        for k in ("syn_delta", "syn_vth", "syn_k"):
            P[k] = p[k].unsqueeze(-1)  # (..., K, 1) against (B, K, N)
        gv = p["w_gap"] * p["g_gap"][..., self.gap_type]
        # each NeuroML electrical connection (a, b) injects into a from b AND into b from a
        P["gap_g"] = torch.cat([gv, gv], -1)
        P["gap_dst"] = torch.cat([self.gap_a, self.gap_b])
        P["gap_src"] = torch.cat([self.gap_b, self.gap_a])
        P["gap_g_T"] = P["gap_g"].unsqueeze(-1) if gv.dim() == 1 else P["gap_g"].t()
        lead = gv.shape[:-1]
        P["G_sum"] = torch.zeros(*lead, self.n_cells, dtype=dt, device=gv.device).index_add(
            -1, P["gap_dst"], P["gap_g"])
        return P

    # ------------------------------------------------------------------ dynamics
    def states(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """State name -> (B, N) view of ``y``."""
        return {n: y[:, i] for i, n in enumerate(self.layout.names)}

    def drive(self, P, y, i_stim_nA=None):
        """Membrane drive terms shared by the ODE and the exponential step.

        Returns ``(A, Bc, aux)`` with dV/dt = (A - Bc V) / C_m (A in uA/cm^2, Bc in mS/cm^2)
        and ``aux`` holding terms mechanisms share (e.g. the Ca conductance) and the states.
        """
        v = y[:, 0]
        S = self.states(y)
        aux: dict = {"ca_rest": P["ca_rest"], "S": S}
        a = bc = None
        for m in self.cell_mechanisms:
            gc = m.conductance(P, S, v, aux)
            if gc is None:
                continue
            g, ge = gc
            mask = self.mechanism_masks[m.name]
            if mask is not None:
                g, ge = g * P[mask], ge * P[mask]
            a = ge if a is None else a + ge
            bc = g if bc is None else bc + g
        scale = mech.PA_TO_UA_PER_CM2_TIMES_AREA_UM2 / P["area"]
        bsz = y.shape[0]
        # chemical synapses: per connection s[pre] * w g (conductance) and * E (drive), summed
        # into the postsynaptic cell; one s per presynaptic cell and kinetic group
        # (connection-major layout: index_add along dim 0 is ~3x faster than along dim 2)
        s = y[:, self.layout.syn_slice]
        s_pre = s.reshape(bsz, -1).t()[P["syn_src"]]  # (C, B)
        contrib = torch.cat([s_pre * P["syn_g_T"], s_pre * P["syn_ge_T"]], 1)  # (C, 2B)
        syn = torch.zeros(self.n_cells, 2 * bsz, dtype=y.dtype, device=y.device).index_add(
            0, P["syn_post"], contrib)
        g_syn, ge_syn = syn[:, :bsz].t(), syn[:, bsz:].t()
        gap = torch.zeros(self.n_cells, bsz, dtype=y.dtype, device=y.device).index_add(
            0, P["gap_dst"], v.t()[P["gap_src"]] * P["gap_g_T"]).t()
        a = a + scale * (ge_syn + gap)
        bc = bc + scale * (g_syn + P["G_sum"])
        if i_stim_nA is not None:
            a = a + (mech.NA_TO_UA_PER_CM2_TIMES_AREA_UM2 / P["area"]) * i_stim_nA
        aux["s"] = s
        return a, bc, aux

    def gate_inf(self, P, v):
        """Steady states (B, G, N) of the layout's gates at voltage ``v`` (B, N)."""
        return torch.sigmoid((v.unsqueeze(1) - P["gate_mid"]) * P["gate_inv_scale"])

    def custom_derivative(self, P, y, aux) -> list[torch.Tensor]:
        """d/dt of the custom states, in layout order, each (B, N)."""
        v = y[:, 0]
        out = {}
        for m in self.cell_mechanisms:
            if m.states:
                d = m.derivative(P, aux["S"], v, aux)
                mask = self.mechanism_masks[m.name]
                for s in m.states:
                    out[s] = d[s] if mask is None else d[s] * P[mask]
        return [out[s] for s in self.layout.custom]

    def derivative(self, P, y, i_stim_nA=None) -> torch.Tensor:
        """dy/dt for state ``y`` (B, S, N) given materialized parameters ``P``."""
        a, bc, aux = self.drive(P, y, i_stim_nA)
        v = y[:, 0]
        dv = (a - bc * v) / P["c_m"]
        dg = (self.gate_inf(P, v) - y[:, self.layout.gate_slice]) / P["gate_tau"]
        dc = [d.unsqueeze(1) for d in self.custom_derivative(P, y, aux)]
        sinf, comp = mech.graded_s_inf(v.unsqueeze(1), P["syn_vth"], P["syn_delta"])
        ds = (sinf - aux["s"]) * P["syn_k"] / comp
        ds = torch.where(comp < mech.SYN_CLAMP, torch.zeros_like(ds), ds)
        return torch.cat([dv.unsqueeze(1), dg, *dc, ds], 1)

    def clamp_nonnegative(self, y: torch.Tensor) -> torch.Tensor:
        """NEURON's clamp of concentrations at 0 (states declared ``nonnegative``)."""
        rows = self._nonneg_rows
        if not rows:
            return y
        if len(rows) == 1:
            r = rows[0]
            return torch.cat([y[:, :r], y[:, r:r + 1].clamp_min(0.0), y[:, r + 1:]], 1)
        parts, last = [], 0
        for r in sorted(rows):
            parts += [y[:, last:r], y[:, r:r + 1].clamp_min(0.0)]
            last = r + 1
        return torch.cat([*parts, y[:, last:]], 1)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # torchdiffeq func
        return self.derivative(self.materialize(), y)


def save_parameters(net: Network, path: str | Path) -> None:
    """Write the parameters as safetensors (atomic)."""
    from safetensors.torch import save_file

    from wormlab.runs import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous() for k, v in net.params.items()}, str(tmp),
                  metadata={"share": net.share, "n_cells": str(net.n_cells)})


def load_parameters(net: Network, path: str | Path) -> Network:
    """Load parameters written by :func:`save_parameters` into ``net`` (shapes must match)."""
    from wormlab.circuit._params_io import read_parameter_file

    state = read_parameter_file(net, path)  # validated: names, shapes, finite, sign, format
    with torch.no_grad():
        for k, v in state.items():
            if k not in net.params:
                raise KeyError(f"{path}: unknown parameter {k!r}")
            if net.params[k].shape != v.shape:
                raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, network expects "
                                 f"{tuple(net.params[k].shape)}")
            net.params[k].copy_(v)
    return net
