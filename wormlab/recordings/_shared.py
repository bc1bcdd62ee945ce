"""Loaders for the real recordings in the shared data folder (read-only, never copied).

- Kato et al. 2015, Cell 163:656 (WT_NoStim worm 0; via the NC-MCM-Visualizer conversion).
- Dag et al. 2023, Cell 186:2574 (Flavell lab, freely moving NeuroPAL worms).
"""

from __future__ import annotations

import json
from pathlib import Path

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


def load_kato2015(worm: int = 0, path: str | Path | None = None) -> Recording:
    """Kato et al. 2015 WT_NoStim worm ``worm`` (only worm 0 has traces in the shared folder).

    Args:
        worm: worm index (the shared folder holds traces for worm 0 only).
        path: an NPZ in the same layout (``traces_dFF_bc``, ``neuron_names``, ``state_index``,
            ``state_names``, ``fps``); default ``<shared>/kato2015/kato2015_WT_NoStim_worm<k>.npz``.

    Returns:
        A :class:`Recording` with bleach-corrected ΔF/F traces (numeric ROI labels are
        unidentified, ``None``), 8 behaviour states, ``time_s = frame / fps``.
        Note: AVAL/R, SMDVL/R, SMDDL/R and RIBL/R were removed by the converting pipeline.
    """
    p = Path(path) if path is not None else require_shared_data(
        "kato2015", f"kato2015_WT_NoStim_worm{int(worm)}.npz"
    )
    with _open_npz(p) as z:
        need = ("traces_dFF_bc", "neuron_names", "state_index", "state_names", "fps")
        missing = [k for k in need if k not in z.files]
        if missing:
            raise RecordingError(f"{p}: missing arrays {missing} (Kato 2015 NPZ layout)")
        try:
            x = z["traces_dFF_bc"]
            labels = [str(s) for s in z["neuron_names"]]
            states = z["state_index"].astype(np.int64)
            snames = tuple(str(s) for s in z["state_names"])
            fps = float(z["fps"])
        except Exception as exc:  # truncated member: BadZipFile, zlib.error, EOFError, ...
            raise RecordingError(f"{p}: truncated or corrupt array ({exc})") from exc
    if x.ndim != 2 or len(labels) != x.shape[1]:
        raise RecordingError(f"{p}: traces {x.shape} do not match {len(labels)} neuron names")
    names = tuple(None if s.isdigit() else s for s in labels)
    return Recording(
        traces=x,
        neuron_names=names,
        roi_labels=tuple(labels),
        time_s=np.arange(x.shape[0]) / fps,
        fps=fps,
        states=states,
        state_names=snames,
        dataset="kato2015",
        worm_id=f"WT_NoStim_worm{int(worm)}",
        strain="WT (Kato 2015 WT_NoStim, immobilised)",
        signal="dF/F bleach-corrected (traces_dFF_bc)",
        provenance=f"{p.name}: Kato 2015 OSF 2395t via NC-MCM-Visualizer (MIT); "
        "AVAL/R, SMDVL/R, SMDDL/R, RIBL/R removed by that pipeline",
        citation=KATO2015_CITATION,
        synthetic=False,
    )


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


def load_flavell2023(
    dataset: str = "2022-07-26-31",
    *,
    signal: str = "trace_array",
    root: str | Path | None = None,
) -> Recording:
    """One Flavell-lab freely moving recording (Dag et al. 2023).

    Args:
        dataset: id such as ``"2022-07-26-31"`` (:func:`list_flavell2023`).
        signal: ``"trace_array"`` (the lab's processed GCaMP trace) or ``"F_F20"``
            (F / 20th-percentile F).
        root: folder holding ``recordings/`` and ``neuron_names_mapped.json``
            (default ``<shared>/flavell2023``).

    Returns:
        A :class:`Recording`: time from ``timing/timestamp_confocal`` (s, shifted to start at 0),
        NeuroPAL names (SWF702 strain; SWF415 has none), behaviour arrays (``velocity``,
        ``angular_velocity``, ``head_angle``, ``body_angle`` (T,30), ``reversal_vec`` ...),
        states ``fwd``/``rev`` derived from ``behavior/reversal_vec``, and for SWF415 a
        ``food`` stimulus from ``timing/time_food_encounter`` (a 1-based frame index) onward.
    """
    import h5py

    if signal not in FLAVELL_SIGNALS:
        raise ValueError(f"signal must be one of {list(FLAVELL_SIGNALS)}, got {signal!r}")
    base = Path(root) if root is not None else require_shared_data("flavell2023")
    path = base / "recordings" / f"{dataset}-data.h5"
    if not path.exists():
        have = list_flavell2023(base.parent if root is None else base)
        raise FileNotFoundError(f"no Flavell 2023 recording {dataset!r} at {path}; have {have}")
    try:
        with h5py.File(path, "r") as f:
            x = np.asarray(f[FLAVELL_SIGNALS[signal]], dtype=np.float32)
            ts = np.asarray(f["timing/timestamp_confocal"], dtype=float).reshape(-1)
            beh = {}
            for k, v in f["behavior"].items():
                a = np.asarray(v)
                if a.ndim >= 1 and a.shape[0] == x.shape[0]:
                    beh[k] = a
            food = (
                int(np.asarray(f["timing/time_food_encounter"]).reshape(-1)[0])
                if "timing/time_food_encounter" in f
                else None
            )
    except (OSError, KeyError) as exc:
        raise RecordingError(f"{path}: not a readable Flavell-lab HDF5 recording ({exc})") from exc
    T, N = x.shape
    if ts.shape[0] < T:
        raise RecordingError(f"{path}: {ts.shape[0]} timestamps for {T} frames")
    ts = ts[:T] - ts[0]
    fps = 1.0 / float(np.median(np.diff(ts)))
    names: tuple = (None,) * N
    labels = tuple(str(j) for j in range(N))
    map_path = base / "neuron_names_mapped.json"
    if map_path.exists():
        mapping = json.loads(map_path.read_text())
        if dataset in mapping:
            names, labels = _flavell_names(mapping[dataset]["names"], N, dataset)
    states = None
    if "reversal_vec" in beh:
        states = (np.asarray(beh["reversal_vec"]) > 0).astype(np.int64)
    stimuli = ()
    if food is not None and 1 <= food <= T:
        mask = np.arange(T) >= food - 1
        stimuli = (Stimulus.from_mask("food", mask, ts),)
    strain = "SWF415" if dataset in FLAVELL_SWF415 else "SWF702"
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
        "neuron_names_mapped.json (derived from roi_match); states fwd/rev derived from "
        "behavior/reversal_vec",
        citation=DAG2023_CITATION,
        synthetic=False,
        meta={"behaviour_units": "as stored by the Flavell lab (velocity in mm/s)"},
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
