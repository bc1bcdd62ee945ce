"""Differentiable c302 C1 circuit (302 neurons + 95 body-wall muscles) in PyTorch.

>>> from wormlab import circuit
>>> net = circuit.build_network()                       # c302 C1 Full, exact c302 wiring
>>> res = circuit.simulate(net, "c302", duration_ms=100, dt_ms=0.05, record=["AVAL", "PLML"])
>>> res.v_mV.shape                                       # (T, B, K) time-first, mV
torch.Size([2001, 1, 2])

Units: mV, ms, nA (stimuli), nS (synapses, gaps), mS/cm^2 (channel densities), mM.
The NEURON reference (c302 + jNeuroML + NEURON CVODE) is in :mod:`wormlab.circuit.reference`.
"""

from wormlab.circuit._build import (
    build_network,
    c302_network_path,
    default_stimulus,
    spec_from_connectome,
    subset_spec,
)
from wormlab.circuit._mechanisms import MECHANISMS
from wormlab.circuit._network import (
    CELL_PARAMS,
    STATE_NAMES,
    CircuitBlowUpError,
    Network,
    NetworkConfig,
    load_parameters,
    save_parameters,
)
from wormlab.circuit._nml import NetSpec, NMLFormatError, read_net_nml
from wormlab.circuit._simulate import Result, check_gradients, check_state, simulate
from wormlab.circuit._stimulus import Pulse, Stimulus, Waveform

__all__ = [
    "CELL_PARAMS", "MECHANISMS", "STATE_NAMES", "CircuitBlowUpError", "NMLFormatError",
    "NetSpec", "Network", "NetworkConfig", "Pulse", "Result", "Stimulus", "Waveform",
    "build_network", "c302_network_path", "check_gradients", "check_state", "default_stimulus",
    "load_parameters", "read_net_nml", "save_parameters", "simulate", "spec_from_connectome",
    "subset_spec",
]
