"""Notebook 06's shipped result tables (kind ``behaviour.tables``): round trip, and the
results folder is seeded only when the notebook's parameters and models match."""

import json

import pytest

from wormlab import behaviour as bh
from wormlab import models


def _rows(epochs=20, models_=("svm", "mlp")):
    cfg = bh.BehaviourConfig().replace(data={"task": "fwd_rev", "window": 8},
                                       train={"epochs": epochs, "seed": 0})
    rows = []
    for exp in ("kato_kfold", "flavell_lwo"):
        for split in ("s0", "s1"):
            for m in models_:
                rows.append({"experiment": exp, "split": split, "model": m, "task": "fwd_rev",
                             "seed": 0, "balanced_accuracy": 0.5 + 0.1 * len(m) / 10,
                             "accuracy": 0.7, "test_worms": ["w"],
                             "config": cfg.replace(model={"name": m}).to_dict()})
    fc = [{"experiment": "forecast_lwo", "split": "s0", "model": "mlp", "task": "forecast",
           "seed": 0, "mse": [0.01, 0.02]}]
    return rows, fc


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    monkeypatch.setenv("WORMLAB_MODELS", str(tmp_path / "models"))
    rows, fc = json.loads(json.dumps(_rows()))  # as read back from the files
    (tmp_path / "c.json").write_text(json.dumps(rows))
    (tmp_path / "f.json").write_text(json.dumps(fc))
    path = bh.ship_tables(tmp_path / "c.json", tmp_path / "f.json", command="test", name="t")
    return tmp_path, rows, fc, path


def test_round_trip_and_spot_check_metrics(shipped):
    from wormlab.behaviour._ship import _tables_from

    _, rows, fc, path = shipped
    tensors, m = models.load("t", kind="behaviour.tables")
    assert _tables_from(tensors) == (rows, fc)
    assert m["config"]["notebook_parameters"] == {"task": "fwd_rev", "window": 8, "epochs": 20,
                                                  "seed": 0}
    assert m["config"]["models"] == ["mlp", "svm"]
    # svm over every split, mlp on the first split, forecasting mlp step 1
    assert set(m["metrics"]) == {"kato_kfold/svm/balanced_accuracy",
                                 "kato_kfold/mlp/balanced_accuracy",
                                 "flavell_lwo/svm/balanced_accuracy",
                                 "flavell_lwo/mlp/balanced_accuracy",
                                 "forecast_lwo/mlp/split0_mse_step1"}
    assert m["metrics"]["forecast_lwo/mlp/split0_mse_step1"] == 0.01


def test_seed_results_only_when_parameters_match(shipped):
    tmp, rows, fc, _ = shipped
    kw = dict(task="fwd_rev", window=8, seed=0, name="t")
    assert bh.seed_results(tmp / "a", epochs=5, models_wanted=["svm"], **kw) is None
    assert bh.seed_results(tmp / "b", epochs=20, models_wanted=["svm", "gnn"], **kw) is None
    assert not (tmp / "a").exists() and not (tmp / "b").exists()
    info = bh.seed_results(tmp / "c", epochs=20, models_wanted=["mlp"], **kw)
    assert info["rows"] == {"classification": len(rows), "forecast": 1}
    assert json.loads((tmp / "c" / "classification.json").read_text()) == rows
    assert json.loads((tmp / "c" / "forecast.json").read_text()) == fc
    # existing results are never overwritten
    (tmp / "c" / "classification.json").write_text("[]")
    assert bh.seed_results(tmp / "c", epochs=20, models_wanted=["mlp"], **kw) is None
    assert (tmp / "c" / "classification.json").read_text() == "[]"


def test_mixed_settings_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("WORMLAB_MODELS", str(tmp_path / "models"))
    a, fc = _rows(epochs=20)
    b, _ = _rows(epochs=5)
    (tmp_path / "c.json").write_text(json.dumps(a + b))
    (tmp_path / "f.json").write_text(json.dumps(fc))
    with pytest.raises(ValueError, match="mix settings"):
        bh.ship_tables(tmp_path / "c.json", tmp_path / "f.json", command="x", name="t")
    assert not (tmp_path / "models" / "t").exists()


def test_a_changed_table_file_is_refused(shipped):
    tmp, *_ = shipped
    f = tmp / "models" / "t" / "model.safetensors"
    b = bytearray(f.read_bytes())
    b[-5] ^= 0x01
    f.write_bytes(bytes(b))
    with pytest.raises(models.ModelError, match="sha256"):
        bh.seed_results(tmp / "d", task="fwd_rev", window=8, epochs=20, seed=0,
                        models_wanted=["svm"], name="t")
    assert not (tmp / "d").exists()
