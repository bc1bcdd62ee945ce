"""The integrated worm (issue 17): c302's motor circuit drives muscles and the body."""

from wormlab.worm._config import (
    WormRunConfig,
    load_run_config,
    read_crawl_params,
    run_from_config,
    write_crawl_params,
)
from wormlab.worm._diagnose import diagnose_muscle_drive
from wormlab.worm._export import export_crawl, neuron_check, read_sidecar
from wormlab.worm._fit import (
    TARGETS,
    CrawlFitConfig,
    crawl_loss,
    crawl_metrics,
    fit_crawl,
    speed_windows,
)
from wormlab.worm._loop import PARAMS, LoopConfig, LoopResult, default_params, run_loop
from wormlab.worm._motor import (
    BACKWARD_DRIVE,
    COMMAND,
    FORWARD_DRIVE,
    HEAD_MOTOR,
    Stretch,
    build_motor_network,
    connection_groups,
    head_matrix,
    motor_cells,
    neuron_rows,
    proprioceptive_matrix,
)
from wormlab.worm._perturb import PERTURBATIONS, Perturbation, perturbation_table
from wormlab.worm._plots import (
    midline_animation,
    muscle_kymograph,
    plot_fit_history,
    plot_kymographs,
    plot_real_kymograph,
)
from wormlab.worm._targets import flavell_crawl_ranges
from wormlab.worm._validate import default_surrogate, surrogate_vs_physics

__all__ = [
    "BACKWARD_DRIVE", "COMMAND", "HEAD_MOTOR", "head_matrix", "FORWARD_DRIVE", "PARAMS", "LoopConfig", "LoopResult",
    "build_motor_network", "connection_groups", "default_params", "motor_cells", "neuron_rows",
    "proprioceptive_matrix", "run_loop", "WormRunConfig", "load_run_config",
    "read_crawl_params", "run_from_config", "write_crawl_params", "CrawlFitConfig",
    "crawl_loss", "crawl_metrics", "fit_crawl", "TARGETS", "diagnose_muscle_drive",
    "PERTURBATIONS", "Perturbation", "perturbation_table", "midline_animation",
    "muscle_kymograph", "plot_fit_history", "plot_kymographs", "plot_real_kymograph",
    "flavell_crawl_ranges", "export_crawl", "neuron_check", "read_sidecar", "Stretch",
    "speed_windows", "default_surrogate", "surrogate_vs_physics",
]
