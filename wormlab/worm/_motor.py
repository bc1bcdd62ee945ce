"""The motor sub-circuit of c302 C1 and the mechanisms the crawling worm adds to it.

Cells: the command interneurons (AVA, AVB, AVD, AVE, PVC pairs), the 10 head motor neurons
with c302 neuromuscular synapses (SMBV, SMDD, SMDV, URAD, URAV pairs), the 69 ventral-cord motor
neurons (DA, DB, DD, VA, VB, VD, AS) and the 95 body-wall muscles, with their c302 C1 wiring
(:func:`wormlab.circuit.build_network` on that cell list: the connections among them, as c302
writes them).

Added mechanisms (each labelled with its source, all parameters class-level and bounded):

* **Proprioception** (Wen et al. 2012, *Neuron* 76:750, "Proprioceptive coupling within motor
  neurons drives C. elegans forward locomotion": the bending of a body region is driven by the
  curvature of the region anterior to it, through the B-type motor neurons; for backward
  locomotion the A-type neurons, posterior field, as modelled by Boyle, Berri & Cohen 2012 and
  Izquierdo & Beer 2018). A stretch-gated *conductance* (:class:`Stretch`) into each B-type
  (A-type) neuron: the signal ``s = gain * kappa(receptive field)`` (nS) opens a cation
  conductance ``g = max(s, 0)`` (E = 0 mV; TRP-4 is the worm's stretch-gated cation channel,
  Li et al. 2006) or, for the opposite bend, a K+ conductance ``g = max(-s, 0)`` (E = C1's
  E_K, -60 mV); DB/DA take the dorsal sign, VB/VA the ventral one; the receptive field is
  ``offset_rows`` muscle rows anterior (B) / posterior (A) to the neuron's own position, which
  is the mean row of the muscles it synapses onto in the connectome. A conductance, unlike the
  current source of the first version, cannot drive a cell beyond its reversal potentials:
  c302's cells have ~18 GOhm input resistance when hyperpolarised, and a -2 pA current source
  drove VB7 to -300 mV once AVB's gap junctions were removed (docs/crawl.md).
* **Head motor neurons with local proprioception**: c302 innervates the head and neck
  muscles (rows 1-6) only from SMB, SMD and URA (the ventral-cord neurons reach row 5 at the
  most anterior), so without them nothing can bend the head and no forward wave can start.
  They get the same stretch conductance with signal ``head_gain * sign * kappa(own row)`` (sign = dorsal minus ventral share
  of their neuromuscular weight): SMD neurons are proprioceptive through TRP-1/TRP-2 (Yeon et
  al. 2018, *PLoS Biol* 16:e2004929), and the head's own bend feeds back in both directions.
* **Muscle activation with a time scale**: ``a`` follows ``min(1, [Ca]/max_ca)`` with a
  first-order lag ``tau_act_ms`` (muscle force develops over ~100 ms; e.g. Butler et al. 2015
  measured body-wall muscle Ca transients of ~0.1-1 s; the lag is fitted within 10-2000 ms).
* **Class-level scale factors** on the c302 connection weights (command -> motor gap junctions
  and synapses, motor -> muscle synapses split by transmitter: cholinergic A/B/AS excite,
  GABAergic D inhibit) and the graded synapses' threshold, so that a fit can move whole
  pathways while every connection keeps its c302 relative weight and sign.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from wormlab.body._muscles import MUSCLES, muscle_table
from wormlab.circuit._mechanisms import Gate, Mechanism, Param

#: reversal potentials of the two stretch-gated conductances (mV)
E_STRETCH_CATION_MV = 0.0
E_STRETCH_K_MV = -60.0

COMMAND = ("AVAL", "AVAR", "AVBL", "AVBR", "AVDL", "AVDR", "AVEL", "AVER", "PVCL", "PVCR")
MOTOR_CLASSES = ("DA", "DB", "DD", "VA", "VB", "VD", "AS")
# every neuron outside the ventral cord with a c302 neuromuscular synapse (all onto rows 1-6)
HEAD_MOTOR = ("SMBVL", "SMBVR", "SMDDL", "SMDDR", "SMDVL", "SMDVR", "URADL", "URADR", "URAVL",
              "URAVR")
FORWARD_DRIVE = ("AVBL", "AVBR")
BACKWARD_DRIVE = ("AVAL", "AVAR", "AVDL", "AVDR", "AVEL", "AVER")

_MN = re.compile(r"^(DA|DB|DD|VA|VB|VD|AS)(\d+)$")


def motor_cells() -> tuple[str, ...]:
    """The sub-circuit's cells: command interneurons, head motor neurons, ventral-cord motor
    neurons, muscles."""
    from wormlab import connectome

    names = [n for n in connectome.NEURONS if _MN.match(n)]
    names.sort(key=lambda n: (_MN.match(n).group(1), int(_MN.match(n).group(2))))
    return tuple(COMMAND) + tuple(HEAD_MOTOR) + tuple(names) + tuple(MUSCLES)


def motor_class(name: str) -> str | None:
    m = _MN.match(name)
    return m.group(1) if m else None


_STRETCH_SRC = "wormlab crawl loop (set each frame from curvature)"


@dataclass(frozen=True)
class Stretch(Mechanism):
    """Stretch-gated conductances of the proprioceptive motor neurons, set by the closed loop
    each frame from the body's curvature (per cell, so the network is built with
    ``share="cell"``): ``I = g_stretch_cat (E_cat - V) + g_stretch_k (E_K - V)``. Zero (the
    default) leaves the cell as c302 has it."""

    name: str = "stretch"
    params: tuple[Param, ...] = (
        Param("g_stretch_cat", "mS/cm^2", "conductance_density", source=_STRETCH_SRC,
              default=0.0, provenance="mechanistic-default"),
        Param("e_stretch_cat", "mV", "reversal", default=E_STRETCH_CATION_MV,
              source="non-selective cation channel (TRP-4; Li et al. 2006)",
              provenance="mechanistic-default"),
        Param("g_stretch_k", "mS/cm^2", "conductance_density", source=_STRETCH_SRC,
              default=0.0, provenance="mechanistic-default"),
        Param("e_stretch_k", "mV", "reversal", default=E_STRETCH_K_MV,
              source="c302 C1 E_K (k_slow, k_fast)", provenance="mechanistic-default"))
    equation: str = "I = g_stretch_cat (e_stretch_cat - V) + g_stretch_k (e_stretch_k - V)"
    source: str = "wormlab crawling worm (proprioception as a conductance)"

    def conductance(self, P, S, v, aux):
        g = P["g_stretch_cat"] + P["g_stretch_k"]
        return g, P["g_stretch_cat"] * P["e_stretch_cat"] + P["g_stretch_k"] * P["e_stretch_k"]


_ADAPT_SRC = ("slow K+ adaptation of the cholinergic motor neurons (Ca2+/voltage-activated "
              "K+ such as SLO-2; Liu et al. 2014); value set by the crawl loop")


@dataclass(frozen=True)
class Adaptation(Mechanism):
    """A slow voltage-gated K+ conductance (spike-frequency/plateau adaptation): a gate
    ``w`` with a time constant of about a second opens while the cell is depolarised, so a
    motor neuron held up by tonic drive repolarises and releases its antagonists. Zero
    conductance (the default) leaves the cell as c302 has it; the crawl loop sets it on the
    A-type (``adapt_a_nS``: DA, VA, AS) and B-type (``adapt_b_nS``: DB, VB) motor neurons,
    time constant ``adapt_tau_ms``."""

    name: str = "adaptation"
    params: tuple[Param, ...] = (
        Param("g_adapt", "mS/cm^2", "conductance_density", source=_ADAPT_SRC, default=0.0,
              provenance="mechanistic-default"),
        Param("e_adapt", "mV", "reversal", default=E_STRETCH_K_MV,
              source="c302 C1 E_K (k_slow, k_fast)", provenance="mechanistic-default"),
        Param("tau_adapt", "ms", "time_constant", default=1000.0, source=_ADAPT_SRC,
              provenance="mechanistic-default"),
        Param("mid_adapt", "mV", "midpoint", default=-30.0, source=_ADAPT_SRC,
              provenance="mechanistic-default"),
        Param("scale_adapt", "mV", "slope", default=5.0, source=_ADAPT_SRC,
              provenance="mechanistic-default"))
    gates: tuple[Gate, ...] = (Gate("w_adapt", "mid_adapt", "scale_adapt", "tau_adapt"),)
    equation: str = ("I = g_adapt w (e_adapt - V); w_inf = 1/(1+exp(-(V-mid_adapt)/scale_adapt)), "
                     "dw/dt = (w_inf - w)/tau_adapt")
    source: str = "wormlab crawling worm (motor neuron adaptation)"

    def conductance(self, P, S, v, aux):
        g = P["g_adapt"] * S["w_adapt"]
        return g, g * P["e_adapt"]


def build_motor_network(dtype=torch.float64, stretch: bool = True,
                        extra_cells: tuple[str, ...] = (),
                        presyn_types: tuple[tuple[str, tuple[str, ...]], ...] = ()):
    """c302 C1 restricted to :func:`motor_cells` (wiring among those cells as c302 has it).

    Synapse kinetics are kept per synapse type (``syn_kinetics="per_type"``), so the
    neuromuscular types can get their own half-activation potential; with c302's values
    this is the same circuit as the shared grouping. ``stretch=True`` adds the
    :class:`Stretch` and :class:`Adaptation` conductances (zero until the loop sets them) and keeps cell parameters
    per cell (``share="cell"``, same values as C1's two cell types); ``stretch=False`` is the
    plain C1 sub-circuit (cell parameters per type), e.g. for NeuroML export.
    ``extra_cells``: more c302 cells (e.g. sensory neurons and interneurons for the sensory
    closed loop) with their c302 wiring to each other and to the motor circuit.
    ``presyn_types``: ``((label, cells), ...)``: every chemical synapse whose presynaptic cell
    is in ``cells`` gets its own copy of its c302 synapse type, named ``label_<type id>``
    (same values), so that its kinetics (half-activation, slope) can be set apart from the
    rest of the network (the sensory pathway of :mod:`wormlab.loop`); with c302's values the
    circuit is unchanged."""
    from wormlab import circuit

    cells = motor_cells()
    cells = cells + tuple(c for c in dict.fromkeys(extra_cells) if c not in cells)
    kw = ({"syn_kinetics": "per_type"} if not stretch else
          {"syn_kinetics": "per_type", "share": "cell",
           "mechanisms": [Stretch(), Adaptation()]})
    if not presyn_types:
        return circuit.build_network(cells=cells, **kw)
    spec = circuit.subset_spec(circuit.read_net_nml(circuit.c302_network_path()), list(cells))
    return circuit.build_network(split_synapse_types(spec, presyn_types), **kw)


def split_synapse_types(spec, presyn_types):
    """A copy of ``spec`` whose synapses from each group of presynaptic cells use their own
    copies of the synapse types (see :func:`build_motor_network`)."""
    import dataclasses

    types = list(spec.syn_types)
    index = {n: i for i, n in enumerate(spec.cells)}
    chem = list(spec.chem)
    for label, group in presyn_types:
        unknown = [c for c in group if c not in index]
        if unknown:
            raise KeyError(f"presyn_types {label!r} names cells not in the network: {unknown}")
        pre = {index[c] for c in group}
        copies: dict[int, int] = {}
        for k, (a, b, t, w) in enumerate(chem):
            if a in pre:
                if t not in copies:
                    copies[t] = len(types)
                    types.append(dataclasses.replace(types[t], id=f"{label}_{types[t].id}"))
                chem[k] = (a, b, copies[t], w)
    return dataclasses.replace(spec, syn_types=types, chem=chem)


def neuron_rows(net) -> dict[str, float]:
    """Body position of each motor neuron as the weight-averaged muscle row (1 = head ... 24)
    of its neuromuscular synapses in the network; neurons without any get their position by
    linear interpolation of their class's numbering between its innervating members."""
    rows = muscle_table()["row"]
    midx = {m: i for i, m in enumerate(MUSCLES)}
    pre = net.syn_pre.numpy()
    post = net.syn_post.numpy()
    w = net.params["w_syn"].detach().reshape(-1, pre.shape[0])[0].numpy()
    names = net.names
    out: dict[str, float] = {}
    for i, n in enumerate(names):
        if not motor_class(n) and n not in HEAD_MOTOR:
            continue
        sel = (pre == i)
        tot, acc = 0.0, 0.0
        for j, wt in zip(post[sel], w[sel]):
            m = names[j]
            if m in midx:
                tot += wt
                acc += wt * rows[midx[m]]
        if tot > 0:
            out[n] = acc / tot
    for cls in MOTOR_CLASSES:
        members = sorted((int(_MN.match(n).group(2)), n) for n in names if motor_class(n) == cls)
        known = [(k, out[n]) for k, n in members if n in out]
        if not known:
            nmax = max(k for k, _ in members)
            for k, n in members:
                out[n] = 1.0 + 23.0 * (k - 0.5) / nmax
            continue
        ks, rs = zip(*known)
        for k, n in members:
            if n not in out:
                out[n] = float(np.interp(k, ks, rs))
    return out


def connection_groups(net) -> dict[str, torch.Tensor]:
    """Boolean masks over the network's chemical synapses (``w_syn``) and gap junctions
    (``w_gap``) for the class-level scale factors:

    ``syn_cmd_mn``: command interneuron -> motor neuron synapses; ``syn_nmj_exc``:
    cholinergic motor neurons (DA, DB, VA, VB, AS) -> muscle; ``syn_nmj_inh``: GABAergic D-type
    (DD, VD) -> muscle; ``syn_mn_mn``: motor neuron -> motor neuron; ``gap_cmd_mn``: command
    interneuron <-> motor neuron gap junctions; ``gap_mn_mn``: motor neuron <-> motor neuron;
    ``gap_muscle``: muscle <-> muscle gap junctions.
    """
    names = net.names
    kind = np.array(["cmd" if n in COMMAND else "mus" if n in MUSCLES else
                     ("inh" if motor_class(n) in ("DD", "VD") else "exc")
                     if motor_class(n) or n in HEAD_MOTOR else "other" for n in names])
    pre, post = kind[net.syn_pre.numpy()], kind[net.syn_post.numpy()]
    a, b = kind[net.gap_a.numpy()], kind[net.gap_b.numpy()]
    mn = np.isin(pre, ("exc", "inh"))
    mnp = np.isin(post, ("exc", "inh"))
    ga, gb = np.isin(a, ("exc", "inh")), np.isin(b, ("exc", "inh"))
    t = lambda x: torch.tensor(x, dtype=torch.bool)  # noqa: E731
    return {
        "syn_cmd_mn": t((pre == "cmd") & mnp),
        "syn_nmj_exc": t((pre == "exc") & (post == "mus")),
        "syn_nmj_inh": t((pre == "inh") & (post == "mus")),
        "syn_mn_mn": t(mn & mnp),
        "gap_cmd_mn": t(((a == "cmd") & gb) | ((b == "cmd") & ga)),
        "gap_mn_mn": t(ga & gb),
        "gap_muscle": t((a == "mus") & (b == "mus")),
    }


def proprioceptive_matrix(net, offset_rows: torch.Tensor, kind: str) -> tuple[list[str],
                                                                              torch.Tensor]:
    """Which body joints each B-type (``kind="B"``) or A-type (``"A"``) neuron senses.

    Returns ``(targets, M)`` with ``M`` (B, K, 24): ``current_K = gain * (M @ kappa_24)``;
    rows hold +1 for dorsal neurons and -1 for ventral ones times linear-interpolation weights
    at the receptive-field row (neuron row -/+ ``offset_rows``, clipped to the body).
    ``offset_rows`` is (B,) (one per population member)."""
    pos = neuron_rows(net)
    cls = ("DB", "VB") if kind == "B" else ("DA", "VA")
    targets = [n for n in net.names if motor_class(n) in cls]
    r = torch.tensor([pos[n] for n in targets], dtype=torch.float64)  # (K,)
    sign = torch.tensor([1.0 if n.startswith("D") else -1.0 for n in targets],
                        dtype=torch.float64)
    off = torch.as_tensor(offset_rows, dtype=torch.float64).reshape(-1, 1)
    field = (r[None] - off) if kind == "B" else (r[None] + off)  # (B, K), rows 1..24
    j = (field - 1.0).clamp(0.0, 23.0)  # joint index 0..23 (row r acts on joint r-1)
    lo = j.floor().long().clamp(max=22)
    frac = j - lo
    M = torch.zeros(off.shape[0], len(targets), 24, dtype=torch.float64)
    M.scatter_add_(2, lo[..., None], (1 - frac)[..., None])
    M.scatter_add_(2, (lo + 1)[..., None], frac[..., None])
    return targets, M * sign[None, :, None]


def head_matrix(net) -> tuple[list[str], torch.Tensor]:
    """Local proprioceptive field of the head motor neurons: ``(names, M)`` with ``M`` (H, 24):
    ``current_H = head_gain * (M @ kappa_24)``; each row holds the neuron's sign (dorsal minus
    ventral share of its neuromuscular weight, in [-1, 1]) at its own (interpolated) row."""
    rows = muscle_table()
    dorsal = dict(zip(rows["name"], rows["dorsal"]))
    pos = neuron_rows(net)
    pre, post = net.syn_pre.numpy(), net.syn_post.numpy()
    w = net.params["w_syn"].detach().reshape(-1, pre.shape[0])[0].numpy()
    names = [n for n in HEAD_MOTOR if n in net.index]
    M = torch.zeros(len(names), 24, dtype=torch.float64)
    for k, n in enumerate(names):
        sel = pre == net.index[n]
        d = v = 0.0
        for j, wt in zip(post[sel], w[sel]):
            m = net.names[j]
            if m in dorsal:
                d, v = (d + wt, v) if dorsal[m] else (d, v + wt)
        sign = (d - v) / (d + v) if d + v > 0 else 0.0
        j = min(max(pos[n] - 1.0, 0.0), 23.0)
        lo = min(int(np.floor(j)), 22)
        M[k, lo] += sign * (1 - (j - lo))
        M[k, lo + 1] += sign * (j - lo)
    return names, M
