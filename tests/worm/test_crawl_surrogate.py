"""The crawl-tuned body surrogate (kind ``worm.surrogate``): fine-tune a tiny shipped surrogate on
the generator's store + a crawl store, ship it with its crawl test samples, verify both held-out
sets, and the crawl check picks it up as its default surrogate."""

import dataclasses
import json

import pytest

from wormlab import models
from wormlab.body import _paths as P
from wormlab.body._config import DataConfig, MuscleConfig, PhysicsConfig, SurrogateConfig
from wormlab.body._families import sample_specs
from wormlab.body._generate import _work, consolidate, load_store, package_versions
from wormlab.body._surrogate import split_data, train_surrogate


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    from wormlab.paths import package_data
    from wormlab.worm._bodydata import CrawlDataConfig, crawl_body_store, crawl_heldout
    from wormlab.worm._config import read_crawl_params

    root = tmp_path_factory.mktemp("crawlsur")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORMLAB_MODELS", str(root / "models"))
    mp.setenv("WORMLAB_CACHE", str(root / "cache"))
    physics, muscle = PhysicsConfig(), MuscleConfig()
    data = DataConfig(duration_s=1.0, seed=3, n_per_family={"sinusoid": 10, "nominal": 3})
    specs = sample_specs(data.n_per_family, data.seed)
    T = int(round(data.duration_s / physics.frame_dt_s)) + 1
    store = P.default_store()
    parts = store.with_name(store.name + ".parts")
    parts.mkdir(parents=True)
    pj, mj = json.dumps(dataclasses.asdict(physics)), json.dumps(dataclasses.asdict(muscle))
    for s in specs:
        _work(s, T, pj, mj, str(parts), package_versions())
    consolidate(store, specs, parts, data, physics, muscle)
    d = load_store(store)
    cfg = SurrogateConfig(hidden_channels=8, n_modes=4, n_layers=1, epochs=3, batch_size=4,
                          val_fraction=0.2, train_families=("sinusoid", "nominal"),
                          errorhead_families=())
    train_surrogate(split_data(d, cfg), cfg, d["frame_dt_s"], d["body_length_um"],
                    checkpoint=P.default_cache_model(), progress=False)
    from wormlab.body.cli import main as body_main

    assert body_main(["ship", "--generate-command", "g", "--train-command", "t"]) == 0
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
