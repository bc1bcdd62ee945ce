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


def _floats(path, rid, key, value) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: record {rid!r}: field {key!r} is not numeric") from None
    return a


def read_wcon(path: str | Path) -> dict:
    """Read and validate a WCON file; returns ``{id: {"t_s", "points_um" (T, P, 2),
    "com_um" (T, 2) or None}}``. Raises ``ValueError`` naming the file and the first problem
    (missing field, unknown unit, non-numeric or ragged values, lengths that disagree)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a WCON file (truncated or invalid JSON: {exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: WCON top level must be an object")
    for k in ("units", "data"):
        if k not in doc:
            raise ValueError(f"{path}: WCON lacks the top-level field {k!r}")
    units = doc["units"]
    if not isinstance(units, dict):
        raise ValueError(f"{path}: WCON 'units' must be an object")
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
    for i, r in enumerate(recs):
        if not isinstance(r, dict):
            raise ValueError(f"{path}: data record {i} is not an object")
        for k in ("id", "t", "x", "y"):
            if k not in r:
                raise ValueError(f"{path}: data record {r.get('id', i)!r} lacks {k!r}")
        rid = str(r["id"])
        t = np.atleast_1d(_floats(path, rid, "t", r["t"]))
        if t.ndim != 1 or not np.all(np.isfinite(t)):
            raise ValueError(f"{path}: record {rid!r}: 't' must be finite numbers")
        if len(t) > 1 and np.any(np.diff(t) <= 0):
            raise ValueError(f"{path}: record {rid!r}: 't' must increase")
        xy = []
        for k in ("x", "y"):
            a = _floats(path, rid, k, r[k])
            if a.size == 0 or a.size % len(t):
                raise ValueError(f"{path}: record {rid!r}: {k!r} has {a.size} values for "
                                 f"{len(t)} times")
            xy.append(a.reshape(len(t), -1))
        x, y = xy
        if x.shape != y.shape:
            raise ValueError(f"{path}: record {rid!r}: x and y shapes differ")
        if rid in out:
            raise ValueError(f"{path}: duplicate record id {rid!r}")
        com = None
        if ("cx" in r) != ("cy" in r):
            raise ValueError(f"{path}: record {rid!r} has only one of 'cx', 'cy'")
        if "cx" in r:
            cx, cy = (_floats(path, rid, k, r[k]).reshape(-1) for k in ("cx", "cy"))
            if len(cx) != len(t) or len(cy) != len(t):
                raise ValueError(f"{path}: record {rid!r}: centroid length != time length")
            com = np.stack([cx * scale.get("cx", scale["x"]), cy * scale.get("cy", scale["y"])],
                           -1)
        out[rid] = {"t_s": t, "points_um": np.stack([x * scale["x"], y * scale["y"]], -1),
                    "com_um": com}
    return out
