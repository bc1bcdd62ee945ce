"""NeuroML export of a (fitted) parameter set in c302's conventions, and its NEURON re-run
(issue 16 item 9: the replacement pathway).

:func:`export_neuroml` starts from the c302-generated files the network was read from
(``*.net.nml`` and its included ``cell_C.xml``) and rewrites the values:

* per cell type (``<cell>``: GenericNeuronCell / GenericMuscleCell): specific capacitance,
  channel densities and reversal potentials (``c_m``, ``g_*``, ``e_*``);
* in ``cell_C.xml`` (one set of channels for every cell type): gate time constants, midpoints
  and slopes, the Ca-dependent h gate (``tau_*``, ``mid_*``, ``scale_*``, ``h_*``);
* the one ``fixedFactorConcentrationModel`` (``tau_ca``, ``rho_ca``);
* per ``gradedSynapse`` type: conductance, reversal and kinetics (kinetic groups write their
  values into each type of the group); per ``gapJunction`` type: conductance;
* per connection: the weights of ``continuousConnectionInstanceW`` and
  ``electricalConnectionInstanceW``.

A sub-circuit keeps only its populations, the connections among them and their inputs.
What NeuroML in these conventions cannot express is refused with :class:`NeuroMLExportError`
naming the parameter: values that differ between cell groups of one cell type (``share=
"class"``/``"cell"`` after fitting per class), channel or Ca-pool parameters that differ between
cell types (they live in one shared file / element), plug-in mechanisms without a NeuroML form,
batched networks, networks not read from a c302 NeuroML file.

:func:`run_neuroml` writes a LEMS file recording every cell's V and runs it in NEURON through
:mod:`wormlab.circuit.reference` (jNeuroML -> NEURON, CVODE by default).
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

_NSURI = "http://www.neuroml.org/schema/neuroml2"
_NS = "{" + _NSURI + "}"
# gate state -> (channel id, gate id) in c302's cell_C.xml
_GATES = {"n": ("k_slow", "n"), "p": ("k_fast", "p"), "q": ("k_fast", "q"),
          "e": ("ca_boyle", "e"), "f": ("ca_boyle", "f")}
# channel-density parameters: (g name, E name) -> channel id
_DENSITIES = {("g_leak", "e_leak"): "Leak", ("g_kslow", "e_kslow"): "k_slow",
              ("g_kfast", "e_kfast"): "k_fast", ("g_ca", "e_ca"): "ca_boyle"}
_C1_MECHANISMS = {"membrane", "leak", "k_slow", "k_fast", "ca_boyle", "ca_pool",
                  "graded_synapse", "gap_junction"}


class NeuroMLExportError(ValueError):
    """A parameter set NeuroML (c302 conventions) cannot express; the message names it."""


def _num(x: float) -> str:
    return repr(float(x))


def _register_namespaces() -> None:
    ET.register_namespace("", _NSURI)
    ET.register_namespace("xs", "http://www.w3.org/2001/XMLSchema")
    ET.register_namespace("xsi", "http://www.w3.org/2001/XMLSchema-instance")


def _source_nml(net) -> Path:
    src = getattr(net.spec, "source", "")
    p = Path(src) if src and not src.startswith("wormlab.") else None
    if p is None or not p.exists() or not p.name.endswith(".nml"):
        raise NeuroMLExportError(
            f"export needs a network read from a c302 NeuroML file (source={src!r}); "
            "build it with circuit.build_network(source='c302', ...)")
    return p


def _per_type(net, name: str) -> dict[str, float]:
    """Cell type -> value of cell parameter ``name``; refuses values that differ between the
    groups of one cell type (NeuroML c302 has one ``<cell>`` per type)."""
    x = net.params[name].detach().double().cpu().numpy()
    out: dict[str, float] = {}
    for i, t in enumerate(net.spec.cell_type):
        v = float(x[int(net.group[i])])
        if t in out and out[t] != v:
            raise NeuroMLExportError(
                f"parameter {name!r} differs between cells of NeuroML cell type {t!r} "
                f"({out[t]} vs {v} at {net.names[i]}; share={net.share!r}): c302's NeuroML has "
                "one <cell> per type, so per-class/per-cell values are not expressible")
        out[t] = v
    return out


def _global(net, name: str, where: str) -> float:
    """The one value of a parameter NeuroML keeps in a shared element (channel, Ca pool)."""
    x = net.params[name].detach().double().cpu().numpy()
    used = sorted({int(g) for g in net.group.tolist()})
    vals = sorted({float(x[g]) for g in used})
    if len(vals) != 1:
        raise NeuroMLExportError(
            f"parameter {name!r} takes {len(vals)} values across cell groups ({vals[:4]}...), "
            f"but {where} is shared by every cell type in c302's NeuroML: not expressible")
    return vals[0]


def _check(net) -> None:
    if net.batch_size is not None:
        raise NeuroMLExportError(f"network is batched (B={net.batch_size}): export one "
                                 "parameter set at a time")
    extra = [m.name for m in net.cell_mechanisms + net.connection_mechanisms
             if m.name not in _C1_MECHANISMS]
    if extra:
        raise NeuroMLExportError(f"mechanisms {extra} have no NeuroML export (c302 C1 "
                                 f"conventions cover {sorted(_C1_MECHANISMS)})")


def export_neuroml(net, out_dir: str | Path, name: str | None = None,
                   stimulus=None) -> Path:
    """Write ``net``'s parameters as c302-style NeuroML into ``out_dir``; returns the
    ``*.net.nml`` path (next to it: the rewritten ``cell_C.xml``). Each file is written
    atomically. ``circuit.build_network(path)`` reads it back.

    ``stimulus``: an optional :class:`wormlab.circuit.Stimulus` of current pulses (float
    amplitudes, nA) added as ``pulseGenerator`` inputs to the file's own inputs, so NEURON
    and ``circuit.simulate(net2, circuit.default_stimulus(net2))`` see the same drive.

    Raises:
        NeuroMLExportError: a parameter NeuroML in c302's conventions cannot express (named).
    """
    from wormlab.runs import atomic_path

    _check(net)
    src = _source_nml(net)
    _register_namespaces()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or f"{src.name.removesuffix('.net.nml')}_fit"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise NeuroMLExportError(f"name {name!r}: use letters, digits and _ (a NeuroML id)")

    # ---- values NeuroML holds once (channels, pool) and per cell type, checked up front
    gates = {s: {k: _global(net, f"{k}_{s}", f"gate {c}.{g} in cell_C.xml")
                 for k in ("tau", "mid", "scale")} for s, (c, g) in _GATES.items()}
    hgate = {k: _global(net, f"h_{k}", "the customHGate in cell_C.xml")
             for k in ("alpha", "ca_half", "k")}
    pool = {k: _global(net, k, "the fixedFactorConcentrationModel")
            for k in ("tau_ca", "rho_ca")}
    per_type = {k: _per_type(net, k) for k in
                ("c_m", *(n for pair in _DENSITIES for n in pair))}

    # ---- cell_C.xml (channels)
    root = ET.parse(src).getroot()
    incs = root.findall(f"{_NS}include")
    if len(incs) != 1:
        raise NeuroMLExportError(f"{src}: expected one included cell file, found {len(incs)}")
    cell_file = src.parent / incs[0].get("href")
    croot = ET.parse(cell_file).getroot()
    chans = {c.get("id"): c for c in croot.findall(f"{_NS}ionChannel")}
    for s, (cid, gid) in _GATES.items():
        g = next(x for x in chans[cid].findall(f"{_NS}gateHHtauInf") if x.get("id") == gid)
        g.find(f"{_NS}timeCourse").set("tau", f"{_num(gates[s]['tau'])} ms")
        ss = g.find(f"{_NS}steadyState")
        ss.set("midpoint", f"{_num(gates[s]['mid'])} mV")
        ss.set("scale", f"{_num(gates[s]['scale'])} mV")
    h = chans["ca_boyle"].find(f"{_NS}customHGate")
    h.set("alpha", _num(hgate["alpha"]))
    h.set("ca_half", f"{_num(hgate['ca_half'])} mM")
    h.set("k", f"{_num(hgate['k'])} mM")

    # ---- net.nml: pool, synapse types, cell types
    p = root.find(f"{_NS}fixedFactorConcentrationModel")
    p.set("decayConstant", f"{_num(pool['tau_ca'])} ms")
    p.set("rho", f"{_num(pool['rho_ca'])} mol_per_m_per_A_per_s")
    g_syn = net.params["g_syn"].detach().double().tolist()
    e_syn = net.params["e_syn"].detach().double().tolist()
    kin = {k: net.params[k].detach().double().tolist() for k in ("syn_delta", "syn_vth", "syn_k")}
    syn_el = {s.get("id"): s for s in root.findall(f"{_NS}gradedSynapse")}
    for t, sid in enumerate(net.syn_type_names):
        s, k = syn_el[sid], int(net.kin_of_type[t])
        s.set("conductance", f"{_num(g_syn[t])} nS")
        s.set("erev", f"{_num(e_syn[t])} mV")
        s.set("delta", f"{_num(kin['syn_delta'][k])} mV")
        s.set("Vth", f"{_num(kin['syn_vth'][k])} mV")
        s.set("k", f"{_num(kin['syn_k'][k])}per_ms")
    gap_el = {g.get("id"): g for g in root.findall(f"{_NS}gapJunction")}
    g_gap = net.params["g_gap"].detach().double().tolist()
    for t, gid in enumerate(net.gap_type_names):
        gap_el[gid].set("conductance", f"{_num(g_gap[t])} nS")
    used_types = set(net.spec.cell_type)
    for c in root.findall(f"{_NS}cell"):
        t = c.get("id")
        if t not in used_types:
            continue
        mp = c.find(f"{_NS}biophysicalProperties/{_NS}membraneProperties")
        mp.find(f"{_NS}specificCapacitance").set("value", f"{_num(per_type['c_m'][t])} uF_per_cm2")
        for cd in mp.findall(f"{_NS}channelDensity"):
            (gn, en) = next(k for k, v in _DENSITIES.items() if v == cd.get("ionChannel"))
            cd.set("condDensity", f"{_num(per_type[gn][t])} mS_per_cm2")
            cd.set("erev", f"{_num(per_type[en][t])} mV")

    # ---- network: keep the net's cells (in its order), their connections and inputs
    network = root.find(f"{_NS}network")
    keep = set(net.names)
    pops = {pp.get("id"): pp for pp in network.findall(f"{_NS}population")}
    first = list(network).index(next(iter(pops.values())))
    for pp in pops.values():
        network.remove(pp)
    for i, n in enumerate(net.names):
        network.insert(first + i, pops[n])
    w_syn = net.params["w_syn"].detach().double().tolist()
    w_gap = net.params["w_gap"].detach().double().tolist()
    ci = gi = 0
    for proj in list(network):
        tag = proj.tag.replace(_NS, "")
        if tag in ("continuousProjection", "electricalProjection"):
            a, b = proj.get("presynapticPopulation"), proj.get("postsynapticPopulation")
            if a not in keep or b not in keep:
                network.remove(proj)
                continue
            for conn in proj:
                if tag == "continuousProjection":
                    pre, post = int(net.syn_pre[ci]), int(net.syn_post[ci])
                    if (net.names[pre], net.names[post]) != (a, b):
                        raise NeuroMLExportError(f"{src}: connection {ci} is {a}->{b} in the "
                                                 f"file, {net.names[pre]}->{net.names[post]} "
                                                 "in the network (not built from this file?)")
                    conn.set("weight", _num(w_syn[ci]))
                    ci += 1
                else:
                    conn.set("weight", _num(w_gap[gi]))
                    gi += 1
        elif tag == "inputList" and proj.get("population") not in keep:
            network.remove(proj)
    if ci != len(w_syn) or gi != len(w_gap):
        raise NeuroMLExportError(f"{src}: the file has {ci} chemical / {gi} electrical "
                                 f"connections among the cells, the network {len(w_syn)} / "
                                 f"{len(w_gap)} (not built from this file?)")
    if stimulus is not None:
        _add_pulses(root, network, stimulus, keep)
    network.set("id", name)
    incs[0].set("href", cell_file.name)

    net_path = out_dir / f"{name}.net.nml"
    with atomic_path(out_dir / cell_file.name) as tmp:
        ET.ElementTree(croot).write(tmp, encoding="UTF-8", xml_declaration=True)
    with atomic_path(net_path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)
    return net_path


def _add_pulses(root, network, stimulus, keep) -> None:
    import math

    if getattr(stimulus, "waveforms", None):
        raise NeuroMLExportError("stimulus: waveforms have no pulseGenerator form; export "
                                 "pulses (circuit.Stimulus.step) only")
    before = list(root).index(network)
    for k, pulse in enumerate(stimulus.pulses):
        if pulse.target not in keep:
            raise NeuroMLExportError(f"stimulus: cell {pulse.target!r} is not in the network")
        amp = pulse.amplitude_nA
        if not isinstance(amp, int | float):
            raise NeuroMLExportError(f"stimulus: pulse into {pulse.target} has a batched "
                                     "amplitude; export one value (nA)")
        dur = pulse.duration_ms if math.isfinite(pulse.duration_ms) else 1e9
        pid = f"fit_pulse_{k}"
        ET.SubElement(root, f"{_NS}pulseGenerator", {
            "id": pid, "delay": f"{_num(pulse.delay_ms)} ms", "duration": f"{_num(dur)} ms",
            "amplitude": f"{_num(amp)} nA"})
        el = root[-1]
        root.remove(el)
        root.insert(before, el)
        before += 1
        ctype = next(pp.get("component") for pp in network.findall(f"{_NS}population")
                     if pp.get("id") == pulse.target)
        il = ET.SubElement(network, f"{_NS}inputList", {
            "id": f"Input_{pulse.target}_{pid}", "population": pulse.target, "component": pid})
        ET.SubElement(il, f"{_NS}input", {"id": "0", "target": f"../{pulse.target}/0/{ctype}",
                                          "destination": "synapses"})


def write_lems(net_nml: str | Path, duration_ms: float = 100.0, dt_ms: float = 0.05,
               ca_cells=()) -> Path:
    """A LEMS simulation file next to ``net_nml`` recording every cell's V (one file) and,
    for ``ca_cells``, their [Ca] (``caConc``) into ``<network id>.ca.dat``."""
    from wormlab.circuit import read_net_nml
    from wormlab.runs import atomic_path

    net_nml = Path(net_nml)
    spec = read_net_nml(net_nml)
    root = ET.parse(net_nml).getroot()
    inc = root.find(f"{_NS}include").get("href")
    nid = spec.name
    cols = "\n".join(f'            <OutputColumn id="{c}_v" quantity="{c}/0/{t}/v"/>'
                     for c, t in zip(spec.cells, spec.cell_type))
    ctype = dict(zip(spec.cells, spec.cell_type))
    missing = [c for c in ca_cells if c not in ctype]
    if missing:
        raise NeuroMLExportError(f"ca_cells {missing} are not cells of {net_nml.name}")
    ca = "\n".join(f'            <OutputColumn id="{c}_ca" quantity="{c}/0/{ctype[c]}/caConc"/>'
                    for c in ca_cells)
    if ca:
        ca = f"""
        <OutputFile id="all_ca" fileName="{nid}.ca.dat">
{ca}
        </OutputFile>"""
    text = f"""<Lems>
    <Target component="sim_{nid}"/>
    <Include file="Cells.xml"/>
    <Include file="Networks.xml"/>
    <Include file="Simulation.xml"/>
    <Include file="{inc}"/>
    <Include file="{net_nml.name}"/>
    <Simulation id="sim_{nid}" length="{float(duration_ms)!r}ms" step="{float(dt_ms)!r}ms" target="{nid}">
        <OutputFile id="all_v" fileName="{nid}.v.dat">
{cols}
        </OutputFile>{ca}
    </Simulation>
