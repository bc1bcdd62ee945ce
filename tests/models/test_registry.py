"""The shipped-model registry: round trip, refused corruptions, verify with a tolerance."""

import json

import pytest
import torch

from wormlab import models
from wormlab.cli import main as cli_main

KIND = "testkind.tiny"


@pytest.fixture()
def mdir(tmp_path, monkeypatch):
    monkeypatch.setenv("WORMLAB_MODELS", str(tmp_path / "models"))
    monkeypatch.delitem(models.VERIFIERS, KIND, raising=False)
    yield tmp_path / "models"
    models.VERIFIERS.pop(KIND, None)


def _tiny():
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(4, 3, generator=g), "b": torch.zeros(4)}


def _save(name="tiny", metrics=None, tol=0.01, **kw):
    return models.save(name, _tiny(), kind=KIND, config={"n_in": 3, "n_out": 4, "act": "relu"},
                       command="python make_tiny.py --seed 0",
                       data={"what": "4x3 Gaussian", "heldout_ids": [1, 2]},
                       metrics=metrics or {"err": 0.5}, tolerance=tol, **kw)


def _verifier(value):
    def fn(name, tensors, manifest):
        assert manifest["data"]["heldout_ids"] == [1, 2]
        return {"err": value(tensors)}
    return fn


def test_round_trip(mdir):
    path = _save()
    assert path == mdir / "tiny" / "manifest.json"
    m = json.loads(path.read_text())
    for field in ("sha256", "bytes", "kind", "config", "command", "data", "code_version",
                  "created", "metrics", "tolerance"):
        assert field in m
    assert set(m["code_version"]) == {"commit", "dirty", "dirty_paths"}
    assert m["code_version"]["dirty_paths"] == ["wormlab"]
    tensors, m2 = models.load("tiny", kind=KIND, config={"n_in": 3, "n_out": 4, "act": "relu"})
    for k, v in _tiny().items():
        assert torch.equal(tensors[k], v)
    assert m2 == m
    rows = models.list()
    assert [r["name"] for r in rows] == ["tiny"]
    assert rows[0]["metrics"] == {"err": 0.5}
    assert not list(mdir.glob("tiny/.*.tmp"))  # nothing half-written left


def test_flipped_byte_refused(mdir):
    _save()
    f = mdir / "tiny" / "model.safetensors"
    raw = bytearray(f.read_bytes())
    raw[-3] ^= 0x01  # inside the last tensor: the file still parses, only the hash tells
    f.write_bytes(bytes(raw))
    with pytest.raises(models.ModelError, match=r"'tiny'.*sha256"):
        models.load("tiny")
    r = models.verify("tiny")
    assert not r["ok"] and "sha256" in r["error"]


def test_truncated_file_refused(mdir):
    _save()
    f = mdir / "tiny" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-4])
    with pytest.raises(models.ModelError, match="bytes"):
        models.load("tiny")


def test_architecture_mismatch_refused(mdir):
    _save()
    with pytest.raises(models.ModelError, match=r"'tiny'.*config\.n_out.*5.*4"):
        models.load("tiny", config={"n_in": 3, "n_out": 5, "act": "relu"})
    with pytest.raises(models.ModelError, match=r"config\.extra"):
        models.load("tiny", config={"n_in": 3, "n_out": 4, "act": "relu", "extra": 1})
    with pytest.raises(models.ModelError, match=r"kind is 'testkind.tiny', expected 'body.x'"):
        models.load("tiny", kind="body.x")


def test_tensor_shapes_checked_against_manifest(mdir):
    _save()
    mf = mdir / "tiny" / "manifest.json"
    m = json.loads(mf.read_text())
    m["tensors"]["w"]["shape"] = [4, 4]
    mf.write_text(json.dumps(m))
    with pytest.raises(models.ModelError, match=r"tensors\.w"):
        models.load("tiny")


def test_missing_files_named(mdir):
    with pytest.raises(models.ModelError, match=r"'nothere'.*no manifest at .*nothere"):
        models.load("nothere")
    _save()
    (mdir / "tiny" / "model.safetensors").unlink()
    with pytest.raises(models.ModelError, match=r"'tiny'.*model\.safetensors.*missing"):
        models.load("tiny")
    mf = mdir / "tiny" / "manifest.json"
    m = json.loads(mf.read_text())
    del m["sha256"]
    mf.write_text(json.dumps(m))
    with pytest.raises(models.ModelError, match=r"lacks the field.*sha256"):
        models.manifest("tiny")


def test_bad_save_arguments(mdir):
    with pytest.raises(ValueError, match="model name"):
        _save(name="../escape")
    with pytest.raises(ValueError, match="tolerance given for metric 'nope'"):
        _save(tol={"nope": 0.1})
    with pytest.raises(ValueError, match="'err' is not finite"):
        _save(metrics={"err": float("nan")})
    assert not (mdir / "escape").exists()


