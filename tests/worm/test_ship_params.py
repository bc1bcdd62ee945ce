"""The fitted crawl parameters in the model registry (kind ``worm.crawl_params``): verify reruns
the 4 s crawls and checks the package file the CLIs read holds the same values."""

import json

import pytest

from wormlab import models
from wormlab.worm import _ship


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("WORMLAB_MODELS", str(tmp_path / "m"))
    _ship.ship_crawl_params(command="test", name="cp")
    return tmp_path


def test_values_round_trip_and_verify(store):
    from wormlab.worm._config import read_crawl_params

    assert _ship.shipped_crawl_params("cp") == read_crawl_params(_ship._package_params_file())
    m = models.manifest("cp")
    assert m["metrics"]["forward_speed_um_s_4s_seed0"] > 20.0  # it crawls forward
    assert m["metrics"]["backward_speed_um_s_4s_seed0"] < -20.0  # and backward
    res = models.verify("cp")
    assert res["ok"], res


def test_verify_fails_when_the_package_file_differs(store, monkeypatch):
    doc = json.loads(_ship._package_params_file().read_text())
    doc["params"]["drive_nA"] *= 1.5
    other = store / "other.json"
    other.write_text(json.dumps(doc))
    monkeypatch.setattr(_ship, "_package_params_file", lambda: other)
    res = models.verify("cp")
    assert not res["ok"]
    assert not res["metrics"]["package_file_max_abs_diff"]["ok"]
