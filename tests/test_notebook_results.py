"""record_result -> <run-id>.results.json, the thumbnail and the reports index, on a tiny
notebook executed by the real papermill runner (one kernel start, a few seconds)."""

import json

import nbformat
import numpy as np
import pytest

from wormlab.notebooks import NotebookError, read_recorded, run_notebook, write_index
from wormlab.runs import RESULTS_ENV, record_result


def _tiny_root(tmp_path, body):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell("smoke = False\nseed = 0\nscale = 2.0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "99_tiny.ipynb")
    return tmp_path


def test_run_collects_results_thumbnail_and_index(tmp_path, monkeypatch):
    root = _tiny_root(tmp_path, (
        "%matplotlib inline\n"
        "import matplotlib.pyplot as plt\n"
        "from wormlab.runs import record_result\n"
        "record_result('doubled', scale * 2, goal='> 3', unit='mV')\n"
        "record_result('mode_is_smoke', smoke)\n"
        "plt.plot([0, 1], [0, scale]); plt.show()\n"))
    monkeypatch.setenv("WORMLAB_ROOT", str(root))
    monkeypatch.delenv(RESULTS_ENV, raising=False)
    res = run_notebook("99_tiny", {"scale": "3.5"}, smoke=True, out_dir=tmp_path / "reports")
    assert res.ok, res.error
    assert res.results == {"doubled": {"value": 7.0, "goal": "> 3", "unit": "mV"},
                           "mode_is_smoke": {"value": True, "goal": None, "unit": ""}}
    summary = json.loads(res.results_json.read_text())
    assert summary["mode"] == "smoke" and summary["results"] == res.results
    assert 0 < summary["run_time_s"] < 300 and summary["parameters"]["scale"] == 3.5
    folder = tmp_path / "reports" / "99_tiny"
    assert json.loads((folder / "latest.results.json").read_text()) == summary
    thumb = folder / "latest.thumb.png"
    assert thumb.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(folder.glob(".*")), "temporary files left behind"
    assert RESULTS_ENV not in __import__("os").environ  # the runner restores the environment
    page = write_index(tmp_path / "reports").read_text()
    for text in ("smoke", "doubled", "7 mV", "goal &gt; 3", "99_tiny/latest.thumb.png"):
        assert text in page, text


def test_index_without_results_or_runs(tmp_path, monkeypatch):
    root = _tiny_root(tmp_path, "x = 1")
    monkeypatch.setenv("WORMLAB_ROOT", str(root))
    page = write_index(tmp_path / "reports").read_text()
    assert "never run" in page and "99_tiny" in page


def test_record_result_appends_lines_and_checks_values(tmp_path, monkeypatch):
    target = tmp_path / "r.jsonl"
    monkeypatch.setenv(RESULTS_ENV, str(target))
    record_result("a", np.float32(0.5), goal="< 1")
    record_result("n", np.int64(3))
    record_result("a", 0.25)  # recorded twice: the last value wins
    assert read_recorded(target) == {"a": {"value": 0.25, "goal": None, "unit": ""},
                                     "n": {"value": 3, "goal": None, "unit": ""}}
    with pytest.raises(ValueError, match="'bad' is nan"):
        record_result("bad", float("nan"))
    with pytest.raises(TypeError, match="'arr' must be a number"):
        record_result("arr", [1, 2])
    with pytest.raises(ValueError, match="non-empty"):
        record_result("", 1)
    target.write_text('{"name": "ok", "value": 1}\nnot json\n')
    with pytest.raises(NotebookError, match="line 2"):
        read_recorded(target)


def test_record_result_outside_a_run_only_returns(monkeypatch):
    monkeypatch.delenv(RESULTS_ENV, raising=False)
    assert record_result("x", 1, unit="s") == {"name": "x", "value": 1, "goal": None, "unit": "s"}
