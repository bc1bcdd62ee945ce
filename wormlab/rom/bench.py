"""``wormlab bench rom``: a trained GRU vs the full circuit simulation on the same inputs.

Batch of 40 stimuli of 500 ms (the paper's forward-crawling library), measured in one run:
the GRU's inference on the 0.5 ms grid, the differentiable ``wormlab.circuit`` (batched,
exp-Euler at 0.05 ms, all 40 at once) and the NEURON anchor (c302 C1, fixed step 0.05 ms; it
runs one sequence after another, so 4 are timed and scaled to 40 — reported as such).
``quick`` shrinks everything to 50 ms and 4 sequences (for tests).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from wormlab.paths import cache_dir


def _trained_gru(quick: bool):
    """The GRU-8 checkpoint of the experiments if present, else a short training on the
    shipped smoke data (timing does not depend on the training)."""
    from wormlab.rom._format import smoke_dataset
    from wormlab.rom._models import load_model
    from wormlab.rom._train import ModelConfig, RomConfig, TrainConfig, train_model

    ck = cache_dir("rom", "results", create=False) / "arch_models" / "gru8_run0.safetensors"
    if ck.exists() and not quick:
        return load_model(ck), str(ck)
    cfg = RomConfig(ModelConfig("gru", 8), TrainConfig(epochs=2 if quick else 30))
    res = train_model(smoke_dataset(), cfg, show_progress=False)
    return res.model, f"trained {cfg.train.epochs} epochs on the shipped smoke data"


def run(quick: bool = False) -> dict:
    from wormlab.rom._generate import GenerateConfig, circuit_available, simulate, stimuli
    from wormlab.rom._neuron import neuron_available

    n, dur = (4, 50.0) if quick else (40, 500.0)
    cfg = GenerateConfig(n_sequences=n, duration_ms=dur, sample_dt_ms=(0.5,))
    _, t_ms, cur = stimuli(cfg)
    model, source = _trained_gru(quick)
    out: dict = {"batch": n, "duration_ms": dur, "gru": model.describe(), "gru_source": source,
                 "threads": torch.get_num_threads()}

    x = torch.as_tensor(cur, dtype=torch.float32)
    with torch.no_grad():
        model(x[:10])  # warm-up
        t0 = time.perf_counter()
        pred = model(x)
        out["gru_s"] = time.perf_counter() - t0

    if circuit_available():
        ccfg = GenerateConfig(backend="circuit", n_sequences=n, duration_ms=dur,
                              sample_dt_ms=(0.5,))
        simulate(ccfg, t_ms[:3], cur[:3, :1])  # build the network outside the timing
        t0 = time.perf_counter()
        v = simulate(ccfg, t_ms, cur)
        out["circuit_s"] = time.perf_counter() - t0
        out["circuit_over_gru"] = out["circuit_s"] / out["gru_s"]
        if source.endswith(".safetensors"):  # only meaningful for a model trained on 0.5 ms data
            out["gru_vs_circuit_rmse_mV"] = float(np.sqrt(np.mean((pred.numpy() - v) ** 2)))
    else:
        out["circuit_s"] = None
        out["circuit_note"] = "wormlab.circuit simulate API not available"

    if neuron_available():
        ncfg = GenerateConfig(backend="neuron", n_sequences=n, duration_ms=dur,
                              sample_dt_ms=(0.5,))
        simulate(ncfg, t_ms[:3], cur[:3, :1])  # load the network outside the timing
        # NEURON runs one sequence after another: time k of them and scale to the batch
        k = 1 if quick else 4
        t0 = time.perf_counter()
        vn = simulate(ncfg, t_ms, cur[:, :k])
        per = (time.perf_counter() - t0) / k
        if source.endswith(".safetensors"):  # the GRU was trained on NEURON data
            out["gru_vs_neuron_rmse_mV_on_timed"] = float(
                np.sqrt(np.mean((pred.numpy()[:, :k] - vn) ** 2)))
        out["neuron_s_per_sequence"] = per
        out["neuron_s"] = per * n
        out["neuron_s_is_extrapolated_from"] = k
        out["neuron_over_gru"] = out["neuron_s"] / out["gru_s"]
    else:
        out["neuron_s"] = None
    return out
