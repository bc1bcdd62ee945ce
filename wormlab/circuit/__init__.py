"""Differentiable c302 C1 circuit (302 neurons + 95 body-wall muscles) in PyTorch.

>>> from wormlab import circuit
>>> net = circuit.build_network()                       # c302 C1 Full, exact c302 wiring
>>> res = circuit.simulate(net, "c302", duration_ms=100, record=["AVAL", "ca:MDL07"])
>>> res.v_mV.shape, res.states["ca"].shape               # (T, B, K) time-first, mV / mM
(torch.Size([1001, 1, 1]), torch.Size([1001, 1, 1]))

Units: mV, ms, nA (stimuli), nS (synapses, gaps), mS/cm^2 (channel densities), mM.
Mechanisms are plug-ins (:class:`Mechanism`, :data:`MECHANISMS`); :class:`SimConfig` and
:data:`SOLVERS` say how to integrate (default RK4 at :data:`DEFAULT_DT_MS`); gradients use a
discrete adjoint of the RK4 step. The NEURON reference (c302 + jNeuroML + NEURON CVODE) is in
:mod:`wormlab.circuit.reference`.
"""

from wormlab.circuit._build import (
    build_network,
    c302_network_path,
    default_stimulus,
    spec_from_connectome,
    subset_spec,
)
from wormlab.circuit._mechanisms import (
    BOUNDS,
    MECHANISMS,
    ExtraK,
    Gate,
    Mechanism,
    Param,
    register_mechanism,
)
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
from wormlab.circuit._population import simulate_population
from wormlab.circuit._simulate import (
    DEFAULT_DT_MS,
    SOLVERS,
    Result,
    SimConfig,
    Solver,
    check_gradients,
    check_state,
    simulate,
)
from wormlab.circuit._stimulus import Pulse, Stimulus, Waveform

__all__ = [
    "BOUNDS", "CELL_PARAMS", "DEFAULT_DT_MS", "MECHANISMS", "SOLVERS", "STATE_NAMES",
    "CircuitBlowUpError", "ExtraK", "Gate", "Mechanism", "NMLFormatError", "NetSpec", "Network",
    "NetworkConfig", "Param", "Pulse", "Result", "SimConfig", "Solver", "Stimulus", "Waveform",
    "build_network", "c302_network_path", "check_gradients", "check_state", "default_stimulus",
    "load_parameters", "read_net_nml", "register_mechanism", "save_parameters", "simulate",
    "simulate_population", "spec_from_connectome", "subset_spec",
]
