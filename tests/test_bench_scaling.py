"""``wormlab bench scaling``: one subprocess per point, time and memory per point."""

from wormlab import bench_scaling
from wormlab.cli import BENCHMARKS


def test_scaling_bench_measures_each_point_in_its_own_process():
    assert BENCHMARKS["scaling"] == "wormlab.bench_scaling"
    # larger point first: measured in one shared process, the 1x point's peak RSS could not be
    # below the 4x point's (ru_maxrss never falls)
    res = bench_scaling.run(quick=True, components=("surrogate",), scales=(4, 1))
    big, small = res["points"]
    assert (big["scale"], small["scale"]) == (4, 1)
    assert (big["size"], small["size"]) == ("batch 128 x 101 frames", "batch 32 x 101 frames")
    for p in (big, small):
        assert 0 < p["wall_s"] < 60 and p["setup_rss_mb"] <= p["peak_rss_mb"]
    # each point in its own process (the peak RSS can be import-dominated and equal for both
    # sizes in a fresh venv, as in CI's first run: 2,341 MB for both, so it cannot tell)
    assert big["pid"] != small["pid"]
    import os

    assert os.getpid() not in (big["pid"], small["pid"])
    md = bench_scaling.markdown(res)
    assert "| surrogate | 4x | batch 128 x 101 frames |" in md and len(res["load_average_start"]) == 3
