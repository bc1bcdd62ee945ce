"""The closed sensorimotor loop's world and measures (issue 18): arena fields, taxis indices,
trial sweeps.

>>> from wormlab import loop
>>> arena = loop.load_arena("wormlab/loop/arenas/nacl_local.yml")
>>> arena.sample([[0.0, 0.0], [1000.0, 0.0]])["nacl"]        # mM at the head positions (um)
>>> loop.chemotaxis_index(end_xy_um, arena.peak_um("nacl"), zone_radius_um=1500.0)
"""

from wormlab.loop._arena import (
    KINDS,
    MODALITIES,
    Arena,
    ArenaError,
    Constant,
    Field,
    Gaussian,
    Linear,
    Step,
    arena_from_dict,
    load_arena,
    plot_arena,
    save_arena,
)
from wormlab.loop._closed import (
    PATH_INTERNEURONS,
    PATHWAY_PARAMS,
    ClosedLoopConfig,
    ClosedLoopResult,
    closed_loop_network,
    linear_arena,
    read_pathway,
    run_closed_loop,
)
from wormlab.loop._experiment import (
    TaxisConfig,
    flattened,
    load_condition,
    pathway_and_params,
    plot_taxis,
    run_taxis,
    taxis_report,
    trial_starts,
)
from wormlab.loop._fit import FIT_SPACE, TaxisFitConfig, fit_taxis
from wormlab.loop._sweep import (
    SyntheticWalk,
    load_trial,
    load_trials,
    run_trials,
    trial_id,
    write_trial_wcon,
)
from wormlab.loop._taxis import (
    bootstrap_ci,
    chemotaxis_index,
    chemotaxis_scores,
    ci_from_scores,
    closer_fraction,
    compare_conditions,
    isothermal_tracking,
    steering,
    thermotaxis_index,
    thermotaxis_zones,
    track_measures,
    turning_by_change,
    value_change,
    wilson_interval,
)

__all__ = [
    "PATH_INTERNEURONS", "PATHWAY_PARAMS", "ClosedLoopConfig", "ClosedLoopResult",
    "closed_loop_network", "linear_arena", "read_pathway", "run_closed_loop", "FIT_SPACE",
    "TaxisFitConfig", "fit_taxis", "TaxisConfig", "flattened", "load_condition",
    "pathway_and_params", "plot_taxis", "run_taxis", "taxis_report", "trial_starts", "KINDS",
    "MODALITIES", "Arena", "ArenaError", "Constant", "Field", "Gaussian", "Linear", "Step",
    "SyntheticWalk", "arena_from_dict", "bootstrap_ci", "chemotaxis_index", "chemotaxis_scores",
    "ci_from_scores", "closer_fraction", "compare_conditions", "isothermal_tracking", "load_arena",
    "load_trial", "load_trials", "plot_arena", "run_trials", "save_arena", "steering",
    "thermotaxis_index", "thermotaxis_zones", "track_measures", "trial_id", "turning_by_change",
    "value_change", "wilson_interval", "write_trial_wcon",
]
