"""Shipping the posture LSTM + its hidden-state SAE (``wormlab posture ship``, kinds
``posture.lstm`` / ``posture.hidden_sae``): float16 files, verify, a run folder rebuilt from
the shipped files that ``load_run`` / ``load_hidden_sae`` read like a trained one."""

import json

import numpy as np
import pytest

from wormlab import models
from wormlab import posture as P


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, tiny_posture_run):
    """A tiny synthetic run (1 x 8 LSTM + SAE), shipped into an isolated models folder."""
    import os

    run = tmp_path_factory.mktemp("run")
    store = tmp_path_factory.mktemp("models")
    tiny_posture_run(run, epochs=2)
    old = os.environ.get("WORMLAB_MODELS")
    os.environ["WORMLAB_MODELS"] = str(store)
    try:
        paths = P.ship_run(run, command="test", lstm_name="tiny_lstm", sae_name="tiny_sae",
                           smoke_data=True)
        yield run, store, paths
    finally:
        if old is None:
            os.environ.pop("WORMLAB_MODELS", None)
        else:
            os.environ["WORMLAB_MODELS"] = old


def test_ship_writes_float16_weights_and_recorded_metrics(shipped):
    run, store, paths = shipped
    assert [p.parent.name for p in paths] == ["tiny_lstm", "tiny_sae"]
    tensors, m = models.load("tiny_lstm", kind="posture.lstm")
    assert tensors["lstms.0.weight_ih_l0"].dtype.is_floating_point
    assert str(tensors["lstms.0.weight_ih_l0"].dtype) == "torch.float16"
    assert str(tensors["mu"].dtype) == "torch.float32"  # buffers stay float32
    assert m["data"]["best_epoch"] == int(np.argmin(m["data"]["val_loss_per_epoch"])) + 1
    # float16 rounding moves the held-out loss a little, not much
    assert abs(m["metrics"]["heldout_val_loss"]
               - m["metrics"]["trained_best_val_loss_float32"]) < 0.05
    st, sm = models.load("tiny_sae", kind="posture.hidden_sae")
    assert sm["config"]["lstm_model"] == "tiny_lstm"
    assert "selectivity" in sm["data"]["interpretation"]


def test_verify_recomputes_both_models(shipped):
    for name in ("tiny_lstm", "tiny_sae"):
        res = models.verify(name)
        assert res["ok"], res
        assert all(v["ok"] for v in res["metrics"].values() if v.get("tolerance") is not None)


def test_verify_fails_when_the_weights_are_not_the_recorded_ones(shipped, tmp_path,
                                                                   monkeypatch):
    """Another model's weights under the same manifest fields: verify must catch the metric."""
    import torch

    tensors, m = models.load("tiny_lstm")
    bad = {k: (v + 0.5 * torch.randn_like(v.float())).to(v.dtype)
           if k.startswith("lstms.") else v for k, v in tensors.items()}
    monkeypatch.setenv("WORMLAB_MODELS", str(tmp_path))
    models.save("tiny_lstm", bad, kind=m["kind"], config=m["config"], command="test",
                data=m["data"], metrics=m["metrics"], tolerance=m["tolerance"])
    res = models.verify("tiny_lstm")
    assert not res["ok"]
    assert not res["metrics"]["heldout_val_loss"]["ok"]


def test_shipped_run_dir_loads_like_a_trained_run(shipped, tmp_path):
    run, _, _ = shipped
    out = P.shipped_run_dir("tiny_lstm", dest=tmp_path / "r")
    _, model, data, meta = P.load_run(out, smoke=True)
    _, ref, _, _ = P.load_run(run, smoke=True)
    assert meta["weights"] == "lstm.best.safetensors"
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        if k.startswith("lstms."):  # float16 rounding of the trained weights
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-3, rtol=2e-3)
    hs = P.load_hidden_sae(model, data, out)
    sae_json = json.loads((out / "sae.json").read_text())
    assert "selectivity" in sae_json and sae_json["shipped_model"] == "tiny_sae"
    _, sm = models.load("tiny_sae")
    assert abs(hs.val_metrics.variance_explained
               - sm["metrics"]["heldout_variance_explained"]) < 1e-5
    # reused while the shipped digests are unchanged
    stamp = (out / "shipped.json").stat().st_mtime_ns
    assert P.shipped_run_dir("tiny_lstm", dest=tmp_path / "r") == out
    assert (out / "shipped.json").stat().st_mtime_ns == stamp


def test_shipped_run_dir_declines_another_dataset_or_basis(shipped, tmp_path):
    assert P.shipped_run_dir("tiny_lstm", dest=tmp_path / "a", dataset="flavell") is None
    assert P.shipped_run_dir("tiny_lstm", dest=tmp_path / "b", basis="ica") is None
    assert P.shipped_run_dir("tiny_lstm", None, dest=tmp_path / "c", dataset="synthetic",
                             basis="pca") is not None
    assert not (tmp_path / "c" / "sae.json").exists()


def test_shipped_run_dir_refuses_a_changed_file(shipped, tmp_path, monkeypatch):
    import shutil

    _, store, _ = shipped
    copy = tmp_path / "models"
    shutil.copytree(store, copy)
    monkeypatch.setenv("WORMLAB_MODELS", str(copy))
    f = copy / "tiny_lstm" / "model.safetensors"
    b = bytearray(f.read_bytes())
    b[-3] ^= 0xFF
    f.write_bytes(bytes(b))
    with pytest.raises(models.ModelError, match="sha256"):
        P.shipped_run_dir("tiny_lstm", dest=tmp_path / "r")
    assert not (tmp_path / "r" / "lstm.json").exists()  # nothing half-written


def test_cli_ship_needs_a_trained_run(tmp_path, capsys):
    from wormlab.posture.cli import main

    assert main(["ship", "--out", str(tmp_path)]) == 2
    assert "no trained model" in capsys.readouterr().err


def test_strain_table_ship_and_protocol_match(tmp_path, monkeypatch):
    monkeypatch.setenv("WORMLAB_MODELS", str(tmp_path / "m"))
    proto = {"folds": 5, "repeats": 1, "interval": "x", "holdout_fraction": 0.3, "seed": 0,
             "n": 10, "chance_majority": 0.4}
    row = {"cv_accuracy_mean": 0.6, "cv_accuracy_std": 0.1, "holdout_accuracy": 0.5,
           "holdout_per_class": {"0": 0.5}, "seconds": 3.0}
    table = {"features": row, "rocket": dict(row, cv_accuracy_mean=0.7), "_protocol": proto}
    (tmp_path / "t.json").write_text(json.dumps(table))
    path = P.ship_strains(tmp_path / "t.json", command="c", name="st")
    m = json.loads(path.read_text())
    assert m["config"]["methods"] == ["features", "rocket"]
    assert set(m["tolerance"]) == {"features/cv_accuracy_mean", "features/holdout_accuracy"}
    st, info = P.shipped_strains(["rocket"], folds=5, seed=0, name="st")
    assert set(st) == {"rocket", "_protocol"} and st["rocket"]["cv_accuracy_mean"] == 0.7
    assert P.shipped_strains(["rocket"], folds=3, seed=0, name="st") is None
    assert P.shipped_strains(["lstm"], folds=5, seed=0, name="st") is None
    (tmp_path / "bad.json").write_text(json.dumps({"features": row}))
    with pytest.raises(ValueError, match="_protocol"):
        P.ship_strains(tmp_path / "bad.json", command="c", name="st2")
