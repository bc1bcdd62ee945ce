"""Auto-fitting the circuit to data (issue 16): bounded parameters, a registry of what is fitted
vs measured, losses that stay meaningful on a chaotic network, optimisers (Adam, CMA-ES, hybrid),
a validation scorecard and the NeuroML round trip.

Built on :mod:`wormlab.circuit` (mechanism parameter metadata, the discrete adjoint, populations
on Dask). Each submodule adds its public names below.
"""

from wormlab.fit._score import TARGETS as SCORECARD_TARGETS
from wormlab.fit._score import (
    AtlasProtocol,
    AtlasUnavailable,
    CorrelationProtocol,
    CorrelationTarget,
    atlas_r,
    atlas_responses,
    atlas_targets,
    correlation_targets,
    scorecard,
    simulated_correlation,
    split_atlas_pairs,
)