def test_verify_within_and_outside_tolerance(mdir):
    _save(metrics={"err": 0.5}, tol=0.01)
    # the verifier recomputes the metric from the loaded tensors
    models.register_verifier(KIND, _verifier(lambda t: 0.5 + 0.005 + 0 * float(t["b"].sum())))
    r = models.verify("tiny")
    assert r["ok"], r
    assert r["metrics"]["err"]["recomputed"] == pytest.approx(0.505)
    # fault injected: the model got worse than the manifest says
    models.register_verifier(KIND, _verifier(lambda t: 0.52))
    r = models.verify("tiny")
    assert not r["ok"] and not r["metrics"]["err"]["ok"]
    # a verifier that does not return the metric fails too
    models.register_verifier(KIND, lambda n, t, m: {})
    assert not models.verify("tiny")["ok"]


def test_verify_without_verifier_fails(mdir):
    _save()
    r = models.verify("tiny")
    assert not r["ok"] and "no verifier registered for kind 'testkind.tiny'" in r["error"]


def test_cli_list_and_verify_exit_codes(mdir, capsys):
    _save()
    assert cli_main(["models", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in out["models"]] == ["tiny"]
    models.register_verifier(KIND, _verifier(lambda t: 0.5))
    assert cli_main(["models", "verify", "tiny", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    models.register_verifier(KIND, _verifier(lambda t: 0.9))
    assert cli_main(["models", "verify"]) == 1
    assert "OUT OF TOLERANCE" in capsys.readouterr().out
    assert cli_main(["models", "verify", "nothere"]) == 1


def test_verify_table_in_report_index(mdir, tmp_path, capsys):
    from wormlab.notebooks import write_index

    _save()
    models.register_verifier(KIND, _verifier(lambda t: 0.9))
    reports = tmp_path / "reports"
    assert cli_main(["models", "verify", "--out", str(reports / models.VERIFY_REPORT)]) == 1
    page = write_index(reports).read_text()
    assert "shipped models" in page and "tiny" in page and "FAILED" in page
    assert "recorded 0.5, recomputed 0.9" in page
    (reports / models.VERIFY_REPORT).unlink()
    assert "shipped models" not in write_index(reports).read_text()


def test_ship_checkpoint_keeps_metadata_and_checked_path(mdir, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    ck = tmp_path / "component.safetensors"
    save_file(_tiny(), str(ck), metadata={"wormlab_tiny": '{"n_in": 3}'})
    models.ship_checkpoint("shipped-ck", ck, kind=KIND, config={"n_in": 3}, command="train it",
                           data={"what": "x"}, metrics={"err": 0.5}, tolerance=0.01)
    path = models.checked_path("shipped-ck", kind=KIND, config={"n_in": 3})
    with safe_open(str(path), framework="pt") as f:  # the component's loader sees its metadata
        assert f.metadata()["wormlab_tiny"] == '{"n_in": 3}'
        assert torch.equal(f.get_tensor("w"), _tiny()["w"])
    with pytest.raises(models.ModelError, match="config.n_in: expected 4"):
        models.checked_path("shipped-ck", config={"n_in": 4})
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(models.ModelError, match="sha256"):
        models.checked_path("shipped-ck")


def test_verify_skipped_is_reported_not_failed(mdir, tmp_path, capsys):
    from wormlab.notebooks import write_index

    _save()

    def no_data(name, tensors, manifest):
        raise models.VerifySkipped("the shared recordings folder is absent")

    models.register_verifier(KIND, no_data)
    r = models.verify("tiny")
    assert not r["ok"] and "shared recordings" in r["skipped"] and not models.failed(r)
    reports = tmp_path / "reports"
    assert cli_main(["models", "verify", "--out", str(reports / models.VERIFY_REPORT)]) == 0
    assert "skipped" in capsys.readouterr().out
    assert "skipped" in write_index(reports).read_text()
    # the file is still checked before the verifier runs: a corrupt file fails, not skipped
    f = models.model_path("tiny")
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x01
    f.write_bytes(bytes(raw))
    r = models.verify("tiny")
    assert models.failed(r) and "sha256" in r["error"]
    assert cli_main(["models", "verify"]) == 1


def test_verifier_found_in_component_ship_module(monkeypatch):
    """A verifier registered by wormlab/<component>/_ship.py (not imported by the component's
    package) is found by kind: the registry imports that module."""
    import sys

    from wormlab.models import _registry

    monkeypatch.delitem(models.VERIFIERS, "rom.model", raising=False)
    monkeypatch.delitem(sys.modules, "wormlab.rom._ship", raising=False)
    fn = _registry._verifier("rom.model")
    assert fn.__module__ == "wormlab.rom._ship"
    with pytest.raises(models.ModelError, match="no verifier registered for kind 'rom.nothing'"):
        _registry._verifier("rom.nothing")
