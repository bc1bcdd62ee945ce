"""The crawl-tuned body surrogate (kind ``worm.surrogate``): fine-tune a tiny shipped surrogate on
the generator's store + a crawl store, ship it with its crawl test samples, verify both held-out
sets, and the crawl check picks it up as its default surrogate."""

import json

import pytest

from wormlab import models
from wormlab.body import _paths as P


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, tiny_shipped_body_surrogate):
    from wormlab.body.cli import main as body_main
    from wormlab.paths import package_data
    from wormlab.worm._bodydata import CrawlDataConfig, crawl_body_store, crawl_heldout
    from wormlab.worm._config import read_crawl_params

    root = tmp_path_factory.mktemp("crawlsur")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORMLAB_MODELS", str(root / "models"))
    mp.setenv("WORMLAB_CACHE", str(root / "cache"))
    store = tiny_shipped_body_surrogate(epochs=3, generate_command="g", train_command="t")
    crawl = root / "crawl.h5"
    base = read_crawl_params(package_data("worm", "data", "crawl_params.json"))
    crawl_body_store(crawl, base, CrawlDataConfig(n_sets=4, spread=0.05, duration_s=2.0,
                                                  skip_s=0.0, window_s=1.0, stride_s=0.5,
                                                  batch=4, seed=1), progress=False)
    (root / "h.json").write_text(json.dumps(crawl_heldout(crawl, val_fraction=0.25)))
    ck = root / "tuned.safetensors"
    assert body_main(["train", "--store", str(store), str(crawl), "--out", str(ck),
                      "--init", str(models.model_path(P.SHIPPED_NAME)),
                      "--heldout", str(root / "h.json"),
                      "--train-families", "sinusoid,nominal,crawl", "--errorhead-families", "",
                      "--hidden", "8", "--modes", "4", "--layers", "1", "--epochs", "2",
                      "--batch", "4"]) == 0
    yield root, store, crawl, ck
    mp.undo()


def test_ship_and_verify_both_heldout_sets(tuned):
    from wormlab.worm._ship import KIND, NAME, ship_crawl_surrogate

    root, store, crawl, ck = tuned
    path = ship_crawl_surrogate(ck, [store, crawl], command="tiny", data_commands={"x": "y"})
    m = json.loads(path.read_text())
    assert m["kind"] == KIND and m["name"] == NAME
    assert m["metrics"]["crawl_n_test"] == m["data"]["heldout_files"]["crawl_test"]["n"]
    assert m["metrics"]["crawl_n_test"] >= 2 and m["metrics"]["generic_n_test"] >= 1
    res = models.verify(NAME)
    assert res["ok"], res
    # the check of the crawl now uses this model
    from wormlab.worm._validate import default_surrogate

    assert default_surrogate().cfg.hidden_channels == 8


def test_changed_crawl_test_file_is_refused(tuned):
    from wormlab.worm._ship import NAME, ship_crawl_surrogate

    root, store, crawl, ck = tuned
    ship_crawl_surrogate(ck, [store, crawl], command="tiny", data_commands={})
    f = models.models_dir() / NAME / "heldout_crawl_test.safetensors"
    b = bytearray(f.read_bytes())
    b[-7] ^= 0x10
    f.write_bytes(bytes(b))
    res = models.verify(NAME)
    assert not res["ok"]
    assert "sha256" in json.dumps(res)


def test_ship_needs_crawl_test_samples(tuned):
    from wormlab.worm._ship import ship_crawl_surrogate

    root, store, crawl, ck = tuned
    with pytest.raises(ValueError, match="not in the stores"):
        ship_crawl_surrogate(ck, [store], command="x", data_commands={})
