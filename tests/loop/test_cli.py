"""``wormlab loop run`` writes WCON, traces and a summary atomically; bad input exits 2."""

import json
from pathlib import Path

import numpy as np

from wormlab.body import read_wcon
from wormlab.loop import cli
from wormlab.paths import package_data

ARENA = str(package_data("loop", "arenas", "nacl_local.yml"))


def test_loop_run_writes_wcon_trials_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", ARENA, "--trials", "2", "--duration", "0.4", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["run.wcon", "summary.json", "trials.npz"]
    w = read_wcon(out / "run.wcon")
    assert sorted(w) == ["wormlab-loop-nacl-0", "wormlab-loop-nacl-1"]
    tr = np.load(out / "trials.npz")
    # WCON's centre of mass is the loop's (arena frame, um)
    np.testing.assert_allclose(w["wormlab-loop-nacl-1"]["com_um"], tr["com_um"][:, 1], atol=0.01)
    s = json.loads((out / "summary.json").read_text())
    assert s["units"] == "mM" and s["sensory_neurons"] == ["ASEL", "ASER"]
    assert tr["head_um"].shape == (11, 2, 2) and np.isfinite(tr["stimulus"]).all()
    # the stimulus is the arena's NaCl at the head: 25-75 mM on this plate
    assert 25.0 <= tr["stimulus"].min() and tr["stimulus"].max() <= 75.0


def test_loop_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    good = Path(ARENA).read_text()
    bad.write_text(good.replace("radius_mm: 5.0", "radius_mm: .nan"))
    out = tmp_path / "run"
    assert cli.main(["run", str(bad), "--out", str(out)]) == 2
    assert "radius_mm" in capsys.readouterr().err
    assert cli.main(["run", ARENA, "--trials", "0", "--out", str(out)]) == 2
    assert cli.main(["run", ARENA, "--ablate", "NOPE", "--duration", "0.2",
                     "--out", str(out)]) == 2
    assert "NOPE" in capsys.readouterr().err
    assert cli.main(["taxis", "--conditions", "gradient,sideways", "--out", str(out)]) == 2
    assert not out.exists()


def test_loop_run_with_the_shipped_pathway_and_bad_pathway_files(tmp_path, capsys):
    pw = str(package_data("loop", "data", "pathway_nacl.json"))
    spot = str(package_data("loop", "arenas", "nacl_spot.yml"))
    out = tmp_path / "run"
    assert cli.main(["run", spot, "--trials", "1", "--duration", "0.4", "--pathway", pw,
                     "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["trials"] == 1
    assert "pathway_nacl.json" in (out / "run.wcon").read_text()
    bad = tmp_path / "pw.json"
    bad.write_text(json.dumps({"modality": "odour", "pathway": {}}))
    out2 = tmp_path / "run2"
    assert cli.main(["run", spot, "--pathway", str(bad), "--out", str(out2)]) == 2
    assert "fitted for 'odour'" in capsys.readouterr().err
    assert cli.main(["taxis", "--pathway", str(tmp_path / "missing.json"),
                     "--out", str(out2)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["fit-taxis", "--popsize", "1", "--out", str(out2)]) == 2
    assert not out2.exists()
