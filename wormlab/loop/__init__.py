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
    ClosedLoopConfig,
    ClosedLoopResult,
    closed_loop_network,
    linear_arena,
    run_closed_loop,
)
from wormlab.loop._experiment import (
    TaxisConfig,
    flattened,
    load_condition,
    plot_taxis,
    run_taxis,
    taxis_report,
    trial_starts,
)
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
    thermotaxis_index,
    thermotaxis_zones,
    track_measures,
    value_change,
    wilson_interval,
)

__all__ = [
    "PATH_INTERNEURONS", "ClosedLoopConfig", "ClosedLoopResult", "closed_loop_network",
    "linear_arena", "run_closed_loop", "TaxisConfig", "flattened", "load_condition",
    "plot_taxis", "run_taxis", "taxis_report", "trial_starts",
    "KINDS", "MODALITIES", "Arena", "ArenaError", "Constant", "Field", "Gaussian", "Linear",
    "Step", "SyntheticWalk", "arena_from_dict", "bootstrap_ci", "chemotaxis_index",
    "chemotaxis_scores", "ci_from_scores", "closer_fraction", "compare_conditions",
    "isothermal_tracking", "load_arena", "load_trial", "load_trials", "plot_arena",
    "run_trials", "save_arena", "thermotaxis_index", "thermotaxis_zones", "track_measures",
    "trial_id", "value_change", "wilson_interval", "write_trial_wcon",
]
