"""Readers and writers for the file formats recordings come in: NPZ, CSV, Kato .mat, NWB.

Every reader turns a malformed file into :class:`RecordingError` naming the file and the
problem (the data model then validates shapes, names, NaN-only neurons and fps/time).
Writers are atomic (:func:`wormlab.runs.atomic_path`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from wormlab.recordings._model import Recording, RecordingError, Stimulus
from wormlab.runs import atomic_path

NPZ_FORMAT = "wormlab.recording/1"


# ====================================================================== NPZ (wormlab's own)
def _header(rec: Recording) -> dict[str, Any]:
    return {
        "format": NPZ_FORMAT,
        "fps": rec.fps,
        "neuron_names": list(rec.neuron_names),
        "roi_labels": list(rec.roi_labels),
        "state_names": list(rec.state_names),
        "stimuli": [
            {"name": s.name, "intervals_s": [list(iv) for iv in s.intervals_s],
             "concentration": s.concentration, "unit": s.unit}
            for s in rec.stimuli
        ],
        "behaviour": list(rec.behaviour),
        "dataset": rec.dataset,
        "worm_id": rec.worm_id,
        "strain": rec.strain,
        "signal": rec.signal,
        "provenance": rec.provenance,
        "citation": rec.citation,
        "synthetic": rec.synthetic,
        "ground_truth": {k: list(v) for k, v in rec.ground_truth.items()},
        "meta": rec.meta,
    }


def save_npz(rec: Recording, path: str | Path) -> Path:
    """Write ``rec`` to a wormlab NPZ (no pickle: arrays + one JSON header string)."""
    path = Path(path)
    _check_synthetic_name(rec, path)
    arrays = {"traces": np.asarray(rec.traces), "time_s": np.asarray(rec.time_s)}
    if rec.states is not None:
        arrays["states"] = np.asarray(rec.states)
    for k, v in rec.behaviour.items():
        arrays[f"behaviour/{k}"] = np.asarray(v)
    arrays["header"] = np.array(json.dumps(_header(rec), default=_json_default))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return path


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-able: {type(o).__name__}")


def _require_zip(path: Path) -> None:
    """NPZ files are zip archives: say so plainly instead of numpy's pickle/EOF messages."""
    if not zipfile.is_zipfile(path):
        raise RecordingError(f"{path}: not an NPZ file (no complete zip archive: empty, "
                             "truncated or another format)")


