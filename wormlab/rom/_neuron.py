"""Import shim: the NEURON/c302 generator lives in :mod:`wormlab.circuit.reference` (the one
NEURON adapter). Kept for existing imports (``rom.bench``, tests); new code imports from there.
"""

from wormlab.circuit.reference import (  # noqa: F401
    NeuronNetwork,
    neuron_available,
    neuron_network,
)
from wormlab.circuit.reference import neurons_network_dir as build_network  # noqa: F401
