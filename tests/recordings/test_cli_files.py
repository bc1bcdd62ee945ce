"""Files as a researcher hands them over, through ``wormlab recordings``: a spreadsheet CSV with
a BOM, a mistyped path, a destination that cannot be written (a status, not a traceback)."""

import numpy as np

from wormlab import recordings as R
from wormlab.cli import main


def test_csv_with_bom_keeps_its_time_column(tmp_path, make_rec):
    rec = make_rec(stimuli=False)
    p = R.save(rec, tmp_path / "w.csv")
    bom = tmp_path / "excel export.csv"
    bom.write_text(p.read_text(), encoding="utf-8-sig")
    back = R.load(bom)
    np.testing.assert_allclose(back.time_s, rec.time_s)
    assert back.neuron_names == rec.neuron_names and back.fps == rec.fps


def test_missing_file_is_named_not_taken_for_an_id(tmp_path, capsys):
    assert main(["recordings", "info", str(tmp_path / "typo.csv")]) == 2
    assert "typo.csv does not exist" in capsys.readouterr().err


def test_unwritable_destination_is_an_error_status(tmp_path, capsys, make_rec):
    src = R.save(make_rec(), tmp_path / "w.npz")
    (tmp_path / "afile").write_text("")
    assert main(["recordings", "convert", str(src), str(tmp_path / "afile" / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wormlab recordings: error:") and "afile" in err
    assert "Traceback" not in err