def _load_npz_impl(path: str | Path) -> Recording:
    """Read a wormlab NPZ written by :func:`save_npz`."""
    path = Path(path)
    _require_zip(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if "header" not in files or "traces" not in files or "time_s" not in files:
                raise RecordingError(
                    f"{path}: not a wormlab recording NPZ (needs header, traces, time_s; has "
                    f"{sorted(files)[:8]})"
                )
            head = json.loads(str(z["header"]))
            if not isinstance(head, dict):
                raise RecordingError(f"{path}: header is a JSON {type(head).__name__}, not an "
                                     "object")
            traces = z["traces"]
            time_s = z["time_s"]
            states = z["states"] if "states" in files else None
            beh = {k[len("behaviour/"):]: z[k] for k in files if k.startswith("behaviour/")}
    except RecordingError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise RecordingError(f"{path}: unreadable or truncated NPZ ({exc})") from exc
    if head.get("format") != NPZ_FORMAT:
        raise RecordingError(f"{path}: header format {head.get('format')!r} != {NPZ_FORMAT!r}")
    try:
        stimuli = tuple(
            Stimulus(s["name"], tuple(map(tuple, s["intervals_s"])), s["concentration"], s["unit"])
            for s in head["stimuli"]
        )
        return Recording(
            traces=traces,
            neuron_names=tuple(head["neuron_names"]),
            roi_labels=tuple(head["roi_labels"]),
            time_s=time_s,
            fps=head["fps"],
            stimuli=stimuli,
            states=states,
            state_names=tuple(head["state_names"]),
            behaviour=beh,
            dataset=head["dataset"],
            worm_id=head["worm_id"] or path.stem,
            strain=head["strain"],
            signal=head["signal"],
            provenance=head["provenance"],
            citation=head["citation"],
            synthetic=head["synthetic"],
            ground_truth=head["ground_truth"],
            meta=head["meta"],
        )
    except KeyError as exc:
        raise RecordingError(f"{path}: header lacks field {exc}") from exc
    except RecordingError as exc:
        raise RecordingError(f"{path}: {exc}") from exc


# ====================================================================== CSV
def save_csv(rec: Recording, path: str | Path) -> Path:
    """Write a plain CSV: ``time_s``, one column per neuron (name or ROI label), ``state``.

    Unidentified columns are written as ``roi:<label>``. Stimuli and metadata are not kept
    (use NPZ or NWB for those).
    """
    path = Path(path)
    _check_synthetic_name(rec, path)
    cols = [n if n is not None else f"roi:{lab}" for n, lab in zip(rec.neuron_names,
                                                                   rec.roi_labels)]
    header = ["time_s", *cols] + (["state"] if rec.states is not None else [])
    labels = rec.state_labels
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for t in range(rec.n_frames):
            row = [repr(float(rec.time_s[t]))] + [
                "nan" if math.isnan(v) else repr(float(v)) for v in rec.traces[t]
            ]
            if rec.states is not None:
                row.append(labels[t])
            w.writerow(row)
    return path


def _load_csv_impl(
    path: str | Path,
    *,
    fps: float | None = None,
    time_column: str = "time_s",
    state_column: str = "state",
    **fields: Any,
) -> Recording:
    """Read a plain CSV: a header row of neuron names, one row per frame.

    Columns: optional ``time_column`` (seconds; else ``fps`` is required and time = frame/fps),
    optional ``state_column`` (state name per frame, empty = unlabelled), every other column a
    neuron. A header ``roi:<label>`` or a purely numeric header means "unidentified".
    ``fields`` are passed on to :class:`Recording` (``dataset``, ``citation``, ...); the
    recording's ``worm_id`` is the file name without suffix unless ``worm_id=`` is given.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # spreadsheets write a BOM
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: unreadable CSV ({exc})") from exc
    if len(rows) < 3:
        raise RecordingError(f"{path}: a CSV recording needs a header and >= 2 frames")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if r]
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise RecordingError(
                f"{path}: row {i + 2} has {len(r)} fields, header has {len(header)} "
                "(truncated or ragged file?)"
            )
    state_col = header.index(state_column) if state_column in header else None
    time_col = header.index(time_column) if time_column in header else None
    neuron_cols = [j for j in range(len(header)) if j not in (state_col, time_col)]
    if not neuron_cols:
        raise RecordingError(f"{path}: no neuron columns")
    try:
        x = np.array([[float(r[j]) for j in neuron_cols] for r in body], dtype=np.float32)
        t = np.array([float(r[time_col]) for r in body]) if time_col is not None else None
    except ValueError as exc:
        raise RecordingError(f"{path}: non-numeric value ({exc})") from exc
    if t is None:
        if fps is None:
            raise RecordingError(f"{path}: no {time_column!r} column; pass fps=")
        t = np.arange(len(body)) / float(fps)
    elif fps is None:
        d = np.diff(t)
        if len(d) == 0 or not np.all(np.isfinite(d)) or np.median(d) <= 0:
            raise RecordingError(f"{path}: column {time_column!r} does not increase")
        fps = 1.0 / float(np.median(d))
    names: list[str | None] = []
    labels: list[str] = []
    for j in neuron_cols:
        h = header[j]
        if h.startswith("roi:"):
            names.append(None)
            labels.append(h[4:])
        elif h.isdigit() or not h:
            names.append(None)
            labels.append(h or str(j))
        else:
            names.append(h)
            labels.append(h)
    states, snames = None, ()
    if state_col is not None:
        raw = [r[state_col].strip() for r in body]
        snames = tuple(sorted({s for s in raw if s}))
        states = np.array([snames.index(s) if s else -1 for s in raw], dtype=np.int64)
    try:
        return Recording(
            traces=x,
            neuron_names=tuple(names),
            roi_labels=tuple(labels),
            time_s=t,
            fps=fps,
            states=states,
            state_names=snames,
            provenance=fields.pop("provenance", f"CSV {path.name}"),
            worm_id=fields.pop("worm_id", path.stem),
            **fields,
        )
    except RecordingError as exc:
        raise RecordingError(f"{path}: {exc}") from exc


# ====================================================================== Kato / Zimmer .mat
def _h5_to_py(f, obj):
    """MATLAB v7.3 (HDF5) object -> python (dicts, lists, arrays, str), like simplify_cells."""
    import h5py

    if isinstance(obj, h5py.Group):
        return {k: _h5_to_py(f, v) for k, v in obj.items() if not k.startswith("#")}
    cls = obj.attrs.get("MATLAB_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    if obj.attrs.get("MATLAB_empty", 0):
        return "" if cls == "char" else np.zeros(0)
    data = obj[()]
    if cls == "cell" or data.dtype == h5py.ref_dtype:
        arr = np.asarray(data).T
        flat = [_h5_to_py(f, f[r]) for r in arr.reshape(-1)]
        if arr.size == 1:
            return [flat[0]]
        return flat
    if cls == "char":
        a = np.asarray(data).T
        if a.ndim == 2 and a.shape[0] > 1:
            return ["".join(chr(c) for c in row).rstrip() for row in a]
        return "".join(chr(int(c)) for c in a.reshape(-1))
    a = np.asarray(data).T
    if cls == "logical":
        a = a.astype(bool)
    if a.size == 1:
        return a.reshape(-1)[0].item()
    return np.squeeze(a) if 1 in a.shape and a.ndim == 2 and min(a.shape) == 1 else a


def _cells_to_lists(v):
    """scipy's simplify_cells leaves cell arrays of matrices as object arrays: make lists."""
    if isinstance(v, dict):
        return {k: _cells_to_lists(x) for k, x in v.items()}
    if isinstance(v, np.ndarray) and v.dtype == object:
        return [_cells_to_lists(x) for x in v.reshape(-1)]
    if isinstance(v, list):
        return [_cells_to_lists(x) for x in v]
    return v


def _read_mat(path: Path) -> dict[str, Any]:
    import scipy.io

    try:
        return {
            k: _cells_to_lists(v)
            for k, v in scipy.io.loadmat(str(path), simplify_cells=True).items()
            if not k.startswith("__")
        }
    except NotImplementedError:  # v7.3: an HDF5 file
        import h5py

        try:
            with h5py.File(path, "r") as f:
                return {k: _h5_to_py(f, v) for k, v in f.items() if not k.startswith("#")}
        except OSError as exc:
            raise RecordingError(f"{path}: unreadable MATLAB v7.3/HDF5 file ({exc})") from exc
    except (ValueError, OSError, TypeError, EOFError, IndexError, KeyError, zlib.error,
            scipy.io.matlab.MatReadError) as exc:
        raise RecordingError(f"{path}: unreadable or truncated .mat file ({exc})") from exc


_KATO_FIELDS = ("traces", "IDs", "timeVectorSeconds")


def _find_kato_struct(d: dict, path: Path) -> dict:
    if all(k in d for k in ("traces", "timeVectorSeconds")):
        return d
    cands = [v for v in d.values() if isinstance(v, dict) and "traces" in v]
    if len(cands) == 1:
        return cands[0]
    raise RecordingError(
        f"{path}: no Kato/Zimmer struct with fields {list(_KATO_FIELDS)} (top-level keys: "
        f"{sorted(d)[:10]})"
    )


def _id_of(entry) -> tuple[str | None, str]:
    """One ``IDs`` cell -> (identity or None, ROI label). Several candidates = ambiguous."""
    if entry is None:
        return None, ""
    if isinstance(entry, str):
        return (entry.strip() or None), entry.strip()
    if isinstance(entry, np.ndarray):
        entry = entry.tolist() if entry.size else []
    if isinstance(entry, list | tuple):
        flat = [e.strip() for e in entry if isinstance(e, str) and e.strip()]
        if len(flat) == 1:
            return flat[0], flat[0]
        if len(flat) > 1:
            return None, "/".join(flat)
        return None, ""
    if isinstance(entry, float | int) and not (isinstance(entry, float) and math.isnan(entry)):
        return None, str(entry)
    return None, ""


def _kato_stimuli(stim, t0: float) -> tuple[Stimulus, ...]:
    if stim is None or (isinstance(stim, np.ndarray) and stim.size == 0):
        return ()
    items = stim if isinstance(stim, list) else [stim]
    out = []
    for s in items:
        if not isinstance(s, dict):
            raise RecordingError(f"stimulus must be a struct, got {type(s).__name__}")
        name = s.get("identity") or s.get("name") or s.get("type") or "stimulus"
        conc = s.get("conc", s.get("concentration"))
        if conc is not None and np.size(conc) and np.isnan(np.asarray(conc, float)).all():
            conc = None  # written as NaN when there is no concentration
        conc = None if conc is None or (isinstance(conc, np.ndarray) and conc.size == 0) else conc
        if "onoff" in s:
            iv = np.asarray(s["onoff"], dtype=float).reshape(-1, 2)
        else:
            sw = np.atleast_1d(np.asarray(s.get("switchtimes", []), dtype=float)).reshape(-1)
            init = s.get("initialstate", 0)
            on = bool(np.asarray(init).reshape(-1)[0]) if np.size(init) else False
            edges = np.concatenate([[t0], sw]) if on else sw
            if len(edges) % 2:
                edges = np.concatenate([edges, [np.inf]])
            iv = edges.reshape(-1, 2)
            iv = np.where(np.isinf(iv), 1e12, iv)
        out.append(Stimulus(str(name), tuple(map(tuple, iv)),
                            None if conc is None else float(np.asarray(conc).reshape(-1)[0])))
    return tuple(out)


def _kato_states(states, T: int, names_field=None):
    if states is None:
        return None, ()
    if isinstance(states, dict):  # one 0/1 vector per state name
        names = tuple(states)
        mat = np.zeros((T, len(names)), dtype=bool)
        for j, n in enumerate(names):
            v = np.asarray(states[n]).reshape(-1)
            if v.shape != (T,):
                raise RecordingError(f"States.{n} has {v.shape[0]} frames, traces have {T}")
            mat[:, j] = v.astype(bool)
        if (mat.sum(axis=1) > 1).any():
            raise RecordingError("States: some frames are in more than one state")
        idx = np.where(mat.any(axis=1), mat.argmax(axis=1), -1)
        return idx, names
    v = np.asarray(states, dtype=float).reshape(-1)
    if v.shape != (T,):
        raise RecordingError(f"States has {v.shape[0]} frames, traces have {T}")
    if names_field is None:
        raise RecordingError("States is a vector but no stateNames field names its values")
    names = tuple([names_field] if isinstance(names_field, str) else names_field)
    return v.astype(np.int64), names


def _load_kato_mat_impl(
    path: str | Path, *, worm: int | None = None, signal: str = "traces", **fields: Any
) -> Recording:
    """Read a Kato/Zimmer-lab ``.mat`` (v7 via scipy.io, v7.3/HDF5 via h5py).

    Expected fields, at top level or inside one struct (per-worm cell arrays allowed; pick
    with ``worm``): ``traces`` (T, N), ``tracesDif`` (T-1 or T, N), ``IDs`` (1 x N cell, each
    empty, a name, or several candidate names = ambiguous), ``timeVectorSeconds`` (T),
    ``fps``, optional ``stimulus`` (struct: ``identity``, ``conc``, ``switchtimes`` s,
    ``initialstate``; or ``onoff`` K x 2 s) and optional ``States`` (struct of 0/1 vectors per
    state, or an index vector with ``stateNames``).

    Args:
        worm: which worm of a combined file (one cell per worm in every field; default 0).
        signal: ``"traces"`` or ``"tracesDif"`` (its frames are aligned to ``time[1:]`` when
            it has T-1 rows).

    The recording's ``worm_id`` comes from the file: its name without suffix, plus
    ``_worm<k>`` for a combined file (unless ``worm_id=`` is given).
    """
    path = Path(path)
    if signal not in ("traces", "tracesDif"):
        raise ValueError(f"signal must be 'traces' or 'tracesDif', got {signal!r}")
    d = _find_kato_struct(_read_mat(path), path)
    missing = [k for k in _KATO_FIELDS if k not in d]
    if missing:
        raise RecordingError(f"{path}: Kato struct lacks fields {missing}")

    multi = isinstance(d.get("traces"), list)
    if worm not in (None, 0) and not multi:
        raise RecordingError(f"{path}: worm={worm} given but the file holds one worm")
    worm = 0 if worm is None else int(worm)

    def pick(key):
        v = d.get(key)
        if multi and isinstance(v, list):
            if not 0 <= worm < len(v):
                raise RecordingError(f"{path}: worm {worm} not in 0..{len(v) - 1}")
            return v[worm]
        return v

    def numeric(key, value):
        try:
            return np.asarray(value, dtype=float)
        except (TypeError, ValueError) as exc:
            raise RecordingError(f"{path}: field {key!r} is not numeric ({exc})") from exc

    if signal not in d:
        raise RecordingError(f"{path}: no field {signal!r}")
    x = numeric(signal, pick(signal))
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise RecordingError(f"{path}: {signal} must be (T frames, N neurons), got shape "
                             f"{x.shape}")
    t = numeric("timeVectorSeconds", pick("timeVectorSeconds")).reshape(-1)
    ids = pick("IDs")
    if x.shape[1] == 1 and not (isinstance(ids, list) and len(ids) == 1):
        ids = [ids]  # MATLAB/scipy squeeze a 1 x 1 cell to its content
    ids = [ids] if isinstance(ids, str) else list(ids) if ids is not None else []
    if len(ids) != x.shape[1]:
        raise RecordingError(f"{path}: {len(ids)} IDs for {x.shape[1]} trace columns")
    T = T_full = len(t)
    if signal == "tracesDif" and x.shape[0] == T - 1:
        t = t[1:]
        T -= 1
    if x.shape[0] != T:
        raise RecordingError(
            f"{path}: {signal} has {x.shape[0]} frames but timeVectorSeconds has {T}"
        )
    if "tracesDif" in d and signal == "traces":
        dif = numeric("tracesDif", pick("tracesDif"))
        if dif.ndim == 1:
            dif = dif[:, None]
        if dif.ndim != 2 or dif.shape[1] != x.shape[1] or dif.shape[0] not in (T - 1, T):
            raise RecordingError(
                f"{path}: tracesDif shape {dif.shape} does not match traces {x.shape}"
            )
    fps = pick("fps")
    if fps is None:
        med = float(np.median(np.diff(t))) if len(t) > 1 else float("nan")
        if not med > 0:
            raise RecordingError(f"{path}: no fps field and timeVectorSeconds does not increase")
        fps = 1.0 / med
    fps_a = numeric("fps", fps).reshape(-1)
    if fps_a.size != 1:
        raise RecordingError(f"{path}: fps must be one number, got {fps_a.size} values")
    fps = float(fps_a[0])
    pairs = [_id_of(e) for e in ids]
    names = tuple(p[0] for p in pairs)
    labels = tuple(p[1] or str(i + 1) for i, p in enumerate(pairs))
    try:
        states, snames = _kato_states(pick("States"), T_full, d.get("stateNames"))
        if states is not None and len(states) == T + 1:
            states = states[1:]
        stimuli = _kato_stimuli(pick("stimulus"), float(t[0]))
        return Recording(
            traces=x,
            neuron_names=names,
            roi_labels=labels,
            time_s=t,
            fps=fps,
            stimuli=stimuli,
            states=states,
            state_names=snames,
            signal=fields.pop("signal_label", f"Kato/Zimmer {signal}"),
            provenance=fields.pop("provenance", f"Kato/Zimmer .mat {path.name}"),
            worm_id=fields.pop("worm_id", f"{path.stem}_worm{worm}" if multi else path.stem),
            **fields,
        )
    except RecordingError as exc:
        raise RecordingError(f"{path}: {exc}") from exc


def save_kato_mat(rec: Recording, path: str | Path, *, version: str = "7") -> Path:
    """Write ``rec`` as a Kato/Zimmer-style ``.mat`` (``version`` ``"7"`` or ``"7.3"``).

    Fields: traces, tracesDif (frame differences), IDs, timeVectorSeconds, fps, stimulus
    (identity, conc, onoff), States (0/1 vector per state). Used by the tests to make files in
    the real format; v7.3 files follow MATLAB's HDF5 layout (512-byte user block, MATLAB_class
    attributes, column-major arrays, cells as object references in ``#refs#``).
    """
    path = Path(path)
    _check_synthetic_name(rec, path)
    x = np.asarray(rec.traces, dtype=float)
    ids = [n if n is not None else "" for n in rec.neuron_names]
    stim = [
        {"identity": s.name, "conc": s.concentration if s.concentration is not None else np.nan,
         "onoff": np.asarray(s.intervals_s, dtype=float).reshape(-1, 2)}
        for s in rec.stimuli
    ]
    states = None
    if rec.states is not None:
        states = {n: (rec.states == i).astype(float) for i, n in enumerate(rec.state_names)}
    fields: dict[str, Any] = {
        "traces": x,
        "tracesDif": np.diff(x, axis=0),
        "IDs": ids,
        "timeVectorSeconds": np.asarray(rec.time_s, dtype=float),
        "fps": float(rec.fps),
    }
    if stim:
        fields["stimulus"] = stim[0] if len(stim) == 1 else stim
    if states is not None:
        fields["States"] = states
    if version == "7":
        import scipy.io

        mdict = dict(fields)
        cell = np.empty((1, len(ids)), dtype=object)
        for i, n in enumerate(ids):
            cell[0, i] = np.array([n], dtype=object) if n else np.zeros((0, 0))
        mdict["IDs"] = cell
        if stim and len(stim) > 1:
            sc = np.empty((1, len(stim)), dtype=object)
            for i, s in enumerate(stim):
                sc[0, i] = s
            mdict["stimulus"] = sc
        with atomic_path(path) as tmp:
            scipy.io.savemat(str(tmp), {"wbdataset": mdict}, do_compression=True)
        return path
    if version == "7.3":
        with atomic_path(path) as tmp:
            _write_mat73(tmp, {"wbdataset": fields})
        return path
    raise ValueError(f"version must be '7' or '7.3', got {version!r}")


def _write_mat73(path: Path, top: dict[str, Any]) -> None:
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        counter = [0]

        def put(parent, name, value):
            if isinstance(value, dict):
                g = parent.create_group(name)
                g.attrs["MATLAB_class"] = np.bytes_("struct")
                for k, v in value.items():
                    put(g, k, v)
                return
            if isinstance(value, list):
                rs = []
                for v in value:
                    counter[0] += 1
                    key = f"r{counter[0]}"
                    put(refs, key, v)
                    rs.append(refs[key].ref)
                arr = np.array(rs, dtype=h5py.ref_dtype).reshape(len(rs), 1)
                ds = parent.create_dataset(name, data=arr)
                ds.attrs["MATLAB_class"] = np.bytes_("cell")
                return
            if isinstance(value, str):
                if not value:
                    ds = parent.create_dataset(name, data=np.array([0, 0], dtype=np.uint64))
                    ds.attrs["MATLAB_class"] = np.bytes_("char")
                    ds.attrs["MATLAB_empty"] = np.uint8(1)
                    return
                codes = np.array([[ord(c)] for c in value], dtype=np.uint16)
                ds = parent.create_dataset(name, data=codes)
                ds.attrs["MATLAB_class"] = np.bytes_("char")
                return
            a = np.atleast_2d(np.asarray(value, dtype=float))
            if np.asarray(value).ndim == 1:
                a = a.T  # column vector, as MATLAB stores timeVectorSeconds
            ds = parent.create_dataset(name, data=a.T)  # column-major: h5 sees reversed dims
            ds.attrs["MATLAB_class"] = np.bytes_("double")

        for k, v in top.items():
            put(f, k, v)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: wormlab HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")


# ====================================================================== NWB
_NAME_COLUMNS = ("ID_labels", "neuron_name", "neuron_names", "labels", "label", "ID", "name")


def save_nwb(rec: Recording, path: str | Path) -> Path:
    """Write ``rec`` to NWB: ``processing/ophys`` with ImageSegmentation + a RoiResponseSeries
    (``DfOverF`` container) whose ROI table has a ``neuron_name`` column; stimuli and states as
    TimeIntervals (``intervals/stimuli``, ``intervals/behaviour_states``)."""
    import datetime as dt
    import warnings

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject
    from pynwb.ophys import DfOverF, ImageSegmentation, OpticalChannel, RoiResponseSeries

    path = Path(path)
    _check_synthetic_name(rec, path)
    nwb = NWBFile(
        session_description=f"wormlab recording {rec.name}"
        + (" (SYNTHETIC)" if rec.synthetic else ""),
        identifier=f"{rec.dataset or 'wormlab'}-{rec.worm_id or path.stem}",
        session_start_time=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        related_publications=[rec.citation] if rec.citation else None,
        notes=json.dumps({"synthetic": rec.synthetic, "provenance": rec.provenance,
                          "signal": rec.signal, "ground_truth": rec.ground_truth,
                          "roi_labels": list(rec.roi_labels)}),
    )
    # no worm_id: no subject_id either (a placeholder would give every such file one id)
    nwb.subject = Subject(subject_id=rec.worm_id or None, species="Caenorhabditis elegans",
                          strain=rec.strain or None, description=rec.dataset or None)
    device = nwb.create_device(name="microscope")
    ch = OpticalChannel(name="GCaMP", description="calcium indicator", emission_lambda=520.0)
    plane = nwb.create_imaging_plane(
        name="whole_brain", optical_channel=ch, description="whole-brain volume",
        device=device, excitation_lambda=488.0, imaging_rate=float(rec.fps),
        indicator="GCaMP", location="head",
    )
    mod = nwb.create_processing_module(name="ophys", description="calcium activity")
    seg = ImageSegmentation()
    mod.add(seg)
    ps = seg.create_plane_segmentation(name="neurons", description="ROIs", imaging_plane=plane)
    ps.add_column(name="neuron_name", description="identity ('' = unidentified)")
    for n in rec.neuron_names:
        ps.add_roi(voxel_mask=[(0, 0, 0, 1.0)], neuron_name=n or "")
    region = ps.create_roi_table_region(region=list(range(rec.n_neurons)), description="all")
    with warnings.catch_warnings():  # the region's table is linked before the file exists
        warnings.simplefilter("ignore", UserWarning)
        rrs = RoiResponseSeries(
                name="activity", data=np.asarray(rec.traces), rois=region, unit="dF/F",
            timestamps=np.asarray(rec.time_s), description=rec.signal or "calcium activity",
        )
        mod.add(DfOverF(roi_response_series=rrs))
    if rec.stimuli:
        ti = nwb.create_time_intervals(name="stimuli", description="stimulus on intervals")
        ti.add_column(name="stimulus", description="stimulus name")
        ti.add_column(name="concentration", description="concentration (NaN = none)")
        ti.add_column(name="unit", description="concentration unit")
        for s in rec.stimuli:
            for on, off in s.intervals_s:
                ti.add_row(start_time=on, stop_time=off, stimulus=s.name,
                           concentration=np.nan if s.concentration is None else s.concentration,
                           unit=s.unit)
    # an all-unlabelled state vector writes no table (NWB cannot store an empty typed column)
    if rec.states is not None and (rec.states >= 0).any():
        ti = nwb.create_time_intervals(name="behaviour_states", description="per-frame states")
        ti.add_column(name="state", description="behaviour state name")
        ti.add_column(name="frame", description="frame index")
        dtf = 1.0 / rec.fps
        for k in range(rec.n_frames):
            if rec.states[k] >= 0:
                ti.add_row(start_time=float(rec.time_s[k]), stop_time=float(rec.time_s[k]) + dtf,
                           state=rec.state_names[rec.states[k]], frame=k)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # the temporary file name does not end in '.nwb'
        warnings.simplefilter("ignore", UserWarning)
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)
    return path


