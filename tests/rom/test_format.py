"""The published text format, NPZ and HDF5: round trips and malformed files."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wormlab import rom
from wormlab.rom import FormatError, SequenceSet


def _set(T=11, B=3, M=4, K=4, seed=0):
    rng = np.random.default_rng(seed)
    return SequenceSet(rng.normal(size=(T, B, M)) * 0.01, rng.normal(size=(T, B, K)) * 10 - 50,
                       5e-4, ["PLML", "PLMR", "AVBL", "AVBR"][:M], ["DB1", "LUAL", "PVR", "VB1"][:K])


def test_text_round_trip_with_sidecar(tmp_path):
    d = _set()
    paths = rom.write_text_dir(d, tmp_path)
    assert len(paths) == 3 and (tmp_path / "columns.json").exists()
    rows = paths[0].read_text().splitlines()
    assert len(rows) == 11 and len(rows[0].split()) == 2 + 4 + 4  # published 10 columns
    assert rows[1].split()[:2] == ["1", "0.0005"]
    back = rom.read_text_dir(tmp_path)
    np.testing.assert_allclose(back.inputs, d.inputs, rtol=1e-8)
    np.testing.assert_allclose(back.outputs, d.outputs, rtol=1e-8)
    assert back.input_names == d.input_names and back.output_names == d.output_names
    assert back.dt_s == pytest.approx(5e-4) and back.names == d.names


def test_text_without_sidecar_needs_n_outputs(tmp_path):
    rom.write_text_dir(_set(K=3, M=2), tmp_path)
    (tmp_path / "columns.json").unlink()
    with pytest.raises(FormatError, match="no columns.json"):
        rom.read_text_dir(tmp_path)
    back = rom.read_text_dir(tmp_path, n_outputs=3)
    assert back.outputs.shape == (11, 3, 3) and back.inputs.shape == (11, 3, 2)
    assert back.output_names == ["out_1", "out_2", "out_3"]


def test_npz_and_h5_round_trip(tmp_path):
    d = _set()
    for path in (tmp_path / "a.npz", tmp_path / "a.h5"):
        (rom.save_npz if path.suffix == ".npz" else rom.save_h5)(d, path)
        back = rom.load(path)
        np.testing.assert_array_equal(back.inputs, d.inputs)
        np.testing.assert_array_equal(back.outputs, d.outputs)
        assert back.names == d.names and back.dt_s == d.dt_s


def _write(p, text):
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, match", [
    ("0 0 1 2 3\n1 0.0005 1 x 3\n", "non-numeric value 'x'"),
    ("0 0 1 2 3\n1 0.0005 1 2\n", "2: 4 columns, but the first row has 5"),
    ("0 0 1\n1 0.0005 1\n", "3 columns; expected step, time_s, 1 outputs"),
    ("0 0 1 2\n1 0.0005 nan 2\n", "NaN or infinite"),
    ("0 0 1 2\n2 0.0005 1 2\n", "step column is not consecutive"),
    ("0 0 1 2\n1 0 1 2\n", "time_s column is not increasing"),
    ("# only a comment\n\n", "empty file"),
    ("0 0 1 2\n", "at least 2 rows"),
])
def test_malformed_files_are_named(tmp_path, text, match):
    p = _write(tmp_path / "bad.dat", text)
    with pytest.raises(FormatError, match=match) as info:
        rom.read_sequence(p, n_outputs=1)
    assert "bad.dat" in str(info.value) or "empty" in match


def test_folder_level_errors(tmp_path):
    rom.write_text_dir(_set(), tmp_path)
    with pytest.raises(FormatError, match="columns; expected 2"):
        rom.read_text_dir(tmp_path, output_names=["a", "b", "c", "d"], input_names=["x"])
    short = _set(T=7)
    short.names = ["short"]
    short = short.subset([0])
    rom.write_text_dir(SequenceSet(short.inputs, short.outputs, 5e-4, short.input_names,
                                   short.output_names, ["zz_short"]), tmp_path)
    with pytest.raises(FormatError, match="7 rows, but"):
        rom.read_text_dir(tmp_path)
    (tmp_path / "columns.json").write_text("{not json")
    with pytest.raises(FormatError, match="invalid JSON"):
        rom.read_text_dir(tmp_path)
    (tmp_path / "columns.json").write_text(json.dumps({"outputs": [], "inputs": ["a"]}))
    with pytest.raises(FormatError, match="non-empty list"):
        rom.read_text_dir(tmp_path)
    with pytest.raises(FormatError, match="not a directory"):
        rom.read_text_dir(tmp_path / "nope")
    with pytest.raises(FormatError, match="does not exist"):
        rom.load(tmp_path / "nope.dat")
    (tmp_path / "x.npz").write_bytes(b"garbage")
    with pytest.raises(FormatError, match="not a readable NPZ"):
        rom.load(tmp_path / "x.npz")


def test_sequence_set_validates_shapes():
    with pytest.raises(FormatError, match="differ in"):
        SequenceSet(np.zeros((5, 2, 1)), np.zeros((6, 2, 1)), 1e-3, ["a"], ["b"])
    with pytest.raises(FormatError, match="input columns"):
        SequenceSet(np.zeros((5, 2, 2)), np.zeros((5, 2, 1)), 1e-3, ["a"], ["b"])
    with pytest.raises(KeyError, match="unknown input column"):
        _set().select(inputs=["AVAL"])


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(T=st.integers(2, 30), K=st.integers(1, 4), M=st.integers(1, 4), data=st.data())
def test_text_round_trip_property(tmp_path_factory, T, K, M, data):
    out = data.draw(arrays(np.float64, (T, K), elements=finite))
    inp = data.draw(arrays(np.float64, (T, M), elements=finite))
    dt = data.draw(st.sampled_from([1e-4, 5e-4, 1e-3]))
    p = tmp_path_factory.mktemp("h") / "s.dat"
    rom.write_sequence(p, np.arange(T) * dt, out, inp)
    t, o, i = rom.read_sequence(p, n_outputs=K, n_inputs=M)
    np.testing.assert_allclose(o, out, rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(i, inp, rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(t, np.arange(T) * dt, rtol=1e-8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.text(min_size=1, max_size=12).filter(lambda s: s.strip() and not s.strip().startswith("#")),
       row=st.integers(0, 4))
def test_random_corruption_gives_format_error(tmp_path_factory, junk, row):
    """Any corrupted line yields FormatError (never a crash or a silent wrong read)."""
    p = tmp_path_factory.mktemp("c") / "s.dat"
    rom.write_sequence(p, np.arange(5) * 1e-3, np.ones((5, 2)), np.zeros((5, 1)))
    lines = p.read_text().splitlines()
    lines[row] = lines[row] + " " + junk.replace("\n", " ")
    p.write_text("\n".join(lines) + "\n")
    try:
        rom.read_sequence(p, n_outputs=2, n_inputs=1)
    except FormatError:
        return
    pytest.fail(f"corrupted row {row} with {junk!r} was accepted")


def test_units_from_sidecar_given_or_detected(tmp_path):
    """SI files (V) are labelled V, not mV; a given unit that contradicts the sidecar fails."""
    d = _set()
    si = SequenceSet(d.inputs * 1e-9, d.outputs * 1e-3, d.dt_s, d.input_names, d.output_names,
                     input_unit="A", output_unit="V")
    rom.write_text_dir(si, tmp_path / "si")
    assert json.loads((tmp_path / "si" / "columns.json").read_text())["output_unit"] == "V"
    back = rom.read_text_dir(tmp_path / "si")
    assert (back.output_unit, back.input_unit) == ("V", "A")
    assert back.unit_source["output_unit"].endswith("columns.json")
    with pytest.raises(FormatError, match="output_unit is 'V', but 'mV' was given"):
        rom.load(tmp_path / "si", output_unit="mV")
    (tmp_path / "si" / "columns.json").unlink()
    back = rom.read_text_dir(tmp_path / "si", n_outputs=4)
    assert (back.output_unit, back.input_unit) == ("V", "A")
    assert back.unit_source["output_unit"] == "detected from the values"
    rom.write_text_dir(d, tmp_path / "mv")
    (tmp_path / "mv" / "columns.json").unlink()
    back = rom.read_text_dir(tmp_path / "mv", n_outputs=4)
    assert (back.output_unit, back.input_unit) == ("mV", "nA")
    assert rom.load(tmp_path / "mv", n_outputs=4, output_unit="V").output_unit == "V"
    assert back.subset([0]).unit_source == back.unit_source
    rom.save_npz(si, tmp_path / "si.npz")
    assert rom.load(tmp_path / "si.npz").output_unit == "V"
    with pytest.raises(FormatError, match="si.npz: output_unit is 'V'"):
        rom.load(tmp_path / "si.npz", output_unit="mV")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "bad_meta", "meta_not_object"])
def test_corrupt_h5_names_the_file(tmp_path, damage):
    import h5py

    p = tmp_path / "set.h5"
    rom.save_h5(_set(T=200, B=8), p)
    if damage == "truncate":
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif damage == "garbage":
        p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    else:
        with h5py.File(p, "a") as f:
            f.attrs["meta"] = "{oops" if damage == "bad_meta" else "[1, 2]"
    with pytest.raises(FormatError) as info:
        rom.load(p)
    assert str(p) in str(info.value)


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    import h5py

    def boom(self, *a, **k):
        raise OSError("disk full")

    p = tmp_path / "set.h5"
    monkeypatch.setattr(h5py.File, "create_dataset", boom)
    with pytest.raises(OSError, match="disk full"):
        rom.save_h5(_set(), p)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    rom.save_h5(_set(), p)
    p_bad = tmp_path / "x.npz"
    p_bad.write_bytes((tmp_path / "set.h5").read_bytes()[:10])
    with pytest.raises(FormatError, match="x.npz: not a readable NPZ"):
        rom.load(p_bad)