</Lems>
"""
    lems = net_nml.parent / f"LEMS_{nid}.xml"
    with atomic_path(lems) as tmp:
        tmp.write_text(text)
    return lems


def run_neuroml(net_nml: str | Path, duration_ms: float, dt_ms: float = 0.05,
                method: str = "cvode", tol: float = 1e-7, ca_cells=()):
    """Run an exported network in NEURON (jNeuroML -> NEURON, via
    :mod:`wormlab.circuit.reference`); returns ``reference.ReferenceTraces`` (t_ms, v_mV (T, N)
    in mV, names). With ``ca_cells``, ``meta["ca_t_ms"]`` (T2,) and ``meta["ca_mM"]``
    (T2, len(ca_cells)) hold their [Ca] (NEURON's caConc, mol/m3 = mM)."""
    from wormlab.circuit import reference

    reference.require_neuron("running an exported NeuroML network")
    net_nml = Path(net_nml)
    ca_cells = list(ca_cells)
    lems = write_lems(net_nml, duration_ms, dt_ms, ca_cells)
    d = net_nml.parent
    for stale in (d / f"{lems.stem}_nrn.py", d / "x86_64"):  # re-export: regenerate
        if stale.is_symlink() or stale.is_file():
            stale.unlink()
        elif stale.exists():
            shutil.rmtree(stale)
    files, wall = reference.run_neuron(d, lems, duration_ms, dt_ms, method, tol)
    names, cols, t = [], [], None
    for fname, cells in files.items():
        arr = np.loadtxt(d / fname, ndmin=2)
        if arr.shape[1] != len(cells) + 1:
            raise reference.ReferenceError(f"{fname}: {arr.shape[1]} columns, LEMS lists "
                                           f"{len(cells)}+1")
        t = arr[:, 0] * 1e3 if t is None else t
        names += cells
        cols.append(arr[:, 1:] * 1e3)
    meta = {"duration_ms": float(duration_ms), "dt_ms": float(dt_ms), "method": method,
            "tol": tol, "nml": net_nml.name}
    if ca_cells:
        arr = np.loadtxt(d / f"{lems.stem.removeprefix('LEMS_')}.ca.dat", ndmin=2)
        if arr.shape[1] != len(ca_cells) + 1:
            raise reference.ReferenceError(f"[Ca] output: {arr.shape[1]} columns, LEMS lists "
                                           f"{len(ca_cells)}+1")
        meta.update(ca_cells=ca_cells, ca_t_ms=arr[:, 0] * 1e3, ca_mM=arr[:, 1:])
    return reference.ReferenceTraces(t, np.concatenate(cols, 1), names, wall, meta, net_nml)
