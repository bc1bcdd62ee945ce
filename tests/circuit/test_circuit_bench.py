"""The benchmark runs end to end in quick mode and reports the keys the issue names."""

import math

import pytest

from wormlab.circuit import reference

KEYS = ("neuron_fixed_wall_s", "neuron_cvode_wall_s", "wormlab_wall_s", "ratio_vs_neuron",
        "max_rel_err_vs_cvode", "grad_over_forward", "grad_peak_mb")


@pytest.mark.slow
@pytest.mark.neuron
def test_bench_quick():
    if not reference.neuron_available():
        pytest.skip("NEURON extra not installed")
    from wormlab.circuit import bench

    out = bench.run(quick=True)
    for k in KEYS:
        assert k in out and math.isfinite(out[k]) and out[k] > 0, k
    assert out["batch4_speedup_vs_neuron"] > 0
    assert out["max_rel_err_vs_cvode"] < 0.05  # 20 ms: before chaos sets in
    assert out["grad_finite"] and out["batch_finite"]
