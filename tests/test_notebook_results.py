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


def test_two_concurrent_runs_of_one_notebook_leave_a_consistent_report(tmp_path):
    """Issue 21: the same notebook run by two processes at once. Both finish, each keeps its
    own run files, and the latest.* copies all come from one and the same run (they are
    replaced together under wormlab.runs.file_lock)."""
    import os
    import subprocess
    import sys

    root = _tiny_root(tmp_path, (
        "from wormlab.runs import record_result\n"
        "import os, time\n"
        "record_result('pid', os.getpid())\n"
        "time.sleep(0.5)\n"))
    env = {**os.environ, "WORMLAB_ROOT": str(root)}
    env.pop(RESULTS_ENV, None)
    code = ("from pathlib import Path; from wormlab.notebooks import run_notebook; "
            f"r = run_notebook('99_tiny', smoke=True, out_dir=Path({str(tmp_path / 'reports')!r}));"
            " print('RUN', r.run_id, r.ok)")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    run_ids = [line.split()[1] for o in outs for line in o[0].splitlines()
               if line.startswith("RUN")]
    assert len(set(run_ids)) == 2
    folder = tmp_path / "reports" / "99_tiny"
    for rid in run_ids:  # each run's own files are complete
        s = json.loads((folder / f"{rid}.results.json").read_text())
        assert s["run_id"] == rid and "pid" in s["results"]
    latest = json.loads((folder / "latest.results.json").read_text())
    assert latest["run_id"] in run_ids
    nb = nbformat.read(folder / "latest.ipynb", as_version=4)
    own = nbformat.read(folder / f"{latest['run_id']}.ipynb", as_version=4)
    assert nb == own  # latest.ipynb is the same run as latest.results.json
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*.tmp"))


def test_latest_copies_wait_for_the_report_lock(tmp_path):
    """The latest.* copies are replaced only under the folder's lock: while another process
    holds it, a finished run's own files exist but latest.* do not appear (without the lock in
    run_notebook they would, and a concurrent run could interleave its copies)."""
    import os
    import subprocess
    import sys
    import time

    from wormlab.notebooks import latest_lock
    from wormlab.runs import file_lock

    root = _tiny_root(tmp_path, "x = 1\n")
    env = {**os.environ, "WORMLAB_ROOT": str(root)}
    env.pop(RESULTS_ENV, None)
    folder = tmp_path / "reports" / "99_tiny"
    code = ("from pathlib import Path; from wormlab.notebooks import run_notebook; "
            f"run_notebook('99_tiny', smoke=True, out_dir=Path({str(tmp_path / 'reports')!r}))")
    with file_lock(latest_lock(folder)):
        p = subprocess.Popen([sys.executable, "-c", code], env=env)
        deadline = time.time() + 300
        while not list(folder.glob("*-*.results.json")) and time.time() < deadline:
            time.sleep(0.2)
        assert list(folder.glob("*-*.results.json")), "the run did not finish its own files"
        time.sleep(2.0)
        assert not (folder / "latest.results.json").exists()
        assert p.poll() is None  # waiting for the lock
    assert p.wait(timeout=120) == 0
    assert (folder / "latest.results.json").exists() and (folder / "latest.html").exists()
