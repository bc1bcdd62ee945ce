"""The report regenerates the doc's tables from result files (synthetic rows, no training)."""

import json

import pytest

from wormlab.behaviour._experiments import (
    paired_table,
    report_markdown,
    summary_table,
    time_table,
)


def _row(exp, split, model, acc, task="fwd_rev", seconds=1.0, majority=0.5):
    return {"experiment": exp, "split": split, "model": model, "task": task, "seed": 0,
            "accuracy": acc, "balanced_accuracy": acc - 0.1, "majority_accuracy": majority,
            "per_worm": {}, "seconds": seconds}


@pytest.fixture
def files(tmp_path):
    a = [_row("synthetic_a", f"s{i}", m, 0.8 + 0.05 * i, seconds=2.0 + 2 * i,
              majority=0.4 + 0.2 * i)
         for i in range(2) for m in ("mlp", "gnn")]
    b = [_row("synthetic_b", "s0", "mlp", 0.9), _row("synthetic_a", "s0", "mlp", 0.1),  # dup
         _row("synthetic_a", "s0", "mlp", 0.7, task="four_state", seconds=9.0)]
    fc = [{"experiment": "forecast_lwo", "split": f"s{i}", "model": "mlp", "task": "forecast",
           "seed": 0, "mse": [0.1 * i + 0.1] * 16, "persistence": [0.3] * 16, "seconds": 5.0}
          for i in range(2)]
    paths = []
    for name, rows in (("a", a), ("b", b), ("fc", fc)):
        p = tmp_path / f"synthetic_{name}.json"
        p.write_text(json.dumps(rows))
        paths.append(str(p))
    return paths


def test_report_merges_files_marks_missing_cells_and_times(files):
    md = report_markdown(files[:2], files[2])
    acc = md.split("**fwd_rev: accuracy")[1].split("**fwd_rev: balanced")[0]
    # mean ± sd over the 2 splits; the duplicate row of the second file is ignored
    assert "| mlp | 82.5 ± 2.5 (n=2) | 90.0 ± 0.0 (n=1) | 93.9 |" in acc
    assert "| gnn | 82.5 ± 2.5 (n=2) | nan | 97.7 |" in acc  # not run: shown as nan
    # paired with the mlp on the same split: gnn 0.8 vs 0.8 and 0.85 vs 0.85 -> +0.0, 0 wins
    assert "| gnn | +0.0 (0/2) |" in md.split("minus the mlp")[1]
    # majority baseline: one value per split, not per (split, model) row
    assert "| synthetic_a | 50 | 10 |" in md  # sd per (split, model) row would be 11.5
    assert "**four_state: accuracy (%)" in md and "70.0 ± 0.0 (n=1)" in md
    fc = md.split("**forecasting")[1].split("**wall")[0]
    assert "| mlp | 0.15 | 0.15 | 0.15 | 0.15 | 0.15 |" in fc, fc  # mean of 0.1 and 0.2
    t = time_table([json.loads(open(f).read()) for f in files[:1]][0])
    assert t.loc["gnn", "synthetic_a"] == 3  # median seconds over the 2 splits (2 s, 4 s)
    times = md.split("**wall seconds per split")[1]
    assert "synthetic_a (four_state)" in times and "forecast_lwo" in times


def test_report_names_a_missing_or_bad_file(files, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.json"):
        report_markdown([files[0], str(tmp_path / "nothere.json")])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        report_markdown([str(bad)])
    from wormlab.behaviour.cli import main

    assert main(["report", "--results", str(tmp_path / "nothere.json")]) == 2


def test_summary_table_is_empty_without_rows():
    assert summary_table([]).empty and time_table([]).empty


def test_paired_table_counts_wins_on_the_same_split():
    rows = [_row("synthetic", "s0", "mlp", 0.8), _row("synthetic", "s0", "gnn", 0.9),
            _row("synthetic", "s1", "mlp", 0.8), _row("synthetic", "s1", "gnn", 0.75),
            _row("synthetic", "s2", "gnn", 0.99)]  # no mlp on s2: not paired
    t = paired_table(rows)
    assert t.loc["gnn", "synthetic"] == "+2.5 (1/2)"
    assert paired_table([_row("synthetic", "s0", "gnn", 0.9)]).empty
