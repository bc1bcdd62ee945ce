"""The `wormlab` command line: validation before any kernel, failures, report safety, bench."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from wormlab.cli import BENCHMARKS, COMMANDS


def _cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "wormlab.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout)


@pytest.fixture()
def toy_project(tmp_path):
    """A project root with one notebook that fails when asked to."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('smoke = False\nseed = 0\nfail = False\nlabel = "good"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        'if fail:\n    raise ValueError("deliberate failure " + label)\nprint("report:", label)')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "toy.ipynb")
    return tmp_path


def test_list_shows_parameters():
    res = _cli("list")
    assert res.returncode == 0, res.stderr
    assert "00_connectome" in res.stdout and "dataset: str" in res.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "datset", "cook2019"], "unknown parameter 'datset'; valid parameters: smoke, seed"),
    (["-p", "dataset", "witvliet_9"], "is not one of: cook2019"),
    (["-p", "top_k", "many"], "'top_k' expects int"),
])
def test_bad_parameters_fail_before_any_kernel(args, message, tmp_path):
    res = _cli("run", "00_connectome", *args, env={"WORMLAB_REPORTS": str(tmp_path)})
    assert res.returncode == 2
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir()), "nothing may be written before validation passes"


def test_unknown_notebook_lists_choices():
    res = _cli("run", "01_nope")
    assert res.returncode == 2 and "available: 00_connectome" in res.stderr


@pytest.mark.slow
def test_failing_notebook_keeps_last_good_report(toy_project):
    env = {"WORMLAB_ROOT": str(toy_project)}
    ok = _cli("run", "toy", "-p", "label", "first-good-run", env=env)
    assert ok.returncode == 0, ok.stderr
    latest = toy_project / "reports" / "toy" / "latest.html"
    good = latest.read_text()
    assert "first-good-run" in good
    bad = _cli("run", "toy", "-p", "fail", "true", "-p", "label", "bad-run", env=env)
    assert bad.returncode == 1
    assert "ValueError" in bad.stderr and "deliberate failure bad-run" in bad.stderr
    assert latest.read_text() == good
    failed = list((toy_project / "reports" / "toy").glob("*.failed.ipynb"))
    assert len(failed) == 1
    assert not list((toy_project / "reports" / "toy").glob(".*partial*"))
    index = (toy_project / "reports" / "index.html").read_text()
    assert 'href="toy/latest.html"' in index


def test_bench_registry_and_errors():
    assert {"circuit", "sae", "rom", "surrogate"} <= set(BENCHMARKS)
    assert {"rom", "behaviour", "posture"} <= set(COMMANDS)
    res = _cli("bench", "nope")
    assert res.returncode == 2 and "available: connectome" in res.stderr
    res = _cli("bench", "connectome", "--json", "--quick")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["cect_load_s"] > 0 and out["wormlab_load_s"] > 0  # anchor measured in the run


def test_run_needs_exactly_one_target():
    assert _cli("run").returncode == 2
    assert _cli("run", "00_connectome", "--all").returncode == 2


def test_smoke_requires_declared_smoke(toy_project, tmp_path):
    nb = nbformat.read(toy_project / "notebooks" / "toy.ipynb", as_version=4)
    nb.cells[0].source = "seed = 0"
    nbformat.write(nb, toy_project / "notebooks" / "toy.ipynb")
    from wormlab.notebooks import NotebookError

    os.environ["WORMLAB_ROOT"] = str(toy_project)
    try:
        from wormlab.notebooks import run_notebook

        with pytest.raises(NotebookError, match="no 'smoke' parameter"):
            run_notebook("toy", smoke=True, out_dir=Path(tmp_path) / "r")
    finally:
        del os.environ["WORMLAB_ROOT"]


@pytest.mark.parametrize(("nb", "args", "message"), [
    ("00_connectome", ["-p", "smoke", "maybe"], "'smoke' expects a bool, got 'maybe'"),
    ("00_connectome", ["-p", "seed", "1.5"], "'seed' expects int, got '1.5'"),
    ("01_circuit", ["-p", "duration_ms", "nan"], "'duration_ms' expects a finite float"),
    ("01_circuit", ["-p", "dt_ms", "inf"], "'dt_ms' expects a finite float"),
])
def test_bad_bool_int_float_parameters_fail_before_any_kernel(nb, args, message, tmp_path):
    res = _cli("run", nb, *args, env={"WORMLAB_REPORTS": str(tmp_path)})
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir()), "nothing may be written before validation passes"


@pytest.mark.parametrize(("args", "message"), [
    (["--duration-ms", "-5"], "--duration-ms must be a finite number > 0, got -5.0"),
    (["--duration-ms", "0"], "--duration-ms must be a finite number > 0, got 0.0"),
    (["--dt-ms", "0"], "--dt-ms must be a finite number > 0"),
    (["--dt-ms", "nan"], "--dt-ms must be a finite number > 0, got nan"),
    (["--duration-ms", "inf"], "--duration-ms must be a finite number > 0, got inf"),
    (["--duration-ms", "1", "--dt-ms", "0.3"], "is not a multiple of --dt-ms 0.3"),
    (["--solver", "rk5_fused"], "unknown --solver 'rk5_fused' (did you mean rk4_fused?)"),
    (["--record"], "--record needs at least one cell name"),
    (["--nml", "absent.net.nml"], "--nml absent.net.nml: no such file"),
])
def test_circuit_cli_bad_arguments(args, message, tmp_path, capsys):
    from wormlab.circuit.cli import main

    out = tmp_path / "v.csv"
    assert main(["simulate", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("wormlab circuit: error:"), err
    assert list(tmp_path.iterdir()) == []


def test_circuit_cli_reference_bad_duration(capsys):
    from wormlab.circuit.cli import main

    assert main(["reference", "--duration-ms", "-1"]) == 2
    assert "--duration-ms must be a finite number > 0" in capsys.readouterr().err


def test_circuit_cli_unknown_record_names_suggest(tmp_path, capsys):
    """Needs the c302 network (built before simulating); nothing is written."""
    from wormlab.circuit import reference
    from wormlab.circuit.cli import main

    if reference.neuron_missing() is not None and not reference.in_ci():
        pytest.skip("c302 stack unavailable")
    out = tmp_path / "v.csv"
    rc = main(["simulate", "--duration-ms", "1", "--record", "AVAL", "AVXL", "FOO",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown cell names in --record: 'AVXL' (did you mean AVL" in err, err
    assert "'FOO'" in err and "AVAL" not in err.split("--record:")[1].split("[")[0]
    assert list(tmp_path.iterdir()) == []
