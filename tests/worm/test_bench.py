"""``wormlab bench crawl`` (quick): every figure measured, the anchors beside them."""

import math

import pytest

from wormlab.worm import bench


@pytest.mark.slow
def test_bench_crawl_quick_reports_loop_and_anchors():
    out = bench.run(quick=True)
    for k in ("forward", "backward"):
        assert out["loop_physics_wall_s_per_simulated_s"][k] > 0
    assert out["forward_plus_backward_wall_s"] == pytest.approx(
        sum(out["loop_physics_wall_s_per_simulated_s"].values()) * out["simulated_s"])
    for k in ("anchor_elegansbot_alone_wall_s_per_simulated_s",
              "anchor_circuit_alone_wall_s_per_simulated_s",
              "loop_physics_batch8_wall_s_per_member_per_simulated_s",
              "load_avg_at_start", "load_avg_at_end"):
        assert math.isfinite(out[k]) and out[k] >= 0, k
    assert out["loop_surrogate"]["available"] is False and out["loop_surrogate"]["reason"]
