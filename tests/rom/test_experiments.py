"""Experiment tables: resumable JSON, row reuse across tables, saliency from checkpoints."""

import json

from wormlab import rom
from wormlab.rom._experiments import run_experiment


def test_tables_resume_and_reuse(tmp_path):
    rom.save_npz(rom.smoke_dataset().resample(5), tmp_path / "d.npz")
    out = tmp_path / "res"
    md = run_experiment("arch", tmp_path / "d.npz", out / "arch.json", runs=2, epochs=1,
                        show_progress=False)
    arch = json.loads((out / "arch.json").read_text())
    assert list(arch["rows"]) == ["GRU-8", "GRU-32", "LSTM-8", "LSTM-32", "RNN-16", "RNN-64"]
    assert "| GRU-8 | 372 |" in md
    assert "*constant training mean*" in md and set(arch["baselines"]) == {"constant_mean",
                                                                            "mean_trace"}
    assert len(list((out / "arch_models").glob("*.safetensors"))) == 12
    md2 = run_experiment("inputs", tmp_path / "d.npz", out / "inputs.json", runs=2, epochs=1,
                         show_progress=False)
    inp = json.loads((out / "inputs.json").read_text())
    assert inp["rows"]["GRU-8 all inputs"]["reused_from"] == "arch.json:GRU-8"
    assert inp["rows"]["GRU-8 No-AVB"]["dropped"] == ["AVBL", "AVBR"]
    assert len(inp["saliency"]["matrix"]) == 4 and "Gradient saliency" in md2
    # paired comparison from the checkpoints: reproduces the recorded per-row means, and the
    # differences are run by run (seed r against seed r)
    import numpy as np

    pr = inp["paired"]
    for label, row in inp["rows"].items():
        assert np.isclose(np.mean(pr[label]["test_rmse_runs"]), row["test_rmse"], rtol=1e-5)
    nav = pr["GRU-8 No-AVB"]
    assert np.allclose(nav["diff_runs"], np.subtract(nav["test_rmse_runs"],
                                                     pr["GRU-8 all inputs"]["test_rmse_runs"]))
    assert nav["n_runs"] == 2 and "runs worse without the inputs" in md2
    # a second call recomputes nothing; other settings start a fresh table
    before = (out / "arch.json").read_text()
    run_experiment("arch", tmp_path / "d.npz", out / "arch.json", runs=2, epochs=1,
                   show_progress=False)
    assert json.loads((out / "arch.json").read_text())["rows"] == json.loads(before)["rows"]


def test_mean_baselines():
    from wormlab.rom._experiments import mean_baselines

    b = mean_baselines(rom.smoke_dataset())
    assert set(b) == {"constant_mean", "mean_trace"}
    assert 0.5 < b["constant_mean"]["test_nrmse"] < 2
    assert b["mean_trace"]["test_rmse"] > 0


def test_data_size_curve_fixed_val_test():
    import pytest

    from wormlab.rom._experiments import data_size_curve

    d = rom.smoke_dataset().resample(10)
    rows = data_size_curve(d, [2, 4], n_test=3, n_val=2, runs=1, epochs=2)
    assert [r["ntrain"] for r in rows] == [2, 4]
    assert all(len(r["test_rmse"]) == 1 and r["constant_mean_test_rmse"] > 0 for r in rows)
    with pytest.raises(ValueError, match="outside"):
        data_size_curve(d, [8], n_test=3, n_val=2, runs=1, epochs=1)


def test_rows_subset_and_concurrent_writes_merge(tmp_path):
    import pytest

    from wormlab.rom._experiments import _read, _write

    rom.save_npz(rom.smoke_dataset().resample(5), tmp_path / "d.npz")
    out = tmp_path / "sweep.json"
    kw = dict(runs=1, epochs=1, show_progress=False)
    with pytest.raises(KeyError, match="GRU-3"):
        run_experiment("sweep", tmp_path / "d.npz", out, rows=["GRU-3"], **kw)
    run_experiment("sweep", tmp_path / "d.npz", out, rows=["GRU-4"], **kw)
    assert list(_read(out)["rows"]) == ["GRU-4"]
    # a second process that read the table before GRU-4 was written: its write keeps GRU-4
    stale = dict(_read(out), rows={})
    run_experiment("sweep", tmp_path / "d.npz", out, rows=["GRU-2"], **kw)
    stale["rows"]["GRU-16"] = {"test_rmse": 1.0}
    _write(out, stale)
    assert list(_read(out)["rows"]) == ["GRU-2", "GRU-4", "GRU-16"]  # the table's order
    assert _read(out)["rows"]["GRU-2"]["kind"] == "gru"
    # ... but rows of other settings are not merged in
    _write(out, dict(stale, epochs=2, rows={"GRU-64": {"test_rmse": 1.0}}))
    assert list(_read(out)["rows"]) == ["GRU-64"]


