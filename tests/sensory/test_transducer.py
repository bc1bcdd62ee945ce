"""GRU transducers: API, bad input, gradients through the circuit, shipping, metrics."""

import json

import numpy as np
import pytest
import torch

from wormlab import sensory
from wormlab.sensory import _transducer as T


@pytest.fixture()
def tr():
    torch.manual_seed(0)
    return sensory.Transducer("nacl", ["ASEL", "ASER"]).double().eval()


def test_shapes_and_bounds(tr):
    s = torch.linspace(0, 50, 30)[:, None].repeat(1, 3)
    a = tr(s)
    b = tr(s[..., None])
    assert a.shape == (30, 3, 2) and torch.equal(a, b)
    assert bool((a >= 0).all()) and bool((a <= sensory.I_MAX_NA).all())
    assert tr.units == "mM" and tr.frame_dt_ms == 40.0 and tr.neurons == ["ASEL", "ASER"]


def test_step_matches_whole_series(tr):
    """The closed loop steps frame by frame; it must get what the whole-series call gives."""
    s = torch.cat([torch.zeros(10, 2), torch.full((15, 2), 50.0)])
    s[:, 1] *= 0.5
    whole = tr(s)
    h = tr.initial_state(2, s[0])
    outs = []
    for k in range(s.shape[0]):
        i, h = tr.step(s[k], h)
        outs.append(i)
    torch.testing.assert_close(torch.stack(outs), whole, rtol=1e-10, atol=1e-14)


def test_bad_input(tr):
    with pytest.raises(sensory.TransducerError, match=r"shape \(5, 2, 2\)"):
        tr(torch.zeros(5, 2, 2))
    with pytest.raises(sensory.TransducerError, match=r"shape \(5,\)"):
        tr(torch.zeros(5))
    s = torch.zeros(5, 2)
    s[3, 1] = float("nan")
    with pytest.raises(sensory.TransducerError, match=r"non-finite.*\(3, 1\).*mM"):
        tr(s)
    with pytest.raises(sensory.TransducerError, match=r"step stimulus must be \(2,\)"):
        tr.step(torch.zeros(3), tr.initial_state(2))
    with pytest.raises(sensory.TransducerError, match="smell"):
        sensory.Transducer("smell", ["ASEL"])
    with pytest.raises(sensory.TransducerError, match="ASEX"):
        sensory.Transducer("nacl", ["ASEL", "ASEX"])
    with pytest.raises(sensory.TransducerError, match="smell"):
        sensory.load_transducer("smell")


def test_gradient_reaches_every_parameter_through_the_circuit(tr):
    """The training signal is the circuit's V, not the transducer output."""
    tr.train()
    s = torch.cat([torch.zeros(3, 1), torch.full((5, 1), 50.0)])
    net = sensory.sensory_network(tr.neurons)
    v = sensory.simulate_response(net, tr.neurons, tr(s), compile=False, warmup_ms=40.0)
    assert v.shape == (8, 1, 2)
    v[-1].sum().backward()
    for k, p in tr.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), k
        assert float(p.grad.abs().max()) > 0, k


def test_sensory_cells_are_neurons_plus_partners():
    cells = sensory.sensory_cells(["AFDL", "AFDR"])
    assert cells[:2] == ["AFDL", "AFDR"]
    assert "AIYL" in cells and "AIYR" in cells   # AFD -> AIY, the thermotaxis synapse
    assert "AVAL" not in cells


def test_save_load_roundtrip(tr, tmp_path):
    p = sensory.save_transducer(tr, {"modality": "nacl"}, tmp_path)
    back = sensory.load_transducer("nacl", tmp_path)
    s = torch.rand(12, 2) * 50
    torch.testing.assert_close(back(s), tr(s))
    assert not back.training
    (tmp_path / "transducer_odour.safetensors").write_bytes(p.read_bytes())
    with pytest.raises(sensory.TransducerError, match="holds modality 'nacl'"):
        sensory.load_transducer("odour", tmp_path)
    with pytest.raises(FileNotFoundError, match="touch"):
        sensory.load_transducer("touch", tmp_path)


def test_metrics_on_known_errors():
    t = np.arange(100) * 0.04
    ref = np.zeros((100, 2))
    ref[40:, 0] = np.exp(-(t[40:] - 1.6) / 1.0) * (1 - np.exp(-(t[40:] - 1.6) / 0.2))
    sim = np.roll(1.1 * ref, 2, axis=0)
    m = T.protocol_metrics(t, sim, ref, ["A", "B"])
    assert list(m["neurons"]) == ["A"]            # B does not respond
    assert m["neurons"]["A"]["peak_error_pct"] == pytest.approx(10.0)
    assert m["neurons"]["A"]["time_to_peak_error_s"] == pytest.approx(0.08)
    assert m["neurons"]["A"]["time_to_half_peak_error_s"] == pytest.approx(0.08)
    neg = T.protocol_metrics(t, -0.5 * ref, -ref, ["A", "B"])
    assert neg["neurons"]["A"]["peak_error_pct"] == pytest.approx(50.0)
    quiet = T.protocol_metrics(t, 0.01 * ref, 0.001 * ref, ["A", "B"], scale=1.0)
    assert quiet["silent"] and quiet["neurons"] == {}   # no % error on a silent reference
    assert quiet["nrmse"] < 0.01


