"""Kymographs, the perturbation table and the surrogate-vs-physics check of the crawl."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from wormlab import body, worm  # noqa: E402
from wormlab.worm import _perturb, _validate  # noqa: E402


def test_muscle_kymograph_sign_and_rows():
    tab = body.muscle_table()
    act = np.zeros((3, 95))
    rows = np.asarray(tab["row"])
    dorsal = np.asarray(tab["dorsal"], dtype=bool)
    act[0, (rows == 5) & dorsal] = 1.0          # dorsal row 5 only
    act[1, (rows == 20) & ~dorsal] = 0.5        # ventral row 20 only
    k = worm.muscle_kymograph(act)
    assert k.shape == (3, 24)
    assert k[0, 4] == pytest.approx(1.0) and np.count_nonzero(k[0]) == 1
    assert k[1, 19] == pytest.approx(-0.5) and np.count_nonzero(k[1]) == 1
    assert not k[2].any()


@pytest.fixture(scope="module")
def short_run():
    return worm.run_loop({}, worm.LoopConfig(duration_s=1.2, warmup_ms=40.0))


def test_plots_draw(short_run):
    import matplotlib.pyplot as plt

    axes = worm.plot_kymographs(short_run, title="t")
    assert len(axes) == 2 and axes[0].images and axes[1].images
    ax = worm.plot_real_kymograph(np.cumsum(np.full((20, 30), 0.05), 1), fps=2.0)
    assert ax.images[0].get_array().shape == (20, 29)
    anim = worm.midline_animation(short_run, every=10)
    assert "<script" in anim.to_jshtml()
    with pytest.raises(ValueError, match="no generations"):
        worm.plot_fit_history({"history": []})
    plt.close("all")


def test_perturbation_outcome_and_table_rows():
    rows = worm.perturbation_table(
        {}, duration_s=1.2,
        perturbations=(_perturb.Perturbation("AVB ablated", "forward",
                                             ablate_cells=("AVBL", "AVBR"),
                                             published="x", source="y"),))
    (r,) = rows
    assert r["perturbation"] == "AVB ablated" and r["published"] == "x" and r["source"] == "y"
    # the intact default worm barely moves, so the outcome must not be claimed either way
    if r["speed_intact_um_s"] <= 0:
        assert r["model_outcome"].startswith("undefined")
    else:
        assert r["model_outcome"] in ("lost", "reduced", "kept")
    assert {p.direction for p in worm.PERTURBATIONS} == {"forward", "backward"}
    cells = set(worm.build_motor_network().names)
    for p in worm.PERTURBATIONS:
        assert set(p.ablate_cells) <= cells and p.source, p.name
        assert set(dict(p.params)) <= set(worm.PARAMS), p.name


def test_surrogate_vs_physics_uses_the_loop_trajectory(short_run):
    import torch

    torch.manual_seed(0)
    model = body.Surrogate(body.SurrogateConfig(hidden_channels=4, n_modes=4, n_layers=1,
                                                n_ensemble=2, error_head=False))
    rows = _validate.surrogate_vs_physics(short_run, model=model, skip_s=0.4,
                                          threshold_pct=1e9)
    (r,) = rows
    m = worm.crawl_metrics(short_run, skip_s=0.4)
    assert r["speed_physics_um_s"] == pytest.approx(float(m["speed_um_s"][0]))
    assert np.isfinite(r["speed_surrogate_um_s"]) and r["fallback_triggered"] is False
    # the replay: the same activation through ElegansBot open loop, from a straight body
    # (a moving worm: the shipped crawl parameters)
    from wormlab.body._physics import forward_speed, simulate
    from wormlab.paths import package_data

    run = worm.run_loop(worm.read_crawl_params(package_data("worm", "data", "crawl_params.json")),
                        worm.LoopConfig(duration_s=1.6))
    (r,) = _validate.surrogate_vs_physics(run, model=model, skip_s=0.4, threshold_pct=1e9)
    rp = simulate(torch.as_tensor(run.activation, dtype=torch.float64))
    assert abs(r["speed_replay_um_s"]) > 5.0
    assert r["speed_replay_um_s"] == pytest.approx(float(forward_speed(rp, skip_s=0.4)[0]))
    assert r["speed_rel_diff_replay"] == pytest.approx(
        abs(r["speed_surrogate_um_s"] - r["speed_replay_um_s"]) / abs(r["speed_replay_um_s"]))
    rows = _validate.surrogate_vs_physics(short_run, model=model, skip_s=0.4, threshold_pct=0.0,
                                          replay=False)
    assert rows[0]["fallback_triggered"] is True and "speed_replay_um_s" not in rows[0]


def test_fit_history_of_two_stages_accumulates_wall_time():
    st = {"stages": [
        {"label": "a", "history": [{"wall_s": 60.0, "best_loss": 2.0, "median_loss": 3.0},
                                   {"wall_s": 120.0, "best_loss": 1.0, "median_loss": 2.0}]},
        {"label": "b", "history": [{"wall_s": 60.0, "best_loss": 0.5, "median_loss": 1.0}]}]}
    ax = worm.plot_fit_history(st)
    best_b = [ln for ln in ax.lines if ln.get_label() == "b: best of generation"][0]
    assert best_b.get_xdata().tolist() == [3.0]          # 2 min of stage a + 1 min
    with pytest.raises(ValueError, match="stage 1 has no generations"):
        worm.plot_fit_history({"stages": [st["stages"][0], {"history": []}]})
    import matplotlib.pyplot as plt

    plt.close("all")


def test_surrogate_vs_physics_window(short_run):
    import torch

    torch.manual_seed(0)
    model = body.Surrogate(body.SurrogateConfig(hidden_channels=4, n_modes=4, n_layers=1,
                                                n_ensemble=2, error_head=False))
    full = _validate.surrogate_vs_physics(short_run, model=model, skip_s=0.4, replay=False)
    same = _validate.surrogate_vs_physics(short_run, model=model, skip_s=0.4, replay=False,
                                          window_s=float(short_run.t_s[-1]))
    assert full[0]["speed_physics_um_s"] == pytest.approx(same[0]["speed_physics_um_s"])
    part = _validate.surrogate_vs_physics(short_run, model=model, skip_s=0.2, replay=False,
                                          window_s=0.8)
    from wormlab.body._physics import Trajectory, forward_speed

    tr = short_run.trajectory
    n = int(round(0.8 / (short_run.t_s[1] - short_run.t_s[0]))) + 1
    cut = Trajectory(tr.t_s[:n], tr.com_um[:n], tr.tangent_rad[:n], tr.body_length_um)
    assert part[0]["speed_physics_um_s"] == pytest.approx(float(forward_speed(cut, skip_s=0.2)[0]))
    with pytest.raises(ValueError, match="window_s"):
        _validate.surrogate_vs_physics(short_run, model=model, window_s=99.0)
