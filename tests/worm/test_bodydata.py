"""Body-surrogate samples from the crawling worm's own activations (``wormlab worm body-data``)
and the body side that trains on them (merged stores, held-out ids for one family only)."""

import json

import numpy as np
import pytest
import torch

from wormlab.worm._bodydata import (
    CrawlDataConfig,
    crawl_body_store,
    crawl_heldout,
    scattered_params,
)
from wormlab.worm._loop import PARAMS, LoopConfig, run_loop

CFG = CrawlDataConfig(n_sets=4, spread=0.05, duration_s=1.6, skip_s=0.0, window_s=0.8,
                      stride_s=0.4, batch=4, seed=3)


@pytest.fixture(scope="module")
def base():
    from wormlab.paths import package_data
    from wormlab.worm._config import read_crawl_params

    return read_crawl_params(package_data("worm", "data", "crawl_params.json"))


@pytest.fixture(scope="module")
def store(tmp_path_factory, base):
    path = tmp_path_factory.mktemp("crawl") / "crawl.h5"
    res = crawl_body_store(path, base, CFG, progress=False)
    return path, res


def test_scatter_keeps_member_zero_and_bounds(base):
    p = scattered_params(base, 16, 0.5, seed=1)
    for k, (d, lo, hi, _, _) in PARAMS.items():
        assert float(p[k][0]) == pytest.approx(float(base.get(k, d)))
        assert torch.all(p[k] >= lo) and torch.all(p[k] <= hi)
    assert len({float(x) for x in p["drive_nA"]}) > 1


def test_store_holds_replays_of_the_loops_own_activation(store, base):
    from wormlab.body._generate import load_store
    from wormlab.body._physics import simulate

    path, res = store
    d = load_store(path)
    n_win = len(range(0, 41 - 20, 10))  # 41 loop frames, 20-frame windows, stride 10
    assert res["windows_per_run"] == n_win
    assert res["samples"] == 2 * CFG.n_sets * n_win == len(d["id"])
    assert set(d["family"]) == {"crawl"}
    assert d["activation"].shape[1] == 21
    # sample crawl-s3-0001-01: forward run 1 (set 1), window starting at frame 10
    k = list(d["id"]).index("crawl-s3-0001-01")
    m = d["meta"][k]
    assert m["params"]["direction"] == "forward" and m["params"]["start_frame"] == 10
    p = scattered_params(base, CFG.n_sets, CFG.spread, CFG.seed)
    lc = LoopConfig(duration_s=CFG.duration_s, bend_seeds=(m["params"]["bend_seed"],))
    r = run_loop({k_: v[[1]] for k_, v in p.items()}, lc, record=("AVBL",))
    np.testing.assert_allclose(d["activation"][k], r.activation[10:31, 0], atol=1e-6)
    # the body replays that activation open loop from a straight body (not the loop's body)
    tr = simulate(torch.from_numpy(d["activation"][k][:, None].astype(np.float64)))
    np.testing.assert_allclose(d["com_um"][k], tr.com_um[:, 0], atol=1e-3)
    assert not np.allclose(d["tangent_rad"][k][0], r.trajectory.tangent_rad[10, 0], atol=1e-3)


def test_rerun_resumes_without_simulating(store, base):
    path, _ = store
    res = crawl_body_store(path, base, CFG, progress=False)
    assert res["runs_simulated"] == 0


def test_heldout_splits_whole_runs(store):
    path, _ = store
    ids = crawl_heldout(path, val_fraction=0.25, seed=0)
    run = lambda i: i.rsplit("-", 1)[0]  # noqa: E731
    val, test = {run(i) for i in ids["val"]}, {run(i) for i in ids["test"]}
    assert val and test and not val & test
    assert len(val) == len(test) == 2  # one forward and one backward run each


def test_bad_config_is_refused(tmp_path, base):
    with pytest.raises(ValueError, match="exceed"):
        crawl_body_store(tmp_path / "x.h5", base,
                         CrawlDataConfig(duration_s=2.0, window_s=2.0, skip_s=0.5))
    assert not (tmp_path / "x.h5").exists()


def test_load_stores_merges_and_refuses_clashes(store, tmp_path):
    import shutil

    from wormlab.body._generate import load_store, load_stores

    path, _ = store
    one = load_store(path)
    with pytest.raises(ValueError, match="more than one store"):
        load_stores([path, path])
    assert load_stores([path])["id"].tolist() == one["id"].tolist()
    other = tmp_path / "other.h5"
    shutil.copy(path, other)
    import h5py

    with h5py.File(other, "a") as f:
        ids = [("x" + (i.decode() if isinstance(i, bytes) else i)) for i in f["id"][:]]
        del f["id"]
        f.create_dataset("id", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
    both = load_stores([path, other])
    assert len(both["id"]) == 2 * len(one["id"]) and len(both["meta"]) == len(both["id"])


def test_split_data_named_family_fixed_other_family_random(store):
    from wormlab.body._config import SurrogateConfig
    from wormlab.body._generate import load_store
    from wormlab.body._surrogate import split_data

    path, _ = store
    d = load_store(path)
    # pretend half of the runs are another family with no named ids
    fam = d["family"].astype("<U16")  # room for a longer family name
    other = np.array([int(i.split("-")[2]) % 2 == 1 for i in d["id"]])  # odd runs
    fam[other] = "random"
    d = dict(d, family=fam)
    named = [i for i, o in zip(d["id"], other) if not o]
    ho = {"val": named[:2], "test": named[2:4]}
    cfg = SurrogateConfig(train_families=("crawl", "random"), errorhead_families=(),
                          val_fraction=0.2)
    s = split_data(d, cfg, ho)
    assert set(s["val"].id[:2]) == set(ho["val"]) and set(s["test"].id[:2]) == set(ho["test"])
    assert any(f == "random" for f in s["val"].family)  # the unnamed family is split too
    assert all(i not in set(s["train"].id) for i in list(s["val"].id) + list(s["test"].id))
    crawl_train = [i for i, f in zip(s["train"].id, s["train"].family) if f == "crawl"]
    assert len(crawl_train) == len(named) - 4  # the named family: all the rest trains


def test_cli_body_data_writes_store_and_heldout(tmp_path, capsys):
    from wormlab.worm.cli import main

    out = tmp_path / "c.h5"
    rc = main(["body-data", str(out), "--sets", "4", "--duration", "1.2", "--window", "0.4",
               "--stride", "0.4", "--skip", "0", "--spread", "0.05", "--quiet",
               "--heldout-out", str(tmp_path / "h.json")])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["samples"] == 2 * 4 * res["windows_per_run"]
    h = json.loads((tmp_path / "h.json").read_text())
    assert h["val"] and h["test"]
    assert main(["body-data", str(tmp_path / "d.h5"), "--duration", "1", "--window", "2"]) == 2
