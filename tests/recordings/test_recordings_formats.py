"""Each file format: a valid round trip, malformed files rejected with a clear error, fuzzing."""

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wormlab import recordings as R
from wormlab.recordings._formats import _write_mat73

FORMATS = [("x.npz", {}), ("x.csv", {}), ("x.mat", {"version": "7"}),
           ("x73.mat", {"version": "7.3"}), ("x.nwb", {})]


@pytest.mark.parametrize("name, kw", FORMATS)
def test_roundtrip(tmp_path, rec, name, kw):
    path = R.save(rec, tmp_path / name, **kw)
    back = R.load(path)
    np.testing.assert_allclose(back.traces, rec.traces, atol=1e-6)
    np.testing.assert_allclose(back.time_s, rec.time_s)
    assert back.neuron_names == rec.neuron_names
    assert back.fps == pytest.approx(rec.fps)
    np.testing.assert_array_equal(back.state_labels, rec.state_labels)
    if not name.endswith(".csv"):  # CSV keeps traces, time and states only
        assert back.stimuli == rec.stimuli


def test_npz_and_nwb_keep_metadata(tmp_path, make_rec):
    r = make_rec(N=6, synthetic=True)
    for name in ("virtual_synthetic.npz", "virtual_synthetic.nwb"):
        back = R.load(R.save(r, tmp_path / name))
        assert back.synthetic and back.ground_truth == r.ground_truth
        assert back.dataset == "test" and back.worm_id == "w1"


def test_synthetic_must_be_named(tmp_path, make_rec):
    r = make_rec(synthetic=True)
    with pytest.raises(ValueError, match="synthetic"):
        R.save(r, tmp_path / "worm.npz")
    back = R.load(R.save(r, tmp_path / "worm_synthetic.csv"))
    assert back.synthetic


@pytest.mark.parametrize("name, kw", FORMATS)
def test_truncated_files_are_rejected(tmp_path, rec, name, kw):
    path = R.save(rec, tmp_path / name, **kw)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(R.RecordingError, match=str(path.name)):
        R.load(path)


# ---------------------------------------------------------------- CSV
def _csv(tmp_path, text):
    p = tmp_path / "r.csv"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, message",
    [
        ("time_s,AVAL,AVAL\n0,1,2\n0.5,1,2\n1,1,2\n", "duplicate neuron names"),
        ("time_s,AVAL,AVAR\n0,1,2\n0.5,1\n1,1,2\n", "row 3 has 2 fields"),
        ("time_s,AVAL,AVAR\n0,1,x\n0.5,1,2\n1,1,2\n", "non-numeric"),
        ("time_s,AVAL,AVAR\n0,nan,2\n0.5,nan,2\n1,nan,2\n", "only NaN"),
        ("time_s,AVAL\n0,1\n0.5,1\n0.4,1\n", "increase"),
        ("AVAL,AVAR\n1,2\n", "needs a header"),
    ],
)
def test_malformed_csv(tmp_path, text, message):
    with pytest.raises(R.RecordingError, match=message):
        R.load(_csv(tmp_path, text))


def test_csv_fps_time_mismatch(tmp_path):
    p = _csv(tmp_path, "time_s,AVAL\n0,1\n0.5,2\n1.0,1\n")
    with pytest.raises(R.RecordingError, match="frame-rate/time mismatch"):
        R.load_csv(p, fps=10.0)
    p = _csv(tmp_path, "AVAL,3\n1,2\n2,2\n1,1\n")
    r = R.load_csv(p, fps=4.0)
    assert r.neuron_names == ("AVAL", None) and r.time_s[-1] == 0.5


# ---------------------------------------------------------------- Kato .mat
def _kato_fields(T=30, N=4, fps=2.0):
    rng = np.random.default_rng(1)
    return {
        "traces": rng.normal(size=(T, N)),
        "tracesDif": rng.normal(size=(T - 1, N)),
        "IDs": ["AVAL", "", ["RIML", "RIMR"], "AVBL"][:N],
        "timeVectorSeconds": np.arange(T) / fps,
        "fps": fps,
        "stimulus": {"identity": "O2", "conc": 21.0, "switchtimes": np.array([3.0, 6.0, 9.0]),
                     "initialstate": 0.0},
        "States": {"fwd": (np.arange(T) % 2 == 0).astype(float),
                   "rev": (np.arange(T) % 2 == 1).astype(float)},
    }


def _save_mat(path, fields, version):
    if version == "7":
        d = dict(fields)
        cell = np.empty((1, len(d["IDs"])), dtype=object)
        for i, v in enumerate(d["IDs"]):
            cell[0, i] = np.array(v if isinstance(v, list) else [v], dtype=object) if v \
                else np.zeros((0, 0))
        d["IDs"] = cell
        scipy.io.savemat(str(path), {"wbdataset": d})
    else:
        _write_mat73(path, {"wbdataset": fields})
    return path


