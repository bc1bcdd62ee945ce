"""Sparse autoencoders on whole-brain activity, with stimulus/behaviour-state interpretation.

    from wormlab import recordings, sae
    exp = sae.fit_recording(recordings.load_kato2015(), sae.ExperimentConfig())
    print(exp.val_metrics.describe())
    print(sae.interpret(exp).report())        # the seed's table, with p/q from block shuffles

The trainer takes ANY iterable of activation tensors (``sae.train(model, batches, ...)``).
"""

from wormlab.sae._data import FrameBatches, Split, time_block_split
from wormlab.sae._interpret import (
    FeatureStat,
    SelectivityTable,
    benjamini_hochberg,
    block_permutation_test,
    block_shuffles,
    cohens_d,
    format_line,
    nearest_units,
    recovery_from_neurons,
    recovery_from_units,
    selectivity,
    top_neurons,
)
from wormlab.sae._metrics import Metrics, evaluate
from wormlab.sae._model import SAEConfig, SparseAutoencoder
from wormlab.sae._pipeline import (
    Experiment,
    ExperimentConfig,
    Interpretation,
    InterpretConfig,
    SplitConfig,
    fit_recording,
    interpret,
    pca_features,
)
from wormlab.sae._report import (
    format_unit_summary,
    plot_history,
    plot_unit,
    top_units,
    unit_summary,
)
from wormlab.sae._train import (
    TrainConfig,
    TrainResult,
    load_checkpoint,
    load_sae,
    save_checkpoint,
    save_sae,
    train,
)

__all__ = [
    "Experiment", "ExperimentConfig", "FeatureStat", "FrameBatches", "InterpretConfig",
    "Interpretation", "Metrics", "SAEConfig", "SelectivityTable", "Split", "SplitConfig",
    "SparseAutoencoder", "TrainConfig", "TrainResult", "benjamini_hochberg",
    "block_permutation_test", "block_shuffles", "cohens_d", "evaluate", "fit_recording",
    "format_line", "interpret", "load_checkpoint", "load_sae", "nearest_units", "pca_features",
    "recovery_from_neurons", "recovery_from_units", "save_checkpoint", "save_sae", "selectivity",
    "time_block_split", "top_neurons", "train", "format_unit_summary", "plot_history",
    "plot_unit", "top_units", "unit_summary",
]
