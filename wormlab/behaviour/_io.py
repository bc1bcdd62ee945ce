"""TEMPORARY private reader of the two shared recording formats.

TO BE REPLACED BY ``wormlab.recordings`` (issue 4, branch ``sae``) as soon as it lands: this
module only exists so the behaviour component can be developed and tested meanwhile. It reads

* Kato 2015 NPZ (``kato2015_WT_NoStim_worm0.npz``: ``traces_dFF_bc`` (T, N), ``neuron_names``,
  ``state_index``, ``state_names``, ``fps``) — Kato et al. 2015, Cell 163:656;
* Flavell-lab HDF5 (``gcamp/trace_array``, ``behavior/*``, ``timing/timestamp_confocal``) with
  names from ``neuron_names_mapped.json`` one folder up — Dag et al. 2023, Cell.

and returns :class:`wormlab.behaviour._data.Worm` values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wormlab.behaviour._data import Worm


def load_kato_npz(path) -> Worm:
    path = Path(path)
    with np.load(path, allow_pickle=False) as d:
        need = {"traces_dFF_bc", "neuron_names", "state_index", "state_names", "fps"}
        missing = need - set(d.files)
        if missing:
            raise ValueError(f"{path}: not a Kato NPZ, missing {sorted(missing)}")
        traces = d["traces_dFF_bc"]
        names = tuple(None if str(n).isdigit() else str(n) for n in d["neuron_names"])
        states = np.asarray(d["state_names"]).astype(str)[d["state_index"]]
        fps = float(d["fps"])
    stem = path.stem.replace("kato2015_", "")
    return Worm(f"kato2015/{stem}", "kato2015", traces, names, fps, states=states)


def _flavell_names(path: Path, n_cols: int) -> tuple:
    key = path.name.replace("-data.h5", "")
    names: list = [None] * n_cols
    for cand in (path.parent / "neuron_names_mapped.json",
                 path.parent.parent / "neuron_names_mapped.json"):
        if cand.exists():
            table = json.loads(cand.read_text()).get(key)
            if table:
                for name, hits in table["names"].items():
                    best = max(hits, key=lambda h: h.get("conf", 0))
                    j = int(best["col0"])
                    if 0 <= j < n_cols and names[j] is None:
                        names[j] = name
            break
    return tuple(names)


def load_flavell_h5(path) -> Worm:
    import h5py

    path = Path(path)
    with h5py.File(path, "r") as f:
        for k in ("gcamp/trace_array", "behavior/reversal_vec", "timing/timestamp_confocal"):
            if k not in f:
                raise ValueError(f"{path}: not a Flavell-lab recording, missing {k!r}")
        traces = f["gcamp/trace_array"][:]
        ts = f["timing/timestamp_confocal"][:]
        beh = {"reversal": f["behavior/reversal_vec"][:].astype(np.int64)}
        for src, dst in (("worm_curvature", "curvature"), ("velocity", "velocity"),
                         ("angular_velocity", "angular_velocity")):
            if f"behavior/{src}" in f:
                beh[dst] = f[f"behavior/{src}"][:].astype(float)
    fps = 1.0 / float(np.median(np.diff(ts)))
    key = path.name.replace("-data.h5", "")
    return Worm(f"flavell2023/{key}", "flavell2023", traces, _flavell_names(path, traces.shape[1]),
                fps, behaviour=beh)


def load_file(path) -> Worm:
    """A Kato NPZ or a Flavell HDF5 by extension."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"recording {path} does not exist")
    if path.suffix == ".npz":
        return load_kato_npz(path)
    if path.suffix in (".h5", ".hdf5"):
        return load_flavell_h5(path)
    raise ValueError(f"{path}: unsupported recording format {path.suffix!r} (expected .npz "
                     "Kato or .h5 Flavell)")