@pytest.mark.parametrize("version", ["7", "7.3"])
def test_kato_mat_fields(tmp_path, version):
    p = _save_mat(tmp_path / f"k{version}.mat", _kato_fields(), version)
    r = R.load(p)
    assert r.n_frames == 30 and r.n_neurons == 4
    # an ID cell with two candidate names is ambiguous: unidentified, both kept as the label
    assert r.neuron_names == ("AVAL", None, None, "AVBL")
    assert r.roi_labels[2] == "RIML/RIMR"
    (s,) = r.stimuli
    assert s.label == "21mM O2" and s.intervals_s[0] == (3.0, 6.0) and s.intervals_s[1][0] == 9.0
    assert r.state_names == ("fwd", "rev") and list(r.states[:3]) == [0, 1, 0]
    d = R.load_kato_mat(p, signal="tracesDif")
    assert d.n_frames == 29 and d.time_s[0] == 0.5


@pytest.mark.parametrize("version", ["7", "7.3"])
@pytest.mark.parametrize(
    "change, message",
    [
        ({"IDs": ["AVAL", "AVAL", "", "AVBL"]}, "duplicate neuron names"),
        ({"IDs": ["AVAL", "AVBL"]}, "2 IDs for 4 trace columns"),
        ({"timeVectorSeconds": np.arange(25) / 2.0}, "timeVectorSeconds has 25"),
        ({"fps": 5.0}, "frame-rate/time mismatch"),
        ({"tracesDif": np.zeros((10, 4))}, "tracesDif shape"),
        ({"traces": np.where(np.arange(4) == 1, np.nan, np.ones((30, 4)))}, "only NaN"),
        ({"States": {"fwd": np.ones(30), "rev": np.ones(30)}}, "more than one state"),
    ],
)
def test_malformed_kato_mat(tmp_path, version, change, message):
    fields = {**_kato_fields(), **change}
    p = _save_mat(tmp_path / "bad.mat", fields, version)
    with pytest.raises(R.RecordingError, match=message):
        R.load(p)


def test_mat_without_kato_struct(tmp_path):
    p = tmp_path / "other.mat"
    scipy.io.savemat(str(p), {"foo": np.zeros(3)})
    with pytest.raises(R.RecordingError, match="no Kato/Zimmer struct"):
        R.load(p)


