"""The benchmark runs end to end in quick mode and reports the keys the issue names."""

import math

import pytest

KEYS = ("neuron_fixed_wall_s", "neuron_cvode_wall_s", "wormlab_wall_s", "ratio_vs_neuron",
        "max_rel_err_vs_cvode", "grad_over_forward", "grad_peak_mb", "batch4_speedup_vs_neuron",
        "inprocess_population_per_s", "dask_population_per_s")
STIM_START_MS = 50.0  # c302's PLML/PLMR offset current starts here


@pytest.mark.slow
@pytest.mark.neuron  # without the stack: skip locally, fail under CI (conftest.py)
def test_bench_quick():
    from wormlab.circuit import bench

    out = bench.run(quick=True)
    for k in KEYS:
        assert k in out and math.isfinite(out[k]) and out[k] > 0, k
    # the accuracy figure must include >= 20 ms with the stimulus current flowing
    assert out["duration_ms"] >= STIM_START_MS + 20.0
    assert out["accuracy_window_ms"] >= STIM_START_MS + 20.0
    assert out["batch4_speedup_vs_neuron"] > 0
    assert out["max_rel_err_vs_cvode"] < 0.05  # RK4 0.1 ms vs CVODE: measured 0.04 % at 100 ms
    assert out["grad_finite"] and out["batch_finite"]
    # the adjoint's gradient is autograd's (float64): a wrong VJP would be off by O(1)
    assert out["grad_vs_autograd_max_rel"] < 1e-9
    assert out["dask_population_per_s"] > 0 and out["dask_identical_to_inprocess"]
