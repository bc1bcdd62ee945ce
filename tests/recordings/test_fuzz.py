"""Property-based fuzz of every recordings/behaviour loader (issue 21), fixed CI budget.

For each loader, hypothesis feeds (1) random bytes, (2) valid files truncated and overwritten
at random offsets and (3) structurally well-formed files whose arrays have wrong shapes, wrong
dtypes, NaN and inf. The only acceptable outcomes are a valid recording (checked against the
data model's invariants, with an identity taken from the file) or a documented error:
:class:`wormlab.recordings.RecordingError` for the recordings loaders, ``ValueError`` (of which
``RecordingError`` is one) for the behaviour loader. Anything else is a crash.

The budget is fixed (``max_examples`` per test, ``derandomize=True``, no example database), so
CI runs the same inputs every time. ``pytest -s`` prints the inputs, valid recordings, errors
and crashes per loader.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import h5py
import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wormlab import recordings as R
from wormlab.recordings._formats import _write_mat73

from .conftest import make_recording
from .test_identity import flavell_h5, kato_npz

#: examples per (loader, strategy); nwb reading costs ~10x the others, so it gets fewer.
BUDGET = {"npz": 40, "kato_npz": 40, "csv": 40, "mat7": 40, "mat73": 40, "nwb": 20,
          "flavell_h5": 40, "behaviour": 30}
LOADERS = list(BUDGET)
SUFFIX = {"npz": ".npz", "kato_npz": ".npz", "csv": ".csv", "mat7": ".mat", "mat73": ".mat",
          "nwb": ".nwb", "flavell_h5": "-data.h5", "behaviour": ".npz"}

#: loader -> outcome -> count, printed at the end of the module
COUNTS: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_serial = itertools.count()
GENERIC: list[str] = []


def fuzz_settings(loader):
    return settings(max_examples=BUDGET[loader], derandomize=True, deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    yield d
    lines = [f"{'loader':<12} {'strategy':<10} {'inputs':>6} {'valid':>6} {'errors':>6} "
             f"{'generic':>7} {'crashes':>7}"]
    for key in sorted(COUNTS):
        c = COUNTS[key]
        lines.append(f"{key[0]:<12} {key[1]:<10} {c['inputs']:>6} {c['valid']:>6} "
                     f"{c['error']:>6} {c['generic']:>7} {c['crash']:>7}")
    print("\nfuzz outcomes per loader (generic = errors in the catch-all wording)\n"
          + "\n".join(lines))
    for g in GENERIC[:40]:
        print("  generic:", g)


def _base_file(workdir, loader):
    """One valid file per loader (written once)."""
    p = workdir / f"base_{loader}{SUFFIX[loader]}"
    if p.exists():
        return p
    rec = make_recording(T=30, N=5)
    if loader in ("kato_npz", "behaviour"):
        kato_npz(p, T=30)
    elif loader == "flavell_h5":
        flavell_h5(p, T=30)
    else:
        kw = {"mat7": {"version": "7"}, "mat73": {"version": "7.3"}}.get(loader, {})
        R.save(rec, p, **kw)
    return p


def _load(loader, path):
    if loader == "behaviour":
        from wormlab.behaviour import load_worms

        return load_worms([path])[0]
    return R.load(path)


def _check_valid(loader, out):
    if loader == "behaviour":
        from wormlab.behaviour import Worm

        assert isinstance(out, Worm) and out.worm_id and not out.worm_id.endswith("/")
        assert out.traces.ndim == 2 and len(out.names) == out.traces.shape[1]
        assert np.isfinite(out.fps) and out.fps > 0
        return
    assert isinstance(out, R.Recording)
    T, N = out.traces.shape
    assert T >= 2 and N >= 1 and len(out.neuron_names) == N == len(out.roi_labels)
    assert out.worm_id, "identity must come from the file"
    assert not np.isinf(out.traces).any() and not np.isnan(out.traces).all(axis=0).any()
    assert np.all(np.diff(out.time_s) > 0) and np.isfinite(out.fps) and out.fps > 0
    ident = [n for n in out.neuron_names if n is not None]
    assert len(set(ident)) == len(ident) and all(R.is_neuron(n) for n in ident)


def run_one(workdir, loader, strategy, data: bytes | None = None, write=None):
    """Write one input, load it, classify the outcome; crashes are counted and re-raised."""
    path = workdir / f"in{next(_serial)}_{loader}{SUFFIX[loader]}"
    if data is not None:
        path.write_bytes(data)
    else:
        write(path)
    counts = COUNTS[(loader, strategy)]
    counts["inputs"] += 1
    documented = ValueError if loader == "behaviour" else R.RecordingError
    try:
        out = _load(loader, path)
    except documented as exc:
        counts["error"] += 1
        assert str(exc).strip(), "errors must say what is wrong"
        if "unreadable, truncated or corrupt file (" in str(exc):
            counts["generic"] += 1  # the catch-all wording, not a field-specific message
            GENERIC.append(f"{loader}/{strategy}: {str(exc)[-160:]}")
        if isinstance(exc, R.RecordingError):
            assert path.name in str(exc), f"error does not name the file: {exc}"
        return
    except BaseException:
        counts["crash"] += 1
        raise
    finally:
        path.unlink(missing_ok=True)
    try:
        _check_valid(loader, out)
    except AssertionError:
        counts["crash"] += 1
        raise
    counts["valid"] += 1


# ---------------------------------------------------------------- (1) random bytes
@pytest.mark.parametrize("loader", LOADERS)
def test_random_bytes(workdir, loader):
    @fuzz_settings(loader)
    @given(blob=st.binary(max_size=4096))
    def run(blob):
        run_one(workdir, loader, "bytes", data=blob)

    run()


# ---------------------------------------------------------------- (2) damaged valid files
@pytest.mark.parametrize("loader", LOADERS)
def test_truncated_and_overwritten_files(workdir, loader):
    raw = _base_file(workdir, loader).read_bytes()

    @fuzz_settings(loader)
    @given(cut=st.integers(0, len(raw)),
           edits=st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)),
                          max_size=8))
    def run(cut, edits):
        b = bytearray(raw)
        for i, v in edits:
            b[i] = v
        run_one(workdir, loader, "damaged", data=bytes(b[:cut]))

    run()


# ---------------------------------------------------------------- (3) wrong shapes/dtypes/NaN
# Each example breaks at most one field of an otherwise valid file (a third break nothing), so
# every check behind the parser is reached; ``bad`` says which field, ``arrays`` how.
DTYPES = ["float32", "float64", "int8", "int64", "bool", "complex64", "U4"]


@st.composite
def arrays(draw, valid, bad=False):
    """``valid`` itself, or when ``bad``: NaN/inf sprinkled in, a wrong shape, a wrong dtype
    or a scalar."""
    valid = np.asarray(valid)
    if not bad:
        return valid.copy()
    kind = draw(st.sampled_from(["nan", "shape", "dtype", "scalar"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "nan":
        a = valid.astype(float)
        if a.size:
            a.reshape(-1)[rng.integers(0, a.size, max(1, a.size // 3))] = draw(
                st.sampled_from([np.nan, np.inf, -np.inf]))
        return a
    if kind == "dtype":
        dt = draw(st.sampled_from(DTYPES))
        return valid.astype(str).astype(dt) if dt == "U4" else valid.astype(dt)
    shape = () if kind == "scalar" else tuple(draw(st.lists(st.integers(0, 6), max_size=3)))
    return rng.normal(size=shape)


def _which(draw, fields):
    return draw(st.sampled_from([None] * max(1, len(fields) // 2) + list(fields)))


VALID_NAMES = ["AVAL", "", "RIML", "VB02", "AVBL", ""]


def _names(draw, n, bad=False):
    """Valid names (unique neurons or unidentified ROIs) for ``n`` columns, or when ``bad`` a
    list that may have the wrong length, misspellings or duplicates."""
    if not bad:
        return VALID_NAMES[:n]
    pool = ["AVAL", "AVAR", "RIML", "AVAK", "aval", "", "17", "SMB?", "VB02"]
    return [draw(st.sampled_from(pool)) for _ in range(draw(st.integers(0, n + 1)))]


def _traces(T, N):
    return np.random.default_rng(T * 100 + N).normal(size=(T, N))


@st.composite
def kato_npz_writer(draw, T=20, N=4):
    bad = _which(draw, ["traces", "names", "states", "snames", "fps", "drop"])
    snames = ["fwd", "rev1"] if bad != "snames" else draw(
        st.lists(st.sampled_from(["fwd", "rev1", "x", ""]), max_size=3))
    arrs = {"traces_dFF_bc": draw(arrays(_traces(T, N).astype(np.float32), bad == "traces")),
            "neuron_names": np.array(_names(draw, N, bad == "names")),
            "state_index": draw(arrays((np.arange(T) % 2).astype(np.int8), bad == "states")),
            "state_names": np.array(snames), "fps": draw(arrays(2.905, bad == "fps"))}
    if bad == "drop":
        del arrs[draw(st.sampled_from(sorted(arrs)))]
    return lambda p: np.savez(p, **arrs)


@st.composite
def npz_writer(draw, T=20, N=4):
    rec = make_recording(T=T, N=N)
    bad = _which(draw, ["traces", "time", "states", "names", "fps", "drop"])
    head = {"format": "wormlab.recording/1", "fps": 2.0,
            "neuron_names": _names(draw, N, bad == "names"), "roi_labels": [],
            "state_names": ["fwd", "rev"], "stimuli": [], "behaviour": [], "dataset": "",
            "worm_id": "", "strain": "", "signal": "", "provenance": "", "citation": "",
            "synthetic": False, "ground_truth": {}, "meta": {}}
    if bad == "fps":
        head["fps"] = draw(st.sampled_from([0.0, -1.0, float("nan"), "x", None, 7.0]))
    if bad == "drop":
        del head[draw(st.sampled_from(sorted(head)))]
    arrs = {"traces": draw(arrays(rec.traces, bad == "traces")),
            "time_s": draw(arrays(rec.time_s, bad == "time")),
            "states": draw(arrays(np.arange(T) % 2, bad == "states")),
            "header": np.array(json.dumps(head))}
    return lambda p: np.savez(p, **arrs)


@st.composite
def csv_writer(draw):
    n = draw(st.integers(1, 4))
    bad = _which(draw, ["names", "cells", "ragged", "time"])
    header = ["time_s", *(_names(draw, n, bad == "names") or ["AVAL"])]
    good = st.sampled_from(["0.5", "1", "-3e5", "nan", "2"])
    cells = st.sampled_from(["0.5", "1", "nan", "inf", "", "x", "1e400"]) if bad == "cells" \
        else good
    width = len(header) - 1
    rows = draw(st.lists(st.lists(cells, min_size=width, max_size=width + (bad == "ragged")),
                         min_size=2, max_size=6))
    times = [str(i * 0.5) for i in range(len(rows))]
    if bad == "time":
        times = [draw(st.sampled_from(["0", "nan", "-1", "x", t])) for t in times]
    text = "\n".join(",".join(r) for r in [header, *([t, *r] for t, r in zip(times, rows))])
    return lambda p: p.write_text(text)


@st.composite
def kato_fields(draw, T=20, N=3):
    bad = _which(draw, ["traces", "dif", "ids", "time", "fps", "states", "stim", "drop"])
    x = _traces(T, N)
    f = {"traces": draw(arrays(x, bad == "traces")),
         "tracesDif": draw(arrays(np.diff(x, axis=0), bad == "dif")),
         "IDs": _names(draw, N, bad == "ids") or ["AVAL"],
         "timeVectorSeconds": draw(arrays(np.arange(T) / 2, bad == "time")),
         "fps": draw(arrays(2.0, bad == "fps")),
         "States": {"fwd": draw(arrays((np.arange(T) % 2).astype(float), bad == "states")),
                    "rev": 1.0 - np.arange(T) % 2},
         "stimulus": {"identity": "O2", "conc": draw(arrays(21.0, bad == "stim")),
                      "switchtimes": np.array([3.0, 6.0, 9.0])}}
    if bad == "drop":
        del f[draw(st.sampled_from(sorted(f)))]
    return f


def _real(f):
    """savemat/the v7.3 writer store real numbers (complex/str arrays -> float or zeros)."""
    out = {}
    for k, v in f.items():
        if isinstance(v, np.ndarray) and v.dtype.kind == "c":
            v = v.real
        if isinstance(v, np.ndarray) and v.dtype.kind == "U":
            v = np.zeros(v.shape)
        out[k] = _real(v) if isinstance(v, dict) else v
    return out


@st.composite
def mat7_writer(draw):
    f = _real(draw(kato_fields()))
    if "IDs" in f:
        cell = np.empty((1, len(f["IDs"])), dtype=object)
        for i, v in enumerate(f["IDs"]):
            cell[0, i] = np.array([v], dtype=object) if v else np.zeros((0, 0))
        f["IDs"] = cell
    return lambda p: scipy.io.savemat(str(p), {"wbdataset": f})


@st.composite
def mat73_writer(draw):
    f = _real(draw(kato_fields()))
    return lambda p: _write_mat73(p, {"wbdataset": f})


def _h5(v):
    return v.astype("S4") if v.dtype.kind == "U" else v


@st.composite
def flavell_writer(draw, T=20, N=4):
    bad = _which(draw, ["traces", "time", "rev", "vel", "food", "drop"])
    f = {"gcamp/trace_array": draw(arrays(_traces(T, N), bad == "traces")),
         "timing/timestamp_confocal": draw(arrays(1000 + 0.6 * np.arange(T), bad == "time")),
         "behavior/reversal_vec": draw(arrays((np.arange(T) % 10 < 3).astype(int), bad == "rev")),
         "behavior/velocity": draw(arrays(np.zeros(T), bad == "vel")),
         "timing/time_food_encounter": draw(arrays(np.array([5]), bad == "food"))}
    if bad == "drop":
        del f[draw(st.sampled_from(sorted(f)))]

    def write(p):
        with h5py.File(p, "w") as h:
            for k, v in f.items():
                h[k] = _h5(v)
    return write


@st.composite
def nwb_writer(draw, base):
    """A valid NWB file whose activity data, timestamps or names are replaced in place."""
    bad = _which(draw, ["data", "time", "names"])
    data = draw(arrays(_traces(30, 5), bad == "data"))
    ts = draw(arrays(np.arange(30) / 2.0, bad == "time"))
    names = _names(draw, 5, bad == "names")

    def write(p):
        p.write_bytes(base.read_bytes())
        with h5py.File(p, "r+") as f:
            roi = "processing/ophys/ImageSegmentation/neurons/neuron_name"
            act = "processing/ophys/DfOverF/activity/"
            for key, value in ((act + "data", _h5(data)), (act + "timestamps", _h5(ts)),
                               (roi, np.array(names, dtype=h5py.string_dtype()))):
                attrs = dict(f[key].attrs)  # NWB needs its type attributes back
                del f[key]
                f[key] = value
                f[key].attrs.update(attrs)
    return write


@pytest.mark.parametrize("loader", LOADERS)
def test_wrong_shapes_dtypes_and_nan(workdir, loader):
    base = _base_file(workdir, loader)
    writer = {"npz": npz_writer(), "kato_npz": kato_npz_writer(), "csv": csv_writer(),
              "mat7": mat7_writer(), "mat73": mat73_writer(), "nwb": nwb_writer(base),
              "flavell_h5": flavell_writer(), "behaviour": kato_npz_writer()}[loader]

    @fuzz_settings(loader)
    @given(write=writer)
    def run(write):
        run_one(workdir, loader, "structure", write=write)

    run()
    # the structured strategy must reach past the file parser: some inputs are valid
    assert COUNTS[(loader, "structure")]["valid"] > 0, dict(COUNTS[(loader, "structure")])
