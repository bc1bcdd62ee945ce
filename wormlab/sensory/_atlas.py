"""Propagation downstream of the sensory neurons vs the Randi et al. 2023 signal-propagation atlas.

Reuses the scorer of :mod:`wormlab.fit` (``atlas_targets``, ``atlas_responses``, ``atlas_r``):
the atlas' significant pairs (q < 0.05) whose *stimulated* neuron is one of the modalities'
sensory neurons, simulated on c302 C1 Full (default parameters) with the scorer's protocol
(2 ms, 20 pA pulse; mean V change over 100 ms vs an unstimulated control), and Pearson r between
simulated (mV) and measured (dF/F) amplitudes, per sensory neuron and over all pairs. The atlas
is GPL data, read from the optional ``wormneuroatlas`` package or its extracted cache.
"""

from __future__ import annotations


def atlas_propagation(modalities=None, *, net=None) -> dict:
    """{"per_neuron": {neuron: {"r", "n_pairs", "modality"}}, "all": {"r", "n_pairs"},
    "citation", "protocol"}; raises ``wormlab.fit`` ``AtlasUnavailable`` without the atlas."""
    import dataclasses

    import numpy as np

    from wormlab import circuit, fit
    from wormlab.fit._score import ATLAS_CITATION
    from wormlab.sensory._references import MODALITIES, load_references

    refs = load_references()
    mods = list(modalities or MODALITIES)
    owner = {n: m for m in mods for n in refs[m].neurons}
    net = net or circuit.build_network()
    pairs = fit.atlas_targets(net.names)
    pairs = pairs[pairs["stim"].isin(set(owner))].reset_index(drop=True)
    proto = fit.AtlasProtocol()
    sim = fit.atlas_responses(net, pairs, proto) if len(pairs) else np.zeros(0)
    out = {"per_neuron": {}, "citation": ATLAS_CITATION,
           "protocol": dataclasses.asdict(proto), "network": "c302 C1 Full, default parameters"}
    for n in owner:
        k = (pairs["stim"] == n).to_numpy()
        r, npairs = fit.atlas_r(sim[k], pairs["dff"].to_numpy()[k])
        out["per_neuron"][n] = {"modality": owner[n], "r": r, "n_pairs": npairs,
                                "pairs": [[a, float(s), float(d)] for a, s, d in
                                          zip(pairs["resp"][k], sim[k], pairs["dff"][k])]}
    r, npairs = fit.atlas_r(sim, pairs["dff"].to_numpy())
    out["all"] = {"r": r, "n_pairs": npairs}
    return out
