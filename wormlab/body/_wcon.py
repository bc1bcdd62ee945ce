"""WCON export/import (Worm tracker Commons Object Notation, the tracking community's JSON).

Layout written (WCON 1.0 core): ``{"units": {"t": "s", "x": "mm", "y": "mm", "cx": "mm",
"cy": "mm", "ox": "mm", "oy": "mm"}, "data": [{"id", "t": [...], "x": [[...26 points...] per
time], "y": ..., "cx": [...], "cy": [...], "ox": 0, "oy": 0}], "metadata": {"software":
{...}}}``; one data record per sample, midline points head -> tail, absolute coordinates
(``ox = oy = 0``: without an origin the spec reads ``x``, ``y`` relative to the centroid).

:func:`read_wcon` reads any file the WCON spec (openworm/tracker-commons ``WCON_format.md``)
allows for the core fields: units with SI prefixes, full or abbreviated names and scalar
factors (``"ms"``, ``"min"``, ``"um"``, ``"microns"``, ``"0.04*s"``, ``"in/72"``),
single-valued or arrayed ``t`` and ``data``, string or numeric ids, several records per id
(merged in time order), ``null`` coordinates (NaN), a varying number of midline points per
time (padded with NaN), the origin ``ox``/``oy`` (else the centroid ``cx``/``cy``),
``"head": "R"`` (points reversed to head first), custom ``@`` keys (ignored) and a zipped
``.wcon.zip``. Values come back in seconds and micrometres.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from wormlab.body._physics import Trajectory

# WCON_format.md, "Units": SI prefixes (abbreviated and full) and the time/length units
_PREFIX = {"": 1.0, "c": 1e-2, "m": 1e-3, "u": 1e-6, "\u00b5": 1e-6, "\u03bc": 1e-6, "n": 1e-9,
           "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
_PREFIX_WORD = {"": 1.0, "centi": 1e-2, "milli": 1e-3, "micro": 1e-6, "nano": 1e-9,
                "kilo": 1e3, "mega": 1e6, "giga": 1e9}
_TIME_S = ({"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0},
           {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0})
_LENGTH_UM = ({"m": 1e6, "in": 25400.0},
              {"metre": 1e6, "meter": 1e6, "inch": 25400.0, "micron": 1.0})
#: files this module wrote before it added ``ox``/``oy`` hold absolute ``x``, ``y``
_OWN_SOFTWARE = "wormlab.body"


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
            "ox": 0, "oy": 0,
        })
    doc = {"units": {"t": "s", "x": "mm", "y": "mm", "cx": "mm", "cy": "mm", "ox": "mm",
                     "oy": "mm"},
           "data": data,
           "metadata": {"software": {"name": _OWN_SOFTWARE, "settings": {
               "source": tr.source, "body_length_um": tr.body_length_um}},
               **(metadata or {})}}
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc))
    return path


def _unit_token(tok: str, table) -> float | None:
    abbr, words = table
    if tok in abbr:
        return abbr[tok]
    for base, f in abbr.items():
        if tok.endswith(base) and tok[: -len(base)] in _PREFIX:
            return _PREFIX[tok[: -len(base)]] * f
    for base, f in words.items():  # full names may be plural ("microns", "inches")
        for plural in (base, base + "s", base + "es"):
            if tok.endswith(plural) and tok[: -len(plural)] in _PREFIX_WORD:
                return _PREFIX_WORD[tok[: -len(plural)]] * f
    return None


def _unit_factor(path, key: str, unit, table, kind: str) -> float:
    """Factor from a WCON unit string (``"mm"``, ``"0.04*s"``, ``"in/72"``) to s or um."""
    bad = ValueError(f"{path}: unsupported {kind} unit {unit!r} for {key}")
    if not isinstance(unit, str):
        raise bad
    parts = re.split(r"\s*([*/])\s*", unit.strip())
    factor, n_units = 1.0, 0
    for i in range(0, len(parts), 2):
        tok, divide = parts[i], i > 0 and parts[i - 1] == "/"
        try:
            v = float(tok)
        except ValueError:
            v = _unit_token(tok, table)
            if v is None or divide:
                raise bad from None
            n_units += 1
        if not (np.isfinite(v) and v > 0):
            raise bad
        factor = factor / v if divide else factor * v
    if n_units != 1:
        raise bad
    return factor


def _read_doc(path: Path):
    """The JSON of a ``.wcon``/``.json`` file or of the WCON file in a ``.zip`` archive."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                if not names:
                    raise ValueError(f"{path}: zip archive holds no WCON file")
                wcon = [n for n in names if n.lower().endswith((".wcon", ".json"))]
                raw = z.read(sorted(wcon or names)[0])
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ValueError(f"{path}: damaged zip archive ({exc})") from None
    else:
        raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a WCON file (truncated or invalid JSON: {exc})") from None