# ---------------------------------------------------------------- NWB
def test_nwb_without_roi_response_series(tmp_path):
    import datetime as dt

    from pynwb import NWBHDF5IO, NWBFile

    p = tmp_path / "empty.nwb"
    nwb = NWBFile(session_description="x", identifier="x",
                  session_start_time=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    with NWBHDF5IO(str(p), "w") as io:
        io.write(nwb)
    with pytest.raises(R.RecordingError, match="no RoiResponseSeries"):
        R.load(p)


def test_nwb_duplicate_names_rejected(tmp_path, make_rec):
    import h5py

    p = R.save(make_rec(), tmp_path / "dup.nwb")
    with h5py.File(p, "r+") as f:
        col = f["processing/ophys/ImageSegmentation/neurons/neuron_name"]
        vals = [v.decode() if isinstance(v, bytes) else v for v in col[()]]
        vals[2] = vals[0]
        col[...] = np.array(vals, dtype=object)
    with pytest.raises(R.RecordingError, match="duplicate neuron names"):
        R.load(p)


def test_unknown_suffix(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("hi")
    with pytest.raises(R.RecordingError, match="unknown recording format"):
        R.load(p)


# ---------------------------------------------------------------- fuzzing
names_st = st.lists(st.one_of(st.none(), st.sampled_from(["AVAL", "AVAR", "RIML", "ASHL", ""])),
                    min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(
    T=st.integers(0, 12),
    names=names_st,
    extra_cols=st.integers(-1, 1),
    fps=st.one_of(st.floats(-1, 10), st.just(float("nan"))),
    nan_col=st.booleans(),
    jitter=st.floats(0, 1),
)
def test_fuzz_constructor_only_raises_recording_error(T, names, extra_cols, fps, nan_col, jitter):
    N = max(0, len(names) + extra_cols)
    rng = np.random.default_rng(T)
    x = rng.normal(size=(T, N))
    if nan_col and N:
        x[:, 0] = np.nan
    t = np.arange(T) / 2.0 + jitter * rng.random(T)
    try:
        r = R.Recording(traces=x, neuron_names=tuple(names), time_s=t, fps=fps)
    except R.RecordingError:
        return
    # whatever got through satisfies the invariants
    assert r.traces.shape == (T, len(names)) and T >= 2
    ident = [n for n in r.neuron_names if n is not None]
    assert len(set(ident)) == len(ident)
    assert np.all(np.diff(r.time_s) > 0)
    assert abs(np.median(np.diff(r.time_s)) * r.fps - 1) <= R.FPS_RTOL
    assert not np.isnan(r.traces).all(axis=0).any()


@pytest.mark.parametrize("name, kw", FORMATS)
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_corrupted_files(tmp_path, rec, name, kw, data):
    path = tmp_path / name
    if not path.exists():
        R.save(rec, path, **kw)
    raw = bytearray(path.read_bytes())
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    flips = data.draw(st.lists(st.integers(0, len(raw) - 1), max_size=8), label="flips")
    for i in flips:
        raw[i] ^= 0xFF
    bad = tmp_path / ("bad_" + name)
    bad.write_bytes(bytes(raw[:cut] if cut < len(raw) else raw))
    try:
        r = R.load(bad, **({} if not name.endswith(".csv") else {}))
    except R.RecordingError:
        return
    assert isinstance(r, R.Recording)  # survived corruption: still a valid recording


@pytest.mark.parametrize("version", ["7", "7.3"])
def test_kato_mat_multi_worm_file(tmp_path, version):
    """Combined files (e.g. WT_NoStim.mat) hold one cell per worm in every field."""
    rng = np.random.default_rng(0)
    tr = [rng.normal(size=(20, 3)), rng.normal(size=(25, 2))]
    ids = [["AVAL", "", "RIML"], ["AVAR", ""]]
    tv = [np.arange(20) / 2, np.arange(25) / 2]
    p = tmp_path / "multi.mat"
    if version == "7":
        def cell(items):
            a = np.empty((1, len(items)), dtype=object)
            for i, v in enumerate(items):
                a[0, i] = v
            return a

        id_cells = [cell([np.array([n], dtype=object) if n else np.zeros((0, 0)) for n in w])
                    for w in ids]
        scipy.io.savemat(str(p), {"WT_NoStim": {"traces": cell(tr), "IDs": cell(id_cells),
                                                "timeVectorSeconds": cell(tv),
                                                "fps": cell([2.0, 2.0])}})
    else:
        _write_mat73(p, {"WT_NoStim": {"traces": tr, "IDs": ids, "timeVectorSeconds": tv,
                                       "fps": [2.0, 2.0]}})
    r0, r1 = R.load_kato_mat(p, worm=0), R.load_kato_mat(p, worm=1)
    assert r0.neuron_names == ("AVAL", None, "RIML") and r1.neuron_names == ("AVAR", None)
    np.testing.assert_allclose(r1.traces, tr[1], rtol=1e-6)
    with pytest.raises(R.RecordingError, match="worm 5 not in 0..1"):
        R.load_kato_mat(p, worm=5)


# ---------------------------------------------------------------- shared-data layouts
def _kato_npz(path, **change):
    arrays = {"traces_dFF_bc": np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32),
              "neuron_names": np.array(["1", "AVAL", "AVAR"]), "state_index": np.zeros(30, np.int8),
              "state_names": np.array(["fwd", "rev"]), "fps": np.array(2.905)}
    arrays.update(change)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_kato2015_layout_valid_and_malformed(tmp_path):
    r = R.load(_kato_npz(tmp_path / "k.npz"))
    assert r.neuron_names == (None, "AVAL", "AVAR") and r.dataset == "kato2015"
    with pytest.raises(R.RecordingError, match="missing arrays"):
        R.load_kato2015(path=_kato_npz(tmp_path / "a.npz", fps=None))
    with pytest.raises(R.RecordingError, match="do not match 2 neuron names"):
        R.load_kato2015(path=_kato_npz(tmp_path / "b.npz", neuron_names=np.array(["1", "2"])))
    with pytest.raises(R.RecordingError, match="duplicate"):
        R.load_kato2015(path=_kato_npz(tmp_path / "c.npz",
                                       neuron_names=np.array(["AVAL", "AVAL", "3"])))
    with pytest.raises(R.RecordingError, match="state indices"):
        R.load_kato2015(path=_kato_npz(tmp_path / "d.npz", state_index=np.full(30, 7, np.int8)))
    p = _kato_npz(tmp_path / "e.npz")
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(R.RecordingError, match="e.npz"):
        R.load(p)


def _flavell_h5(root, name="2022-07-26-31", T=40, n_ts=None):
    import h5py

    (root / "recordings").mkdir(parents=True, exist_ok=True)
    with h5py.File(root / "recordings" / f"{name}-data.h5", "w") as f:
        f["gcamp/trace_array"] = np.random.default_rng(0).normal(size=(T, 4))
        f["gcamp/traces_array_F_F20"] = np.ones((T, 4))
        f["timing/timestamp_confocal"] = 1000 + 0.6 * np.arange(n_ts or T)
        f["behavior/velocity"] = np.zeros(T)
        f["behavior/reversal_vec"] = (np.arange(T) % 10 < 3).astype(int)
        f["behavior/reversal_events"] = np.zeros((2, 3), int)
    return root


def test_flavell_layout_valid_and_malformed(tmp_path):
    import json

    root = _flavell_h5(tmp_path / "fl")
    (root / "neuron_names_mapped.json").write_text(json.dumps({"2022-07-26-31": {
        "sheet": "x", "names": {"AVAL": [{"col0": 1, "conf": 5.0}],
                                "SMB??": [{"col0": 2, "conf": 3.0}],
                                "RIML": [{"col0": 0, "conf": 2.0}, {"col0": 3, "conf": 2.0}]}}}))
    r = R.load_flavell2023("2022-07-26-31", root=root)
    assert r.neuron_names == (None, "AVAL", None, None)  # '?' and tied duplicates: unknown
    assert r.roi_labels[2] == "SMB??" and r.roi_labels[0] == "RIML"
    assert r.state_names == ("fwd", "rev") and r.states[:4].tolist() == [1, 1, 1, 0]
    assert r.fps == pytest.approx(1 / 0.6)
    bad = _flavell_h5(tmp_path / "bad", T=40, n_ts=30)
    with pytest.raises(R.RecordingError, match="30 timestamps for 40 frames"):
        R.load_flavell2023("2022-07-26-31", root=bad)
    (bad / "neuron_names_mapped.json").write_text(json.dumps({"2022-07-26-31": {
        "sheet": "x", "names": {"AVAL": [{"col0": 9, "conf": 5.0}]}}}))
    _flavell_h5(bad)
    with pytest.raises(R.RecordingError, match="column 9, outside"):
        R.load_flavell2023("2022-07-26-31", root=bad)


@pytest.mark.parametrize("what, message", [("rate", "frame-rate/time mismatch"),
                                           ("nan", "only NaN"), ("shape", "trace columns")])
def test_malformed_nwb_content(tmp_path, make_rec, what, message):
    import h5py

    p = R.save(make_rec(), tmp_path / f"{what}.nwb")
    with h5py.File(p, "r+") as f:
        if what == "rate":
            f["general/optophysiology/whole_brain/imaging_rate"][()] = 7.0
        elif what == "nan":
            d = f["processing/ophys/DfOverF/activity/data"]
            x = d[()]
            x[:, 2] = np.nan
            d[...] = x
        else:
            d = f["processing/ophys/DfOverF/activity/data"]
            x = d[()]
            del f["processing/ophys/DfOverF/activity/data"]
            f["processing/ophys/DfOverF/activity"].create_dataset("data", data=x[:, :3])
    with pytest.raises(R.RecordingError, match=message):
        R.load(p)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(T=st.integers(3, 30), N=st.integers(1, 6), fps=st.floats(0.5, 20),
       conc=st.one_of(st.none(), st.floats(0.001, 1000)), seed=st.integers(0, 10**6),
       fmt=st.sampled_from(["npz", "nwb", "mat"]))
def test_fuzz_valid_recordings_roundtrip(tmp_path, T, N, fps, conc, seed, fmt):
    rng = np.random.default_rng(seed)
    pool = ["AVAL", "AVAR", "ASHL", "RIML", "AWCL", "ASEL"]
    names = tuple(n if rng.random() < 0.6 else None for n in rng.permutation(pool)[:N])
    t = np.arange(T) / fps
    stim = R.Stimulus("CuSO4", ((float(t[0]), float(t[T // 2]) + 1e-3),), conc)
    r = R.Recording(traces=rng.normal(size=(T, N)), neuron_names=names, time_s=t, fps=fps,
                    stimuli=(stim,), states=rng.integers(-1, 2, T), state_names=("fwd", "rev"))
    back = R.load(R.save(r, tmp_path / f"fz{seed}.{fmt}"))
    np.testing.assert_allclose(back.traces, r.traces, atol=1e-6)
    assert back.neuron_names == r.neuron_names and back.fps == pytest.approx(fps)
    np.testing.assert_array_equal(back.stimulus_mask(stim.label), r.stimulus_mask(stim.label))
    np.testing.assert_array_equal(back.state_labels, r.state_labels)


def test_nwb_roundtrip_with_no_labelled_state(tmp_path):
    """Found by the fuzz test: all frames unlabelled (-1) used to crash the NWB writer."""
    t = np.arange(3) / 1.0
    r = R.Recording(traces=np.ones((3, 2)) + np.arange(2), neuron_names=("AVAL", None),
                    time_s=t, fps=1.0, states=np.full(3, -1), state_names=("fwd", "rev"))
    back = R.load(R.save(r, tmp_path / "unlabelled.nwb"))
    np.testing.assert_array_equal(back.state_labels, r.state_labels)
