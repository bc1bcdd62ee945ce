"""Identity comes from the data (issue 19 item 4); bad names and corrupt files fail clearly
(issue 21): two files of every format in one temporary folder load as two worms."""

import json

import numpy as np
import pytest

from wormlab import recordings as R


def kato_npz(path, T=60, names=("1", "AVAL", "AVBL", "RIML"), seed=0, **extra):
    """A small file in the Kato 2015 NPZ layout (the shared file's arrays)."""
    rng = np.random.default_rng(seed)
    arrays = {"traces_dFF_bc": rng.normal(size=(T, len(names))).astype(np.float32),
              "neuron_names": np.array(names), "state_index": (np.arange(T) // 7 % 2).astype(
                  np.int8), "state_names": np.array(["fwd", "rev1"]), "fps": np.array(2.905)}
    arrays.update(extra)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def flavell_h5(path, T=40, N=4, seed=0, food=None):
    """A small file in the Flavell-lab ``*-data.h5`` layout."""
    import h5py

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f["gcamp/trace_array"] = rng.normal(size=(T, N))
        f["gcamp/traces_array_F_F20"] = np.ones((T, N))
        f["timing/timestamp_confocal"] = 1000 + 0.6 * np.arange(T)
        f["behavior/velocity"] = rng.normal(size=T)
        f["behavior/reversal_vec"] = (np.arange(T) % 10 < 3).astype(int)
        if food is not None:
            f["timing/time_food_encounter"] = np.array([food])
    return path


def names_json(path, mapping):
    path.write_text(json.dumps(mapping))
    return path


def two_files(tmp_path, fmt, make_rec):
    """Two different worms written in format ``fmt`` into one folder (no distinguishing
    metadata unless the format always carries it)."""
    if fmt == "kato_npz":
        return [kato_npz(tmp_path / "A.npz", seed=0), kato_npz(tmp_path / "B.npz", seed=1)]
    if fmt == "flavell_h5":
        return [flavell_h5(tmp_path / "x1-data.h5", seed=0),
                flavell_h5(tmp_path / "x2-data.h5", seed=1)]
    suffix, kw = {"npz": (".npz", {}), "csv": (".csv", {}), "mat7": (".mat", {"version": "7"}),
                  "mat73": (".mat", {"version": "7.3"}), "nwb": (".nwb", {})}[fmt]
    out = []
    for k in range(2):
        # no worm_id in the metadata: the name must tell the two apart
        rec = make_rec(seed=k).replace(worm_id="", dataset="")
        out.append(R.save(rec, tmp_path / f"worm_{k}{suffix}", **kw))
    return out


FMTS = ["kato_npz", "flavell_h5", "npz", "csv", "mat7", "mat73", "nwb"]


@pytest.mark.parametrize("fmt", FMTS)
def test_two_files_give_two_ids(tmp_path, make_rec, fmt):
    a, b = (R.load(p) for p in two_files(tmp_path, fmt, make_rec))
    assert a.worm_id and b.worm_id and a.worm_id != b.worm_id, (a.worm_id, b.worm_id)
    assert not np.array_equal(a.traces, b.traces)


def test_ids_follow_the_file_not_a_default(tmp_path, make_rec):
    a = R.load(kato_npz(tmp_path / "kato2015_WT_NoStim_worm3.npz"))
    assert a.worm_id == "WT_NoStim_worm3" and a.dataset == "kato2015"
    b = R.load(kato_npz(tmp_path / "z.npz", worm_id=np.array("worm_from_metadata"),
                        dataset=np.array("mylab")))
    assert (b.dataset, b.worm_id) == ("mylab", "worm_from_metadata")
    with pytest.raises(R.RecordingError, match="worm=1 requested but the file holds worm 3"):
        R.load_kato2015(1, path=tmp_path / "kato2015_WT_NoStim_worm3.npz")
    # metadata wins over the name where the format has it
    r = R.load(R.save(make_rec().replace(worm_id="w7"), tmp_path / "other.nwb"))
    assert r.worm_id == "w7"
    assert R.load(R.save(make_rec().replace(worm_id="w8"), tmp_path / "o.npz")).worm_id == "w8"
    assert R.load_csv(R.save(make_rec(), tmp_path / "c.csv"), worm_id="given").worm_id == "given"


