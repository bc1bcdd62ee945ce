"""Auto-fitting the circuit to data (issue 16): bounded parameters, a registry of what is fitted
vs measured, losses that stay meaningful on a chaotic network, optimisers (Adam, CMA-ES, hybrid),
a validation scorecard and the NeuroML round trip.

Built on :mod:`wormlab.circuit` (mechanism parameter metadata, the discrete adjoint, populations
on Dask). Each submodule adds its public names below.
"""

from wormlab.circuit._intestine import (  # issue 16 item 7: intestinal oscillator
    INTESTINE_CELLS,
    IntestinalCa,
    add_intestine,
    fit_period,
    intestine_network,
    oscillation_period_s,
    simulate_intestine,
    wave_direction,
)
from wormlab.fit._bounds import (
    Bound,
    Bounded,
    BoundsError,
    BoundsTable,
    load_bounds,
    project,
)
from wormlab.fit._fit import (
    FAILED_LOSS,
    FitConfig,
    FitResult,
    Objective,
    fit_adam,
    fit_cma,
    from_unconstrained,
    recovery_config,
    run_fit,
    to_unconstrained,
)
from wormlab.fit._losses import (
    clip_gradients,
    correlation_mse,
    pearson_corr,
    response_amplitude,
    spectral_period_loss,
    trace_mse,
    windowed_run,
)
from wormlab.fit._neuroml import NeuroMLExportError, export_neuroml, run_neuroml
from wormlab.fit._plots import plot_history, plot_params_vs_bounds
from wormlab.fit._polarity import (  # issue 16 item 4: synaptic weights and polarities
    TRANSMITTER_SIGN,
    PolarityError,
    SynapticPolarity,
    expected_signs,
    fit_polarity,
    flipped_polarities,
    polarity_network,
)
from wormlab.fit._registry import (
    ParamsFileError,
    load_params,
    plot_registry,
    registry_table,
    save_params,
)
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

__all__ = [
    "AtlasProtocol", "AtlasUnavailable", "Bound", "Bounded", "BoundsError", "BoundsTable",
    "CorrelationProtocol", "CorrelationTarget", "FAILED_LOSS", "FitConfig", "FitResult",
    "INTESTINE_CELLS", "IntestinalCa", "NeuroMLExportError", "Objective", "ParamsFileError",
    "SCORECARD_TARGETS", "add_intestine", "atlas_r", "atlas_responses", "atlas_targets",
    "clip_gradients", "correlation_mse", "correlation_targets", "export_neuroml", "fit_adam",
    "fit_cma", "fit_period", "from_unconstrained", "intestine_network", "load_bounds",
    "load_params", "oscillation_period_s", "pearson_corr", "plot_registry", "project",
    "registry_table", "response_amplitude", "run_fit", "run_neuroml", "save_params", "scorecard",
    "simulate_intestine", "simulated_correlation", "spectral_period_loss", "split_atlas_pairs",
    "to_unconstrained", "trace_mse", "wave_direction", "windowed_run", "plot_history",
    "plot_params_vs_bounds", "recovery_config",
    "PolarityError", "SynapticPolarity", "TRANSMITTER_SIGN", "expected_signs", "fit_polarity",
    "flipped_polarities", "polarity_network",
]
