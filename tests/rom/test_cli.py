"""`wormlab rom train` on a folder in the published text format."""

import json

from wormlab import rom
from wormlab.cli import main as wormlab_main


def test_cli_train_on_text_folder(tmp_path, capsys):
    data = rom.smoke_dataset().resample(4)
    rom.write_text_dir(data, tmp_path / "d")
    rc = wormlab_main(["rom", "train", "--data", str(tmp_path / "d"), "--model", "gru",
                       "--hidden", "3", "--runs", "2", "--epochs", "3", "--split-seed", "1",
                       "--quiet", "--save", str(tmp_path / "ck"), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for k in ("train_rmse", "val_rmse", "test_rmse", "test_rmse_sd"):
        assert isinstance(out[k], float) and out[k] >= 0
    assert out["model"] == "GRU-3" and out["runs"] == 2 and out["unit"] == "mV"
    ck = sorted((tmp_path / "ck").glob("*.safetensors"))
    assert len(ck) == 2 and rom.load_model(ck[0]).meta["output_names"] == data.output_names


def test_cli_explicit_files_without_sidecar(tmp_path, capsys):
    data = rom.smoke_dataset().resample(4).subset(range(5))
    rom.write_text_dir(data, tmp_path)
    (tmp_path / "columns.json").unlink()
    n = data.names
    rc = wormlab_main(["rom", "train", "--data", str(tmp_path), "--outputs", "4",
                       "--train-files", f"{n[0]}.dat,{n[1]}.dat", "--val-files", n[2],
                       "--test-files", f"{n[3]},{n[4]}", "--epochs", "2", "--quiet", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"]["test"] == [n[3], n[4]]


def test_cli_errors_are_clear(tmp_path, capsys):
    (tmp_path / "a.dat").write_text("0 0 1 2\n1 0.0005 1 oops\n")
    rc = wormlab_main(["rom", "train", "--data", str(tmp_path), "--outputs", "1", "--json"])
    assert rc == 2
    assert "a.dat:2: non-numeric value 'oops'" in capsys.readouterr().err
    rc = wormlab_main(["rom", "train", "--data", str(tmp_path / "missing"), "--json"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_cli_rejects_empty_models(tmp_path, capsys):
    rom.write_text_dir(rom.smoke_dataset().subset(range(4)), tmp_path)
    base = ["rom", "train", "--data", str(tmp_path), "--epochs", "1", "--quiet", "--json"]
    assert wormlab_main(base + ["--hidden", "0"]) == 2
    assert "hidden units must be >= 1, got 0" in capsys.readouterr().err
    assert wormlab_main(base + ["--drop-inputs", "PLML,PLMR,AVBL,AVBR"]) == 2
    assert "no input column left" in capsys.readouterr().err


def test_cli_datasize_writes_rows(tmp_path, capsys):
    rom.save_npz(rom.smoke_dataset().resample(5), tmp_path / "d.npz")
    args = ["rom", "datasize", "--data", str(tmp_path / "d.npz"), "--n-test", "3", "--n-val",
            "2", "--runs", "1", "--epochs", "1"]
    assert wormlab_main(args + ["--ntrain", "2,7", "--out", str(tmp_path / "ds.json")]) == 0
    rows = json.loads((tmp_path / "ds.json").read_text())
    assert [r["ntrain"] for r in rows] == [2, 7] and rows == json.loads(capsys.readouterr().out)
    assert wormlab_main(args + ["--ntrain", "8"]) == 2  # 12 - 3 - 2 = 7 left for training
    assert "ntrain 8 outside 1..7" in capsys.readouterr().err