def test_flavell_file_anywhere_with_side_file(tmp_path):
    p = flavell_h5(tmp_path / "my_worm-data.h5")
    r = R.load(p)  # no names file: loads, every ROI unidentified
    assert r.worm_id == "my_worm" and not r.identified and r.strain == ""
    names_json(tmp_path / "neuron_names_mapped.json",
               {"my_worm": {"names": {"AVAL": [{"col0": 1, "conf": 5.0}]}}})
    r = R.load(p)  # found next to the file
    assert r.neuron_names == (None, "AVAL", None, None)
    side = names_json(tmp_path / "labels.json", {"names": {"RIML": [{"col0": 2, "conf": 4}]}})
    r = R.load(p, names_json=side)  # named by option, per-recording layout
    assert r.neuron_names == (None, None, "RIML", None)
    with pytest.raises(R.RecordingError, match="no NeuroPAL names for recording 'my_worm'"):
        R.load(p, names_json=names_json(tmp_path / "o.json", {"other": {"names": {}}}))
    with pytest.raises(FileNotFoundError, match="missing.json"):
        R.load(p, names_json=tmp_path / "missing.json")
    bad = names_json(tmp_path / "bad.json", {"names": {"AVAL": [{"col0": "x"}]}})
    with pytest.raises(R.RecordingError, match="bad.json.*col0"):
        R.load(p, names_json=bad)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(R.RecordingError, match="broken.json: unreadable"):
        R.load(p, names_json=tmp_path / "broken.json")


def test_flavell_shared_layout_still_finds_its_names(tmp_path):
    (tmp_path / "recordings").mkdir()
    p = flavell_h5(tmp_path / "recordings" / "2022-07-26-31-data.h5")
    names_json(tmp_path / "neuron_names_mapped.json",
               {"2022-07-26-31": {"names": {"AVAL": [{"col0": 0, "conf": 5.0}]}}})
    for r in (R.load(p), R.load_flavell2023("2022-07-26-31", root=tmp_path)):
        assert r.neuron_names[0] == "AVAL" and r.strain == "SWF702"
    with pytest.raises(ValueError, match="either path= or dataset="):
        R.load_flavell2023("2022-07-26-31", path=p)


# ---------------------------------------------------------------- misspelled neuron names
@pytest.mark.parametrize("fmt", ["npz", "csv", "mat7", "mat73", "nwb", "kato_npz",
                                 "flavell_h5"])
def test_misspelled_names_are_rejected_with_suggestions(tmp_path, make_rec, fmt):
    if fmt == "kato_npz":
        p = kato_npz(tmp_path / "k.npz", names=("1", "AVAK", "AVBL", "RIML"))
        col = 1
    elif fmt == "flavell_h5":
        p = flavell_h5(tmp_path / "f-data.h5")
        names_json(tmp_path / "neuron_names_mapped.json",
                   {"f": {"names": {"AVAK": [{"col0": 2, "conf": 5.0}]}}})
        col = 2
    else:
        suffix, kw = {"npz": (".npz", {}), "csv": (".csv", {}),
                      "mat7": (".mat", {"version": "7"}), "mat73": (".mat", {"version": "7.3"}),
                      "nwb": (".nwb", {})}[fmt]
        rec = make_rec().replace(neuron_names=("AVAL", None, "AVAK", "RIML", None),
                                 roi_labels=())
        p = R.save(rec, tmp_path / f"r{suffix}", **kw)
        col = 2
    with pytest.raises(R.RecordingError) as err:
        R.load(p)
    msg = str(err.value)
    assert p.name in msg and f"'AVAK' in column {col}" in msg and "did you mean" in msg
    assert {"AVAL", "AVAR"} & set(msg.split("did you mean")[1].split("?")[0].replace(",", " ")
                                  .split())
    # opt-in: the column stays, explicitly unidentified, its text kept as the ROI label
    r = R.load(p, unknown_names="unidentified")
    assert r.neuron_names[col] is None and r.roi_labels[col] == "AVAK"
    assert r.meta["unknown_names"] == ["AVAK"] and "AVAK" not in r.neuron_names


