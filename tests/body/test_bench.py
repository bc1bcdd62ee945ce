"""The surrogate benchmark runs (quick mode) and reports the required fields; no speed goal here."""

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from wormlab.body._physics import Trajectory
from wormlab.cli import main


@pytest.mark.slow
def test_bench_quick_reports_side_by_side(capsys):
    assert main(["bench", "surrogate", "--quick", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("physics_wall_s", "surrogate_wall_s", "speedup", "rmse_body_length_pct",
                "batch_size"):
        assert key in out
    assert out["batch_size"] == 4 and out["frames"] == 51 and out["timed_calls"] == 21
    assert out["physics_wall_s"] > 0 and out["surrogate_wall_s"] > 0
    assert np.isfinite(out["rmse_body_length_pct"]) and out["rmse_body_length_pct"] > 0
    assert "tiny model" in out["model"]


PHYS_S, SUR_S, FNO_S, LIB_S = 0.20, 0.020, 0.002, 0.100  # stand-in costs, seconds
MID_S = (SUR_S + LIB_S) / 2  # a surrogate time above this timed the library model


class _FakeModel(torch.nn.Module):
    """Stands in for the surrogate: known costs, and a prediction 50 um off (30, 40)."""

    def __init__(self, cost_s):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))
        self.cost_s = cost_s
        self.cfg = SimpleNamespace(n_ensemble=1, hidden_channels=2, n_modes=2, n_layers=1)
        self.head = None

    def predict(self, act):
        time.sleep(self.cost_s)
        T, B = act.shape[:2]
        com = np.zeros((T, B, 2)) + [30.0, 40.0]
        return Trajectory(np.arange(T) * 0.04, com, np.zeros((T, B, 25))), torch.full((B,), 7.0)

    def member_channels(self, act):
        time.sleep(FNO_S)


def test_bench_times_each_side_and_scores_the_prediction(monkeypatch):
    """Fast, with stand-ins of known cost: every reported time must cover the work it names,
    the ratios must be the right way round, and the RMSE must be the known 5% offset."""
    from wormlab.body import bench

    def physics(act, cfg):
        T, B = act.shape[:2]
        if B > 1:  # the warm-up call runs one sample and is not timed
            time.sleep(PHYS_S)
        return Trajectory(np.arange(T) * 0.04, np.zeros((T, B, 2)), np.zeros((T, B, 25)))

    monkeypatch.setattr(bench, "simulate", physics)
    monkeypatch.setattr(bench, "_tiny_model", lambda T, physics: _FakeModel(SUR_S))
    monkeypatch.setattr(bench, "use_pointwise_matmul",
                        lambda m, enable=True: _FakeModel(SUR_S if enable else LIB_S))
    out = bench.run(quick=True)
    # each time is at least its sleep; upper bounds generous for a loaded machine (medians of
    # N_TIMED calls), but each below the cost of the neighbouring stand-in
    assert PHYS_S <= out["physics_wall_s"] < PHYS_S + 0.5
    assert SUR_S <= out["surrogate_wall_s"] < MID_S
    assert LIB_S <= out["surrogate_wall_s_library_conv"] < LIB_S + 0.05
    assert out["speedup"] == pytest.approx(out["physics_wall_s"] / out["surrogate_wall_s"])
    assert PHYS_S / MID_S < out["speedup"] <= (PHYS_S + 0.5) / SUR_S
    fno_s = out["physics_wall_s"] / out["speedup_fno_only"]  # the FNO forward alone, timed
    assert FNO_S <= fno_s < SUR_S
    assert LIB_S / MID_S < out["pointwise_matmul_gain"] <= (LIB_S + 0.05) / SUR_S
    sim_s = 4 * 50 * 0.04
    assert out["physics_wall_per_simulated_s"] == pytest.approx(out["physics_wall_s"] / sim_s)
    # (30, 40) um everywhere = 50 um = 5% of the 1000 um body
    assert out["rmse_body_length_pct"] == pytest.approx(5.0)
    assert out["rmse_com_body_length_pct"] == pytest.approx(5.0)
    assert out["error_estimate_pct_mean"] == pytest.approx(7.0)
    assert out["n_parameters"] == 3 and out["timed_calls"] == bench.N_TIMED


def test_body_cli_rejects_unknown_command():
    from wormlab.body.cli import main as body_main

    with pytest.raises(SystemExit):
        body_main(["fly"])
