"""The shipped body surrogate: ship a tiny model, load it as the default, verify it from the
store and, with the store gone, from held-out samples regenerated with ElegansBot."""

import json

import numpy as np
import pytest

from wormlab import models
from wormlab.body import _paths as P


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, tiny_shipped_body_surrogate):
    root = tmp_path_factory.mktemp("shipped")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORMLAB_MODELS", str(root / "models"))
    mp.setenv("WORMLAB_CACHE", str(root / "cache"))
    store = tiny_shipped_body_surrogate()
    P.default_cache_model().unlink()  # a fresh clone: only the shipped model
    yield store
    mp.undo()


def test_manifest_and_default_model(shipped):
    m = models.manifest(P.SHIPPED_NAME)
    assert m["kind"] == P.SHIPPED_KIND and m["command"] == "tiny train"
    assert m["data"]["generate_command"] == "tiny gen"
    assert len(m["data"]["heldout_ids"]["test"]) == 3
    assert P.default_model() == models.model_path(P.SHIPPED_NAME)
    model, hist, source = P.load_default()
    assert source.startswith("shipped model body_surrogate")
    assert model.cfg.hidden_channels == 8


def test_verify_from_store_then_shipped_file_then_regenerated(shipped):
    r = models.verify(P.SHIPPED_NAME)
    assert r["ok"], r
    assert r["metrics"][P.HEADLINE]["recomputed"] == pytest.approx(
        r["metrics"][P.HEADLINE]["recorded"], abs=1e-6)
    m = models.manifest(P.SHIPPED_NAME)
    assert m["data"]["heldout_files"]["test"]["n"] == 3
    from_store = P.heldout_data(m, store=shipped)
    assert from_store["source"].startswith("store")
    shipped.rename(shipped.with_suffix(".moved"))
    try:  # a fresh clone: the held-out file shipped beside the model, no simulation
        fresh = P.heldout_data(m, show_progress=False)
        assert fresh["source"].startswith("shipped held-out file")
        for k in ("activation", "com_um", "tangent_rad"):
            np.testing.assert_array_equal(fresh[k], from_store[k])
        assert list(fresh["id"]) == list(from_store["id"])
        r = models.verify(P.SHIPPED_NAME)
        assert r["ok"], r
        # ElegansBot re-simulation of the recorded specs reproduces the shipped file
        regen = P.heldout_data(m, show_progress=False, regenerate=True)
        assert regen["source"].startswith("regenerated")
        for k in ("activation", "com_um", "tangent_rad"):
            np.testing.assert_allclose(regen[k], from_store[k], atol=1e-4)
        held = models.models_dir() / P.SHIPPED_NAME / m["data"]["heldout_files"]["test"]["file"]
        held.rename(held.with_suffix(".gone"))
        try:  # named by the manifest but gone: refused, naming the file
            with pytest.raises(models.ModelError, match="held-out file .*missing"):
                P.heldout_data(m)
            r = models.verify(P.SHIPPED_NAME)
        finally:
            held.with_suffix(".gone").rename(held)
        assert not r["ok"] and "heldout_test.safetensors" in r["error"]
    finally:
        shipped.with_suffix(".moved").rename(shipped)


def test_corrupt_heldout_file_refused(shipped):
    m = models.manifest(P.SHIPPED_NAME)
    held = models.models_dir() / P.SHIPPED_NAME / m["data"]["heldout_files"]["test"]["file"]
    orig = held.read_bytes()
    raw = bytearray(orig)
    raw[-3] ^= 0x01
    held.write_bytes(bytes(raw))
    try:
        with pytest.raises(models.ModelError, match="sha256 of .*heldout_test"):
            P.heldout_data(m, store=held.with_suffix(".nostore"))
    finally:
        held.write_bytes(orig)


def test_verify_catches_a_wrong_recorded_metric(shipped):
    mf = models.models_dir() / P.SHIPPED_NAME / "manifest.json"
    orig = mf.read_text()
    m = json.loads(orig)
    m["metrics"][P.HEADLINE] += 2 * P.HEADLINE_TOLERANCE
    mf.write_text(json.dumps(m))
    try:
        assert not models.verify(P.SHIPPED_NAME)["ok"]
    finally:
        mf.write_text(orig)


def test_corrupt_shipped_model_refused(shipped):
    f = models.model_path(P.SHIPPED_NAME)
    orig = f.read_bytes()
    raw = bytearray(orig)
    raw[-5] ^= 0x04
    f.write_bytes(bytes(raw))
    try:
        with pytest.raises(models.ModelError, match="sha256"):
            P.load_default()
    finally:
        f.write_bytes(orig)
    m = models.manifest(P.SHIPPED_NAME)
    bad = dict(m["config"], hidden_channels=16)
    with pytest.raises(models.ModelError, match="hidden_channels"):
        models.load(P.SHIPPED_NAME, kind=P.SHIPPED_KIND, config=bad)
