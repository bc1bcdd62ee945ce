"""``wormlab bench circuit``: NEURON (fixed dt 0.05 ms and CVODE 1e-7) vs wormlab on c302 C1 Full.

Everything is measured in the same run on this machine:

* NEURON: c302 generates the network, jNeuroML converts it, NEURON runs ``duration_ms`` with
  fixed dt 0.05 ms and with CVODE (rtol = atol = 1e-7). Wall = NEURON's own simulation time.
* wormlab forward: the fused RK4 step at dt 0.1 ms under ``torch.compile`` (compile time is
  reported separately and excluded), float64, one thread.
* Accuracy: per cell max |dV| / (max V - min V of the CVODE trace) over the first
  ``accuracy_window_ms`` (chaos makes any two correct solvers diverge after ~60-100 ms; see
  docs/circuit.md), plus full-window statistics (mean V per cell) for the whole run. The same
  numbers for NEURON fixed-step vs CVODE are reported as an anchor.
* Batch: 64 perturbed parameter sets (lognormal 5%) at once, float32, compiled.
* Gradient: forward + backward of a loss on all voltages over the whole run with the discrete
  adjoint of the RK4 step (float32, compiled); run in a subprocess so its peak RSS is its own.
  ``grad_vs_autograd_max_rel``: the adjoint against plain autograd (float64, 50 ms).
* Population: 64 perturbed parameter sets x 100 ms (float32, eager, batches of 16) in-process
  and on a 2-worker Dask LocalCluster (cluster start included), with a bit-identity check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import torch


def _accuracy(ours: np.ndarray, t_ms: np.ndarray, ref, window_ms: float) -> dict:
    n = ref.covered(t_ms)
    t_ms, ours = t_ms[:n], ours[:n]
    theirs = ref.on_grid(t_ms)
    k = int(np.searchsorted(t_ms, window_ms, side="right"))
    rng = theirs[:k].max(0) - theirs[:k].min(0)
    err = np.abs(ours[:k] - theirs[:k]).max(0)
    rel = err / np.maximum(rng, 1e-6)
    full_rng = theirs.max(0) - theirs.min(0)
    mean_rel = np.abs(ours.mean(0) - theirs.mean(0)) / np.maximum(full_rng, 1e-6)
    return {"max_rel": float(rel.max()), "max_abs_mV": float(err.max()),
            "frac_cells_within_5pct": float((rel <= 0.05).mean()),
            "mean_v_max_rel_full": float(mean_rel.max()),
            "mean_v_frac_within_5pct_full": float((mean_rel <= 0.05).mean())}


def _grad_child(duration_ms: float, dt_ms: float, checkpoint_ms: float, dtype: str,
                compile_: bool) -> dict:
    """Runs in a subprocess: forward, then forward+backward with the discrete adjoint (the
    default gradient path); prints JSON with peak RSS. ``checkpoint_ms`` is unused by the
    adjoint and kept for the call signature of earlier versions."""
    import resource

    from wormlab import circuit
    from wormlab.runs import configure_torch

    configure_torch()
    net = circuit.build_network().to(getattr(torch, dtype))
    with torch.no_grad():  # warm-up (and compile)
        circuit.simulate(net, "c302", 1.0, dt_ms, compile=compile_)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    with torch.no_grad():
        circuit.simulate(net, "c302", duration_ms, dt_ms, compile=compile_)
    fwd = time.perf_counter() - t0
    # one untimed short backward so compilation of the step's VJP is not timed
    circuit.simulate(net, "c302", 2 * dt_ms, dt_ms, compile=compile_,
                     gradient="adjoint").v_mV.mean().backward()
    net.zero_grad(set_to_none=True)
    rss_compiled = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hwm_reset = _reset_peak_rss()
    t0 = time.perf_counter()
    res = circuit.simulate(net, "c302", duration_ms, dt_ms, compile=compile_,
                           gradient="adjoint")
    loss = res.v_mV.mean()
    loss.backward()
    both = time.perf_counter() - t0
    run_peak = _peak_rss_mb() if hwm_reset else None
    circuit.check_gradients(net)
    finite = all(bool(torch.isfinite(p.grad).all()) for p in net.params.values()
                 if p.grad is not None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"forward_s": fwd, "forward_backward_s": both, "peak_rss_mb": peak,
            "rss_before_mb": rss0, "grad_finite": finite, "run_peak_rss_mb": run_peak,
            "peak_rss_incl_compile_mb": rss_compiled,
            "grad_norm_g_ca": float(net.params["g_ca"].grad.norm())}


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident set size (Linux: VmHWM via /proc/self/clear_refs),
    so the gradient run's own peak can be read without torch.compile's, reached earlier."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def grad_vs_autograd(duration_ms: float = 50.0) -> float:
    """Max relative difference (per parameter, relative to its largest gradient entry) of the
    adjoint gradient vs plain autograd, float64, c302 stimulus, full network."""
    from wormlab import circuit

    net = circuit.build_network()
    grads = []
    for mode in ("autograd", "adjoint"):
        net.zero_grad(set_to_none=True)
        r = circuit.simulate(net, "c302", duration_ms, gradient=mode)
        (r.v_mV ** 2).mean().backward()
        grads.append({k: p.grad.clone() for k, p in net.params.items()})
    worst = 0.0
    for k, ga in grads[0].items():
        scale = float(ga.abs().max()) or 1.0
        worst = max(worst, float((ga - grads[1][k]).abs().max()) / scale)
    return worst


def population(n: int, batch_size: int, duration_ms: float, n_workers: int = 2) -> dict:
    """Members per second of a perturbed population (5 % lognormal on conductances and
    weights), float32, eager, in-process vs a LocalCluster of one-thread workers; and whether
    both give bit-identical traces."""
    from wormlab import circuit

    net = circuit.build_network()
    pert = net.perturbed(n, rel_std=0.05, seed=1)
    names = ("g_leak", "g_kslow", "g_kfast", "g_ca", "g_syn", "g_gap", "w_syn", "w_gap")
    pop = {k: pert.params[k].detach() for k in names}
    cfg = circuit.SimConfig(dtype="float32", record=("AVAL", "AVBL", "ca:MDL07"),
                            record_every=10)
    out = {"population_n": n, "population_batch": batch_size,
           "population_duration_ms": duration_ms, "dask_workers": n_workers}
    t0 = time.perf_counter()
    here = circuit.simulate_population(net, pop, "c302", duration_ms, config=cfg,
                                       batch_size=batch_size)
    out["inprocess_population_per_s"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    dask = circuit.simulate_population(net, pop, "c302", duration_ms, config=cfg,
                                       batch_size=batch_size, scheduler="local",
                                       n_workers=n_workers)
    out["dask_population_wall_s_incl_cluster_start"] = time.perf_counter() - t0
    out["dask_population_per_s"] = n / out["dask_population_wall_s_incl_cluster_start"]
    out["dask_identical_to_inprocess"] = all(np.array_equal(here[k], dask[k]) for k in here)
    return out


def _save_partial(out: dict) -> None:
    """Progress file (the full run takes many minutes): data/cache/circuit/bench_partial.json."""
    from wormlab.paths import cache_dir
    from wormlab.runs import atomic_path

    with atomic_path(cache_dir("circuit") / "bench_partial.json") as tmp:
        tmp.write_text(json.dumps(out, indent=1, default=float))


def run(quick: bool = False) -> dict:
    """Measure and return the benchmark dict (see module docstring). ``quick`` = 100 ms: 50 ms
    with c302's stimulus on (it starts at 50 ms), the CVODE reference reused from the cache
    (shared with tests/circuit/test_circuit_reference.py; its wall time is the one recorded
    when it was generated), NEURON fixed step re-run."""
    from wormlab import circuit
    from wormlab.circuit import reference

    duration = 100.0 if quick else 1000.0
    window = min(100.0, duration)
    dt = 0.1
    checkpoint_ms = 5.0 if quick else 50.0
    batch = 4 if quick else 64
    compile_ = not quick
    out: dict = {"duration_ms": duration, "dt_ms_wormlab": dt, "dt_ms_neuron_fixed": 0.05,
                 "solver": "rk4_fused", "threads": torch.get_num_threads(),
                 "compiled": compile_, "cpu_count": os.cpu_count(),
                 "load_avg_at_start": os.getloadavg()[0]}

    # ---- NEURON (same run; refresh re-runs NEURON, compiled mechanisms are reused)
    fixed = reference.reference("Full", duration, 0.05, method="fixed", refresh=True)
    cvode = reference.reference("Full", duration, 0.05, method="cvode", refresh=not quick)
    out["neuron_fixed_wall_s"] = fixed.wall_s
    out["neuron_cvode_wall_s"] = cvode.wall_s

    _save_partial(out)
    # ---- wormlab forward (float64)
    net = circuit.build_network(cvode.nml_path)
    with torch.no_grad():
        t0 = time.perf_counter()
        circuit.simulate(net, "c302", 1.0, dt, compile=compile_)
        out["compile_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = circuit.simulate(net, "c302", duration, dt, record=cvode.names, compile=compile_)
        out["wormlab_wall_s"] = time.perf_counter() - t0
    out["ratio_vs_neuron"] = out["wormlab_wall_s"] / out["neuron_fixed_wall_s"]
    out["ratio_vs_neuron_cvode"] = out["wormlab_wall_s"] / out["neuron_cvode_wall_s"]
    t_ms = res.t_ms.numpy()
    acc = _accuracy(res.v_mV[:, 0].numpy(), t_ms, cvode, window)
    out["accuracy_window_ms"] = window
    out["max_rel_err_vs_cvode"] = acc["max_rel"]
    out["max_abs_err_vs_cvode_mV"] = acc["max_abs_mV"]
    out["frac_cells_within_5pct_vs_cvode"] = acc["frac_cells_within_5pct"]
    out["mean_v_max_rel_err_full_run"] = acc["mean_v_max_rel_full"]
    out["mean_v_frac_within_5pct_full_run"] = acc["mean_v_frac_within_5pct_full"]
    fx = fixed.on_grid(t_ms)  # fixed step records every 0.05 ms up to tstop
    acc_nf = _accuracy(fx, t_ms, cvode, window)
    out["neuron_fixed_max_rel_err_vs_cvode"] = acc_nf["max_rel"]
    out["neuron_fixed_mean_v_max_rel_err_full_run"] = acc_nf["mean_v_max_rel_full"]

    _save_partial(out)
    # ---- batch of parameter sets (float32)
    bnet = net.to(torch.float32).perturbed(batch, rel_std=0.05, seed=0)
    with torch.no_grad():
        circuit.simulate(bnet, "c302", 1.0, dt, compile=compile_)
        t0 = time.perf_counter()
        rb = circuit.simulate(bnet, "c302", duration, dt, record=["AVAL"], compile=compile_)
        wall_b = time.perf_counter() - t0
    out["batch"] = batch
    out["batch_wall_s"] = wall_b
    out["batch_finite"] = bool(torch.isfinite(rb.v_mV).all())
    key = "batch64_speedup_vs_neuron" if batch == 64 else f"batch{batch}_speedup_vs_neuron"
    out[key] = batch * out["neuron_fixed_wall_s"] / wall_b
    net.to(torch.float64)

    _save_partial(out)
    # ---- gradient (subprocess: own peak memory); falls back to eager if compiling fails
    def child(comp: bool):
        code = ("import json, sys; from wormlab.circuit.bench import _grad_child; "
                f"print('JSON' + json.dumps(_grad_child({duration}, {dt}, {checkpoint_ms}, "
                f"'float32', {comp})))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=dict(os.environ, WORMLAB_PROGRESS="0"))
        line = [x for x in proc.stdout.splitlines() if x.startswith("JSON")]
        return proc, line

    proc, line = child(compile_)
    out["grad_compiled"] = compile_
    if compile_ and (proc.returncode or not line):
        out["grad_compile_error"] = (proc.stdout + proc.stderr)[-500:]
        out["grad_compiled"] = False
        proc, line = child(False)
    if proc.returncode or not line:
        raise RuntimeError(f"gradient benchmark failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    g = json.loads(line[0][4:])
    out["grad_method"] = "discrete adjoint of the RK4 step"
    out["grad_dtype"] = "float32"
    out["grad_forward_s"] = g["forward_s"]
    out["grad_forward_backward_s"] = g["forward_backward_s"]
    out["grad_over_forward"] = g["forward_backward_s"] / g["forward_s"]
    # the gradient run's own peak (compile excluded) where the peak can be reset, else the
    # process peak; both are reported
    out["grad_peak_mb"] = g["run_peak_rss_mb"] or g["peak_rss_mb"]
    out["grad_peak_incl_compile_mb"] = g["peak_rss_incl_compile_mb"]
    out["grad_rss_before_mb"] = g["rss_before_mb"]
    out["grad_finite"] = g["grad_finite"]
    _save_partial(out)
    # ---- adjoint vs autograd (float64, short window: plain autograd stores everything)
    # 50 ms: over the first few ms all cells sit near -45 mV, so the gap-junction gradients
    # (V_src - V_dst, formed from two large cancelling terms) are roundoff-sized and their
    # relative difference between two summation orders reaches 5e-8 (2e-9 at 20 ms)
    out["grad_vs_autograd_window_ms"] = 50.0
    out["grad_vs_autograd_max_rel"] = grad_vs_autograd(out["grad_vs_autograd_window_ms"])
    # ---- population across Dask workers vs in-process
    out.update(population(8 if quick else 64, 4 if quick else 16, 5.0 if quick else 100.0))
    out["load_avg_at_end"] = os.getloadavg()[0]
    _save_partial(out)
    return out
