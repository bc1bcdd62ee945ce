"""Shipping a frame decoder through wormlab.models (real Flavell recordings; skipped without)."""

import json

import pytest

from wormlab.paths import shared_data_dir

pytestmark = pytest.mark.skipif(shared_data_dir() is None, reason="shared recordings absent")


def test_ship_verify_load_and_a_corrupt_weight_fails(tmp_path, monkeypatch, capsys):
    import torch
    from safetensors.torch import load_file, save_file

    from wormlab import models
    from wormlab.behaviour._ship import load_frame_decoder
    from wormlab.behaviour.cli import main

    monkeypatch.setenv("WORMLAB_MODELS", str(tmp_path))
    rc = main(["ship", "--name", "bh_test", "--heldout", "2022-07-27-45",
               "--model", "logreg_ms_union_thr"])
    assert rc == 0 and "balanced accuracy" in capsys.readouterr().out
    m = models.manifest("bh_test")
    assert m["data"]["heldout"] == "flavell2023/2022-07-27-45"
    assert m["data"]["heldout"] not in m["data"]["train"] and len(m["data"]["train"]) == 4
    assert m["command"].startswith("wormlab behaviour ship --name bh_test")
    rec = m["metrics"]["heldout_balanced_accuracy"]
    assert rec > 0.85  # measured 0.917 (docs/behaviour.md)
    v = models.verify("bh_test")
    assert v["ok"], v
    dec = load_frame_decoder("bh_test")
    assert dec.threshold is not None and 0.2 <= dec.threshold <= 0.8
    # a changed weight is caught: by the hash, and (re-hashed) by the recomputed metric
    path = models.model_path("bh_test")
    t = load_file(str(path))
    t["coef"] = -t["coef"]
    save_file(t, str(path))
    assert not models.verify("bh_test")["ok"]
    mf = path.parent / "manifest.json"
    doc = json.loads(mf.read_text())
    import hashlib

    doc["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    doc["bytes"] = path.stat().st_size
    mf.write_text(json.dumps(doc))
    v = models.verify("bh_test")
    assert not v["ok"] and not v["metrics"]["heldout_balanced_accuracy"]["ok"], v
    assert torch.is_tensor(t["coef"])
    rc = main(["ship", "--name", "bh_test2", "--heldout", "nope"])
    assert rc == 2 and "not one of the identified Flavell worms" in capsys.readouterr().err
