"""Reduced-order recurrent models (RNN / LSTM / GRU) of the connectome simulation.

Seed: Mestre et al. (2021), "Learning the dynamics of realistic models of C. elegans nervous
system with recurrent neural networks" — one recurrent layer + dense readout trained on
500 ms simulations of the c302 network under 40 input-current shapes.

>>> from wormlab import rom
>>> data = rom.load("data/cache/rom/synthetic_c302_C1_forward/dt0.5ms")   # text folder
>>> cfg = rom.RomConfig(rom.ModelConfig("gru", 8), rom.TrainConfig(epochs=300), runs=3)
>>> res = rom.repeated_runs(data, cfg)       # {"train_rmse", "val_rmse", "test_rmse", ...}

Arrays are time-first ``(T, B, N)``; units are the data's (``SequenceSet.output_unit``: mV from
this package's generator, V from c302/NEURON files), time in s in files.
"""

from wormlab.rom._baseline import baseline_runs, plain_baseline
from wormlab.rom._compare import (
    currents_from_specs,
    hidden_output_correlation,
    hidden_states,
    predict_vs_simulation,
)
from wormlab.rom._experiments import markdown as table_markdown
from wormlab.rom._experiments import run_experiment
from wormlab.rom._format import (
    FormatError,
    SequenceSet,
    detect_output_unit,
    load,
    load_h5,
    load_npz,
    read_sequence,
    read_text_dir,
    save_h5,
    save_npz,
    smoke_dataset,
    write_sequence,
    write_text_dir,
)
from wormlab.rom._generate import (
    FORWARD_INPUTS,
    FORWARD_OUTPUTS,
    NICTATION_INPUTS,
    NICTATION_OUTPUTS,
    GenerateConfig,
    SimulationBlowUp,
    generate_dataset,
    resolve_backend,
    simulate,
    stimuli,
)
from wormlab.rom._hidden_sae import HiddenSAE, fit_hidden_sae
from wormlab.rom._models import CELLS, RomModel, load_model, n_parameters, save_model
from wormlab.rom._plots import (
    plot_comparison,
    plot_hidden,
    plot_matrix,
    plot_table,
    plot_true_vs_predicted,
)
from wormlab.rom._saliency import gradient_saliency
from wormlab.rom._sensitivity import generator_sensitivity, perturb, sensitivity
from wormlab.rom._shapes import PRIMITIVES, RECIPES, make_current, shape_library
from wormlab.rom._tables import (
    TABLE_FOLDERS,
    TABLE_NAMES,
    generated_data_dir,
    quick_table,
    saved_tables,
)
from wormlab.rom._train import (
    ModelConfig,
    RomConfig,
    SplitConfig,
    TrainConfig,
    TrainResult,
    repeated_runs,
    split_indices,
    train_many,
    train_model,
)

__all__ = [
    "baseline_runs", "detect_output_unit", "plain_baseline",
    "CELLS", "HiddenSAE", "fit_hidden_sae", "generator_sensitivity", "perturb", "sensitivity",
    "FORWARD_INPUTS", "FORWARD_OUTPUTS", "NICTATION_INPUTS", "NICTATION_OUTPUTS",
    "PRIMITIVES", "RECIPES", "FormatError", "GenerateConfig", "ModelConfig", "RomConfig",
    "RomModel", "SequenceSet", "SimulationBlowUp", "SplitConfig", "TrainConfig", "TrainResult",
    "currents_from_specs", "generate_dataset", "gradient_saliency", "hidden_output_correlation",
    "hidden_states", "predict_vs_simulation", "load", "load_h5", "load_model", "load_npz",
    "make_current", "n_parameters", "read_sequence", "read_text_dir", "repeated_runs",
    "save_h5", "save_model", "save_npz", "shape_library", "simulate", "smoke_dataset", "split_indices",
    "stimuli", "train_many", "train_model", "write_sequence", "write_text_dir",
    "plot_comparison", "plot_hidden", "plot_matrix", "plot_table", "plot_true_vs_predicted",
    "resolve_backend", "run_experiment", "table_markdown", "TABLE_FOLDERS", "TABLE_NAMES",
    "generated_data_dir", "quick_table", "saved_tables",
]