def _floats(path, rid, key, value) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: record {rid!r}: field {key!r} is not numeric") from None
    return a


def _coords(path, rid, key, value, n_t: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` or ``y`` of one record -> ((T, P) with NaN padding, (T,) points per time)."""
    try:
        a = np.asarray(value, dtype=float)
    except ValueError:  # ragged: a different number of midline points at each time
        if not (isinstance(value, list) and all(isinstance(v, list) for v in value)):
            raise ValueError(f"{path}: record {rid!r}: field {key!r} is not numeric") from None
        if len(value) != n_t:
            raise ValueError(f"{path}: record {rid!r}: {key!r} has {len(value)} point lists "
                             f"for {n_t} times") from None
        rows = [_floats(path, rid, key, v).reshape(-1) for v in value]
        n = np.array([len(r) for r in rows])
        a = np.full((n_t, max(n.max(), 1)), np.nan)
        for i, r in enumerate(rows):
            a[i, : len(r)] = r
        return a, n
    except TypeError:
        raise ValueError(f"{path}: record {rid!r}: field {key!r} is not numeric") from None
    if a.size == 0 or a.size % n_t:
        raise ValueError(f"{path}: record {rid!r}: {key!r} has {a.size} values for "
                         f"{n_t} times")
    a = a.reshape(n_t, -1)
    return a, np.full(n_t, a.shape[1])


def _per_time(path, rid, key, value, n_t: int) -> np.ndarray:
    """A single-valued or arrayed (one per time) numeric field -> (T,)."""
    a = _floats(path, rid, key, value).reshape(-1)
    if a.size == 1:
        return np.full(n_t, a[0])
    if a.size != n_t:
        raise ValueError(f"{path}: record {rid!r}: {key!r} has {a.size} values for {n_t} times")
    return a


def _record_id(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1 and 1.0 are the same animal
    return str(value)


def read_wcon(path: str | Path) -> dict:
    """Read and validate a WCON file (or a zipped ``.wcon.zip``).

    Returns ``{id: {"t_s" (T,) s, "points_um" (T, P, 2) um head first (NaN = missing or
    padding), "com_um" (T, 2) um or None}}``, records of one id merged in time order. Raises
    ``ValueError`` naming the file and the first problem (missing field, unknown unit,
    non-numeric or ragged values, lengths that disagree, a time given twice).
    """
    path = Path(path)
    doc = _read_doc(path)
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
    t_scale = _unit_factor(path, "t", units["t"], _TIME_S, "time")
    scale = {k: _unit_factor(path, k, units[k], _LENGTH_UM, "length")
             for k in ("x", "y", "cx", "cy", "ox", "oy") if k in units}
    meta = doc.get("metadata")
    software = meta.get("software") if isinstance(meta, dict) else None
    legacy = isinstance(software, dict) and software.get("name") == _OWN_SOFTWARE
    recs = doc["data"] if isinstance(doc["data"], list) else [doc["data"]]
    parts: dict[str, list] = {}
    for i, r in enumerate(recs):
        if not isinstance(r, dict):
            raise ValueError(f"{path}: data record {i} is not an object")
        for k in ("id", "t", "x", "y"):
            if k not in r:
                raise ValueError(f"{path}: data record {r.get('id', i)!r} lacks {k!r}")
        rid = _record_id(r["id"])
        t = np.atleast_1d(_floats(path, rid, "t", r["t"]))
        if t.ndim != 1 or not np.all(np.isfinite(t)):
            raise ValueError(f"{path}: record {rid!r}: 't' must be finite numbers")
        if len(t) > 1 and np.any(np.diff(t) <= 0):
            raise ValueError(f"{path}: record {rid!r}: 't' must increase")
        (x, nx), (y, ny) = (_coords(path, rid, k, r[k], len(t)) for k in ("x", "y"))
        if x.shape != y.shape or not np.array_equal(nx, ny):
            raise ValueError(f"{path}: record {rid!r}: x and y shapes differ")
        for a, k in ((x, "x"), (y, "y")):
            a *= scale[k]
        if ("cx" in r) != ("cy" in r) or ("ox" in r) != ("oy" in r):
            pair = "'cx', 'cy'" if ("cx" in r) != ("cy" in r) else "'ox', 'oy'"
            raise ValueError(f"{path}: record {rid!r} has only one of {pair}")
        origin = None
        if "ox" in r:
            origin = [_per_time(path, rid, k, r[k], len(t)) * scale.get(k, scale[c])
                      for k, c in (("ox", "x"), ("oy", "y"))]
        com = None
        if "cx" in r:
            try:
                cx, cy = (_per_time(path, rid, k, r[k], len(t)) * scale.get(k, scale[c])
                          for k, c in (("cx", "x"), ("cy", "y")))
            except ValueError as exc:
                if "values for" not in str(exc):
                    raise
                raise ValueError(f"{path}: record {rid!r}: centroid length != time "
                                 "length") from None
            if origin is not None:  # the centroid is relative to the origin too
                cx, cy = cx + origin[0], cy + origin[1]
            elif not legacy:  # the spec: no origin given -> the centroid is the origin
                origin = [cx, cy]
            com = np.stack([cx, cy], -1)
        if origin is not None:
            x += origin[0][:, None]
            y += origin[1][:, None]
        pts = np.stack([x, y], -1)
        head = r.get("head")
        if head is not None:  # "R": the head is the last point
            head = [head] * len(t) if isinstance(head, str) else head
            if not isinstance(head, list) or len(head) != len(t):
                raise ValueError(f"{path}: record {rid!r}: 'head' must be one value or one "
                                 f"per time ({len(t)})")
            for j in np.flatnonzero([h == "R" for h in head]):
                pts[j, : nx[j]] = pts[j, : nx[j]][::-1]
        parts.setdefault(rid, []).append((t * t_scale, pts, com))
    return {rid: _merge(path, rid, p) for rid, p in parts.items()}


def _merge(path, rid: str, parts: list) -> dict:
    """Join the records of one animal (the spec lets an id repeat) in time order."""
    if len(parts) == 1:
        t, pts, com = parts[0]
        return {"t_s": t, "points_um": pts, "com_um": com}
    if len({c is None for _, _, c in parts}) > 1:
        raise ValueError(f"{path}: record {rid!r}: some records have a centroid, others not")
    parts = sorted(parts, key=lambda p: p[0][0])
    n_pts = max(p[1].shape[1] for p in parts)
    t = np.concatenate([p[0] for p in parts])
    if np.any(np.diff(t) <= 0):
        k = int(np.argmax(np.diff(t) <= 0))
        raise ValueError(f"{path}: record {rid!r}: records overlap in time (t = {t[k + 1]:g} "
                         "s twice or out of order)")
    pts = np.concatenate([np.pad(p[1], ((0, 0), (0, n_pts - p[1].shape[1]), (0, 0)),
                                 constant_values=np.nan) for p in parts])
    com = None if parts[0][2] is None else np.concatenate([p[2] for p in parts])
    return {"t_s": t, "points_um": pts, "com_um": com}
