"""UCR/UEA archive formats the Worms set ships in (.txt/.tsv, .arff, .ts), as files read by
``read_ucr`` and ``wormlab posture classify``; labels come back in the file's own terms."""

import gzip
import json

import numpy as np
import pytest

from wormlab import posture as P
from wormlab.posture import cli

STRAINS = {1: "N2", 2: "goa-1", 3: "unc-1"}


def _toy(n_per=6, L=40, seed=0):
    """SYNTHETIC series: three classes with different undulation rates."""
    rng = np.random.default_rng(seed)
    t = np.arange(L)
    X = [np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) + 0.1 * rng.standard_normal(L)
         for f in (0.05, 0.1, 0.2) for _ in range(n_per)]
    return np.round(np.array(X), 6), np.repeat([1, 2, 3], n_per)


def _arff(X, y):
    head = ["% UEA archive style", "@relation Worms"]
    head += [f"@attribute att{i} numeric" for i in range(1, X.shape[1] + 1)]
    head += ["@attribute target {1,2,3}", "", "@data"]
    rows = [",".join([*map(repr, x.tolist()), str(c)]) for x, c in zip(X, y)]
    return "\n".join(head + rows) + "\n"


def _ts(X, y, label=str):
    head = ["# sktime / aeon .ts", "@problemName Worms", "@timeStamps false",
            "@univariate true", "@equalLength true", f"@seriesLength {X.shape[1]}",
            "@classLabel true " + " ".join(sorted({label(c) for c in y})), "@data"]
    rows = [",".join(map(repr, x.tolist())) + ":" + label(c) for x, c in zip(X, y)]
    return "\n".join(head + rows) + "\n"


def _tsv(X, y, label=str):
    return "".join("\t".join([label(c), *map(repr, x.tolist())]) + "\n" for x, c in zip(X, y))


@pytest.mark.parametrize("variant", ["arff", "ts", "tsv_crlf_bom", "txt_gz", "no_last_newline"])
def test_archive_formats_read_the_same_series(tmp_path, variant):
    X, y = _toy()
    p = tmp_path / f"Worms_TRAIN.{variant}"
    if variant == "arff":
        p.write_text(_arff(X, y))
    elif variant == "ts":
        p.write_text(_ts(X, y))
    elif variant == "tsv_crlf_bom":
        p.write_bytes(_tsv(X, y).replace("\n", "\r\n").encode("utf-8-sig"))
    elif variant == "txt_gz":
        p.write_bytes(gzip.compress(_tsv(X, y).replace("\t", " ").encode()))
    else:
        p.write_text(_tsv(X, y).rstrip("\n"))
    X2, y2 = P.read_ucr(p)
    np.testing.assert_allclose(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert y2.dtype.kind == "i"


def test_text_labels_are_kept_and_reported(tmp_path, capsys):
    X, y = _toy()
    Xt, yt = _toy(seed=1)
    name = STRAINS.__getitem__
    (tmp_path / "train.ts").write_text(_ts(X, y, name))
    (tmp_path / "test.tsv").write_text(_tsv(Xt, yt, name))
    X2, y2 = P.read_ucr(tmp_path / "train.ts")
    assert list(y2[:1]) == ["N2"]
    rc = cli.main(["classify", "--train", str(tmp_path / "train.ts"), "--test",
                   str(tmp_path / "test.tsv"), "--method", "nn", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["per_class_accuracy"]) == {"N2", "goa-1", "unc-1"}
    assert res["accuracy"] > 0.8


@pytest.mark.parametrize(("name", "text", "message"), [
    ("q.ts", "@problemName x\n@data\n0.1,?,0.3:1\n0.1,0.2,0.3:2\n", "q.ts:3: contains missing"),
    ("nan.tsv", "1\t0.1\tNaN\t0.3\n", "nan.tsv:1: contains missing"),
    ("m.ts", "@problemName x\n@data\n0.1,0.2:0.3,0.4:1\n", "m.ts:3: expected 'values:class'"),
    ("d.ts", "@problemName x\n0.1,0.2:1\n", "d.ts: header without an @data line"),
    ("s.arff", "@relation r\n@attribute a numeric\n@attribute b numeric\n@attribute c {x,y}\n"
               "@data\n1,2,x\n1,2\n", "s.arff:7: 2 values for 3 attributes"),
])
def test_malformed_archive_files_are_named(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        P.read_ucr(tmp_path / name)


def test_gzip_damage_and_label_kind_mismatch_are_named(tmp_path, capsys):
    X, y = _toy()
    good = gzip.compress(_tsv(X, y).encode())
    (tmp_path / "t.txt.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="t.txt.gz: not a readable text file"):
        P.read_ucr(tmp_path / "t.txt.gz")
    (tmp_path / "a.tsv").write_text(_tsv(X, y))
    (tmp_path / "b.tsv").write_text(_tsv(X, y, STRAINS.__getitem__))
    assert cli.main(["classify", "--train", str(tmp_path / "a.tsv"), "--test",
                     str(tmp_path / "b.tsv"), "--method", "nn"]) == 2
    assert "one has numeric class labels, the other text" in capsys.readouterr().err
