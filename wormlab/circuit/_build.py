"""Build networks: from a c302 NeuroML file, from the connectome layer, or a sub-circuit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from wormlab.circuit._network import Network, NetworkConfig
from wormlab.circuit._nml import (
    CaGate,
    CellType,
    Channel,
    Gate,
    NetSpec,
    SynapseType,
    read_net_nml,
)
from wormlab.circuit._stimulus import Pulse, Stimulus
from wormlab.paths import cache_dir, package_data

TEMPLATE = package_data("circuit", "data", "c302_C1_template.json")


def c302_network_path(parameter_set: str = "C1") -> Path:
    """The c302 ``<set>`` Full network (``*.net.nml``), generated once into the cache.

    Generation needs the optional ``c302`` package (``pip install wormlab[neuron]``).
    """
    d = cache_dir("circuit", "c302", f"{parameter_set}_Full")
    nml = d / f"c302_{parameter_set}_Full.net.nml"
    if not nml.exists():
        from wormlab.circuit.reference import generate_c302

        generate_c302(d, parameter_set=parameter_set, duration_ms=100.0, dt_ms=0.05)
    return nml


def template_from_spec(spec: NetSpec) -> dict:
    """The network-independent part of a spec (cell types, channels, pool, synapse types)."""
    return {
        "source": spec.source,
        "cell_types": {k: dataclasses.asdict(v) for k, v in spec.cell_types.items()},
        "channels": {k: dataclasses.asdict(v) for k, v in spec.channels.items()},
        "ca_pool": spec.ca_pool,
        "syn_types": [dataclasses.asdict(s) for s in spec.syn_types],
        "gap_types": spec.gap_types,
        "inputs": [(spec.cells[i], *rest) for i, *rest in spec.inputs],
    }


def load_template() -> dict:
    """C1 mechanisms exported from c302 0.12.1 (see ``tests/circuit`` for the check that it
    matches a freshly generated c302 network)."""
    return json.loads(TEMPLATE.read_text())


def _template_objects(t: dict):
    cell_types = {k: CellType(**v) for k, v in t["cell_types"].items()}
    channels = {}
    for k, v in t["channels"].items():
        gates = {g: Gate(**x) for g, x in v["gates"].items()}
        ca = CaGate(**v["ca_gate"]) if v["ca_gate"] else None
        channels[k] = Channel(v["id"], gates, ca)
    syn = [SynapseType(**s) for s in t["syn_types"]]
    gaps = [tuple(g) for g in t["gap_types"]]
    return cell_types, channels, dict(t["ca_pool"]), syn, gaps


def spec_from_connectome(dataset: str = "cook2019") -> NetSpec:
    """C1 cells and synapse models on the wiring of :func:`wormlab.connectome.load`.

    As c302 does: chemical synapses of a presynaptic neuron are inhibitory (E = -70 mV) when
    its sign is -1 (GABA) and excitatory otherwise; the weight is the contact count; each gap
    junction entry (i, j) is a NeuroML electrical connection acting on both cells, so a
    symmetric count matrix gives an effective conductance 2 * count * g_gap, as in c302.
    The stimulus is c302's default (PLML/PLMR offset current).
    """
    from wormlab import connectome

    c = connectome.load(dataset)
    cell_types, channels, pool, syn, gaps = _template_objects(load_template())
    names = list(c.neurons) + list(c.muscles)
    ctype = ["GenericNeuronCell"] * len(c.neurons) + ["GenericMuscleCell"] * len(c.muscles)
    tid = {s.id: i for i, s in enumerate(syn)}
    sign = c.sign
    chem = []
    nn_ = len(c.neurons)
    for i in range(nn_):
        inh = sign[i] < 0
        for j in c.chem[i].nonzero()[0]:
            t = tid["neuron_to_neuron_inh_syn" if inh else "neuron_to_neuron_exc_syn"]
            chem.append((i, int(j), t, float(c.chem[i, j])))
        for m in c.neuron_muscle[i].nonzero()[0]:
            t = tid["neuron_to_muscle_inh_syn" if inh else "neuron_to_muscle_exc_syn"]
            chem.append((i, nn_ + int(m), t, float(c.neuron_muscle[i, m])))
    gap = []
    for i, j in zip(*c.gap.nonzero()):
        if i != j:
            gap.append((int(i), int(j), 0, float(c.gap[i, j])))
    idx = {n: k for k, n in enumerate(names)}
    inputs = [(idx[n], d, dur, a) for n, d, dur, a in load_template()["inputs"]]
    return NetSpec(name=f"C1_{c.dataset}", cells=names, cell_type=ctype, cell_types=cell_types,
                   channels=channels, ca_pool=pool, syn_types=syn, chem=chem, gap_types=gaps,
                   gaps=gap, inputs=inputs, source=f"wormlab.connectome:{c.dataset}")


def subset_spec(spec: NetSpec, names) -> NetSpec:
    """The sub-circuit of ``names``: their cells, connections among them and their inputs."""
    missing = [n for n in names if n not in spec.cells]
    if missing:
        raise KeyError(f"cells not in network {spec.name}: {missing}")
    old = {n: i for i, n in enumerate(spec.cells)}
    keep = [old[n] for n in names]
    new = {o: k for k, o in enumerate(keep)}
    return dataclasses.replace(
        spec, name=f"{spec.name}_sub{len(keep)}", cells=list(names),
        cell_type=[spec.cell_type[o] for o in keep],
        chem=[(new[a], new[b], t, w) for a, b, t, w in spec.chem if a in new and b in new],
        gaps=[(new[a], new[b], t, w) for a, b, t, w in spec.gaps if a in new and b in new],
        inputs=[(new[c], *r) for c, *r in spec.inputs if c in new])


def build_network(config: NetworkConfig | dict | str | Path | NetSpec | None = None,
                  mechanisms=(), **overrides) -> Network:
    """Build a :class:`Network`.

    ``config`` may be a :class:`NetworkConfig`, a dict of its fields, a path to a
    ``*.net.nml``, a :class:`NetSpec`, or None (c302 C1 Full). Keyword overrides set config
    fields, e.g. ``build_network(source="connectome", dataset="witvliet8")``.
    ``mechanisms``: extra :class:`~wormlab.circuit.Mechanism` objects (or registered names)
    added to C1's, e.g. ``[circuit.ExtraK(where=("AVA",))]``.
    """
    if isinstance(config, NetSpec):
        spec = config
        cfg = NetworkConfig(**overrides)
    else:
        if isinstance(config, str | Path):
            cfg = NetworkConfig(nml_path=str(config), **overrides)
        elif isinstance(config, dict):
            cfg = NetworkConfig(**{**config, **overrides})
        elif config is None:
            cfg = NetworkConfig(**overrides)
        else:
            cfg = dataclasses.replace(config, **overrides)
        if cfg.source == "c302":
            spec = read_net_nml(cfg.nml_path or c302_network_path())
        elif cfg.source == "connectome":
            spec = spec_from_connectome(cfg.dataset)
        else:
            raise ValueError(f"source={cfg.source!r}; choose 'c302' or 'connectome'")
    if cfg.cells:
        spec = subset_spec(spec, list(cfg.cells))
    net = Network(spec, share=cfg.share, syn_kinetics=cfg.syn_kinetics,
                  mechanisms=(*cfg.mechanisms, *mechanisms))
    net.config = cfg
    return net


def default_stimulus(net: Network) -> Stimulus:
    """The inputs declared in the network's NeuroML (c302 default: 5 pA into PLML and PLMR
    from 50 ms for 900 ms, ``unphysiological_offset_current`` in c302's parameters)."""
    return Stimulus(pulses=[Pulse(net.names[c], d, dur, a) for c, d, dur, a in net.spec.inputs])
