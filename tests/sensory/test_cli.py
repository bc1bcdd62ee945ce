"""``wormlab sensory`` is registered and rejects bad input."""

import pytest

from wormlab import cli


def test_references_command_lists_every_modality(capsys):
    assert cli.main(["sensory", "references"]) == 0
    out = capsys.readouterr().out
    for m in ("temperature", "nacl", "odour", "touch", "noxious"):
        assert m in out
    assert "not pixel-digitised" in out


def test_unknown_modality(capsys):
    assert cli.main(["sensory", "train", "smell"]) == 2
    assert "smell" in capsys.readouterr().err


def test_check_reports_a_missing_transducer(tmp_path, monkeypatch, capsys):
    from wormlab.sensory import _transducer as T

    monkeypatch.setattr(T, "DATA", tmp_path)
    assert cli.main(["sensory", "check", "--modality", "touch"]) == 0
    assert "no trained transducer for 'touch'" in capsys.readouterr().out


def test_bad_subcommand():
    with pytest.raises(SystemExit):
        cli.main(["sensory", "nope"])
