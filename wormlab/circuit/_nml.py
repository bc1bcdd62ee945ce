"""Read a c302-generated NeuroML network (``*.net.nml`` + its included ``cell_*.xml``).

Everything the simulator needs is taken from the files themselves, so the torch model runs the
exact cells, weights, polarities and stimuli that NEURON runs. Units are converted to the
simulator's units: mV, ms, nA, nS, mS/cm^2, uF/cm^2, mM, um^2.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

_NS = "{http://www.neuroml.org/schema/neuroml2}"

# value in SI-ish NeuroML unit -> factor to the simulator unit of that dimension
_UNITS: dict[str, tuple[str, float]] = {
    "mV": ("mV", 1.0), "V": ("mV", 1e3),
    "ms": ("ms", 1.0), "s": ("ms", 1e3),
    "per_ms": ("per_ms", 1.0), "per_s": ("per_ms", 1e-3),
    "pA": ("nA", 1e-3), "nA": ("nA", 1.0), "uA": ("nA", 1e3), "A": ("nA", 1e9),
    "pS": ("nS", 1e-3), "nS": ("nS", 1.0), "uS": ("nS", 1e3), "S": ("nS", 1e9),
    "mS_per_cm2": ("mS_per_cm2", 1.0), "S_per_cm2": ("mS_per_cm2", 1e3),
    "S_per_m2": ("mS_per_cm2", 0.1),
    "uF_per_cm2": ("uF_per_cm2", 1.0), "F_per_m2": ("uF_per_cm2", 100.0),
    "mM": ("mM", 1.0), "M": ("mM", 1e3), "mol_per_m3": ("mM", 1.0), "mol_per_cm3": ("mM", 1e6),
    # fixedFactorConcentrationModel.rho: mol / (m A s), kept in SI
    "mol_per_m_per_A_per_s": ("mol_per_m_per_A_per_s", 1.0),
}

_QTY = re.compile(r"^\s*([-+0-9.eE]+)\s*([A-Za-z_0-9]*)\s*$")


class NMLFormatError(ValueError):
    """The NeuroML file holds something this importer does not understand."""


def quantity(text: str, expect: str) -> float:
    """Parse ``"0.09 nS"`` and return it in the simulator unit ``expect`` (e.g. ``"nS"``)."""
    m = _QTY.match(text)
    if not m:
        raise NMLFormatError(f"cannot parse quantity {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    if not unit:
        if expect == "none":
            return value
        raise NMLFormatError(f"quantity {text!r} has no unit, expected {expect}")
    if unit not in _UNITS:
        raise NMLFormatError(f"unknown unit {unit!r} in {text!r}")
    dim, factor = _UNITS[unit]
    if dim != expect:
        raise NMLFormatError(f"{text!r} is {dim}, expected {expect}")
    return value * factor


@dataclass
class Gate:
    """``gateHHtauInf`` with ``fixedTimeCourse`` and ``HHSigmoidVariable`` steady state.

    x_inf = rate / (1 + exp(-(V - midpoint) / scale)); dx/dt = (x_inf - x) / tau.
    """

    instances: int
    tau_ms: float
    rate: float
    midpoint_mV: float
    scale_mV: float


@dataclass
class CaGate:
    """c302's ``customHGate``: instantaneous in [Ca], fcond = 1 + (h_inf - 1) * alpha,
    h_inf = 1 / (1 + exp((ca_half - Ca) / k))."""

    alpha: float
    ca_half_mM: float
    k_mM: float


@dataclass
class Channel:
    id: str
    gates: dict[str, Gate]
    ca_gate: CaGate | None = None


@dataclass
class CellType:
    """One NeuroML ``<cell>``: single compartment, channel densities, Ca pool."""

    id: str
    area_um2: float
    c_uF_per_cm2: float
    v_init_mV: float
    g_mS_per_cm2: dict[str, float]  # channel id -> density
    erev_mV: dict[str, float]
    ca_init_mM: float
    ca_pool: str | None


@dataclass
class SynapseType:
    """NeuroML ``gradedSynapse`` (conductance nS, delta mV, Vth mV, k 1/ms, erev mV)."""

    id: str
    g_nS: float
    delta_mV: float
    vth_mV: float
    k_per_ms: float
    erev_mV: float


@dataclass
class NetSpec:
    """A network in plain Python: cells, mechanisms, connections (indices into ``cells``)."""

    name: str
    cells: list[str]
    cell_type: list[str]                       # component id per cell
    cell_types: dict[str, CellType]
    channels: dict[str, Channel]
    ca_pool: dict[str, float]                  # decay_ms, rho_SI, resting_mM
    syn_types: list[SynapseType]
    chem: list[tuple[int, int, int, float]]    # (pre, post, syn type index, weight)
    gap_types: list[tuple[str, float]]         # (id, conductance nS)
    gaps: list[tuple[int, int, int, float]]    # (a, b, gap type index, weight)
    inputs: list[tuple[int, float, float, float]] = field(default_factory=list)
    # (cell, delay_ms, duration_ms, amplitude_nA): NeuroML pulseGenerator
    source: str = ""


def _area_um2(cell_el) -> float:
    """Lateral area of the single segment as NeuroML/NEURON compute it (sphere if L == 0)."""
    segs = cell_el.findall(f"{_NS}morphology/{_NS}segment")
    if len(segs) != 1:
        raise NMLFormatError(f"cell {cell_el.get('id')}: {len(segs)} segments, expected 1")
    p, d = segs[0].find(f"{_NS}proximal"), segs[0].find(f"{_NS}distal")
    xyz0 = [float(p.get(k)) for k in "xyz"]
    xyz1 = [float(d.get(k)) for k in "xyz"]
    length = math.dist(xyz0, xyz1)
    d0, d1 = float(p.get("diameter")), float(d.get("diameter"))
    if length == 0.0:  # NeuroML: a spherical soma; NEURON builds L = diam, same area
        return math.pi * d1 * d1
    if d0 != d1:
        raise NMLFormatError("tapered segments are not supported")
    return math.pi * d0 * length


def _read_channels(path: Path) -> dict[str, Channel]:
    root = ET.parse(path).getroot()
    out: dict[str, Channel] = {}
    for ch in root.findall(f"{_NS}ionChannel"):
        gates: dict[str, Gate] = {}
        ca_gate = None
        for g in ch:
            tag = g.tag.replace(_NS, "")
            if tag == "gateHHtauInf":
                tc, ss = g.find(f"{_NS}timeCourse"), g.find(f"{_NS}steadyState")
                if tc.get("type") != "fixedTimeCourse" or ss.get("type") != "HHSigmoidVariable":
                    raise NMLFormatError(f"{ch.get('id')}/{g.get('id')}: unsupported gate form")
                gates[g.get("id")] = Gate(
                    instances=int(g.get("instances")),
                    tau_ms=quantity(tc.get("tau"), "ms"),
                    rate=float(ss.get("rate")),
                    midpoint_mV=quantity(ss.get("midpoint"), "mV"),
                    scale_mV=quantity(ss.get("scale"), "mV"),
                )
            elif tag == "customHGate":
                if int(g.get("instances")) != 1:
                    raise NMLFormatError("customHGate with instances != 1")
                ca_gate = CaGate(
                    alpha=float(g.get("alpha")),
                    ca_half_mM=quantity(g.get("ca_half"), "mM"),
                    k_mM=quantity(g.get("k"), "mM"),
                )
        out[ch.get("id")] = Channel(ch.get("id"), gates, ca_gate)
    return out


def read_net_nml(path: str | Path) -> NetSpec:
    """Parse a c302 ``*.net.nml`` (and the ``cell_*.xml`` it includes) into a :class:`NetSpec`.

    Raises:
        FileNotFoundError: the file or an included file is missing.
        NMLFormatError: an element this importer does not support (it never guesses).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"NeuroML network file not found: {path}")
    root = ET.parse(path).getroot()

    channels: dict[str, Channel] = {}
    for inc in root.findall(f"{_NS}include"):
        href = path.parent / inc.get("href")
        if not href.exists():
            raise FileNotFoundError(f"{path.name} includes {href}, which does not exist")
        channels.update(_read_channels(href))

    pools = root.findall(f"{_NS}fixedFactorConcentrationModel")
    if len(pools) != 1:
        raise NMLFormatError(f"expected one fixedFactorConcentrationModel, found {len(pools)}")
    pool = pools[0]
    ca_pool = {
        "id": pool.get("id"),
        "decay_ms": quantity(pool.get("decayConstant"), "ms"),
        "rho_SI": quantity(pool.get("rho"), "mol_per_m_per_A_per_s"),
        "resting_mM": quantity(pool.get("restingConc"), "mM"),
    }

    syn_types = [
        SynapseType(
            id=s.get("id"),
            g_nS=quantity(s.get("conductance"), "nS"),
            delta_mV=quantity(s.get("delta"), "mV"),
            vth_mV=quantity(s.get("Vth"), "mV"),
            k_per_ms=quantity(s.get("k"), "per_ms"),
            erev_mV=quantity(s.get("erev"), "mV"),
        )
        for s in root.findall(f"{_NS}gradedSynapse")
    ]
    syn_index = {s.id: i for i, s in enumerate(syn_types)}
    gap_types = [(g.get("id"), quantity(g.get("conductance"), "nS"))
                 for g in root.findall(f"{_NS}gapJunction")]
    gap_index = {g[0]: i for i, g in enumerate(gap_types)}
    silent = {s.get("id") for s in root.findall(f"{_NS}silentSynapse")}

    cell_types: dict[str, CellType] = {}
    for c in root.findall(f"{_NS}cell"):
        mp = c.find(f"{_NS}biophysicalProperties/{_NS}membraneProperties")
        ip = c.find(f"{_NS}biophysicalProperties/{_NS}intracellularProperties")
        g, e = {}, {}
        for cd in mp.findall(f"{_NS}channelDensity"):
            ch = cd.get("ionChannel")
            if ch not in channels:
                raise NMLFormatError(f"cell {c.get('id')}: channel {ch} not defined")
            g[ch] = quantity(cd.get("condDensity"), "mS_per_cm2")
            e[ch] = quantity(cd.get("erev"), "mV")
        extra = [x.tag.replace(_NS, "") for x in mp
                 if x.tag.replace(_NS, "") not in
                 ("channelDensity", "spikeThresh", "specificCapacitance", "initMembPotential")]
        if extra:
            raise NMLFormatError(f"cell {c.get('id')}: unsupported membrane elements {extra}")
        species = ip.find(f"{_NS}species") if ip is not None else None
        cell_types[c.get("id")] = CellType(
            id=c.get("id"),
            area_um2=_area_um2(c),
            c_uF_per_cm2=quantity(mp.find(f"{_NS}specificCapacitance").get("value"),
                                  "uF_per_cm2"),
            v_init_mV=quantity(mp.find(f"{_NS}initMembPotential").get("value"), "mV"),
            g_mS_per_cm2=g,
            erev_mV=e,
            ca_init_mM=(quantity(species.get("initialConcentration"), "mM")
                        if species is not None else 0.0),
            ca_pool=species.get("concentrationModel") if species is not None else None,
        )

    pulses = {
        p.get("id"): (quantity(p.get("delay"), "ms"), quantity(p.get("duration"), "ms"),
                      quantity(p.get("amplitude"), "nA"))
        for p in root.findall(f"{_NS}pulseGenerator")
    }

    net = root.find(f"{_NS}network")
    if net is None:
        raise NMLFormatError(f"{path.name}: no <network>")
    cells, ctype = [], []
    for pop in net.findall(f"{_NS}population"):
        size = int(pop.get("size", "1"))
        if size != 1:
            raise NMLFormatError(f"population {pop.get('id')} has size {size}; c302 uses 1")
        if pop.get("component") not in cell_types:
            raise NMLFormatError(f"population {pop.get('id')}: unknown cell {pop.get('component')}")
        cells.append(pop.get("id"))
        ctype.append(pop.get("component"))
    idx = {n: i for i, n in enumerate(cells)}

    chem = []
    for proj in net.findall(f"{_NS}continuousProjection"):
        pre, post = idx[proj.get("presynapticPopulation")], idx[proj.get("postsynapticPopulation")]
        for ci in proj:
            if ci.get("preComponent") not in silent:
                raise NMLFormatError(f"{proj.get('id')}: non-silent pre component")
            comp = ci.get("postComponent")
            if comp not in syn_index:
                raise NMLFormatError(f"{proj.get('id')}: synapse {comp} is not a gradedSynapse")
            chem.append((pre, post, syn_index[comp], float(ci.get("weight", "1"))))
    gaps = []
    for proj in net.findall(f"{_NS}electricalProjection"):
        a, b = idx[proj.get("presynapticPopulation")], idx[proj.get("postsynapticPopulation")]
        for ci in proj:
            gaps.append((a, b, gap_index[ci.get("synapse")], float(ci.get("weight", "1"))))
    inputs = []
    for il in net.findall(f"{_NS}inputList"):
        comp = il.get("component")
        if comp not in pulses:
            raise NMLFormatError(f"inputList {il.get('id')}: {comp} is not a pulseGenerator")
        for _ in il.findall(f"{_NS}input"):
            inputs.append((idx[il.get("population")], *pulses[comp]))
    for proj in net.findall(f"{_NS}projection"):
        raise NMLFormatError(f"spiking projection {proj.get('id')} is not supported")

    return NetSpec(
        name=net.get("id"), cells=cells, cell_type=ctype, cell_types=cell_types,
        channels=channels, ca_pool=ca_pool, syn_types=syn_types, chem=chem,
        gap_types=gap_types, gaps=gaps, inputs=inputs, source=str(path),
    )
