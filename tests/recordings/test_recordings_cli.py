"""``wormlab recordings`` command."""

from wormlab.cli import main
from wormlab.paths import shared_data_dir


def test_cli_virtual_info_convert(tmp_path, capsys):
    out = tmp_path / "worm_synthetic.npz"
    assert main(["recordings", "virtual", str(out), "--duration-s", "200"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert main(["recordings", "info", str(out)]) == 0
    assert "189 neurons" in capsys.readouterr().out
    assert main(["recordings", "convert", str(out), str(tmp_path / "w_synthetic.mat"),
                 "--mat-version", "7.3"]) == 0
    assert main(["recordings", "info", str(tmp_path / "w_synthetic.mat")]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    # a synthetic recording may not be written under a name without 'synthetic'
    assert main(["recordings", "virtual", str(tmp_path / "worm.npz"), "--duration-s", "200"]) == 2
    assert "synthetic" in capsys.readouterr().err


def test_cli_list_and_bad_id(capsys):
    assert main(["recordings", "list"]) == 0
    listed = capsys.readouterr().out
    if shared_data_dir() is not None:
        assert "kato2015/worm0" in listed
    assert main(["recordings", "info", "nowhere/worm0"]) == 2
