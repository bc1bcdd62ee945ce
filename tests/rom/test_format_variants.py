"""Text-format folders as a researcher may hand them over: header row, CRLF + BOM, upper-case
suffixes, a README and split lists beside the ``.dat`` files."""

import numpy as np
import pytest

from wormlab import rom
from wormlab.rom import FormatError, SequenceSet


def _set(T=11, B=3, seed=0):
    rng = np.random.default_rng(seed)
    return SequenceSet(rng.normal(size=(T, B, 2)) * 0.01, rng.normal(size=(T, B, 2)) * 10 - 50,
                       5e-4, ["PLML", "AVBL"], ["DB1", "VB1"])


def _same(back, d):
    np.testing.assert_allclose(back.outputs, d.outputs, rtol=1e-8)
    np.testing.assert_allclose(back.inputs, d.inputs, rtol=1e-8)
    assert back.names == d.names and back.dt_s == pytest.approx(5e-4)


def test_header_row_crlf_and_bom(tmp_path):
    d = _set()
    for p in rom.write_text_dir(d, tmp_path):
        text = "step time_s DB1 VB1 PLML AVBL\n" + p.read_text()
        p.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    _same(rom.read_text_dir(tmp_path), d)


def test_readme_and_split_lists_beside_dat_files(tmp_path):
    d = _set()
    rom.write_text_dir(d, tmp_path)
    (tmp_path / "README.txt").write_text("Sequences of the forward scenario.\nUnits: mV, nA.\n")
    (tmp_path / "train.txt").write_text("\n".join(d.names[:2]) + "\n")
    _same(rom.read_text_dir(tmp_path), d)


def test_upper_case_suffix(tmp_path):
    d = _set()
    for p in rom.write_text_dir(d, tmp_path):
        p.rename(p.with_suffix(".DAT"))
    _same(rom.read_text_dir(tmp_path), d)


def test_only_the_first_row_may_be_names(tmp_path):
    p = tmp_path / "bad.dat"
    p.write_text("step time_s a b\nsecond text row\n0 0 1 2\n1 0.0005 1 2\n")
    with pytest.raises(FormatError, match="bad.dat:2: non-numeric value 'second'"):
        rom.read_sequence(p, n_outputs=1)


def test_cli_unusable_save_folder_is_an_error_before_training(tmp_path, capsys):
    from wormlab.cli import main as wormlab_main

    rom.write_text_dir(_set(B=4), tmp_path / "d")
    (tmp_path / "afile").write_text("")
    rc = wormlab_main(["rom", "train", "--data", str(tmp_path / "d"), "--hidden", "2",
                       "--epochs", "1", "--quiet", "--save", str(tmp_path / "afile" / "ck")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("wormlab rom: error:") and "afile" in err