def test_plot_table_draws_rows_and_baselines():
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import pytest

    from wormlab.rom._plots import plot_table

    def row(kind, hidden, test):
        return dict(kind=kind, hidden=hidden, dropped=[], train_rmse=test - 2, train_rmse_sd=0.1,
                    test_rmse=test, test_rmse_sd=0.3)

    table = {"name": "sweep", "runs": 10, "epochs": 1000, "unit": "mV",
             "rows": {"GRU-8": row("gru", 8, 10.4), "GRU-2": row("gru", 2, 11.0)},
             "baselines": {"constant_mean": {"test_rmse": 12.4, "test_nrmse": 0.96},
                           "mean_trace": {"test_rmse": 12.1, "test_nrmse": 0.94}}}
    fig = plot_table(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["GRU-2", "GRU-8"]  # by size
    test_pts = [c for c in ax.containers if c.get_label() == "test"][0]
    np.testing.assert_allclose(np.asarray(test_pts.lines[0].get_xdata(), float), [11.0, 10.4])
    baselines = [ln for ln in ax.lines if ln.get_linestyle() in ("--", ":")]
    assert sorted(round(ln.get_xdata()[0], 3) for ln in baselines) == [12.1, 12.4]
    assert "10 runs × 1000 epochs" in ax.get_title()
    with pytest.raises(ValueError, match="no rows"):
        plot_table({"name": "two", "rows": {}})


def test_two_table_reports_each_scenario(tmp_path):
    import dataclasses

    import numpy as np
    import torch

    from wormlab.rom._experiments import _slug, model_dir
    from wormlab.rom._train import SplitConfig, split_indices

    small = rom.smoke_dataset().resample(5)
    # scenario tags as the two-scenario generator writes them (synthetic_000_s0_<recipe>)
    names = [f"synthetic_{i:03d}_s{i % 2}_x" for i in range(len(small))]
    data = dataclasses.replace(small, names=names)
    rom.save_npz(data, tmp_path / "d.npz")
    out = tmp_path / "two.json"
    md = run_experiment("two", tmp_path / "d.npz", out, runs=2, epochs=1, show_progress=False)
    two = json.loads(out.read_text())
    test = split_indices(data, SplitConfig(seed=0))["test"]
    expect_n = {t: sum(f"_{t}_" in names[i] for i in test) for t in ("s0", "s1")}
    for label, row in two["rows"].items():
        ps = row["per_scenario_test_rmse"]
        assert {t: p["n_sequences"] for t, p in ps.items()} == {
            t: n for t, n in expect_n.items() if n}
        # recomputed from the saved checkpoints, sequence set by sequence set
        for tag, p in ps.items():
            idx = [i for i in test if f"_{tag}_" in names[i]]
            y = torch.as_tensor(data.outputs[:, idx], dtype=torch.float32)
            vals = [float((rom.load_model(model_dir(out) / f"{_slug(label)}_run{r}.safetensors")
                           .predict(data.inputs[:, idx]) - y).pow(2).mean().sqrt())
                    for r in range(2)]
            np.testing.assert_allclose([p["mean"], p["sd"]], [np.mean(vals), np.std(vals, ddof=1)],
                                       rtol=1e-5)
    tr = data.outputs[:, split_indices(data, SplitConfig(seed=0))["train"]]
    for tag in expect_n:
        idx = [i for i in test if f"_{tag}_" in names[i]]
        want = np.sqrt(((data.outputs[:, idx] - tr.mean(axis=(0, 1))) ** 2).mean())
        got = two["baselines"]["constant_mean"]["per_scenario_test_rmse"][tag]
        np.testing.assert_allclose(got, want, rtol=1e-5)
    assert "Test RMSE per scenario" in md and "s1 = nictation" in md
    assert "| *mean training trace* | " in md.split("Test RMSE per scenario")[1]


def test_base_split_keeps_the_held_out_sets_of_the_smaller_table(tmp_path):
    """More data, same held-out sequences: with base_split=N the validation and test sets are
    those of the first N sequences' own table split, and the later sequences only train."""
    import numpy as np
    import pytest

    from wormlab.rom._experiments import table_data

    full = rom.smoke_dataset().resample(10)  # 12 sequences, names in generation order
    shuffled = full.subset([5, 0, 11, 3, 8, 1, 10, 2, 7, 4, 9, 6])  # load order must not matter
    small, s_small = table_data(full, first=8)
    big, s_big = table_data(shuffled, first=12, base_split=8)
    assert small.names == full.names[:8] and big.names == full.names
    for k in ("val", "test"):
        assert [big.names[i] for i in s_big[k]] == [small.names[i] for i in s_small[k]]
    assert sorted(big.names[i] for i in s_big["train"]) == sorted(
        [small.names[i] for i in s_small["train"]] + full.names[8:])
    assert not set(s_big["train"]) & (set(s_big["val"]) | set(s_big["test"]))
    np.testing.assert_array_equal(big.outputs[:, s_big["test"]],
                                  small.outputs[:, s_small["test"]])
    with pytest.raises(ValueError, match="base_split=13"):
        table_data(full, base_split=13)
    with pytest.raises(ValueError, match="first=20"):
        table_data(full, first=20)
    # the table records the setting and its split; other settings do not reuse its rows
    rom.save_npz(full, tmp_path / "d.npz")
    kw = dict(runs=1, epochs=1, show_progress=False)
    run_experiment("long", tmp_path / "d.npz", tmp_path / "long.json", base_split=8, **kw)
    t = json.loads((tmp_path / "long.json").read_text())
    assert t["base_split"] == 8 and t["split_sizes"] == {"train": 8, "val": 2, "test": 2}
    assert t["rows"]["GRU-8"]["best_epochs"] == [0]
    run_experiment("arch", tmp_path / "d.npz", tmp_path / "arch.json", rows=["GRU-8"], **kw)
    a = json.loads((tmp_path / "arch.json").read_text())
    assert "reused_from" not in a["rows"]["GRU-8"] and a["split_sizes"]["train"] == 6
