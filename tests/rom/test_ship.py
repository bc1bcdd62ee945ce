"""Shipping an experiment-table ROM through the model registry (wormlab.rom._ship)."""

import hashlib
import json
from dataclasses import asdict

import numpy as np
import pytest

from wormlab import models
from wormlab.rom import GenerateConfig, SequenceSet, run_experiment, stimuli, write_text_dir
from wormlab.rom._ship import HELDOUT_FILE, SHIPPED_KIND, ship_row
from wormlab.rom.cli import main as rom_main


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A generated-format data folder (stimuli of the library, a fake smooth response instead
    of NEURON), a 2-run GRU-8 table row on it, and that row shipped into a temporary registry."""
    monkeypatch.setenv("WORMLAB_MODELS", str(tmp_path / "models"))
    cfg = GenerateConfig(backend="neuron", n_sequences=12, duration_ms=60.0, sample_dt_ms=(1.0,))
    names, t_ms, cur = stimuli(cfg)
    resp = np.cumsum(cur, axis=0) * 40.0  # nA -> "mV", smooth and input-dependent
    out = -60.0 + resp[:, :, [0, 1, 2, 3]] + resp[:, :, [1, 2, 3, 0]] * 0.5
    folder = tmp_path / "data"
    write_text_dir(SequenceSet(cur, out, 1e-3, list(cfg.inputs), list(cfg.outputs), names), folder)
    side = folder / "columns.json"
    meta = json.loads(side.read_text())
    side.write_text(json.dumps(dict(meta, generator=asdict(cfg))))
    table = tmp_path / "t" / "arch.json"
    run_experiment("arch", folder, table, rows=["GRU-8"], runs=2, epochs=3, show_progress=False)
    code = rom_main(["ship", "--table", str(table), "--row", "GRU-8", "--name", "rom_test"])
    assert code == 0
    return tmp_path, table


def test_ship_round_trip_and_verify(shipped):
    tmp_path, table = shipped
    m = models.manifest("rom_test")
    assert m["kind"] == SHIPPED_KIND and m["config"]["n_hidden"] == 8
    assert m["command"].startswith("wormlab rom ship --table")
    t = json.loads(table.read_text())
    assert m["data"]["test_ids"] and len(m["data"]["test_ids"]) == t["split_sizes"]["test"]
    # the shipped run is the best-validation one, and the file is a rom checkpoint
    from wormlab.rom import load_model
    from wormlab.rom._experiments import _checkpoints, table_data
    from wormlab.rom._format import load
    from wormlab.rom._train import rmse

    data, split = table_data(load(t["data"]))
    import torch

    def score(mdl, k):
        idx = split[k]
        return rmse(mdl, torch.tensor(data.inputs[:, idx], dtype=torch.float32),
                    torch.tensor(data.outputs[:, idx], dtype=torch.float32))[0]

    vals = [score(load_model(p), "val") for p in _checkpoints(table, t, "GRU-8")]
    assert m["data"]["run"] == int(np.argmin(vals))
    shipped_model = load_model(models.model_path("rom_test"))
    assert abs(score(shipped_model, "test") - m["metrics"]["test_rmse_float64"]) < 1e-9
    assert abs(m["metrics"]["test_rmse"] - m["metrics"]["test_rmse_float64"]) < 0.05
    r = models.verify("rom_test")
    assert r["ok"], r
    assert r["metrics"]["test_rmse"]["recomputed"] == pytest.approx(m["metrics"]["test_rmse"],
                                                                     abs=1e-6)


def _rewrite_heldout(tmp_path, shift_mv=0.0, flip=False):
    """Change the held-out outputs; keep the manifest's hash in step unless ``flip``."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "models" / "rom_test"
    p = folder / HELDOUT_FILE
    if flip:
        raw = bytearray(p.read_bytes())
        raw[-3] ^= 0xFF
        p.write_bytes(bytes(raw))
        return
    from safetensors import safe_open

    with safe_open(str(p), framework="pt") as f:
        meta = f.metadata()
    t = load_file(str(p))
    save_file({"outputs": t["outputs"] + shift_mv}, str(p), metadata=meta)
    mf = folder / "manifest.json"
    m = json.loads(mf.read_text())
    m["data"]["heldout_file"]["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    mf.write_text(json.dumps(m))


def test_verify_recomputes_from_the_held_out_data(shipped):
    tmp_path, _ = shipped
    _rewrite_heldout(tmp_path, shift_mv=1.0)  # hash kept valid: only the recompute can notice
    r = models.verify("rom_test")
    assert not r["ok"] and not r["metrics"]["test_rmse"]["ok"]


def test_verify_refuses_a_corrupt_held_out_file(shipped):
    tmp_path, _ = shipped
    _rewrite_heldout(tmp_path, flip=True)
    r = models.verify("rom_test")
    assert not r["ok"] and "sha256" in r["error"] and HELDOUT_FILE in r["error"]


def test_verify_names_a_changed_stimulus(shipped):
    tmp_path, _ = shipped
    mf = tmp_path / "models" / "rom_test" / "manifest.json"
    m = json.loads(mf.read_text())
    m["data"]["generator"]["amplitude_nA"] *= 1.5  # the library now draws other currents
    mf.write_text(json.dumps(m))
    r = models.verify("rom_test")
    assert not r["ok"] and "stimulus" in r["error"]
    assert any(f"stimulus of {i} differs" in r["error"] for i in m["data"]["test_ids"])


def test_ship_needs_a_generator_and_a_known_row(shipped, capsys):
    tmp_path, table = shipped
    code = rom_main(["ship", "--table", str(table), "--row", "LSTM-8", "--name", "x"])
    assert code == 2 and "no row 'LSTM-8'" in capsys.readouterr().err
    side = tmp_path / "data" / "columns.json"
    meta = json.loads(side.read_text())
    del meta["generator"]
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="columns.json: no readable 'generator'"):
        ship_row(table, "GRU-8", "x", command="test")
