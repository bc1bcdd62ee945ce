"""Behaviour-state decoding and activity forecasting from whole-brain imaging (GNN vs MLP).

After Wang et al. 2021, "Generalizable machine learning in neuroscience using graph neural
networks", Front. Artif. Intell. 4:618372. Data: Kato et al. 2015 (Cell 163:656) worm 0 and
Flavell-lab freely moving worms (Dag et al. 2023, Cell), from ``../shared/data``.

>>> from wormlab import behaviour as bh
>>> worms = bh.flavell_worms()
>>> split = bh.leave_worms_out(worms, 1, window=8)[0]
>>> cfg = bh.BehaviourConfig()
>>> train, val, test, names = bh.split_windows(worms, split, cfg.data)
>>> decoder, result = bh.train_and_evaluate(cfg, train, val, test)
"""

from wormlab.behaviour._config import TASKS, BehaviourConfig, DataConfig, ModelConfig, TrainConfig
from wormlab.behaviour._data import (
    Split,
    WindowSet,
    Worm,
    build_windows,
    check_no_leak,
    cross_dataset,
    features,
    kfold_within_worm,
    labels,
    leave_worms_out,
    resample,
    shared_names,
    split_windows,
)
from wormlab.behaviour._edges import compare_edges, connectome_matrix
from wormlab.behaviour._experiments import (
    EXPERIMENTS,
    PAPER_FWD_REV,
    edge_table,
    experiment_splits,
    forecast_table,
    run_classification,
    run_forecasting,
    summary_table,
)
from wormlab.behaviour._frames import (
    BEST_CANDIDATES,
    BEST_CAUSAL_CANDIDATES,
    FRAME_MODELS,
    FrameDecoder,
    FrameSpec,
    frame_features,
    frame_lwo,
    frames_table,
    select_frame_model,
)
from wormlab.behaviour._inspect import (
    edges_at,
    leave_one_out_decoder,
    plot_confusion,
    plot_edges_vs_connectome,
    plot_moment,
    plot_timeline,
    timeline,
)
from wormlab.behaviour._labels import CLASSES, KATO_MAPS, flavell_labels, kato_labels
from wormlab.behaviour._models import MODELS, GraphDecoder, build_model, connectome_weights
from wormlab.behaviour._ship import (
    load_frame_decoder,
    seed_results,
    ship_frame_decoder,
    ship_tables,
)
from wormlab.behaviour._sources import flavell_worms, kato_worms, load_worms
from wormlab.behaviour._tables import worms_table
from wormlab.behaviour._train import (
    Decoder,
    Forecaster,
    forecast_set,
    majority_baseline,
    metrics,
    persistence_mse,
    train_and_evaluate,
)

__all__ = [
    "worms_table",
    "BEST_CANDIDATES", "BEST_CAUSAL_CANDIDATES", "FRAME_MODELS", "FrameDecoder", "FrameSpec",
    "frame_features", "frame_lwo", "frames_table", "load_frame_decoder", "select_frame_model",
    "ship_frame_decoder", "seed_results", "ship_tables",
    "EXPERIMENTS", "PAPER_FWD_REV", "edge_table", "edges_at", "experiment_splits",
    "forecast_table", "leave_one_out_decoder", "plot_confusion", "plot_edges_vs_connectome",
    "plot_moment", "plot_timeline", "run_classification", "run_forecasting", "summary_table", "timeline",
    "CLASSES", "KATO_MAPS", "MODELS", "TASKS", "BehaviourConfig", "DataConfig", "Decoder",
    "Forecaster", "GraphDecoder", "ModelConfig", "Split", "TrainConfig", "WindowSet", "Worm",
    "build_model", "build_windows", "check_no_leak", "compare_edges", "connectome_matrix",
    "connectome_weights", "cross_dataset", "features", "flavell_labels", "flavell_worms",
    "forecast_set", "kato_labels", "kato_worms", "kfold_within_worm", "labels",
    "leave_worms_out", "load_worms", "majority_baseline", "metrics", "persistence_mse",
    "resample", "shared_names", "split_windows", "train_and_evaluate",
]
