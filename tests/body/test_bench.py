"""The surrogate benchmark runs (quick mode) and reports the required fields; no speed goal here."""

import json

import pytest

from wormlab.cli import main


@pytest.mark.slow
def test_bench_quick_reports_side_by_side(capsys):
    assert main(["bench", "surrogate", "--quick", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("physics_wall_s", "surrogate_wall_s", "speedup", "rmse_body_length_pct",
                "batch_size"):
        assert key in out
    assert out["batch_size"] == 4 and out["physics_wall_s"] > 0 and out["surrogate_wall_s"] > 0
    assert abs(out["speedup"] - out["physics_wall_s"] / out["surrogate_wall_s"]) < 1e-6
    assert "tiny model" in out["model"]
    assert out["pointwise_matmul_gain"] == pytest.approx(
        out["surrogate_wall_s_library_conv"] / out["surrogate_wall_s"])


def test_body_cli_rejects_unknown_command():
    from wormlab.body.cli import main as body_main

    with pytest.raises(SystemExit):
        body_main(["fly"])
