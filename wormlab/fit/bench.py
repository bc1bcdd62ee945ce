"""``wormlab bench autofit``: gradient (Adam) vs evolution (CMA-ES) vs hybrid on the same target
and wall-time budget, in one run.

The target is synthetic ground truth (the circuit's own traces): a 6-neuron sub-circuit of c302
C1 with g_ca x1.25 and e_leak x0.85 as the start (the recovery problem of
``tests/fit/test_fit_core.py``). Each optimiser gets the same wall-time budget; reported: final
loss, time and evaluations to reach the loss threshold (None when not reached), evaluations per
second, and the parameters' relative error. CMA-ES population evaluations per second are also
measured on a 2-worker Dask LocalCluster (cluster start excluded), next to in-process.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _config(optimiser: str, budget_s: float, out: Path, quick: bool):
    from wormlab.fit import recovery_config

    return recovery_config(optimiser=optimiser, name=f"bench_{optimiser}",
                           max_epochs=10_000, max_evals=100_000, lr_decay=0.97,
                           cma_popsize=8, cma_sigma0=0.5,
                           hybrid_cma_fraction=0.5 if not quick else 0.3, wall_s=budget_s,
                           out_dir=str(out / optimiser), seed=0)


def _first_below(history: list, threshold: float) -> tuple[float | None, int | None]:
    for h in history:
        if h["best"] <= threshold:
            return h["wall_s"], h["evals"]
    return None, None


def run(quick: bool = False) -> dict:
    """Measure and return the benchmark dict. ``quick``: 15 s per optimiser (tests)."""
    import torch

    from wormlab.fit import Objective, run_fit

    budget = 15.0 if quick else 240.0
    threshold = 1e-2
    out: dict = {"target": "synthetic ground truth, 6-neuron c302 C1 sub-circuit, "
                           "g_ca x1.25 and e_leak x0.85 from the truth",
                 "budget_s_per_optimiser": budget, "loss_threshold_mV2": threshold,
                 "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                 "load_avg_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for opt in ("adam", "cma", "hybrid"):
            cfg = _config(opt, budget, tmp, quick)
            t0 = time.perf_counter()
            res, _ = run_fit(cfg, show_progress=False)
            wall = time.perf_counter() - t0
            t_hit, n_hit = _first_below(res.history, threshold)
            truth = Objective(cfg).true_params
            rel = max(float(((res.params[k] - truth[k]).abs() / truth[k].abs()).max())
                      for k in truth)
            out[opt] = {"final_loss": res.loss, "start_loss": res.history[0]["loss"],
                        "wall_s": wall, "evals": res.evals, "evals_per_s": res.evals / wall,
                        "time_to_threshold_s": t_hit, "evals_to_threshold": n_hit,
                        "max_rel_param_err": rel}
        # population throughput: in-process vs Dask (same population)
        cfg = _config("cma", budget, tmp, quick)
        obj = Objective(cfg)
        rng = np.random.default_rng(0)
        z0 = obj.flatten(obj.z_from_x(obj.start)).numpy()
        Z = z0 + 0.3 * rng.standard_normal((32 if not quick else 8, z0.size))
        t0 = time.perf_counter()
        f_here = obj.loss_np(Z)
        out["population_evals_per_s_inprocess"] = len(Z) / (time.perf_counter() - t0)
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cl, \
                Client(cl) as client:
            o = client.scatter(obj, broadcast=True)
            from wormlab.fit._fit import _loss_np

            client.gather(client.submit(_loss_np, o, Z[:2], pure=False))  # warm workers
            t0 = time.perf_counter()
            chunks = np.array_split(Z, 2)
            futs = [client.submit(_loss_np, o, c, pure=False) for c in chunks]
            f_dask = np.concatenate(client.gather(futs))
            out["population_evals_per_s_dask2"] = len(Z) / (time.perf_counter() - t0)
        # other batch sizes than in-process: equal up to summation order
        out["dask_max_rel_diff_vs_inprocess"] = float(np.max(np.abs(f_dask - f_here)
                                                             / np.abs(f_here)))
    out["load_avg_at_end"] = os.getloadavg()[0]
    return out
