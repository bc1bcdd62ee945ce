"""Mechanisms of the circuit as plug-ins: each declares its parameters, states and rates.

A :class:`Mechanism` is one small object: a channel, a calcium pool, the membrane of a cell kind,
a chemical synapse kind or a gap junction. It declares

* its parameters (:class:`Param`: unit, kind, sharing, biological bounds, source, provenance),
* its standard Hodgkin-Huxley gates (:class:`Gate`: sigmoid steady state, constant tau; the
  network integrates all gates of all mechanisms as one fused block),
* any other per-cell state variables it owns (``states``) with a pure derivative function,
* its membrane conductance ``g`` and driving term ``g*E`` (so dV/dt = (sum gE - sum g V)/C_m).

:class:`wormlab.circuit.Network` assembles the state layout (V, then every gate, then every custom
state, then the synaptic activations) from the mechanisms present; the integrators never index a
state row by a hard-coded number. Adding a mechanism (e.g. an extra K+ current on one neuron
class) is ``build_network(mechanisms=[...])`` and touches neither the network nor the solvers.

Sources: c302 0.12.1 ``cell_C.xml`` (channels, Boyle & Cohen 2008), the generated
``c302_C1_Full.net.nml`` (densities, Ca pool, synapses) and the NEURON mod files jNeuroML 0.14
writes from them. Bounds for fitting follow OpenWorm DD017 where it states them (conductance
densities 0-100 mS/cm^2, reversal potentials -100..+80 mV, time constants 0.01-10,000 ms,
concentrations > 0); the others are wormlab's choice and say so.

Conventions: V in mV, t in ms, conductance densities in mS/cm^2 (so g*(E-V) is uA/cm^2),
point conductances in nS (so g*(E-V) is pA), injected currents in nA, [Ca] in mM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

# nS -> mS/cm^2 and pA -> uA/cm^2 on a membrane of A um^2: x * 100 / A  (1e-6 / 1e-8)
PA_TO_UA_PER_CM2_TIMES_AREA_UM2 = 100.0
# nA -> uA/cm^2: x * 1e5 / A
NA_TO_UA_PER_CM2_TIMES_AREA_UM2 = 1e5
# NeuroML fixedFactorConcentrationModel: d[Ca]/dt = rho * J_Ca (SI). With rho in mol/(m A s),
# J in uA/cm^2 (= 1e-2 A/m^2) and d[Ca]/dt in mM/ms (= 1e3 mol/m^3/s):  rho * J * 1e-5.
RHO_SI_TO_MM_PER_MS = 1e-5
# gradedSynapse in the NEURON export: when 1 - s_inf < 1e-4, s is set to s_inf (and ds/dt=0).
SYN_CLAMP = 1e-4

# --------------------------------------------------------------------------- parameter metadata
# kind -> (lower, upper, unit, source). Open bounds (0 < g) are stored as their closed limit and
# flagged by BOUND_OPEN_LOWER.
BOUNDS: dict[str, tuple[float, float, str, str]] = {
    "conductance_density": (0.0, 100.0, "mS/cm^2", "DD017: 0 < g < 100 mS/cm^2"),
    "reversal": (-100.0, 80.0, "mV", "DD017: -100 .. +80 mV"),
    "time_constant": (0.01, 10_000.0, "ms", "DD017: 0.01 .. 10,000 ms"),
    "concentration": (0.0, math.inf, "mM", "DD017: > 0"),
    "capacitance": (0.1, 10.0, "uF/cm^2", "wormlab: 0.1 .. 10 uF/cm^2 around 1 (Hille)"),
    "midpoint": (-100.0, 80.0, "mV", "wormlab: gate midpoints inside the reversal range"),
    "slope": (0.1, 100.0, "mV", "wormlab: |slope| 0.1 .. 100 mV, sign fixed"),
    "point_conductance": (0.0, 10.0, "nS", "wormlab: 0 .. 10 nS per synapse/gap (C1 0.09 nS)"),
    "weight": (0.0, 1000.0, "1", "wormlab: contact-count scale, >= 0 (sign is in E_rev)"),
    "rate": (1e-5, 10.0, "1/ms", "wormlab: 1e-5 .. 10 /ms"),
    "fraction": (0.0, 1.0, "1", "wormlab: a fraction"),
    "rho": (0.0, 1.0, "mol/(m A s)", "wormlab: >= 0 (C1 2.389e-4)"),
    "concentration_slope": (0.0, 1.0, "mM", "wormlab: 0 < |k| <= 1 mM, sign fixed (C1 -1e-8)"),
}
BOUND_OPEN_LOWER = {"conductance_density", "concentration", "point_conductance",
                    "concentration_slope"}
# kinds whose bounds apply to |x| (the sign is part of the model and never changes)
ABS_KINDS = {"slope", "concentration_slope"}
SHARINGS = ("cell", "synapse_type", "kinetic_group", "connection", "gap_type")
PROVENANCE = ("c302-default", "measured", "fitted", "ml", "mechanistic-default")


@dataclass(frozen=True)
class Param:
    """One parameter of a mechanism.

    Args:
        name: key in ``Network.params`` (unique across the network).
        unit: physical unit.
        kind: a key of :data:`BOUNDS` (decides the default biological bounds).
        sharing: ``"cell"`` (per cell group: type / class / cell, the network's ``share``),
            ``"synapse_type"``, ``"kinetic_group"``, ``"connection"`` or ``"gap_type"``.
        source: where the default value comes from.
        default: value for mechanisms not read from the NeuroML file (None: read from it).
        bounds: (low, high) overriding the kind's bounds.
        provenance: one of :data:`PROVENANCE`.
        sign: for ``slope`` parameters, the sign the value keeps (bounds apply to |x|).
    """

    name: str
    unit: str
    kind: str
    sharing: str = "cell"
    source: str = "c302 C1 (NeuroML)"
    default: float | None = None
    bounds: tuple[float, float] | None = None
    provenance: str = "c302-default"

    def __post_init__(self):
        if self.kind not in BOUNDS:
            raise ValueError(f"parameter {self.name}: unknown kind {self.kind!r}; "
                             f"choose from {sorted(BOUNDS)}")
        if self.sharing not in SHARINGS:
            raise ValueError(f"parameter {self.name}: unknown sharing {self.sharing!r}; "
                             f"choose from {SHARINGS}")
        if self.provenance not in PROVENANCE:
            raise ValueError(f"parameter {self.name}: provenance {self.provenance!r} not in "
                             f"{PROVENANCE}")

    @property
    def lower(self) -> float:
        return self.bounds[0] if self.bounds else BOUNDS[self.kind][0]

    @property
    def upper(self) -> float:
        return self.bounds[1] if self.bounds else BOUNDS[self.kind][1]

    @property
    def bounds_source(self) -> str:
        return "mechanism" if self.bounds else BOUNDS[self.kind][3]


@dataclass(frozen=True)
class Gate:
    """A standard gate: x_inf = 1/(1+exp(-(V-mid)/scale)), dx/dt = (x_inf - x)/tau (NeuroML
    ``gateHHtauInf`` with ``fixedTimeCourse`` and ``HHSigmoidVariable``). Names are parameter
    names of the owning mechanism."""

    state: str
    mid: str
    scale: str
    tau: str


@dataclass(frozen=True)
class Mechanism:
    """Base class: a per-cell membrane mechanism (channel, pool, cell kind).

    Subclasses override :meth:`conductance` (channels), :meth:`derivative` and
    :meth:`initial` (custom states), :meth:`linear_form` (for exponential integrators).
    ``where`` restricts the mechanism to cells whose name, class (AVAL -> AVA) or kind
    (``"neuron"``, ``"muscle"``) is listed; empty means every cell.
    """

    name: str = ""
    params: tuple[Param, ...] = ()
    gates: tuple[Gate, ...] = ()
    states: tuple[str, ...] = ()
    nonnegative: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    equation: str = ""
    source: str = ""

    @property
    def parameters(self) -> dict[str, str]:
        """name -> unit (kept for the notebook's mechanism table)."""
        return {p.name: p.unit for p in self.params}

    # --- rates (P: materialized per-cell tensors; S: state name -> (B, N); aux: shared terms)
    def conductance(self, P: dict, S: dict, v: torch.Tensor, aux: dict):
        """(g mS/cm^2, g*E uA/cm^2) this mechanism adds to the membrane, or None."""
        return None

    def derivative(self, P: dict, S: dict, v: torch.Tensor, aux: dict) -> dict:
        """d(state)/dt for each name in ``states``."""
        return {}

    def initial(self, P: dict, v: torch.Tensor, net) -> dict:
        """Initial value of each custom state (B, N)."""
        return {s: torch.zeros_like(v) for s in self.states}

    def linear_form(self, P: dict, S: dict, v: torch.Tensor, aux: dict) -> dict:
        """For exponential integrators: state -> (x_inf, decay) with dx/dt = (x_inf - x)/tau;
        ``decay`` is either a tensor rate k (1/ms) or the name of a tau parameter."""
        raise NotImplementedError(f"mechanism {self.name} has custom states but no linear "
                                  "form: use solver 'rk4_fused' or a torchdiffeq method")


def sigmoid_gate(v_mV: torch.Tensor, mid_mV, scale_mV) -> torch.Tensor:
    """NeuroML ``HHSigmoidVariable`` with rate 1: 1 / (1 + exp(-(V - midpoint)/scale))."""
    return torch.sigmoid((v_mV - mid_mV) / scale_mV)


def h_gate(ca_mM: torch.Tensor, ca_half_mM, k_mM, alpha) -> torch.Tensor:
    """c302 ``customHGate`` conductance factor: 1 + (h_inf - 1) alpha,
    h_inf = 1/(1 + exp((ca_half - [Ca])/k))."""
    h_inf = torch.sigmoid((ca_mM - ca_half_mM) / k_mM)
    return 1.0 + (h_inf - 1.0) * alpha


def graded_s_inf(v_pre_mV: torch.Tensor, vth_mV, delta_mV) -> tuple[torch.Tensor, torch.Tensor]:
    """NeuroML ``gradedSynapse`` steady state and its complement (1 - s_inf), both stable."""
    x = (v_pre_mV - vth_mV) / delta_mV
    return torch.sigmoid(x), torch.sigmoid(-x)


def _gate_params(state: str, src: str) -> tuple[Param, ...]:
    return (Param(f"tau_{state}", "ms", "time_constant", source=src),
            Param(f"mid_{state}", "mV", "midpoint", source=src),
            Param(f"scale_{state}", "mV", "slope", source=src))


# --------------------------------------------------------------------------- C1 mechanisms
@dataclass(frozen=True)
class Membrane(Mechanism):
    """The membrane of a cell kind: capacitance (the cell kinds of C1, neuron and body-wall
    muscle, differ in area and channel densities, which the NeuroML cell types carry)."""

    name: str = "membrane"
    params: tuple[Param, ...] = (Param("c_m", "uF/cm^2", "capacitance"),)
    equation: str = "C_m dV/dt = sum_i g_i (E_i - V) + I_syn + I_gap + I_inj"
    source: str = "c302 C1 GenericNeuronCell / GenericMuscleCell (specificCapacitance)"


@dataclass(frozen=True)
class Leak(Mechanism):
    name: str = "leak"
    params: tuple[Param, ...] = (
        Param("g_leak", "mS/cm^2", "conductance_density", source="net.nml Leak_all"),
        Param("e_leak", "mV", "reversal"))
    equation: str = "I = g_leak (e_leak - V)"
    source: str = "c302 C1 Leak"

    def conductance(self, P, S, v, aux):
        return P["g_leak"], P["g_leak"] * P["e_leak"]


@dataclass(frozen=True)
class KSlow(Mechanism):
    name: str = "k_slow"
    params: tuple[Param, ...] = (
        Param("g_kslow", "mS/cm^2", "conductance_density"),
        Param("e_kslow", "mV", "reversal"),
        *_gate_params("n", "cell_C.xml k_slow (Boyle & Cohen 2008)"))
    gates: tuple[Gate, ...] = (Gate("n", "mid_n", "scale_n", "tau_n"),)
    equation: str = "I = g_kslow n (e_kslow - V); n_inf = 1/(1+exp(-(V-mid_n)/scale_n))"
    source: str = "c302 cell_C.xml k_slow (Boyle & Cohen 2008)"

    def conductance(self, P, S, v, aux):
        g = P["g_kslow"] * S["n"]
        return g, g * P["e_kslow"]


@dataclass(frozen=True)
class KFast(Mechanism):
    name: str = "k_fast"
    params: tuple[Param, ...] = (
        Param("g_kfast", "mS/cm^2", "conductance_density"),
        Param("e_kfast", "mV", "reversal"),
        *_gate_params("p", "cell_C.xml k_fast"), *_gate_params("q", "cell_C.xml k_fast"))
    gates: tuple[Gate, ...] = (Gate("p", "mid_p", "scale_p", "tau_p"),
                               Gate("q", "mid_q", "scale_q", "tau_q"))
    equation: str = "I = g_kfast p^4 q (e_kfast - V)"
    source: str = "c302 cell_C.xml k_fast (Boyle & Cohen 2008)"

    def conductance(self, P, S, v, aux):
        p2 = S["p"] * S["p"]
        g = P["g_kfast"] * (p2 * p2) * S["q"]
        return g, g * P["e_kfast"]


@dataclass(frozen=True)
class CaBoyle(Mechanism):
    name: str = "ca_boyle"
    params: tuple[Param, ...] = (
        Param("g_ca", "mS/cm^2", "conductance_density"),
        Param("e_ca", "mV", "reversal"),
        *_gate_params("e", "cell_C.xml ca_boyle"), *_gate_params("f", "cell_C.xml ca_boyle"),
        Param("h_alpha", "1", "fraction", source="cell_C.xml customHGate"),
        Param("h_ca_half", "mM", "concentration", source="cell_C.xml customHGate"),
        Param("h_k", "mM", "concentration_slope", source="cell_C.xml customHGate"))
    gates: tuple[Gate, ...] = (Gate("e", "mid_e", "scale_e", "tau_e"),
                               Gate("f", "mid_f", "scale_f", "tau_f"))
    equation: str = "I = g_ca e^2 f (1 + (h_inf([Ca]) - 1) h_alpha) (e_ca - V)"
    source: str = "c302 cell_C.xml ca_boyle (Boyle & Cohen 2008)"

    def conductance(self, P, S, v, aux):
        h = h_gate(S["ca"], P["h_ca_half"], P["h_k"], P["h_alpha"])
        e = S["e"]
        g = P["g_ca"] * (e * e) * S["f"] * h
        aux["gca"] = g
        return g, g * P["e_ca"]


@dataclass(frozen=True)
class CaPool(Mechanism):
    """NeuroML ``fixedFactorConcentrationModel``: driven by the Ca current of ``ca_boyle``."""

    name: str = "ca_pool"
    params: tuple[Param, ...] = (
        Param("tau_ca", "ms", "time_constant", source="net.nml CaPool decayConstant"),
        Param("rho_ca", "mol/(m A s)", "rho", source="net.nml CaPool rho"))
    states: tuple[str, ...] = ("ca",)
    nonnegative: tuple[str, ...] = ("ca",)
    equation: str = "d[Ca]/dt = rho J_Ca - ([Ca] - rest)/tau_ca, clamped at 0"
    source: str = "c302 C1 CaPool (fixedFactorConcentrationModel)"

    def _drive(self, P, v, aux):
        return P["rho_ca"] * RHO_SI_TO_MM_PER_MS * (aux["gca"] * (P["e_ca"] - v))

    def derivative(self, P, S, v, aux):
        return {"ca": self._drive(P, v, aux) - (S["ca"] - aux["ca_rest"]) / P["tau_ca"]}

    def initial(self, P, v, net):
        return {"ca": net.ca_init.to(v.dtype).expand_as(v)}

    def linear_form(self, P, S, v, aux):
        return {"ca": (self._drive(P, v, aux) * P["tau_ca"] + aux["ca_rest"], "tau_ca")}


@dataclass(frozen=True)
class GradedSynapse(Mechanism):
    """NeuroML ``gradedSynapse`` (chemical synapses). One activation ``s`` per presynaptic cell
    and kinetic group (the state rows ``s``, ``s1``, ... of the layout)."""

    name: str = "graded_synapse"
    params: tuple[Param, ...] = (
        Param("g_syn", "nS", "point_conductance", "synapse_type"),
        Param("e_syn", "mV", "reversal", "synapse_type"),
        Param("syn_delta", "mV", "slope", "kinetic_group"),
        Param("syn_vth", "mV", "midpoint", "kinetic_group"),
        Param("syn_k", "1/ms", "rate", "kinetic_group"),
        Param("w_syn", "1", "weight", "connection", source="net.nml connection weights"))
    equation: str = ("s_inf = 1/(1+exp((Vth-Vpre)/delta)); ds/dt = (s_inf-s) k/(1-s_inf); "
                     "I = w g s (E-V)")
    source: str = "c302 C1 gradedSynapse (neuron_to_neuron/muscle exc/inh)"


@dataclass(frozen=True)
class GapJunction(Mechanism):
    name: str = "gap_junction"
    params: tuple[Param, ...] = (
        Param("g_gap", "nS", "point_conductance", "gap_type"),
        Param("w_gap", "1", "weight", "connection", source="net.nml electrical connections"))
    equation: str = "I_a = w g (V_b - V_a), applied to both cells of each NeuroML electrical connection"
    source: str = "c302 C1 gapJunction"


# --------------------------------------------------------------------------- an example plug-in
@dataclass(frozen=True)
class ExtraK(Mechanism):
    """An extra voltage-gated K+ current with its own gate ``m`` (example plug-in; off by
    default). E.g. ``ExtraK(where=("AVA",))`` adds it to AVAL and AVAR only. Parameters are
    placeholders of plausible magnitude (provenance ``mechanistic-default``), not measured."""

    name: str = "k_extra"
    params: tuple[Param, ...] = (
        Param("g_kextra", "mS/cm^2", "conductance_density", source="wormlab example",
              default=1.0, provenance="mechanistic-default"),
        Param("e_kextra", "mV", "reversal", source="wormlab example (= C1 E_K)", default=-60.0,
              provenance="mechanistic-default"),
        Param("tau_m", "ms", "time_constant", source="wormlab example", default=10.0,
              provenance="mechanistic-default"),
        Param("mid_m", "mV", "midpoint", source="wormlab example", default=-20.0,
              provenance="mechanistic-default"),
        Param("scale_m", "mV", "slope", source="wormlab example", default=5.0,
              provenance="mechanistic-default"))
    gates: tuple[Gate, ...] = (Gate("m", "mid_m", "scale_m", "tau_m"),)
    equation: str = "I = g_kextra m (e_kextra - V); m_inf = 1/(1+exp(-(V-mid_m)/scale_m))"
    source: str = "wormlab example plug-in"

    def conductance(self, P, S, v, aux):
        g = P["g_kextra"] * S["m"]
        return g, g * P["e_kextra"]


@dataclass(frozen=True)
class ChannelHH(Mechanism):
    """A voltage-gated channel a NeuroML file adds to C1's four (read back from the file, e.g.
    the crawl export's motor-neuron adaptation): an ``ionChannelHH`` with one ``gateHHtauInf``
    (``fixedTimeCourse``, ``HHSigmoidVariable`` with rate 1, ``instances`` 1), so
    ``I = g x (E - V)``, ``x_inf = 1/(1+exp(-(V-mid)/scale))``, ``dx/dt = (x_inf - x)/tau``.

    Names follow the channel id ``X`` and gate id ``y``: ``g_X`` (mS/cm^2, the cell type's
    ``channelDensity``; 0 on cell types without it), ``e_X`` (mV, its ``erev``), ``tau_X``,
    ``mid_X``, ``scale_X`` (the gate) and the state ``y_X``. A mechanism passed to
    ``build_network`` that declares that gate and ``g_X``/``e_X`` (e.g.
    ``wormlab.worm.Adaptation``: channel ``adapt``, gate ``w``) stands in for it and takes its
    values from the file."""

    name: str = ""
    channel: str = ""
    gate: str = ""

    def __post_init__(self):
        x, y = self.channel, self.gate
        if not (x and y):
            raise ValueError("ChannelHH needs the NeuroML channel id and its gate id")
        src = f"NeuroML ionChannel {x!r} (gate {y!r})"
        object.__setattr__(self, "name", self.name or x)
        object.__setattr__(self, "params", (
            Param(f"g_{x}", "mS/cm^2", "conductance_density", source=src),
            Param(f"e_{x}", "mV", "reversal", source=src),
            Param(f"tau_{x}", "ms", "time_constant", source=src),
            Param(f"mid_{x}", "mV", "midpoint", source=src),
            Param(f"scale_{x}", "mV", "slope", source=src)))
        object.__setattr__(self, "gates", (Gate(f"{y}_{x}", f"mid_{x}", f"scale_{x}",
                                                f"tau_{x}"),))
        object.__setattr__(self, "equation", f"I = g_{x} {y}_{x} (e_{x} - V); {y}_{x}_inf = "
                           f"1/(1+exp(-(V-mid_{x})/scale_{x})), tau_{x}")
        object.__setattr__(self, "source", src)

    def stands_in(self, other: Mechanism) -> bool:
        """Does ``other`` declare this channel's gate and conductance parameters?"""
        names = {p.name for p in other.params}
        return (tuple(other.gates) == self.gates
                and {f"g_{self.channel}", f"e_{self.channel}"} <= names)

    def conductance(self, P, S, v, aux):
        g = P[f"g_{self.channel}"] * S[self.gates[0].state]
        return g, g * P[f"e_{self.channel}"]


C1_CELL_MECHANISMS: tuple[Mechanism, ...] = (
    Membrane(), Leak(), KSlow(), KFast(), CaBoyle(), CaPool())
C1_CONNECTION_MECHANISMS: tuple[Mechanism, ...] = (GradedSynapse(), GapJunction())

#: Registry: name -> mechanism (the C1 set plus plug-ins). ``register_mechanism`` adds one.
MECHANISMS: dict[str, Mechanism] = {
    m.name: m for m in (*C1_CELL_MECHANISMS, *C1_CONNECTION_MECHANISMS, ExtraK())}


def register_mechanism(mechanism: Mechanism, *, replace: bool = False) -> Mechanism:
    """Add ``mechanism`` to :data:`MECHANISMS` so configs can name it."""
    if not isinstance(mechanism, Mechanism):
        raise TypeError(f"expected a Mechanism, got {type(mechanism).__name__}")
    if mechanism.name in MECHANISMS and not replace:
        raise ValueError(f"mechanism {mechanism.name!r} is already registered")
    MECHANISMS[mechanism.name] = mechanism
    return mechanism


def resolve(mechanisms) -> list[Mechanism]:
    """Mechanism objects from names (registry) or objects."""
    out = []
    for m in mechanisms:
        if isinstance(m, str):
            if m not in MECHANISMS:
                import difflib

                close = difflib.get_close_matches(m, MECHANISMS, n=3)
                raise KeyError(f"unknown mechanism {m!r}; registered: {sorted(MECHANISMS)}"
                               + (f"; did you mean {close}?" if close else ""))
            m = MECHANISMS[m]
        elif not isinstance(m, Mechanism):
            raise TypeError(f"expected a Mechanism or its name, got {type(m).__name__}")
        out.append(m)
    return out


@dataclass(frozen=True)
class StateLayout:
    """Rows of the state tensor ``y`` (B, S, N), assembled from the mechanisms present."""

    names: tuple[str, ...]
    gates: tuple[Gate, ...]
    custom: tuple[str, ...]
    syn: tuple[str, ...]
    nonnegative: tuple[str, ...] = field(default=())

    def index(self, name: str) -> int:
        if name not in self.names:
            import difflib

            close = difflib.get_close_matches(name, self.names, n=3)
            raise KeyError(f"unknown state {name!r}; this network has {list(self.names)}"
                           + (f"; did you mean {close}?" if close else ""))
        return self.names.index(name)

    @property
    def gate_slice(self) -> slice:
        return slice(1, 1 + len(self.gates))

    @property
    def custom_slice(self) -> slice:
        a = 1 + len(self.gates)
        return slice(a, a + len(self.custom))

    @property
    def syn_slice(self) -> slice:
        a = 1 + len(self.gates) + len(self.custom)
        return slice(a, a + len(self.syn))