def test_name_check_accepts_real_spellings_and_keeps_rois(make_rec):
    assert R.is_neuron("VB02") and R.is_neuron("VB2") and R.is_neuron("AVAL")
    assert not R.is_neuron("aval") and not R.is_neuron("AVA") and not R.is_neuron("VB002")
    rec = make_rec()  # unidentified ROIs (None) pass untouched
    assert R.check_names(rec) is rec
    with pytest.raises(R.RecordingError, match="'aval' in column 0 \\(did you mean AVAL"):
        R.check_names(rec.replace(neuron_names=("aval", None, "AVAR", "RIML", None)))
    with pytest.raises(ValueError, match="unknown_names must be one of"):
        R.check_names(rec, "drop")


def test_shared_recordings_pass_the_name_check():
    """Every name in the real data is a connectome neuron (VB02-style padding accepted)."""
    from wormlab.paths import shared_data_dir

    if shared_data_dir() is None:
        pytest.skip("shared data folder absent")
    r = R.load_kato2015()
    assert "VB02" in r.neuron_names and "unknown_names" not in r.meta
    assert R.load_flavell2023("2022-07-27-45").neuron_names.count("VB02") == 1


# ---------------------------------------------------------------- corrupt files, every format
CORRUPT = ["kato_npz", "flavell_h5", "npz", "csv", "mat7", "mat73", "nwb"]


@pytest.mark.parametrize("fmt", CORRUPT)
@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_files_fail_clearly_and_write_nothing(tmp_path, make_rec, fmt, damage):
    p = two_files(tmp_path, fmt, make_rec)[0]
    raw = p.read_bytes()
    if damage == "truncate":
        raw = raw[: len(raw) // 3]
    elif damage == "garbage":
        raw = raw[:64] + bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8))
    else:
        raw = b""
    p.write_bytes(raw)
    before = sorted(x.name for x in tmp_path.iterdir())
    with pytest.raises(R.RecordingError, match=p.name):
        R.load(p)
    assert sorted(x.name for x in tmp_path.iterdir()) == before  # nothing written or left
    assert p.read_bytes() == raw  # the input is not modified


@pytest.mark.parametrize(
    "change, message",
    [
        ({"gcamp/trace_array": np.ones(40)}, "has shape \\(40,\\), expected"),
        ({"gcamp/trace_array": np.array([b"a", b"b"])}, "has dtype"),
        ({"timing/timestamp_confocal": np.full(40, np.nan)}, "NaN or inf"),
        ({"timing/timestamp_confocal": np.zeros(40)}, "does not increase"),
        ({"timing/timestamp_confocal": None}, "no dataset 'timing/timestamp_confocal'"),
        ({"timing/time_food_encounter": np.array([np.nan])}, "time_food_encounter"),
    ],
)
def test_malformed_flavell_content(tmp_path, change, message):
    import h5py

    p = flavell_h5(tmp_path / "m-data.h5")
    with h5py.File(p, "r+") as f:
        for k, v in change.items():
            if k in f:
                del f[k]
            if v is not None:
                f[k] = v
    with pytest.raises(R.RecordingError, match=message) as err:
        R.load(p)
    assert str(p) in str(err.value)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"traces_dFF_bc": np.ones(60)}, "real \\(T, N\\) array"),
        ({"traces_dFF_bc": np.array([["a"] * 4] * 60)}, "real \\(T, N\\) array"),
        ({"state_index": np.zeros(59, np.int8)}, "state_index must be \\(60,\\) integers"),
        ({"state_index": np.zeros(60)}, "state_index must be \\(60,\\) integers"),
        ({"fps": np.array(0.0)}, "fps must be a positive"),
        ({"fps": np.array([1.0, 2.0])}, "fps must be one number"),
        ({"neuron_names": np.array([1, 2, 3, 4])}, "neuron_names must be a 1-D array of str"),
        ({"traces_dFF_bc": np.full((60, 4), np.nan, np.float32)}, "only NaN"),
        ({"worm_id": np.array([1, 2])}, "metadata array 'worm_id'"),
    ],
)
def test_malformed_kato_npz(tmp_path, change, message):
    p = kato_npz(tmp_path / "k.npz", **change)
    with pytest.raises(R.RecordingError, match=message) as err:
        R.load(p)
    assert str(p) in str(err.value)


def test_failed_save_leaves_nothing(tmp_path, make_rec):
    rec = make_rec().replace(meta={"bad": object()})  # not JSON-able: the NPZ header fails
    with pytest.raises(TypeError):
        R.save(rec, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []
