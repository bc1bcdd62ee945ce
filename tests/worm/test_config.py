"""The config-driven whole-worm run: YAML validation, parameter files, the written outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wormlab import worm
from wormlab.body._wcon import read_wcon
from wormlab.worm import cli

SHIPPED = Path(worm.__file__).parent / "configs" / "crawl_forward.yml"


def _write(tmp_path, text, name="c.yml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_shipped_config_parses():
    cfg = worm.load_run_config(SHIPPED)
    assert cfg.direction == "forward" and cfg.body == "physics"
    assert cfg.surrogate_fallback_threshold == 0.15
    assert cfg.sensory_model == "generic" and cfg.max_epochs == 30


@pytest.mark.parametrize("text, match", [
    ("worm:\n  speed: 3\n", r"unknown key\(s\) \['speed'\] in 'worm'; valid: \['direction'"),
    ("ml:\n  auto_fit:\n    epochs: 3\n", r"unknown key.*'epochs'.*ml.auto_fit.*max_epochs"),
    ("bogus: 1\n", r"unknown key.*bogus.*top level"),
    ("worm:\n  direction: sideways\n", r"worm.direction='sideways'; valid: \['forward'"),
    ("ml:\n  sensory_model: magic\n", r"sensory_model='magic'; valid: \['generic', 'learned'\]"),
    ("ml:\n  differentiable_backend: jax\n", r"differentiable_backend='jax'"),
    ("worm:\n  duration_s: -1\n", r"duration_s=-1.0 outside"),
    ("ml:\n  auto_fit:\n    parameter_bounds: {drive_nA: [0, 5]}\n",
     r"parameter_bounds.drive_nA=\[0.0, 5.0\] nA must lie inside \[0.0, 0.02\]"),
    ("ml:\n  auto_fit:\n    parameter_bounds: {speed: [0, 1]}\n", r"unknown parameter 'speed'"),
    ("ml:\n  auto_fit:\n    target_metrics: [joy]\n", r"target_metrics\[\]='joy'"),
    ("worm: [1, 2]\n", r"'worm' must be a mapping"),
    ("worm:\n  direction: [\n", r"not a readable YAML"),
])
def test_bad_config_names_the_problem(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        worm.load_run_config(_write(tmp_path, text))


def test_missing_config():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        worm.load_run_config("/nonexistent/run.yml")


def test_params_file_round_trip_and_errors(tmp_path):
    p = worm.write_crawl_params(tmp_path / "p.json", {"drive_nA": 0.004, "tau_act_ms": 250.0},
                                loss=1.5)
    assert worm.read_crawl_params(p) == {"drive_nA": 0.004, "tau_act_ms": 250.0}
    assert json.loads(p.read_text())["units"]["drive_nA"] == "nA"
    bad = _write(tmp_path, json.dumps({"drive_nA": 1, "flux": 2}), "b.json")
    with pytest.raises(ValueError, match=r"unknown crawl parameter\(s\) \['flux'\]"):
        worm.read_crawl_params(bad)
    with pytest.raises(ValueError, match="must be a number"):
        worm.read_crawl_params(_write(tmp_path, '{"drive_nA": "x"}', "c.json"))
    with pytest.raises(ValueError, match="not a JSON"):
        worm.read_crawl_params(_write(tmp_path, "{", "d.json"))


def test_not_available_parts_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    for body, sens, what in (("surrogate", "generic", "surrogate is not available"),
                             ("physics", "learned", "learned runs one modality at a time")):
        c = _write(tmp_path, f"worm:\n  body: {body}\nml:\n  sensory_model: {sens}\n"
                   f"out: {out}\n")
        assert cli.main(["run", str(c), "--quiet"]) == 2
        assert what in capsys.readouterr().err
    assert not out.exists()


def test_out_of_bounds_params_file_fails_before_writing(tmp_path, capsys):
    pf = worm.write_crawl_params(tmp_path / "p.json", {"drive_nA": 0.004})
    doc = json.loads(pf.read_text())
    doc["params"]["drive_nA"] = 0.5
    pf.write_text(json.dumps(doc))
    out = tmp_path / "out"
    c = _write(tmp_path, f"worm:\n  params: {pf}\n  duration_s: 0.4\nout: {out}\n")
    assert cli.main(["run", str(c), "--quiet"]) == 2
    assert "drive_nA=[0.5] nA outside its bounds" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_run_writes_wcon_traces_metrics(tmp_path):
    out = tmp_path / "run"
    c = _write(tmp_path, f"worm:\n  duration_s: 0.4\n  direction: backward\nout: {out}\n")
    assert cli.main(["run", str(c), "--quiet"]) == 0
    w = read_wcon(out / "run.wcon")
    (rid, rec), = w.items()
    assert rid == "wormlab-crawl-backward"
    tr = np.load(out / "traces.npz")
    T = len(tr["t_s"])
    assert T == 11 and rec["points_um"].shape[0] == T
    assert tr["activation"].shape == (T, 1, 95) and tr["v_mV"].shape[:2] == (T, 1)
    assert np.all(np.isfinite(tr["v_mV"])) and -100 < tr["v_mV"].min() < tr["v_mV"].max() < 60
    m = json.loads((out / "metrics.json").read_text())
    assert m["direction"] == "backward" and set(m["metrics"]) >= {"speed_um_s", "frequency_hz"}
    assert not list(tmp_path.glob(".run.*"))


@pytest.mark.slow
def test_fit_cli_runs_resumes_and_writes_params(tmp_path, capsys):
    start = worm.write_crawl_params(tmp_path / "start.json", {"drive_nA": 0.004})
    out = tmp_path / "fit"
    c = _write(tmp_path, f"worm:\n  params: {start}\n  duration_s: 0.4\nml:\n  auto_fit:\n"
               "    max_epochs: 1\n    learning_rate: 0.1\n"
               "    parameter_bounds: {drive_nA: [0.002, 0.006]}\n"
               f"out: {out}\n")
    assert cli.main(["fit", str(c), "--quiet"]) == 0
    p = worm.read_crawl_params(out / "crawl_params.json")
    assert set(p) == {"drive_nA"} and 0.002 <= p["drive_nA"] <= 0.006
    state = json.loads((out / "fit" / "cma_state.json").read_text())
    assert len(state["fitness"]) == 1 and len(state["fitness"][0]) == 10
    assert state["config"]["start"] == {"drive_nA": 0.004}
    # a second call with the same config finds the run finished and evaluates nothing more
    assert cli.main(["fit", str(c), "--quiet"]) == 0
    assert len(json.loads((out / "fit" / "cma_state.json").read_text())["fitness"]) == 1
    assert worm.read_crawl_params(out / "crawl_params.json") == p


def test_bend_seeds_and_processes_are_checked(tmp_path):
    c = _write(tmp_path, "worm:\n  bend_seeds: [0, 1, 2]\n  processes: 2\n")
    cfg = worm.load_run_config(c)
    assert cfg.bend_seeds == (0, 1, 2) and cfg.processes == 2
    for bad, msg in (("bend_seeds: [0, -1]", "bend_seeds must be a list of seeds"),
                     ("bend_seeds: 3", "bend_seeds must be a list of seeds"),
                     ("processes: 0", r"worm.processes=0 outside \[1, 64\]")):
        with pytest.raises(ValueError, match=msg):
            worm.load_run_config(_write(tmp_path, f"worm:\n  {bad}\n"))


def test_learned_sensing_and_the_intestine_run_in_the_same_loop(tmp_path):
    out = tmp_path / "out"
    c = _write(tmp_path, "worm:\n  duration_s: 0.4\n  intestine: true\nml:\n"
               f"  sensory_model: learned\n  sensory_modalities: [nacl]\nout: {out}\n")
    assert cli.main(["run", str(c), "--quiet"]) == 0
    tr = np.load(out / "traces.npz")
    T = len(tr["t_s"])
    assert T == 11 and tr["stimulus"].shape == (T, 1)
    # the arena's NaCl at the head (nacl_local: 50 mM at the centre, where the worm starts)
    assert 40.0 < float(tr["stimulus"][0, 0]) < 60.0
    assert tr["sensory_current_nA"].shape[:2] == (T, 1) and list(tr["sensory_neurons"]) == [
        "ASEL", "ASER"]
    ca = tr["intestine_ca_uM"]
    assert ca.shape == (T, 20) and np.all(np.isfinite(ca)) and np.all(ca > 0)
    assert list(tr["intestine_cells"])[0] == "INT1DL"
    text = (out / "metrics.json").read_text()
    m = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    assert m["sensory_model"] == "learned" and m["intestine"] is True
    # 0.4 s from a straight start: no wave yet, so no frequency -> null, not NaN
    assert m["metrics"]["frequency_hz"] is None


def test_sensing_and_organ_keys_are_checked(tmp_path):
    for text, err, msg in (
            ("ml:\n  sensory_modalities: [smell]\n", ValueError,
             r"sensory_modalities\[\]='smell'; valid: \['temperature'"),
            ("worm:\n  intestine: 1\n", ValueError, "worm.intestine must be true or false"),
            ("worm:\n  arena: nowhere.yml\n", FileNotFoundError, "worm.arena nowhere.yml")):
        with pytest.raises(err, match=msg):
            worm.load_run_config(_write(tmp_path, text))


def test_arena_without_learned_sensing_and_two_modalities_are_refused(tmp_path):
    arena = tmp_path / "a.yml"
    arena.write_text("x")
    out = tmp_path / "o"
    c = _write(tmp_path, f"worm:\n  arena: {arena}\nout: {out}\n")
    with pytest.raises(ValueError, match="worm.arena is for ml.sensory_model: learned"):
        worm.run_from_config(worm.load_run_config(c))
    c = _write(tmp_path, "ml:\n  sensory_model: learned\n  sensory_modalities: [nacl, odour]\n"
               f"out: {out}\n")
    with pytest.raises(NotImplementedError, match="one modality at a time"):
        worm.run_from_config(worm.load_run_config(c))
    assert not out.exists()


@pytest.mark.slow
def test_sweep_cli_ranks_every_combination_from_every_bend(tmp_path, capsys):
    start = worm.write_crawl_params(tmp_path / "start.json", {"drive_nA": 0.004})
    out = tmp_path / "sweep.json"
    assert cli.main(["sweep", str(start), "--set", "adapt_b_nS=0,0.5", "--bend-seeds", "1,2",
                     "--duration", "3.0", "--window", "1.0", "--processes", "2",
                     "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    rows = doc["rows"]
    assert sorted(r["values"]["adapt_b_nS"] for r in rows) == [0.0, 0.5]
    assert [r["loss"] for r in rows] == sorted(r["loss"] for r in rows)
    for r in rows:
        assert r["loss"] == pytest.approx(np.mean(r["loss_per_seed"]))
        assert np.array(r["forward"]["window_speed_um_s"]).shape == (2, 2)
    # a row is the same run as a single one from that bend seed
    r = rows[0]
    one = worm.run_loop({"drive_nA": 0.004, **r["values"]},
                        worm.LoopConfig(duration_s=3.0, seed=2, direction="backward"))
    assert float(worm.crawl_metrics(one)["speed_um_s"][0]) == pytest.approx(
        r["backward"]["speed_um_s"][1], rel=1e-6, abs=1e-9)
    capsys.readouterr()
    assert cli.main(["sweep", str(start), "--set", "nope=1"]) == 2
    assert "unknown crawl parameters ['nope']" in capsys.readouterr().err
    assert cli.main(["sweep", str(start), "--set", "adapt_b_nS=99"]) == 2
    assert "outside its bounds" in capsys.readouterr().err
