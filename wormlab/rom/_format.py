"""Sequence data sets: the seed paper's text format, plus NPZ and HDF5 for large sets.

Text format (Mestre et al. 2021, published data): one file per sequence, whitespace-separated
rows ``step time_s out_1 .. out_k in_1 .. in_m`` (their data: 10 columns, 1,001 rows at 0.5 ms,
outputs first, then inputs); a first row of column names is skipped. Which columns are outputs
and inputs, their names and units come from a small JSON sidecar ``columns.json`` in the
folder::

    {"outputs": ["DB1", "LUAL", "PVR", "VB1"], "inputs": ["PLML", "PLMR", "AVBL", "AVBR"],
     "output_unit": "mV", "input_unit": "nA"}

or, without a sidecar, from the number of outputs (``n_outputs``; the rest are inputs).
Lines starting with ``#`` are comments. Arrays are time-first: ``(T, B, N)``.

Units: c302/NEURON ``.dat`` files store volts and seconds, this package's generator writes mV
and nA. The unit of a folder's outputs is, in this order, the one given (``output_unit=``,
CLI ``--unit``), the sidecar's ``output_unit``, or detected from the values
(:func:`detect_output_unit`: membrane potentials within +-1 are volts); a given unit that
contradicts the sidecar is an error. Inputs likewise (:func:`detect_input_unit`).
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wormlab.runs import atomic_path

SIDECAR = "columns.json"
TEXT_SUFFIXES = (".dat", ".txt")
VOLTAGE_UNITS = {"V": 1.0, "mV": 1e-3}  # unit -> volts
CURRENT_UNITS = {"A": 1.0, "nA": 1e-9, "pA": 1e-12}  # unit -> amperes


class FormatError(ValueError):
    """A sequence file or data set does not follow the expected format."""


@dataclass
class SequenceSet:
    """A batch of equally long input/output sequences sampled at a fixed step.

    Attributes:
        inputs: (T, B, M) injected currents (unit ``input_unit``, default nA).
        outputs: (T, B, K) recorded membrane voltages (unit ``output_unit``, default mV).
        dt_s: sampling step in seconds.
        input_names, output_names: neuron (or column) names, length M and K.
        names: one identifier per sequence (file stem / shape name), length B.
        unit_source: where each unit came from (``{"output_unit": "given" | a file |
            "detected from the values", ...}``); empty when set in code.
    """

    inputs: np.ndarray
    outputs: np.ndarray
    dt_s: float
    input_names: list[str]
    output_names: list[str]
    names: list[str] = field(default_factory=list)
    input_unit: str = "nA"
    output_unit: str = "mV"
    unit_source: dict = field(default_factory=dict)

    def __post_init__(self):
        self.inputs = np.asarray(self.inputs, dtype=np.float64)
        self.outputs = np.asarray(self.outputs, dtype=np.float64)
        if self.inputs.ndim != 3 or self.outputs.ndim != 3:
            raise FormatError(
                f"inputs and outputs must be (T, B, N); got {self.inputs.shape} and "
                f"{self.outputs.shape}"
            )
        if self.inputs.shape[:2] != self.outputs.shape[:2]:
            raise FormatError(
                f"inputs {self.inputs.shape} and outputs {self.outputs.shape} differ in (T, B)"
            )
        if self.inputs.shape[2] != len(self.input_names):
            raise FormatError(f"{self.inputs.shape[2]} input columns but names {self.input_names}")
        if self.outputs.shape[2] != len(self.output_names):
            raise FormatError(
                f"{self.outputs.shape[2]} output columns but names {self.output_names}"
            )
        if not self.names:
            self.names = [f"seq{i:03d}" for i in range(self.inputs.shape[1])]
        if len(self.names) != self.inputs.shape[1]:
            raise FormatError(f"{len(self.names)} names for {self.inputs.shape[1]} sequences")
        if not (self.dt_s > 0 and math.isfinite(self.dt_s)):
            raise FormatError(f"dt_s must be a positive number, got {self.dt_s}")

    @property
    def n_steps(self) -> int:
        return self.inputs.shape[0]

    def __len__(self) -> int:
        return self.inputs.shape[1]

    @property
    def time_s(self) -> np.ndarray:
        return np.arange(self.n_steps) * self.dt_s

    def subset(self, idx) -> SequenceSet:
        """The sequences at indices ``idx`` (list of ints)."""
        idx = list(idx)
        return SequenceSet(
            self.inputs[:, idx], self.outputs[:, idx], self.dt_s, list(self.input_names),
            list(self.output_names), [self.names[i] for i in idx], self.input_unit,
            self.output_unit, dict(self.unit_source),
        )

    def select(self, inputs: list[str] | None = None, outputs: list[str] | None = None):
        """Keep only the named input and output columns (e.g. the paper's No-AVB experiment)."""
        ii = _indices(self.input_names, inputs, "input")
        oo = _indices(self.output_names, outputs, "output")
        return SequenceSet(
            self.inputs[:, :, ii], self.outputs[:, :, oo], self.dt_s,
            [self.input_names[i] for i in ii], [self.output_names[i] for i in oo],
            list(self.names), self.input_unit, self.output_unit, dict(self.unit_source),
        )

    def resample(self, every: int) -> SequenceSet:
        """Keep every ``every``-th sample (0.1 ms -> 0.5 ms with ``every=5``)."""
        if every < 1:
            raise ValueError("every must be >= 1")
        return SequenceSet(
            self.inputs[::every], self.outputs[::every], self.dt_s * every,
            list(self.input_names), list(self.output_names), list(self.names),
            self.input_unit, self.output_unit, dict(self.unit_source),
        )

    def columns(self) -> dict:
        return {
            "outputs": list(self.output_names), "inputs": list(self.input_names),
            "output_unit": self.output_unit, "input_unit": self.input_unit,
            "dt_s": self.dt_s,
        }


def _indices(names, wanted, kind):
    if wanted is None:
        return list(range(len(names)))
    missing = [w for w in wanted if w not in names]
    if missing:
        raise KeyError(f"unknown {kind} column(s) {missing}; available: {names}")
    if not wanted:
        raise ValueError(f"no {kind} column left: a model needs at least one {kind}")
    return [names.index(w) for w in wanted]


# ----------------------------------------------------------------------------- text, one file


def write_sequence(path, time_s, outputs, inputs, *, fmt: str = "%.9g") -> Path:
    """Write one sequence as rows ``step time_s out_1..out_k in_1..in_m`` (atomically).

    Args:
        time_s: (T,) times in seconds.
        outputs: (T, K); inputs: (T, M).
    """
    time_s = np.asarray(time_s, dtype=float)
    outputs = np.asarray(outputs, dtype=float)
    inputs = np.asarray(inputs, dtype=float)
    if outputs.ndim != 2 or inputs.ndim != 2:
        raise FormatError("outputs and inputs must be (T, K) and (T, M)")
    if not (len(time_s) == len(outputs) == len(inputs)):
        raise FormatError(
            f"length mismatch: time {len(time_s)}, outputs {len(outputs)}, inputs {len(inputs)}"
        )
    steps = np.arange(len(time_s))
    table = np.column_stack([steps, time_s, outputs, inputs])
    path = Path(path)
    with atomic_path(path) as tmp:
        np.savetxt(tmp, table, fmt=["%d", fmt] + [fmt] * (table.shape[1] - 2))
    return path


def read_sequence(path, n_outputs: int, n_inputs: int | None = None):
    """Read one text sequence; returns ``(time_s (T,), outputs (T, K), inputs (T, M))``.

    Raises:
        FormatError: naming the file, line and problem (non-numeric value, ragged rows,
            wrong column count, non-consecutive steps, non-increasing time, NaN/inf).
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    rows = []
    width = None
    first = True
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            parts = s.split()
            header, first = first and not any(_is_float(p) for p in parts), False
            if header:  # a row of column names ("step time_s DB1 ...")
                continue
            try:
                vals = [float(p) for p in parts]
            except ValueError:
                bad = next(p for p in parts if not _is_float(p))
                raise FormatError(f"{path}:{lineno}: non-numeric value {bad!r}") from None
            if width is None:
                width = len(vals)
            elif len(vals) != width:
                raise FormatError(
                    f"{path}:{lineno}: {len(vals)} columns, but the first row has {width}"
                )
            if not all(math.isfinite(v) for v in vals):
                raise FormatError(f"{path}:{lineno}: NaN or infinite value")
            rows.append(vals)
    if not rows:
        raise FormatError(f"{path}: empty file (no data rows)")
    table = np.asarray(rows)
    n_cols = table.shape[1]
    expected_min = 2 + n_outputs + 1
    if n_outputs < 1:
        raise FormatError("n_outputs must be >= 1")
    if n_cols < expected_min:
        raise FormatError(
            f"{path}: {n_cols} columns; expected step, time_s, {n_outputs} outputs and at "
            f"least one input (>= {expected_min})"
        )
    if n_inputs is not None and n_cols != 2 + n_outputs + n_inputs:
        raise FormatError(
            f"{path}: {n_cols} columns; expected 2 + {n_outputs} outputs + {n_inputs} inputs "
            f"= {2 + n_outputs + n_inputs}"
        )
    if len(table) < 2:
        raise FormatError(f"{path}: a sequence needs at least 2 rows, found {len(table)}")
    steps, t = table[:, 0], table[:, 1]
    if not np.array_equal(steps, np.arange(steps[0], steps[0] + len(steps))):
        k = int(np.argmax(np.diff(steps) != 1)) + 1
        raise FormatError(f"{path}: step column is not consecutive integers (row {k + 1})")
    if np.any(np.diff(t) <= 0):
        k = int(np.argmax(np.diff(t) <= 0)) + 1
        raise FormatError(f"{path}: time_s column is not increasing (row {k + 1})")
    return t, table[:, 2 : 2 + n_outputs], table[:, 2 + n_outputs :]


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- units


def detect_output_unit(outputs) -> str:
    """``"V"`` when every output lies within +-1 (a membrane potential in volts: c302 rests
    near -0.045 V and spikes stay below 0.2 V), else ``"mV"``."""
    return "V" if float(np.max(np.abs(outputs))) < 1.0 else "mV"


def detect_input_unit(inputs) -> str:
    """``"A"`` when every input current is below 1e-6 in magnitude (c302 drives are pA, i.e.
    ~1e-12 A), else ``"nA"`` (this package's files)."""
    return "A" if float(np.max(np.abs(inputs))) < 1e-6 else "nA"


def _unit(given, recorded, values, detect, where, key) -> tuple[str, str]:
    """(unit, where it came from): the given one, the recorded one or the detected one."""
    if given is not None and recorded is not None and given != recorded:
        raise FormatError(f"{where}: {key} is {recorded!r}, but {given!r} was given; fix the "
                          "file or leave the unit out")
    if given is not None:
        return given, "given"
    if recorded is not None:
        return recorded, str(where)
    return detect(values), "detected from the values"


# ----------------------------------------------------------------------------- text, folder


def sequence_files(folder) -> list[Path]:
    """The text sequence files of a folder, sorted by name: its ``*.dat`` files, or its
    ``*.txt`` files when it has no ``.dat`` (so a README.txt or split lists such as
    ``train.txt`` beside ``.dat`` data are not read as sequences); suffixes in any case."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(f"{folder}: not a directory")
    files = [p for p in folder.iterdir() if p.suffix.lower() in TEXT_SUFFIXES and p.is_file()]
    dat = [p for p in files if p.suffix.lower() == ".dat"]
    return sorted(dat or files)


def read_columns(folder) -> dict | None:
    """The folder's ``columns.json`` sidecar, validated; ``None`` when absent."""
    p = Path(folder) / SIDECAR
    if not p.exists():
        return None
    try:
        meta = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise FormatError(f"{p}: invalid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{p}: expected a JSON object")
    for key in ("outputs", "inputs"):
        v = meta.get(key)
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise FormatError(f"{p}: {key!r} must be a non-empty list of column names")
    return meta


def write_text_dir(data: SequenceSet, folder, *, overwrite: bool = True) -> list[Path]:
    """Write one text file per sequence (``<name>.dat``) plus the ``columns.json`` sidecar."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    t = data.time_s
    for b, name in enumerate(data.names):
        p = folder / f"{name}.dat"
        if p.exists() and not overwrite:
            raise FileExistsError(p)
        paths.append(write_sequence(p, t, data.outputs[:, b], data.inputs[:, b]))
    with atomic_path(folder / SIDECAR) as tmp:
        tmp.write_text(json.dumps(data.columns(), indent=1) + "\n")
    return paths


def read_text_dir(
    folder,
    *,
    n_outputs: int | None = None,
    output_names: list[str] | None = None,
    input_names: list[str] | None = None,
    files: list[str] | None = None,
    output_unit: str | None = None,
    input_unit: str | None = None,
) -> SequenceSet:
    """Read a folder of text sequences into a :class:`SequenceSet`.

    Column meaning comes from ``columns.json`` when present, else from ``n_outputs`` (or the
    lengths of ``output_names`` / ``input_names``). All files must share length and step.

    Args:
        files: optional explicit file names (relative to ``folder``) to read, in that order.
        output_unit, input_unit: the data's units; default the sidecar's, else detected
            (see the module docstring); ``data.unit_source`` says which.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(f"{folder}: not a directory")
    meta = read_columns(folder)
    if meta is not None:
        output_names = output_names or meta["outputs"]
        input_names = input_names or meta["inputs"]
    if output_names is not None:
        n_outputs = len(output_names)
    if n_outputs is None:
        raise FormatError(
            f"{folder}: no {SIDECAR} sidecar; give the number of outputs (--outputs K) or "
            "the output names"
        )
    if files is None:
        paths = sequence_files(folder)
    else:
        paths = [folder / f for f in files]
    if not paths:
        raise FormatError(f"{folder}: no sequence files (*.dat, *.txt)")
    n_in = len(input_names) if input_names is not None else None
    ts, outs, ins = [], [], []
    for p in paths:
        t, o, i = read_sequence(p, n_outputs, n_in)
        if ts and len(t) != len(ts[0]):
            raise FormatError(f"{p}: {len(t)} rows, but {paths[0].name} has {len(ts[0])}")
        if ts and o.shape[1] + i.shape[1] != outs[0].shape[1] + ins[0].shape[1]:
            raise FormatError(f"{p}: column count differs from {paths[0].name}")
        ts.append(t)
        outs.append(o)
        ins.append(i)
    t0 = ts[0]
    dt = float(f"{float(np.median(np.diff(t0))):.12g}")
    if not np.allclose(np.diff(t0), dt, rtol=1e-3, atol=1e-12):
        raise FormatError(f"{paths[0]}: time_s is not evenly spaced")
    for p, t in zip(paths, ts):
        if not np.allclose(t, t0, rtol=1e-6, atol=1e-9):
            raise FormatError(f"{p}: time_s differs from {paths[0].name}")
    m = ins[0].shape[1]
    if input_names is None:
        input_names = [f"in_{j + 1}" for j in range(m)]
    if output_names is None:
        output_names = [f"out_{k + 1}" for k in range(n_outputs)]
    inputs, outputs = np.stack(ins, axis=1), np.stack(outs, axis=1)
    where = folder / SIDECAR
    ou, osrc = _unit(output_unit, (meta or {}).get("output_unit"), outputs, detect_output_unit,
                     where, "output_unit")
    iu, isrc = _unit(input_unit, (meta or {}).get("input_unit"), inputs, detect_input_unit,
                     where, "input_unit")
    return SequenceSet(inputs, outputs, dt, list(input_names), list(output_names),
                       [p.stem for p in paths], iu, ou, {"output_unit": osrc, "input_unit": isrc})


# ----------------------------------------------------------------------------- NPZ / HDF5


def save_npz(data: SequenceSet, path) -> Path:
    """One compressed ``.npz`` with arrays and JSON metadata (no pickle)."""
    meta = dict(data.columns(), names=list(data.names))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, inputs=data.inputs, outputs=data.outputs,
                                meta=np.array(json.dumps(meta)))
    return Path(path)


def load_npz(path) -> SequenceSet:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            for key in ("inputs", "outputs", "meta"):
                if key not in z:
                    raise FormatError(f"{path}: missing array {key!r}")
            meta = _meta_json(z["meta"], path)
            return _from_meta(z["inputs"], z["outputs"], meta, path)
    except FormatError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise FormatError(f"{path}: not a readable NPZ sequence set "
                          f"({type(exc).__name__}: {exc})") from None


def save_h5(data: SequenceSet, path) -> Path:
    """HDF5 with datasets ``inputs`` and ``outputs`` (T, B, N) and JSON metadata attribute."""
    import h5py

    meta = dict(data.columns(), names=list(data.names))
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("inputs", data=data.inputs, compression="gzip")
            f.create_dataset("outputs", data=data.outputs, compression="gzip")
            f.attrs["meta"] = json.dumps(meta)
    return Path(path)


def load_h5(path) -> SequenceSet:
    """Read a file written by :func:`save_h5`; a truncated or corrupt file raises
    :class:`FormatError` naming it."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            for key in ("inputs", "outputs"):
                if key not in f:
                    raise FormatError(f"{path}: missing dataset {key!r}")
            if "meta" not in f.attrs:
                raise FormatError(f"{path}: missing 'meta' attribute")
            inputs, outputs = f["inputs"][()], f["outputs"][()]
            meta = _meta_json(f.attrs["meta"], path)
    except FormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        # h5py reports truncation and damaged blocks as OSError, some as KeyError/RuntimeError
        raise FormatError(f"{path}: not a readable HDF5 sequence set "
                          f"({type(exc).__name__}: {exc})") from None
    return _from_meta(inputs, outputs, meta, path)


def _meta_json(raw, path) -> dict:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{path}: metadata must be a JSON object, got {type(meta).__name__}")
    return meta


def _from_meta(inputs, outputs, meta, path) -> SequenceSet:
    try:
        return SequenceSet(
            inputs, outputs, float(meta["dt_s"]), list(meta["inputs"]), list(meta["outputs"]),
            list(meta.get("names", [])), meta.get("input_unit", "nA"),
            meta.get("output_unit", "mV"),
            {"output_unit": str(path) if "output_unit" in meta else "default (mV)",
             "input_unit": str(path) if "input_unit" in meta else "default (nA)"},
        )
    except KeyError as exc:
        raise FormatError(f"{path}: metadata lacks {exc}") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise FormatError(f"{path}: {exc}") from None
        raise FormatError(f"{path}: bad metadata ({exc})") from None


def load(path, *, output_unit: str | None = None, **kwargs) -> SequenceSet:
    """Load a data set from a text folder, ``.npz`` or ``.h5``/``.hdf5`` file.

    ``output_unit``: the unit the caller expects; a file that records another one is an error.
    """
    path = Path(path)
    if path.is_dir():
        return read_text_dir(path, output_unit=output_unit, **kwargs)
    if path.suffix in (".npz", ".h5", ".hdf5"):
        data = load_npz(path) if path.suffix == ".npz" else load_h5(path)
        if output_unit is not None and output_unit != data.output_unit:
            raise FormatError(f"{path}: output_unit is {data.output_unit!r}, but "
                              f"{output_unit!r} was given")
        return data
    if not path.exists():
        raise FormatError(f"{path}: does not exist")
    raise FormatError(f"{path}: unknown data set type (a folder of .dat files, .npz or .h5)")


SMOKE_FILE = "synthetic_c302_C1_forward_1ms.npz"


def smoke_dataset() -> SequenceSet:
    """Small shipped data set for tests and notebook smoke runs.

    12 sequences of the forward-crawling scenario simulated by c302 C1 in NEURON (this
    package's generator, ``wormlab rom generate``), 500 ms resampled to 1 ms, float32.
    Synthetic: produced by the project's simulator, not recorded from animals.
    """
    from wormlab.paths import package_data

    return load_npz(package_data("rom", "data", SMOKE_FILE))