def test_calibration_recovers_an_affine_map():
    rng = np.random.default_rng(0)
    v = rng.normal(-45, 5, size=(50, 3, 2))
    y = np.stack([0.02 * (v[..., 0] + 45), -0.01 * v[..., 1] + 0.3], -1)
    mask = np.ones((50, 3), dtype=bool)
    mask[:, 2] = False
    y[:, 2] = 99.0   # frames outside the mask (held-out) must not enter the fit
    cal = T.fit_calibration(v, y, mask)
    np.testing.assert_allclose(cal, [[0.02, 0.9], [-0.01, 0.3]], atol=1e-10)


def test_training_never_sees_heldout(tmp_path, monkeypatch):
    """Stage A on a reference whose held-out curves are corrupted gives the same weights."""
    monkeypatch.setattr(T, "checkpoint_path", lambda m, s, c=None: tmp_path / f"{len(list(tmp_path.iterdir()))}.pt")
    ref = sensory.load_references()["noxious"]
    cfg = sensory.TrainConfig(modality="noxious", stage_a_steps=3, epochs=0)
    a, _ = sensory.train(cfg, ref, log=lambda *_: None)
    for p in ref.heldout:
        for n in ref.neurons:
            ref.protocols[p].response[n] = ref.protocols[p].response[n] * 0 + 5.0
    b, _ = sensory.train(cfg, ref, log=lambda *_: None)
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, msg=k)


@pytest.mark.parametrize("modality", sensory.MODALITIES)
def test_shipped_transducers(modality):
    path = T.weights_path(modality)
    if not path.exists():
        pytest.skip(f"no shipped transducer for {modality}")
    t = sensory.load_transducer(modality)
    ref = sensory.load_references()[modality]
    meta = json.loads(path.with_suffix(".json").read_text())
    assert t.neurons == ref.neurons == meta["neurons"]
    assert meta["split"]["heldout"] == ref.heldout and meta["tag"] == "ml"
    s = torch.as_tensor(np.stack([p.stimulus for p in ref.protocols.values()], 1))
    with torch.no_grad():
        i = t(s)
    assert bool(torch.isfinite(i).all()) and float(i.max()) <= sensory.I_MAX_NA


def test_training_is_seeded_and_resumes(tmp_path, monkeypatch):
    """Same seed, same weights; a second call finds the checkpoint and does not retrain."""
    monkeypatch.setattr(T, "checkpoint_path", lambda m, s, c=None: tmp_path / f"{m}_{s}.pt")
    ref = sensory.load_references()["noxious"]
    cfg = sensory.TrainConfig(modality="noxious", stage_a_steps=3, epochs=0)
    logs = []
    a, _ = sensory.train(cfg, ref, log=logs.append)
    assert not logs and (tmp_path / "noxious_0.pt").exists()
    b, _ = sensory.train(cfg, ref, log=logs.append)
    assert logs and "resumed" in logs[0] and "stage A 3/3" in logs[0]
    (tmp_path / "noxious_0.pt").unlink()
    c, _ = sensory.train(cfg, ref, log=logs.append)
    for k, x in a.state_dict().items():
        torch.testing.assert_close(x, b.state_dict()[k], msg=k)
        torch.testing.assert_close(x, c.state_dict()[k], msg=k)
    other = sensory.TrainConfig(modality="noxious", stage_a_steps=3, epochs=0, seed=1)
    monkeypatch.setattr(T, "checkpoint_path", lambda m, s, c=None: tmp_path / f"{m}_{s}.pt")
    d, _ = sensory.train(other, ref, log=logs.append)
    assert not torch.equal(d.state_dict()["head.bias"], a.state_dict()["head.bias"]) or not \
        torch.equal(d.state_dict()["gru.weight_hh_l0"], a.state_dict()["gru.weight_hh_l0"])


@pytest.mark.slow
def test_shipped_noxious_transducer_reproduces_its_heldout_metric():
    """Re-simulating the shipped ASH transducer through the circuit gives the held-out peak
    error recorded at training time (within the +-20 % goal)."""
    path = T.weights_path("noxious")
    if not path.exists():
        pytest.skip("no shipped noxious transducer")
    meta = json.loads(path.with_suffix(".json").read_text())
    ev = sensory.evaluate(sensory.load_transducer("noxious"),
                          sensory.load_references()["noxious"], compile=False)
    assert ev["heldout_max_abs_peak_error_pct"] <= 20.0
    assert ev["heldout_max_abs_peak_error_pct"] == pytest.approx(
        meta["metrics"]["heldout_max_abs_peak_error_pct"], abs=0.05)


def test_checkpoint_depends_on_config_and_training_data(tmp_path, monkeypatch):
    """Changed training curves or config never resume an old checkpoint."""
    seen = []
    real = T.checkpoint_path

    def spy(m, s, c=None):
        seen.append(real(m, s, c).name)
        return tmp_path / seen[-1]

    monkeypatch.setattr(T, "checkpoint_path", spy)
    ref = sensory.load_references()["noxious"]
    cfg = sensory.TrainConfig(modality="noxious", stage_a_steps=1, epochs=0)
    sensory.train(cfg, ref, log=lambda *_: None)
    sensory.train(sensory.TrainConfig(modality="noxious", stage_a_steps=2, epochs=0), ref,
                  log=lambda *_: None)
    p = ref.train[0]
    ref.protocols[p].response[ref.neurons[0]] = ref.protocols[p].response[ref.neurons[0]] * 2
    sensory.train(cfg, ref, log=lambda *_: None)
    assert len(set(seen)) == 3