def _load_nwb_impl(path: str | Path, *, series: str | None = None, **fields: Any) -> Recording:
    """Read calcium activity from an NWB file.

    Finds a ``RoiResponseSeries`` in the processing modules (``series`` picks one by name when
    there are several; an ``ophys`` / ``CalciumActivity`` module is preferred), time from its
    timestamps or ``starting_time`` + ``rate``, neuron names from a column of its ROI table
    (one of ``ID_labels``, ``neuron_name``, ``labels``, ...), stimuli from
    ``intervals/stimuli`` and states from ``intervals/behaviour_states`` when present.
    """
    from pynwb import NWBHDF5IO
    from pynwb.ophys import RoiResponseSeries

    path = Path(path)
    try:
        io = NWBHDF5IO(str(path), "r")
        nwb = io.read()
    except Exception as exc:  # h5py/hdmf raise many types for corrupt files
        raise RecordingError(f"{path}: unreadable or truncated NWB file ({exc})") from exc
    try:
        found = []
        for mname, mod in nwb.processing.items():
            for obj in mod.data_interfaces.values():
                children = [obj] if isinstance(obj, RoiResponseSeries) else [
                    c for c in getattr(obj, "roi_response_series", {}).values()
                ]
                found += [(mname, c) for c in children]
        if series is not None:
            found = [f for f in found if f[1].name == series]
        if not found:
            raise RecordingError(
                f"{path}: no RoiResponseSeries{f' named {series!r}' if series else ''} in the "
                f"processing modules {list(nwb.processing)}"
            )
        pref = [f for f in found if f[0].lower() in ("ophys", "calciumactivity")]
        if len(pref or found) > 1 and series is None:
            names = [f[1].name for f in (pref or found)]
            raise RecordingError(f"{path}: several RoiResponseSeries {names}; pass series=")
        _, rrs = (pref or found)[0]
        x = np.asarray(rrs.data[()], dtype=np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if rrs.timestamps is not None:
            t = np.asarray(rrs.timestamps[()], dtype=float)
        else:
            t = float(rrs.starting_time or 0.0) + np.arange(x.shape[0]) / float(rrs.rate)
        if t.shape[0] != x.shape[0]:
            raise RecordingError(
                f"{path}: {rrs.name} has {x.shape[0]} frames but {t.shape[0]} timestamps"
            )
        fps = float(rrs.rate) if rrs.rate is not None else None
        if fps is None:
            plane = None
            try:
                plane = rrs.rois.table.imaging_plane
            except AttributeError:
                pass
            rate = getattr(plane, "imaging_rate", None)
            fps = float(rate) if rate else 1.0 / float(np.median(np.diff(t)))
        table = rrs.rois.table
        rows = list(rrs.rois.data[()])
        col = next((c for c in _NAME_COLUMNS if c in table.colnames), None)
        if len(rows) != x.shape[1]:
            raise RecordingError(f"{path}: {len(rows)} ROIs for {x.shape[1]} trace columns")
        raw = [str(table[col][r]) for r in rows] if col else [""] * len(rows)
        names = tuple(n.strip() or None for n in raw)
        notes = {}
        try:
            notes = json.loads(nwb.notes) if nwb.notes else {}
        except (TypeError, ValueError):
            notes = {}
        labels = tuple(notes.get("roi_labels") or [n or str(i) for i, n in enumerate(names)])
        stimuli = []
        if "stimuli" in nwb.intervals:
            df = nwb.intervals["stimuli"].to_dataframe()
            for (nm, conc, unit), g in df.groupby(["stimulus", "concentration", "unit"],
                                                  dropna=False):
                c = None if conc is None or (isinstance(conc, float) and math.isnan(conc)) else conc
                stimuli.append(Stimulus(str(nm), tuple(zip(g.start_time, g.stop_time)), c,
                                        str(unit)))
        states, snames = None, ()
        if "behaviour_states" in nwb.intervals:
            df = nwb.intervals["behaviour_states"].to_dataframe()
            snames = tuple(sorted(set(df.state)))
            states = np.full(x.shape[0], -1, dtype=np.int64)
            frames = np.asarray(df.frame, dtype=int)
            if frames.size and (frames.min() < 0 or frames.max() >= x.shape[0]):
                raise RecordingError(f"{path}: behaviour_states frames outside 0..{x.shape[0]-1}")
            states[frames] = [snames.index(s) for s in df.state]
        subj = nwb.subject
        kw = dict(
            dataset=(subj.description if subj is not None and subj.description else ""),
            worm_id=(subj.subject_id if subj is not None and subj.subject_id else path.stem),
            strain=(subj.strain if subj is not None and subj.strain else ""),
            signal=notes.get("signal", rrs.description or ""),
            provenance=notes.get("provenance", f"NWB {path.name}"),
            citation="; ".join(nwb.related_publications or []),
            synthetic=bool(notes.get("synthetic", False)),
            ground_truth=notes.get("ground_truth", {}),
        )
        kw.update(fields)
        return Recording(
            traces=x, neuron_names=names, roi_labels=labels, time_s=t, fps=fps,
            stimuli=tuple(stimuli), states=states, state_names=snames, **kw,
        )
    except RecordingError as exc:
        if str(path) in str(exc):
            raise
        raise RecordingError(f"{path}: {exc}") from exc
    finally:
        io.close()


# ====================================================================== guarded public readers
@contextlib.contextmanager
def _reading(path: str | Path):
    """Turn any failure while parsing ``path`` into a RecordingError that names the file."""
    try:
        yield
    except FileNotFoundError:
        raise
    except RecordingError as exc:
        if str(path) in str(exc):
            raise
        raise RecordingError(f"{path}: {exc}") from exc
    except Exception as exc:  # corrupt files make h5py/scipy/zlib raise many types
        raise RecordingError(
            f"{path}: unreadable, truncated or corrupt file ({type(exc).__name__}: {exc})"
        ) from exc


def _exists(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return path


def _checked(rec: Recording, path: str | Path, unknown_names: str) -> Recording:
    from wormlab.recordings._names import check_names

    return check_names(rec, unknown_names, where=str(path))


def load_npz(path: str | Path, *, unknown_names: str = "error") -> Recording:
    """Read a wormlab NPZ written by :func:`save_npz`.

    ``unknown_names``: what to do with a neuron name that is not a connectome neuron
    (``"error"`` or ``"unidentified"``; :func:`wormlab.recordings.check_names`).
    """
    with _reading(_exists(path)):
        return _checked(_load_npz_impl(path), path, unknown_names)


def load_csv(path: str | Path, *, unknown_names: str = "error", **kwargs: Any) -> Recording:
    with _reading(_exists(path)):
        return _checked(_load_csv_impl(path, **kwargs), path, unknown_names)


def load_kato_mat(path: str | Path, *, unknown_names: str = "error", **kwargs: Any) -> Recording:
    if kwargs.get("signal", "traces") not in ("traces", "tracesDif"):
        raise ValueError(f"signal must be 'traces' or 'tracesDif', got {kwargs['signal']!r}")
    with _reading(_exists(path)):
        return _checked(_load_kato_mat_impl(path, **kwargs), path, unknown_names)


def load_nwb(path: str | Path, *, unknown_names: str = "error", **kwargs: Any) -> Recording:
    with _reading(_exists(path)):
        return _checked(_load_nwb_impl(path, **kwargs), path, unknown_names)


_NAMES_DOC = """
    ``unknown_names``: ``"error"`` (default) rejects a neuron name that is not one of the
    connectome's neurons, naming the column and close matches; ``"unidentified"`` keeps such
    columns as unidentified ROIs (text in ``roi_labels``, list in ``meta["unknown_names"]``).
    """
load_csv.__doc__ = (_load_csv_impl.__doc__ or "") + _NAMES_DOC
load_kato_mat.__doc__ = (_load_kato_mat_impl.__doc__ or "") + _NAMES_DOC
load_nwb.__doc__ = (_load_nwb_impl.__doc__ or "") + _NAMES_DOC


# ====================================================================== dispatch
def load(path: str | Path, **kwargs: Any) -> Recording:
    """Load any supported file by suffix: ``.npz`` (wormlab or Kato 2015 layout), ``.csv``,
    ``.mat`` (Kato/Zimmer v7 or v7.3), ``.nwb``, ``.h5`` (Flavell-lab ``*-data.h5``, any folder).

    The recording's identity (``worm_id``) comes from the file: its metadata where the format
    has it (wormlab NPZ header, NWB subject, Kato NPZ ``worm_id`` array), else its name.
    Keyword arguments go to the format's reader (e.g. ``unknown_names="unidentified"``,
    ``names_json=`` for a Flavell file). Malformed files raise :class:`RecordingError`; a
    missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    suf = path.suffix.lower()
    if suf == ".npz":
        with _reading(path):
            _require_zip(path)
            with np.load(path, allow_pickle=False) as z:
                kato = "traces_dFF_bc" in z.files
            if kato:
                from wormlab.recordings._shared import load_kato2015

                return load_kato2015(path=path, **kwargs)
        return load_npz(path, **kwargs)
    if suf in (".csv", ".mat") and "synthetic" in path.name.lower():
        kwargs.setdefault("synthetic", True)
    if suf == ".csv":
        return load_csv(path, **kwargs)
    if suf == ".mat":
        return load_kato_mat(path, **kwargs)
    if suf == ".nwb":
        return load_nwb(path, **kwargs)
    if suf == ".h5":
        from wormlab.recordings._shared import load_flavell2023

        return load_flavell2023(path=path, **kwargs)
    raise RecordingError(f"{path}: unknown recording format {suf!r} (npz, csv, mat, nwb, h5)")


def _check_synthetic_name(rec: Recording, path: Path) -> None:
    if rec.synthetic and "synthetic" not in path.name.lower():
        raise ValueError(
            f"{path.name}: synthetic recordings are written to files whose name contains "
            "'synthetic' (house rule: synthetic data is labelled in file names)"
        )


def save(rec: Recording, path: str | Path, **kwargs: Any) -> Path:
    """Write by suffix: ``.npz``, ``.csv``, ``.mat`` (``version=``), ``.nwb``.

    A synthetic recording must go to a file whose name contains ``synthetic``; CSV and .mat
    files with ``synthetic`` in their name load as synthetic (they have no metadata field).
    """
    suf = Path(path).suffix.lower()
    if suf == ".npz":
        return save_npz(rec, path)
    if suf == ".csv":
        return save_csv(rec, path)
    if suf == ".mat":
        return save_kato_mat(rec, path, **kwargs)
    if suf == ".nwb":
        return save_nwb(rec, path)
    raise ValueError(f"cannot write {suf!r}; use .npz, .csv, .mat or .nwb")
