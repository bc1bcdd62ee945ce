"""Loaders for the real recordings in the shared data folder (read-only, never copied).

- Kato et al. 2015, Cell 163:656 (WT_NoStim worm 0; via the NC-MCM-Visualizer conversion).
- Dag et al. 2023, Cell 186:2574 (Flavell lab, freely moving NeuroPAL worms).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from wormlab.paths import require_shared_data, shared_data_dir
from wormlab.recordings._model import Recording, RecordingError, Stimulus

KATO2015_CITATION = (
    "Kato S, Kaplan HS, Schrodel T, Skora S, Lindsay TH, Yemini E, Lockery S, Zimmer M (2015). "
    "Global brain dynamics embed the motor command sequence of Caenorhabditis elegans. "
    "Cell 163:656-669. doi:10.1016/j.cell.2015.09.034"
)
DAG2023_CITATION = (
    "Dag U, Nwabudike I, Kang D, Gomes MA, Kim J, Atanas AA, Bueno E, Estrem C, Pugliese S, "
    "Wang Z, Towlson E, Flavell SW (2023). Dissecting the functional organization of the "
    "C. elegans serotonergic system at whole-brain scale. Cell 186:2574-2592. "
    "doi:10.1016/j.cell.2023.04.023"
)

#: Flavell 2023 strains per dataset (shared/data/README.md): SWF415 has no NeuroPAL IDs.
FLAVELL_SWF415 = ("2022-01-16-01", "2022-05-02-01")
FLAVELL_SWF702 = ("2022-07-26-31", "2022-07-26-38", "2022-07-27-31", "2022-07-27-38",
                  "2022-07-27-45")

#: ``signal`` choices for :func:`load_flavell2023` -> HDF5 dataset.
FLAVELL_SIGNALS = {
    "trace_array": "gcamp/trace_array",
    "F_F20": "gcamp/traces_array_F_F20",
}


def _open_npz(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # corrupt zips raise BadZipFile, zlib.error, OSError, ...
        raise RecordingError(f"{path}: not a readable NPZ file ({exc})") from exc


def _npz_text(z, key: str, path: Path) -> str | None:
    """An optional metadata string stored in the NPZ as a 0-d or 1-element array."""
    if key not in z.files:
        return None
    a = np.asarray(z[key])
    if a.size != 1 or a.dtype.kind not in "UST":
        raise RecordingError(f"{path}: metadata array {key!r} must hold one string, got "
                             f"{a.dtype} {a.shape}")
    v = a.reshape(-1)[0]
    v = v.decode() if isinstance(v, bytes) else str(v)
    return v.strip() or None


def _kato_worm_index(worm_id: str) -> int | None:
    m = re.search(r"worm_?(\d+)$", worm_id)
    return int(m.group(1)) if m else None


def load_kato2015(
    worm: int | None = None, path: str | Path | None = None, *, unknown_names: str = "error"
) -> Recording:
    """Kato et al. 2015 WT_NoStim worm ``worm``, or any NPZ in the same layout.

    Args:
        worm: worm index of the shared file ``<shared>/kato2015/kato2015_WT_NoStim_worm<k>.npz``
            (default 0; the shared folder holds traces for worm 0 only). With ``path`` it is
            only checked against the file's own worm index.
        path: an NPZ in the same layout (``traces_dFF_bc``, ``neuron_names``, ``state_index``,
            ``state_names``, ``fps``; optional string arrays ``worm_id``, ``dataset``,
            ``strain``). Its identity comes from the file: the ``worm_id`` array if present,
            else the file name without suffix and without a leading ``kato2015_``
            (``kato2015_WT_NoStim_worm0.npz`` -> ``WT_NoStim_worm0``).
        unknown_names: ``"error"`` or ``"unidentified"`` for names that are not connectome
            neurons (see :func:`wormlab.recordings.check_names`).

    Returns:
        A :class:`Recording` with bleach-corrected ΔF/F traces (numeric ROI labels are
        unidentified, ``None``), 8 behaviour states, ``time_s = frame / fps``.
        Note: AVAL/R, SMDVL/R, SMDDL/R and RIBL/R were removed by the converting pipeline.
    """
    from wormlab.recordings._formats import _checked, _reading, _require_zip

    if path is None:
        p = require_shared_data(
            "kato2015", f"kato2015_WT_NoStim_worm{0 if worm is None else int(worm)}.npz"
        )
    else:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
    with _reading(p):
        _require_zip(p)
        with _open_npz(p) as z:
            need = ("traces_dFF_bc", "neuron_names", "state_index", "state_names", "fps")
            missing = [k for k in need if k not in z.files]
            if missing:
                raise RecordingError(f"{p}: missing arrays {missing} (Kato 2015 NPZ layout)")
            try:
                x = np.asarray(z["traces_dFF_bc"])
                raw_names = np.asarray(z["neuron_names"])
                states = np.asarray(z["state_index"])
                raw_snames = np.asarray(z["state_names"])
                fps_a = np.asarray(z["fps"])
                meta = {k: _npz_text(z, k, p) for k in ("worm_id", "dataset", "strain")}
            except RecordingError:
                raise
            except Exception as exc:  # truncated member: BadZipFile, zlib.error, EOFError, ...
                raise RecordingError(f"{p}: truncated or corrupt array ({exc})") from exc
        for key, a in (("neuron_names", raw_names), ("state_names", raw_snames)):
            if a.ndim != 1 or (a.size and a.dtype.kind not in "UST"):
                raise RecordingError(f"{p}: {key} must be a 1-D array of strings, got "
                                     f"{a.dtype} {a.shape}")
        if x.dtype.kind not in "fiub" or x.ndim != 2:
            raise RecordingError(f"{p}: traces_dFF_bc must be a real (T, N) array, got "
                                 f"{x.dtype} {x.shape}")
        if states.dtype.kind not in "iu" or states.shape != (x.shape[0],):
            raise RecordingError(f"{p}: state_index must be ({x.shape[0]},) integers, got "
                                 f"{states.dtype} {states.shape}")
        if fps_a.size != 1 or fps_a.dtype.kind not in "fiu":
            raise RecordingError(f"{p}: fps must be one number, got {fps_a.dtype} {fps_a.shape}")
        fps = float(fps_a.reshape(-1)[0])
        if not (np.isfinite(fps) and fps > 0):
            raise RecordingError(f"{p}: fps must be a positive finite number, got {fps}")
        labels = [str(s).strip() for s in raw_names]
        snames = tuple(str(s) for s in raw_snames)
        if len(labels) != x.shape[1]:
            raise RecordingError(f"{p}: traces {x.shape} do not match {len(labels)} neuron names")
        worm_id = meta["worm_id"] or (p.stem[len("kato2015_"):] if p.stem.startswith("kato2015_")
                                      and len(p.stem) > len("kato2015_") else p.stem)
        own = _kato_worm_index(worm_id)
        if path is not None and worm is not None and own is not None and own != int(worm):
            raise RecordingError(f"{p}: worm={worm} requested but the file holds worm {own} "
                                 f"({worm_id!r})")
        names = tuple(None if (s.isdigit() or not s) else s for s in labels)
        rec = Recording(
            traces=x,
            neuron_names=names,
            roi_labels=tuple(labels),
            time_s=np.arange(x.shape[0]) / fps,
            fps=fps,
            states=states.astype(np.int64),
            state_names=snames,
            dataset=meta["dataset"] or "kato2015",
            worm_id=worm_id,
            strain=meta["strain"] or "WT (Kato 2015 WT_NoStim, immobilised)",
            signal="dF/F bleach-corrected (traces_dFF_bc)",
            provenance=f"{p.name}: Kato 2015 OSF 2395t via NC-MCM-Visualizer (MIT); "
            "AVAL/R, SMDVL/R, SMDDL/R, RIBL/R removed by that pipeline",
            citation=KATO2015_CITATION,
            synthetic=False,
        )
        return _checked(rec, p, unknown_names)


def list_flavell2023(root: str | Path | None = None) -> list[str]:
    """Dataset ids of the Flavell-lab recordings present (e.g. ``"2022-07-26-31"``)."""
    base = Path(root) if root is not None else shared_data_dir()
    if base is None:
        return []
    folder = base / "flavell2023" / "recordings" if (base / "flavell2023").is_dir() else base
    return sorted(p.name[: -len("-data.h5")] for p in folder.glob("*-data.h5"))


def _flavell_names(mapping: dict, n_cols: int, dataset: str):
    """Identities per column from ``neuron_names_mapped.json`` (ambiguous ones become None)."""
    names: list[str | None] = [None] * n_cols
    labels = [str(j) for j in range(n_cols)]
    for name, entries in mapping.items():
        if not entries:
            continue
        best = max(e["conf"] for e in entries)
        top = [e for e in entries if e["conf"] == best]
        for e in entries:
            j = int(e["col0"])
            if not 0 <= j < n_cols:
                raise RecordingError(
                    f"{dataset}: neuron {name} mapped to column {j}, outside 0..{n_cols - 1}"
                )
            labels[j] = name if labels[j] == str(j) else f"{labels[j]}|{name}"
        # '?' marks an uncertain NeuroPAL label; a name on two columns with equal confidence is
        # ambiguous: keep both as ROI labels but leave the identity unknown.
        if "?" in name or len(top) != 1:
            continue
        j = int(top[0]["col0"])
        if names[j] is None:
            names[j] = name
    return tuple(names), tuple(labels)


def _flavell_id(path: Path) -> str:
    name = path.name
    return name[: -len("-data.h5")] if name.endswith("-data.h5") else path.stem


def _flavell_names_file(path: Path, names_json: str | Path | None) -> Path | None:
    """The NeuroPAL names side file: ``names_json`` if given, else ``neuron_names_mapped.json``
    next to the recording, or one level up when the recording sits in a ``recordings/`` folder
    (the shared layout ``flavell2023/{recordings/, neuron_names_mapped.json}``)."""
    if names_json is not None:
        q = Path(names_json)
        if not q.exists():
            raise FileNotFoundError(f"NeuroPAL names file {q} does not exist")
        return q
    for folder in (path.parent, path.parent.parent if path.parent.name == "recordings" else None):
        if folder is not None and (folder / "neuron_names_mapped.json").exists():
            return folder / "neuron_names_mapped.json"
    return None


def _read_names_json(q: Path, dataset: str, explicit: bool) -> dict | None:
    """The ``{NAME: [{"col0": j, "conf": c}, ...]}`` mapping for ``dataset`` from ``q``: either
    the shared layout ``{dataset: {"names": {...}}}`` or a per-recording ``{"names": {...}}``."""
    try:
        data = json.loads(q.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RecordingError(f"{q}: unreadable NeuroPAL names JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise RecordingError(f"{q}: NeuroPAL names JSON must be an object, got "
                             f"{type(data).__name__}")
    entry = data.get(dataset, data if "names" in data else None)
    if entry is None:
        if explicit:
            raise RecordingError(f"{q}: no NeuroPAL names for recording {dataset!r} (has "
                                 f"{sorted(data)[:8]})")
        return None
    names = entry.get("names") if isinstance(entry, dict) else None
    if not isinstance(names, dict):
        raise RecordingError(f"{q}: entry {dataset!r} needs a 'names' object")
    for name, entries in names.items():
        ok = isinstance(entries, list) and all(
            isinstance(e, dict) and isinstance(e.get("col0"), int)
            and isinstance(e.get("conf"), int | float) for e in entries)
        if not ok:
            raise RecordingError(f"{q}: {dataset}/{name}: each entry must be "
                                 '{"col0": int, "conf": number}, got ' f"{entries!r}"[:200])
    return names


def load_flavell2023(
    dataset: str | None = None,
    *,
    signal: str = "trace_array",
    root: str | Path | None = None,
    path: str | Path | None = None,
    names_json: str | Path | None = None,
    strain: str | None = None,
    unknown_names: str = "error",
) -> Recording:
    """One Flavell-lab freely moving recording (Dag et al. 2023), shared or from any path.

    Args:
        dataset: id such as ``"2022-07-26-31"`` (:func:`list_flavell2023`), looked up in
            ``<root>/recordings/<id>-data.h5`` (default ``"2022-07-26-31"`` when ``path`` is
            not given).
        signal: ``"trace_array"`` (the lab's processed GCaMP trace) or ``"F_F20"``
            (F / 20th-percentile F).
        root: folder holding ``recordings/`` and ``neuron_names_mapped.json``
            (default ``<shared>/flavell2023``).
        path: a ``*-data.h5`` file anywhere; its id is the file name without ``-data.h5``
            (or without the suffix). ``dataset`` and ``root`` are then not used.
        names_json: NeuroPAL names side file (``neuron_names_mapped.json`` layout, or
            ``{"names": {...}}`` for this recording alone). Default: the file next to the
            recording (or next to its ``recordings/`` folder); none found = no identities.
        strain: override; default SWF415 for the two shared SWF415 ids, SWF702 for the other
            shared ids, else ``""`` (unknown).
        unknown_names: ``"error"`` or ``"unidentified"`` for names that are not connectome
            neurons (see :func:`wormlab.recordings.check_names`).

    Returns:
        A :class:`Recording`: time from ``timing/timestamp_confocal`` (s, shifted to start at 0),
        NeuroPAL names (SWF702 strain; SWF415 has none), behaviour arrays (``velocity``,
        ``angular_velocity``, ``head_angle``, ``body_angle`` (T,30), ``reversal_vec`` ...),
        states ``fwd``/``rev`` derived from ``behavior/reversal_vec``, and for SWF415 a
        ``food`` stimulus from ``timing/time_food_encounter`` (a 1-based frame index) onward.
    """
    from wormlab.recordings._formats import _checked, _reading

    if signal not in FLAVELL_SIGNALS:
        raise ValueError(f"signal must be one of {list(FLAVELL_SIGNALS)}, got {signal!r}")
    if path is not None:
        if dataset is not None or root is not None:
            raise ValueError("give either path= or dataset=/root=, not both")
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        dataset = _flavell_id(path)
    else:
        dataset = "2022-07-26-31" if dataset is None else dataset
        base = Path(root) if root is not None else require_shared_data("flavell2023")
        path = base / "recordings" / f"{dataset}-data.h5"
        if not path.exists():
            have = list_flavell2023(base.parent if root is None else base)
            raise FileNotFoundError(
                f"no Flavell 2023 recording {dataset!r} at {path}; have {have}")
    map_path = _flavell_names_file(path, names_json)
    with _reading(path):
        rec = _read_flavell(path, dataset, signal, map_path, names_json is not None, strain)
        return _checked(rec, path, unknown_names)


def _h5_array(f, key: str, path: Path, kinds: str = "fiub") -> np.ndarray:
    import h5py

    obj = f.get(key)
    if not isinstance(obj, h5py.Dataset):
        raise RecordingError(f"{path}: no dataset {key!r} (Flavell-lab layout needs "
                             "gcamp/trace_array and timing/timestamp_confocal)")
    a = np.asarray(obj[()])
    if a.dtype.kind not in kinds:
        raise RecordingError(f"{path}: {key} has dtype {a.dtype}, expected numbers")
    return a


def _read_flavell(path: Path, dataset: str, signal: str, map_path: Path | None,
                  explicit: bool, strain: str | None) -> Recording:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise RecordingError(f"{path}: not a readable HDF5 file, truncated or corrupt "
                             f"({exc})") from exc
    with f:
        x = _h5_array(f, FLAVELL_SIGNALS[signal], path)
        ts = _h5_array(f, "timing/timestamp_confocal", path, "fiu").astype(float).reshape(-1)
        if x.ndim != 2:
            raise RecordingError(f"{path}: {FLAVELL_SIGNALS[signal]} has shape {x.shape}, "
                                 "expected (T frames, N ROIs)")
        beh: dict[str, Any] = {}
        group = f.get("behavior")
        if isinstance(group, h5py.Group):
            for k, v in group.items():
                if not isinstance(v, h5py.Dataset):
                    continue
                a = np.asarray(v[()])
                if a.ndim >= 1 and a.shape[0] == x.shape[0] and a.dtype.kind in "fiub":
                    beh[k] = a
        food = None
        if "timing/time_food_encounter" in f:
            fa = _h5_array(f, "timing/time_food_encounter", path).reshape(-1)
            if fa.size != 1 or not np.isfinite(fa[0]) or fa[0] != int(fa[0]):
                raise RecordingError(f"{path}: timing/time_food_encounter must be one frame "
                                     f"index, got {fa[:5]}")
            food = int(fa[0])
    x = x.astype(np.float32)
    T, N = x.shape
    if T < 2:
        raise RecordingError(f"{path}: {T} frame(s); a recording needs >= 2")
    if ts.shape[0] < T:
        raise RecordingError(f"{path}: {ts.shape[0]} timestamps for {T} frames")
    if not np.isfinite(ts[:T]).all():
        raise RecordingError(f"{path}: timing/timestamp_confocal contains NaN or inf")
    ts = ts[:T] - ts[0]
    med = float(np.median(np.diff(ts)))
    if not med > 0:
        raise RecordingError(f"{path}: timing/timestamp_confocal does not increase")
    fps = 1.0 / med
    names: tuple = (None,) * N
    labels = tuple(str(j) for j in range(N))
    meta: dict[str, Any] = {"behaviour_units": "as stored by the Flavell lab (velocity in mm/s)"}
    if map_path is not None:
        mapping = _read_names_json(map_path, dataset, explicit)
        if mapping is not None:
            try:
                names, labels = _flavell_names(mapping, N, dataset)
            except RecordingError as exc:
                raise RecordingError(f"{map_path}: {exc}") from exc
            meta["names_file"] = map_path.name
    states = None
    if "reversal_vec" in beh:
        rv = np.asarray(beh["reversal_vec"])
        if rv.ndim != 1 or not np.isfinite(rv.astype(float)).all():
            raise RecordingError(f"{path}: behavior/reversal_vec must be a finite (T,) vector")
        states = (rv > 0).astype(np.int64)
    stimuli = ()
    if food is not None and 1 <= food <= T:
        mask = np.arange(T) >= food - 1
        stimuli = (Stimulus.from_mask("food", mask, ts),)
    if strain is None:
        strain = ("SWF415" if dataset in FLAVELL_SWF415
                  else "SWF702" if dataset in FLAVELL_SWF702 else "")
    return Recording(
        traces=x,
        neuron_names=names,
        roi_labels=labels,
        time_s=ts,
        fps=fps,
        stimuli=stimuli,
        states=states,
        state_names=("fwd", "rev") if states is not None else (),
        behaviour=beh,
        dataset="flavell2023",
        worm_id=dataset,
        strain=strain,
        signal=f"GCaMP ({FLAVELL_SIGNALS[signal]})",
        provenance=f"{path.name}: flavell-lab/NSM_5HTR_analysis; names via "
        f"{map_path.name if map_path is not None else '(no names file)'} (derived from "
        "roi_match); states fwd/rev derived from behavior/reversal_vec",
        citation=DAG2023_CITATION,
        synthetic=False,
        meta=meta,
    )


def list_shared() -> list[str]:
    """Ids accepted by :func:`load_shared` for the recordings present here."""
    base = shared_data_dir()
    if base is None:
        return []
    out = []
    for p in sorted((base / "kato2015").glob("kato2015_WT_NoStim_worm*.npz")):
        out.append(f"kato2015/worm{p.stem.rsplit('worm', 1)[1]}")
    out += [f"flavell2023/{d}" for d in list_flavell2023(base)]
    return out


def load_shared(spec: str) -> Recording:
    """Load a shared recording by id: ``"kato2015/worm0"`` or ``"flavell2023/2022-07-26-31"``."""
    if "/" not in spec:
        raise ValueError(f"recording id must look like 'kato2015/worm0', got {spec!r}")
    source, item = spec.split("/", 1)
    if source == "kato2015":
        if not item.startswith("worm") or not item[4:].isdigit():
            raise ValueError(f"Kato 2015 ids look like 'kato2015/worm0', got {spec!r}")
        return load_kato2015(int(item[4:]))
    if source == "flavell2023":
        return load_flavell2023(item)
    raise ValueError(f"unknown recording source {source!r}; have kato2015, flavell2023")
