"""The virtual worm: SYNTHETIC recordings with ground truth, from a pluggable simulator."""

import dataclasses

import numpy as np
import pytest

from wormlab import recordings as R


def _small(seed=0, **kw):
    return R.VirtualWormConfig(seed=seed, protocol=R.ProtocolConfig(duration_s=240.0), **kw)


@pytest.fixture(scope="module")
def worm():
    return R.virtual_worm(_small())


def test_virtual_worm_is_labelled_and_shaped(worm):
    assert worm.synthetic and "SYNTHETIC" in worm.name and "SYNTHETIC" in worm.provenance
    assert worm.n_neurons == 189 and worm.n_frames == int(240 * 2.905)
    assert {s.label for s in worm.stimuli} == {"10mM CuSO4", "50mM NaCl", "1uM diacetyl"}
    assert worm.state_names == ("fwd", "rev")
    # stimulus periods do not overlap, each stimulus is on for ~10 % of the frames
    masks = np.stack(list(worm.conditions("stimulus").values()))
    assert masks.sum(axis=0).max() == 1
    assert np.all((masks.mean(axis=1) > 0.04) & (masks.mean(axis=1) < 0.2))


def test_ground_truth_contains_stimulated_neurons_and_is_causal(worm):
    for spec in R.DEFAULT_STIMULI:
        gt = worm.ground_truth[spec.label]
        assert set(spec.targets) <= set(gt), (spec.label, gt)
        assert all(n in worm.neuron_names for n in gt)
    # responders really differ between stimulus on and off in the observed traces
    m = worm.stimulus_mask("10mM CuSO4")
    for n in worm.ground_truth["10mM CuSO4"][:4]:
        x = worm.traces[:, worm.index(n)]
        assert x[m].mean() - x[~m].mean() > 0.5 * x.std()


def test_seeded_determinism_and_seed_changes():
    a = R.virtual_worm(_small(seed=3))
    b = R.virtual_worm(_small(seed=3))
    c = R.virtual_worm(_small(seed=4))
    np.testing.assert_array_equal(a.traces, b.traces)
    assert a.ground_truth == b.ground_truth
    assert not np.array_equal(a.traces, c.traces)


def test_pluggable_simulator_is_used():
    calls = []

    def linear(inputs, n_steps, dt_s, seed):
        """A trivial non-batched simulator: each neuron is its own low-passed input."""
        calls.append(seed)
        assert "ASHL" in inputs and "AVAL" in inputs  # every run gets every input name
        names = tuple(f"N{i}" for i in range(200)) + tuple(sorted(inputs))
        out = np.zeros((n_steps, len(names)))
        rng = np.random.default_rng(seed)
        out[:, :200] = rng.normal(size=(n_steps, 200)) * 0.1
        for j, k in enumerate(sorted(inputs)):
            out[:, 200 + j] = np.tanh(inputs[k])
        return out, names

    cfg = _small(stimuli=(dataclasses.replace(R.DEFAULT_STIMULI[0], targets=("ASHL",)),))
    r = R.virtual_worm(cfg, simulator=linear)
    assert len(calls) == 2  # with the stimulus, and without it (causal ground truth)
    assert r.ground_truth["10mM CuSO4"] == ("ASHL",)
    assert "linear" in r.provenance


def test_protocol_that_does_not_fit():
    cfg = R.VirtualWormConfig(protocol=R.ProtocolConfig(duration_s=60.0))
    with pytest.raises(ValueError, match="does not fit"):
        R.virtual_worm(cfg)


def test_config_roundtrip_json():
    import json

    cfg = _small(seed=7)
    back = R.VirtualWormConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg


def test_bleaching_is_corrected():
    """Without correction the photobleaching trend dominates slow drift; with it, it is gone."""
    raw = R.virtual_worm(_small(indicator=R.IndicatorConfig(bleach_correct=False,
                                                             bleach_tau_s=100.0)))
    cor = R.virtual_worm(_small(indicator=R.IndicatorConfig(bleach_tau_s=100.0)))
    half = raw.n_frames // 2
    drift_raw = raw.traces[half:].mean() - raw.traces[:half].mean()
    drift_cor = cor.traces[half:].mean() - cor.traces[:half].mean()
    assert drift_raw < -0.1 and abs(drift_cor) < 0.03


def test_default_recording_falls_back_to_synthetic(monkeypatch, tmp_path):
    monkeypatch.setenv("WORMLAB_SHARED_DATA", str(tmp_path / "absent"))
    r = R.default_recording(smoke=True)
    assert r.synthetic and r.n_neurons == 189 and r.duration_s == pytest.approx(300, abs=1)
