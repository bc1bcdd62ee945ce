"""Mechanisms of c302 parameter set C1, as pure functions of tensors (units in names).

Each mechanism states its parameters (with units and source), its state variables and a pure
function; :class:`wormlab.circuit.Network` fuses them into one step. Sources: c302 0.12.1
``cell_C.xml`` (channels, Boyle & Cohen 2008), the generated ``c302_C1_Full.net.nml``
(densities, Ca pool, synapses) and the NEURON mod files jNeuroML 0.14 writes from them.

Conventions: V in mV, t in ms, conductance densities in mS/cm^2 (so g*(E-V) is uA/cm^2),
point conductances in nS (so g*(E-V) is pA), injected currents in nA, [Ca] in mM.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Mechanism:
    """Description of one mechanism: its parameters (name -> unit, source) and state names."""

    name: str
    parameters: dict[str, str]
    states: tuple[str, ...]
    equation: str


MECHANISMS: dict[str, Mechanism] = {
    "leak": Mechanism(
        "leak", {"g_leak": "mS/cm^2 (net.nml Leak_all)", "e_leak": "mV"}, (),
        "I = g_leak (e_leak - V)"),
    "k_slow": Mechanism(
        "k_slow", {"g_kslow": "mS/cm^2", "e_kslow": "mV", "tau_n": "ms (cell_C.xml)",
                   "mid_n": "mV", "scale_n": "mV"}, ("n",),
        "I = g_kslow n (e_kslow - V); n_inf = 1/(1+exp(-(V-mid_n)/scale_n))"),
    "k_fast": Mechanism(
        "k_fast", {"g_kfast": "mS/cm^2", "e_kfast": "mV", "tau_p": "ms", "tau_q": "ms",
                   "mid_p": "mV", "scale_p": "mV", "mid_q": "mV", "scale_q": "mV"}, ("p", "q"),
        "I = g_kfast p^4 q (e_kfast - V)"),
    "ca_boyle": Mechanism(
        "ca_boyle", {"g_ca": "mS/cm^2", "e_ca": "mV", "tau_e": "ms", "tau_f": "ms",
                     "mid_e": "mV", "scale_e": "mV", "mid_f": "mV", "scale_f": "mV",
                     "h_alpha": "1", "h_ca_half": "mM", "h_k": "mM"}, ("e", "f"),
        "I = g_ca e^2 f (1 + (h_inf([Ca]) - 1) h_alpha) (e_ca - V)"),
    "ca_pool": Mechanism(
        "ca_pool", {"tau_ca": "ms (CaPool decayConstant)", "rho_ca": "mol/(m A s) (CaPool rho)"},
        ("ca",), "d[Ca]/dt = rho J_Ca - ([Ca] - rest)/tau_ca, clamped at 0"),
    "graded_synapse": Mechanism(
        "graded_synapse", {"g_syn": "nS per synapse type", "e_syn": "mV", "syn_delta": "mV",
                           "syn_vth": "mV", "syn_k": "1/ms", "w_syn": "1 (per connection)"},
        ("s",),
        "s_inf = 1/(1+exp((Vth-Vpre)/delta)); ds/dt = (s_inf-s) k/(1-s_inf); I = w g s (E-V)"),
    "gap_junction": Mechanism(
        "gap_junction", {"g_gap": "nS", "w_gap": "1 (per connection)"}, (),
        "I_a = w g (V_b - V_a), applied to both cells of each NeuroML electrical connection"),
}


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
