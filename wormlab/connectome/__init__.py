"""Real *C. elegans* wiring from the ``cect`` package (Cook 2019 hermaphrodite by default).

>>> from wormlab import connectome
>>> c = connectome.load("cook2019")
>>> c.chem[c.index("AVAL"), c.index("AVBL")] > 0
"""

from wormlab.connectome._cells import MUSCLES, NEURONS, muscle_info, neuron_class, neuron_type
from wormlab.connectome._connectome import (
    FAST_TRANSMITTERS,
    Connectome,
    UnknownNameError,
    load,
    resolve_dataset,
    transmitter_table,
)
from wormlab.connectome._datasets import ALIASES, DATASETS, DEFAULT_DATASET

__all__ = [
    "ALIASES", "DATASETS", "DEFAULT_DATASET", "FAST_TRANSMITTERS", "MUSCLES", "NEURONS",
    "Connectome", "UnknownNameError", "load", "muscle_info", "neuron_class", "neuron_type",
    "resolve_dataset", "transmitter_table",
]
