"""``wormlab bench loop`` (quick): every figure measured, the anchors beside them."""

import math

import pytest

from wormlab.loop import bench


@pytest.mark.slow
def test_bench_loop_quick_reports_trial_batch_and_anchors():
    out = bench.run(quick=True)
    assert out["simulated_s_per_wall_s_one_trial"] == pytest.approx(
        1.0 / out["loop_wall_s_per_simulated_s_one_trial"])
    assert out["trial_simulated_s_per_wall_s_batched"] == pytest.approx(
        1.0 / out["loop_wall_s_per_trial_per_simulated_s_batched"])
    for k in ("loop_wall_s_per_simulated_s_one_trial",
              "anchor_crawl_loop_without_sensory_wall_s_per_simulated_s",
              "anchor_elegansbot_alone_wall_s_per_simulated_s",
              "load_avg_at_start", "load_avg_at_end"):
        assert math.isfinite(out[k]) and out[k] >= 0, k
    assert out["batch"] == 2 and "ASE" in out["transducer"]
    assert out["loop_surrogate"]["available"] is False and out["loop_surrogate"]["reason"]
