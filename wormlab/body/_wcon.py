"""WCON export/import (Worm tracker Commons Object Notation, the tracking community's JSON).

Layout written (WCON 1.0 core): ``{"units": {"t": "s", "x": "mm", "y": "mm", "cx": "mm",
"cy": "mm"}, "data": [{"id", "t": [...], "x": [[...26 points...] per time], "y": ...,
"cx": [...], "cy": [...]}], "metadata": {"software": {...}}}``; one data record per sample,
midline points head -> tail. :func:`read_wcon` validates the structure and converts back to um.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wormlab.body._physics import Trajectory

_UNIT_TO_UM = {"mm": 1000.0, "um": 1.0, "micrometer": 1.0, "micrometers": 1.0, "m": 1e6}


def write_wcon(path: str | Path, traj: Trajectory, ids=None, metadata: dict | None = None
               ) -> Path:
    """Write a trajectory (T, B, ...) as WCON (atomic). ``ids`` default ``"<source>-<b>"``."""
    from wormlab.runs import atomic_path

    tr = traj.numpy()
    pts = np.asarray(tr.points_um) / 1000.0  # mm
    com = np.asarray(tr.com_um) / 1000.0
    T, B = com.shape[:2]
    ids = list(ids) if ids is not None else [f"{tr.source}-{b}" for b in range(B)]
    if len(ids) != B:
        raise ValueError(f"{len(ids)} ids for {B} samples")
    t = [round(float(x), 6) for x in tr.t_s]
    data = []
    for b in range(B):
        data.append({
            "id": str(ids[b]), "t": t,
            "x": np.round(pts[:, b, :, 0], 6).tolist(), "y": np.round(pts[:, b, :, 1], 6).tolist(),
            "cx": np.round(com[:, b, 0], 6).tolist(), "cy": np.round(com[:, b, 1], 6).tolist(),
        })
    doc = {"units": {"t": "s", "x": "mm", "y": "mm", "cx": "mm", "cy": "mm"}, "data": data,
           "metadata": {"software": {"name": "wormlab.body", "settings": {
               "source": tr.source, "body_length_um": tr.body_length_um}},
               **(metadata or {})}}
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc))
    return path


def read_wcon(path: str | Path) -> dict:
    """Read and validate a WCON file; returns ``{id: {"t_s", "points_um" (T, P, 2),
    "com_um" (T, 2) or None}}``. Raises ``ValueError`` naming the first problem."""
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict) or "units" not in doc or "data" not in doc:
        raise ValueError(f"{path}: WCON needs top-level 'units' and 'data'")
    units = doc["units"]
    for k in ("t", "x", "y"):
        if k not in units:
            raise ValueError(f"{path}: units block lacks {k!r}")
    if units["t"] not in ("s", "second", "seconds"):
        raise ValueError(f"{path}: unsupported time unit {units['t']!r}")
    scale = {}
    for k in ("x", "y", "cx", "cy"):
        if k in units:
            if units[k] not in _UNIT_TO_UM:
                raise ValueError(f"{path}: unsupported length unit {units[k]!r} for {k}")
            scale[k] = _UNIT_TO_UM[units[k]]
    recs = doc["data"] if isinstance(doc["data"], list) else [doc["data"]]
    out = {}
    for r in recs:
        for k in ("id", "t", "x", "y"):
            if k not in r:
                raise ValueError(f"{path}: data record lacks {k!r}")
        t = np.atleast_1d(np.asarray(r["t"], float))
        x = np.asarray(r["x"], float).reshape(len(t), -1)
        y = np.asarray(r["y"], float).reshape(len(t), -1)
        if x.shape != y.shape:
            raise ValueError(f"{path}: record {r['id']}: x and y shapes differ")
        com = None
        if "cx" in r and "cy" in r:
            com = np.stack([np.asarray(r["cx"], float) * scale.get("cx", scale["x"]),
                            np.asarray(r["cy"], float) * scale.get("cy", scale["y"])], -1)
            if len(com) != len(t):
                raise ValueError(f"{path}: record {r['id']}: centroid length != time length")
        out[str(r["id"])] = {"t_s": t, "points_um": np.stack([x * scale["x"], y * scale["y"]],
                                                            -1), "com_um": com}
    return out
