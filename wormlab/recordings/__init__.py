"""Calcium-imaging recordings: one data model, loaders for real formats, a virtual worm.

Public API (documented in docs/recordings.md)::

    from wormlab import recordings as rec
    r = rec.load_kato2015()                       # Kato et al. 2015 worm 0 (real, with states)
    r = rec.load_flavell2023("2022-07-26-31")     # Dag et al. 2023 (real, NeuroPAL names)
    r = rec.load("file.mat" | "file.nwb" | "file.npz" | "file.csv" | "x-data.h5")
    r.traces (T, N) float32, r.neuron_names, r.time_s, r.fps, r.stimuli, r.states, ...
    r = rec.virtual_worm(rec.VirtualWormConfig(seed=0))   # SYNTHETIC, with ground truth
"""

from wormlab.recordings._formats import (
    load,
    load_csv,
    load_kato_mat,
    load_npz,
    load_nwb,
    save,
    save_csv,
    save_kato_mat,
    save_npz,
    save_nwb,
)
from wormlab.recordings._model import FPS_RTOL, Recording, RecordingError, Stimulus, block_ids
from wormlab.recordings._names import UNKNOWN_NAMES, check_names, is_neuron
from wormlab.recordings._shared import (
    DAG2023_CITATION,
    KATO2015_CITATION,
    list_flavell2023,
    list_shared,
    load_flavell2023,
    load_kato2015,
    load_shared,
)
from wormlab.recordings._virtual import (
    DEFAULT_STIMULI,
    IndicatorConfig,
    ProtocolConfig,
    RateNetworkConfig,
    StimulusSpec,
    VirtualWormConfig,
    circuit_simulator,
    rate_network,
    virtual_worm,
)

__all__ = [
    "DEFAULT_STIMULI",
    "IndicatorConfig",
    "ProtocolConfig",
    "RateNetworkConfig",
    "StimulusSpec",
    "VirtualWormConfig",
    "circuit_simulator",
    "rate_network",
    "virtual_worm",
    "default_recording",
    "DAG2023_CITATION",
    "FPS_RTOL",
    "KATO2015_CITATION",
    "Recording",
    "RecordingError",
    "Stimulus",
    "block_ids",
    "check_names",
    "is_neuron",
    "UNKNOWN_NAMES",
    "list_flavell2023",
    "list_shared",
    "load",
    "load_csv",
    "load_flavell2023",
    "load_kato2015",
    "load_kato_mat",
    "load_npz",
    "load_nwb",
    "load_shared",
    "save",
    "save_csv",
    "save_kato_mat",
    "save_npz",
    "save_nwb",
]


def default_recording(smoke: bool = False) -> Recording:
    """Kato et al. 2015 worm 0 when the shared data folder is present, else a SYNTHETIC
    virtual worm (shorter in ``smoke`` mode)."""
    from wormlab.paths import shared_data_dir

    if shared_data_dir() is not None and list_shared():
        return load_kato2015()
    cfg = VirtualWormConfig(protocol=ProtocolConfig(duration_s=300.0 if smoke else 1800.0))
    return virtual_worm(cfg)
