"""Why c302 C1 does not move the body (issue 17 item 1): numbers, not words.

:func:`diagnose_muscle_drive` runs the motor sub-circuit (command interneurons, ventral-cord
motor neurons, muscles; c302 C1 parameters) under a forward drive and reports, per stage of the
chain, where the signal is lost: the drive neuron's depolarisation, the motor neurons' resting
potential against the graded synapses' threshold (``s_inf = 1 / (1 + exp((Vth - V) / delta))``),
the neuromuscular conductance that reaches a muscle, the muscles' depolarisation and [Ca], and
[Ca] against the Ca -> activation constant (Sibernetic's 4e-7 mM).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def diagnose_muscle_drive(drive_nA: float = 0.003, duration_ms: float = 300.0,
                          dt_ms: float | None = None, max_ca_mM: float = 4e-7) -> dict:
    from wormlab import circuit
    from wormlab.body._muscles import MUSCLES
    from wormlab.worm._motor import (
        FORWARD_DRIVE,
        build_motor_network,
        connection_groups,
        motor_class,
    )

    net = build_motor_network()
    dt_ms = circuit.DEFAULT_DT_MS if dt_ms is None else dt_ms
    stim = circuit.Stimulus.step(list(FORWARD_DRIVE), drive_nA)
    names = net.names
    with torch.no_grad():
        r = circuit.simulate(net, stim, duration_ms, dt_ms, record={"v": list(names),
                                                                    "ca": list(MUSCLES)},
                             record_every=10)
    v = r.states["v"][:, 0].numpy()
    ca = r.states["ca"][:, 0].numpy()
    idx = {n: i for i, n in enumerate(names)}
    P = {k: p.detach() for k, p in net.params.items()}
    vth, delta = float(P["syn_vth"][0]), float(P["syn_delta"][0])
    mn = [n for n in names if motor_class(n)]
    b_mn = [n for n in mn if motor_class(n) in ("DB", "VB")]
    late = v[len(v) // 2:]
    v_b = late[:, [idx[n] for n in b_mn]].mean()
    s_inf = 1.0 / (1.0 + math.exp((vth - v_b) / delta))
    g = connection_groups(net)
    w = P["w_syn"].numpy()
    gsyn_types = P["g_syn"].numpy()
    st = net.syn_type.numpy()
    nmj = g["syn_nmj_exc"].numpy()
    g_nmj_max = float((w[nmj] * gsyn_types[st[nmj]]).sum())  # nS, all NMJs fully active
    per_muscle = g_nmj_max / len(MUSCLES)
    area_cm2 = float(net.area_um2[idx[MUSCLES[0]]]) * 1e-8
    muscle_v = late[:, [idx[m] for m in MUSCLES]]
    out = {
        "drive_nA": drive_nA,
        "drive_neuron_V_mV": float(late[:, idx[FORWARD_DRIVE[0]]].mean()),
        "b_type_V_mV": float(v_b),
        "motor_neuron_V_range_mV": [float(late[:, [idx[n] for n in mn]].min()),
                                    float(late[:, [idx[n] for n in mn]].max())],
        "syn_vth_mV": vth, "syn_delta_mV": delta,
        "b_type_s_inf": s_inf,
        "drive_neuron_s_inf": 1.0 / (1.0 + math.exp(
            (vth - float(late[:, idx[FORWARD_DRIVE[0]]].mean())) / delta)),
        "gap_cmd_to_b_nS_per_b_neuron": _gap_to(net, P, FORWARD_DRIVE, b_mn),
        "nmj_g_max_total_nS": g_nmj_max,
        "nmj_g_per_muscle_nS": per_muscle,
        "nmj_g_active_per_muscle_nS": per_muscle * s_inf,
        "muscle_area_cm2": area_cm2,
        "muscle_V_range_mV": [float(muscle_v.min()), float(muscle_v.max())],
        "muscle_ca_max_mM": float(ca.max()),
        "max_ca_mM": max_ca_mM,
        "ca_fraction_of_saturation": float(ca.max() / max_ca_mM),
        "activation_max": float(min(1.0, ca.max() / max_ca_mM)),
        "duration_ms": duration_ms, "dt_ms": dt_ms,
    }
    return out


def _gap_to(net, P, src, dst) -> float:
    """Mean total gap-junction conductance (nS) from the cells ``src`` onto each of ``dst``."""
    a, b = net.gap_a.numpy(), net.gap_b.numpy()
    g = P["g_gap"].numpy()[net.gap_type.numpy()] * P["w_gap"].numpy()
    s = set(net.indices(list(src)))
    tot = 0.0
    for d in net.indices(list(dst)):
        tot += float(g[((a == d) & np.isin(b, list(s))) | ((b == d) & np.isin(a, list(s)))].sum())
    return tot / max(1, len(dst))
