"""``wormlab bench surrogate``: ElegansBot vs the FNO surrogate on the same batch, same run.

Batch: fresh ``sinusoid``-family activation series (seed 1234, not in any training store),
``64 x 4 s`` at 25 Hz (quick: ``4 x 2 s``). Physics: ElegansBot at dt 1e-4 s (checked against
1e-5 s, see docs/body.md), one process, samples in sequence (the way the generator's workers
run it). Surrogate: :func:`wormlab.body.default_model`: a checkpoint trained with
``python -m wormlab.body.cli train`` (``data/cache/body/surrogate.safetensors``) when there
is one, else the shipped model ``data/models/body_surrogate`` (sha256 checked; its manifest's
held-out test metrics are reported as ``shipped_model``): prediction plus error estimate in one call
(``speedup``), under ``torch.inference_mode``, torch threads as configured (1 by default);
median of 21 timed calls after one warm-up; ``speedup_fno_only`` times the FNO forward alone.
The FNO's kernel-size-1 convolutions run as batched matrix products
(:class:`~wormlab.body._surrogate.PointwiseConv1d`); ``surrogate_wall_s_library_conv`` times
the same prediction with neuraloperator's own ``nn.Conv1d`` layers, in the same run, and
``pointwise_matmul_gain`` is the ratio.
(Keeping freed heap memory, ``wormlab.runs.keep_heap_memory``, made no consistent difference
to either side here, so the bench leaves the allocator alone.)
Accuracy: body-point RMSE of that batch vs the physics, % body length. Without a saved model
(or with ``quick``) a tiny surrogate is trained in the run on a few samples and ``model`` says
so; its accuracy is not meaningful.
"""

from __future__ import annotations

import copy
import statistics
import time

import numpy as np
import torch

from wormlab.body._config import MuscleConfig, PhysicsConfig, SurrogateConfig
from wormlab.body._families import make_activation, sample_specs
from wormlab.body._generate import simulate_spec
from wormlab.body._physics import simulate
from wormlab.body._surrogate import (
    body_rmse_pct,
    com_rmse_pct,
    split_data,
    train_surrogate,
    use_pointwise_matmul,
)

N_TIMED = 21  # surrogate calls timed (median); ~20 ms each, so jitter needs more than a few


def _tiny_model(T: int, physics: PhysicsConfig):
    cfg = SurrogateConfig(hidden_channels=16, n_modes=8, n_layers=2, epochs=15,
                          batch_size=4, val_fraction=0.2, train_families=("sinusoid",))
    specs = sample_specs({"sinusoid": 10}, seed=7)
    sims = [simulate_spec(s, T, physics, MuscleConfig()) for s in specs]
    d = {k: np.stack([x[k] for x in sims]) for k in ("activation", "com_um", "tangent_rad")}
    d["family"] = np.array(["sinusoid"] * len(specs))
    model, _ = train_surrogate(split_data(d, cfg), cfg, physics.frame_dt_s,
                               physics.body_length_um, progress=False)
    return model


def run(quick: bool = False) -> dict:
    from wormlab.body._paths import SHIPPED_NAME, default_model, load_default, shipped_model

    physics = PhysicsConfig()
    B, dur = (4, 2.0) if quick else (64, 4.0)
    T = int(round(dur / physics.frame_dt_s)) + 1
    path = default_model()
    shipped = None
    if path.exists() and not quick:
        model, _, source = load_default(path)
        if shipped_model() is not None and path.resolve() == shipped_model().resolve():
            from wormlab import models

            m = models.manifest(SHIPPED_NAME)
            shipped = {"name": SHIPPED_NAME, "sha256": m["sha256"], "bytes": m["bytes"],
                       "created": m["created"], "commit": m["code_version"]["commit"],
                       "heldout_metrics": m["metrics"],
                       "n_test": len(m["data"]["heldout_ids"]["test"])}
    else:
        model = _tiny_model(T, physics)
        source = "tiny model trained inside this run (accuracy not meaningful)"
    specs = sample_specs({"sinusoid": B}, seed=1234)
    act = torch.from_numpy(np.stack([make_activation(s, T, physics.frame_dt_s) for s in specs],
                                    1))
    simulate(act[:, :1], physics)  # numba warm-up (cached compile), not timed
    t0 = time.perf_counter()
    phys = simulate(act, physics)
    physics_wall = time.perf_counter() - t0
    act = act.float()

    def timed(fn) -> float:
        ts = []
        for _ in range(N_TIMED):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    library = use_pointwise_matmul(copy.deepcopy(model), enable=False)
    with torch.inference_mode():
        pred, est = model.predict(act)  # warm-up
        sur = timed(lambda: model.predict(act))
        fno = timed(lambda: model.member_channels(act))
        library.predict(act)  # warm-up
        sur_library = timed(lambda: library.predict(act))
    sim_s = B * (T - 1) * physics.frame_dt_s
    pred = pred.numpy()
    body = body_rmse_pct(pred, phys)
    return {
        "batch_size": B, "duration_s_per_sample": dur, "frames": T,
        "physics_wall_s": physics_wall, "surrogate_wall_s": sur,
        "speedup": physics_wall / sur,
        "speedup_fno_only": physics_wall / fno,
        "surrogate_wall_s_library_conv": sur_library,
        "speedup_library_conv": physics_wall / sur_library,
        "pointwise_matmul_gain": sur_library / sur,
        "physics_wall_per_simulated_s": physics_wall / sim_s,
        "surrogate_wall_per_simulated_s": sur / sim_s,
        "rmse_body_length_pct": float(body.mean()),
        "rmse_com_body_length_pct": float(com_rmse_pct(pred, phys).mean()),
        "error_estimate_pct_mean": float(est.mean()),
        "n_ensemble": model.cfg.n_ensemble, "hidden_channels": model.cfg.hidden_channels,
        "n_modes": model.cfg.n_modes, "n_layers": model.cfg.n_layers,
        "error_estimate": "learned error head" if model.head is not None else "ensemble spread",
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "torch_threads": torch.get_num_threads(), "physics_dt_s": physics.dt_s,
        "timed_calls": N_TIMED,
        "model": source,
        # the shipped model's held-out test metrics from its manifest (recomputed by
        # `wormlab models verify`); None when another checkpoint or the tiny model ran
        "shipped_model": shipped,
    }
