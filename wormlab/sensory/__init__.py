"""Sensory transduction (issue 18): reference responses and learned GRU transducers.

>>> from wormlab import sensory
>>> refs = sensory.load_references()           # modality -> Reference (reconstructed curves)
>>> t = sensory.load_transducer("nacl")         # stimulus (mM) -> current (nA) into ASEL/ASER
>>> i_nA = t(stimulus)                          # (T, B[, 1]) -> (T, B, len(t.neurons))

Every reference curve is *reconstructed from a published description (not pixel-digitised)*;
see ``docs/sensory.md`` and :mod:`wormlab.sensory._references`.
"""

from wormlab.sensory._plots import plot_evaluation
from wormlab.sensory._references import (
    FRAME_DT_MS,
    KIND_RECONSTRUCTED,
    MODALITIES,
    UNITS,
    Protocol,
    Reference,
    ReferenceError,
    load_references,
    parse_references,
    response_curve,
    write_references,
)
from wormlab.sensory._transducer import (
    I_MAX_NA,
    TrainConfig,
    Transducer,
    TransducerError,
    evaluate,
    load_transducer,
    save_transducer,
    sensory_cells,
    sensory_network,
    simulate_response,
    train,
    transducer_metadata,
)

__all__ = ["plot_evaluation", "FRAME_DT_MS", "KIND_RECONSTRUCTED", "MODALITIES", "UNITS", "Protocol", "Reference",
           "ReferenceError", "load_references", "parse_references", "response_curve",
           "write_references", "I_MAX_NA", "TrainConfig", "Transducer",
           "TransducerError", "evaluate", "load_transducer", "save_transducer", "sensory_cells",
           "sensory_network", "simulate_response", "train", "transducer_metadata"]
