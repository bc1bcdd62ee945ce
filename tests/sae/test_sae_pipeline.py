"""End to end: recording -> SAE -> interpretation (synthetic ground truth, real Kato data)."""

import numpy as np
import pytest

from wormlab import recordings as R
from wormlab import sae
from wormlab.paths import shared_data_dir


@pytest.fixture(scope="module")
def synthetic_run():
    rec = R.virtual_worm(R.VirtualWormConfig(seed=0, protocol=R.ProtocolConfig(duration_s=600)))
    cfg = sae.ExperimentConfig(train=sae.TrainConfig(n_steps=400, eval_every=100),
                               interpret=sae.InterpretConfig(n_perm=200))
    exp = sae.fit_recording(rec, cfg, show_progress=False)
    return exp, sae.interpret(exp)


def test_synthetic_pipeline_finds_the_planted_stimulus_units(synthetic_run):
    exp, it = synthetic_run
    assert exp.recording.synthetic
    assert exp.val_metrics.variance_explained > 0.3
    assert set(exp.split.train).isdisjoint(exp.split.val)
    t = it.tables["unit"]
    assert it.heading == "Stimulus" and set(t.counts) == {s.label for s in exp.recording.stimuli}
    # the most CuSO4-selective unit is significant and reads the stimulated ASH/ADL neurons
    best = t.ranked("10mM CuSO4")[0]
    assert best.significant and best.d > 0.8
    top = {n for n, _ in sae.top_neurons(exp.decoder(), exp.input_names, best.feature, 6)}
    assert top & {"ASHL", "ASHR", "ADLL", "ADLR"}
    # planted-responder recovery is scored for both bases, with finite recall
    for basis in ("unit", "neuron"):
        r = it.recovery[basis]["10mM CuSO4"]
        assert r["n_true"] >= 4 and 0 < r["recall"] <= 1
    lines = it.report(top=2).splitlines()
    assert lines[0].startswith("Stimulus: ") and lines[1].startswith("  #01 unit ")
    s = sae.unit_summary(exp, it, best.feature)
    assert "decoder reads" in sae.format_unit_summary(s)
    assert len(s["nearest_units"]) == 8


@pytest.mark.skipif(shared_data_dir() is None, reason="shared data folder absent")
def test_kato_pipeline_uses_behaviour_states():
    rec = R.load_kato2015()
    cfg = sae.ExperimentConfig(train=sae.TrainConfig(n_steps=150, eval_every=50),
                               interpret=sae.InterpretConfig(n_perm=100))
    exp = sae.fit_recording(rec, cfg, show_progress=False)
    it = sae.interpret(exp)
    assert it.heading == "State" and "revsus" in it.tables["unit"].counts
    assert not it.recovery  # real data: nothing planted to score
    assert set(it.comparison.basis) == {"unit", "neuron", "pc"}
    assert it.activations.shape == (rec.n_frames, 103)


def test_time_block_split():
    sp = sae.time_block_split(1000, n_blocks=10, val_fraction=0.2, gap=5, seed=3)
    assert len(sp.val) == 200 and len(sp.val_blocks) == 2
    assert set(sp.train).isdisjoint(sp.val)
    for a, b in sp.val_blocks:  # contiguous blocks, with gaps removed from training
        assert set(range(a, b)) <= set(sp.val)
        assert not set(range(max(0, a - 5), a)) & set(sp.train)
    with pytest.raises(ValueError, match="too few"):
        sae.time_block_split(10, n_blocks=10)


def test_experiment_config_roundtrip():
    import json

    cfg = sae.ExperimentConfig(expansion=2.0, activation="topk", k=4)
    back = sae.ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    assert cfg.sae_config(50).n_units == 100


def test_frame_batches_deterministic_and_skippable():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    a = [b for _, b in zip(range(7), sae.FrameBatches(x, 6, seed=1))]
    b = [b for _, b in zip(range(7), sae.FrameBatches(x, 6, seed=1))]
    c = [b for _, b in zip(range(4), sae.FrameBatches(x, 6, seed=1).skip(3))]
    for u, v in zip(a, b):
        assert (u == v).all()
    for u, v in zip(a[3:], c):
        assert (u == v).all()
    with pytest.raises(ValueError, match="NaN"):
        sae.FrameBatches(np.full((4, 2), np.nan))


@pytest.mark.slow
def test_bench_quick_reports_the_keys():
    from wormlab.sae import bench

    out = bench.run(quick=True)
    assert out["frames_per_s"] > 0 and "seconds_to_target" in out
    assert "189 neurons x 5229 frames" in out["dataset"]


def test_unit_browser_widget_headless(synthetic_run):
    import sys

    import matplotlib

    matplotlib.use("Agg")
    from wormlab.paths import project_root

    sys.path.insert(0, str(project_root()))
    from widgets.sae import sae_panel

    exp, it = synthetic_run
    panel = sae_panel(exp, it, condition="1uM diacetyl")
    controls, text, _ = panel.children
    unit_w, cond_w, best_w = controls.children
    assert unit_w.value == it.tables["unit"].ranked("1uM diacetyl")[0].feature
    cond_w.value = "10mM CuSO4"
    best_w.click()  # jump to the most CuSO4-selective unit
    assert unit_w.value == it.tables["unit"].ranked("10mM CuSO4")[0].feature
    shown = text.value
    assert f"unit {unit_w.value}:" in shown and "decoder reads" in shown
