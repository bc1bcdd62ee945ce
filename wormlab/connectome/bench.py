"""``wormlab bench connectome``: cost of building a Connectome vs cect's own load (the anchor)."""

from __future__ import annotations

import importlib
import time

from wormlab.connectome._connectome import _cect_dataset, _load, load
from wormlab.connectome._datasets import DATASETS


def run(quick: bool = False) -> dict:
    repeats = 2 if quick else 10
    reader = DATASETS["cook2019"].reader
    module = importlib.import_module(f"cect.readers.{reader}")
    t_cect, t_ours, t_tensor = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        module.get_instance(from_cache=True)
        t_cect.append(time.perf_counter() - t0)
        _cect_dataset.cache_clear()
        _load.cache_clear()
        t0 = time.perf_counter()
        c = load("cook2019")
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        c.adjacency("chem"), c.adjacency("gap"), c.adjacency("neuron_muscle")
        t_tensor.append(time.perf_counter() - t0)
    best = min
    return {
        "dataset": "cook2019",
        "repeats": repeats,
        "cect_load_s": best(t_cect),
        "wormlab_load_s": best(t_ours),
        "wormlab_over_cect": best(t_ours) / best(t_cect),
        "adjacency_tensors_s": best(t_tensor),
    }
