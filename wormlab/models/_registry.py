"""Shipped trained models: one folder per model under ``data/models/`` (committed).

``data/models/<name>/model.safetensors`` holds the tensors (safetensors, never a pickle) and
``data/models/<name>/manifest.json`` says what they are: sha256 and size of the tensor file,
the kind and the architecture (``config``) the loader must rebuild, the exact command and data
that produced them, the code version (git commit + dirty flag), when, and the headline metrics
with the tolerance :func:`verify` allows when it recomputes them.

Components register a verifier per kind (:func:`register_verifier`); a kind is named
``"<component>.<model>"`` and :func:`verify` imports ``wormlab.<component>`` (its public API,
which registers that component's verifiers) when no verifier is registered yet.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import importlib
import json
import math
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wormlab.io import CheckpointError
from wormlab.paths import project_root

MODEL_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_.]+$")
_REQUIRED = ("format_version", "name", "kind", "file", "sha256", "bytes", "config", "command",
             "data", "code_version", "created", "metrics", "tolerance")

Verifier = Callable[[str, dict, dict], Mapping[str, float]]
VERIFIERS: dict[str, Verifier] = {}


class ModelError(CheckpointError):
    """A shipped model is missing, corrupt, of another kind or architecture, or fails verify."""


class VerifySkipped(Exception):  # noqa: N818 - a signal, not a failure
    """Raised by a verifier when its held-out data is not on this machine (e.g. the shared
    recordings folder is absent). :func:`verify` still checks the file (hash, kind,
    architecture, shapes) and reports ``skipped`` with the reason; ``wormlab models verify``
    does not fail on it."""


def models_dir() -> Path:
    """The folder of shipped models: ``data/models`` of the project (``WORMLAB_MODELS``
    overrides it, e.g. for tests)."""
    env = os.environ.get("WORMLAB_MODELS")
    return Path(env).resolve() if env else project_root() / "data" / "models"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"model name {name!r} is invalid: use 1-64 characters of a-z, 0-9, "
                         "'_', '.', '-' (starting with a letter or digit)")
    return name


def model_path(name: str) -> Path:
    """``data/models/<name>/model.safetensors`` (whether or not it exists)."""
    return models_dir() / _check_name(name) / MODEL_FILE


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _plain(x: Any) -> Any:
    """A config (dataclass, dict, tuple ...) as JSON would store it (tuples -> lists)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        from wormlab.io import config_to_dict

        x = config_to_dict(x)
    return json.loads(json.dumps(x))


def current_code_version(paths: tuple[str, ...] = ("wormlab",)) -> dict:
    """``{"commit": full git hash or "unknown", "dirty": uncommitted changes under paths,
    "dirty_paths": paths}``; a component passes its own folders (e.g. ``("wormlab/body",
    "wormlab/models")``) so that unrelated work in progress elsewhere does not mark it dirty."""
    root = project_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip() or "unknown"
        status = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=root,
                                capture_output=True, text=True, timeout=10).stdout
        dirty = bool(status.strip()) if commit != "unknown" else None
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", None
    return {"commit": commit, "dirty": dirty, "dirty_paths": list(paths)}


def _tolerances(metrics: Mapping[str, float], tolerance) -> dict[str, float]:
    if isinstance(tolerance, (int, float)):
        tol = {k: float(tolerance) for k in metrics}
    elif isinstance(tolerance, Mapping):
        tol = {str(k): float(v) for k, v in tolerance.items()}
    else:
        raise ValueError(f"tolerance must be a number or a {{metric: number}} dict, got "
                         f"{type(tolerance).__name__}")
    for k, v in tol.items():
        if k not in metrics:
            raise ValueError(f"tolerance given for metric {k!r}, which is not in metrics "
                             f"({sorted(metrics)})")
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"tolerance of metric {k!r} must be a finite number >= 0, got {v}")
    if not tol:
        raise ValueError("at least one metric with a tolerance is needed for verify")
    return tol


def save(name: str, tensors: Mapping[str, Any], *, kind: str, config: Any, command: str,
         data: Mapping[str, Any], metrics: Mapping[str, float], tolerance,
         code_version: dict | None = None, metadata: Mapping[str, str] | None = None) -> Path:
    """Ship a trained model: write ``data/models/<name>/model.safetensors`` and its manifest.

    Args:
        name: folder name (a-z, 0-9, ``_.-``).
        tensors: ``{name: torch.Tensor}`` (made contiguous; any dtype safetensors stores).
        kind: ``"<component>.<model>"``, e.g. ``"body.surrogate"``; selects the verifier.
        config: the architecture (a config dataclass or a JSON-able dict) the loader must
            rebuild; :func:`load` compares it with the caller's expectation.
        command: the exact command line that produced the model.
        data: what it was trained on, where it lives and its provenance (JSON-able), plus
            whatever the verifier needs (e.g. held-out sample ids).
        metrics: the documented headline metrics ``{metric: value}``.
        tolerance: absolute tolerance :func:`verify` allows per metric (one number for all, or
            a dict; metrics without a tolerance are documented but not verified).
        code_version: ``{"commit", "dirty"}``; default: the repository's (:func:`current_code_version`).
        metadata: extra ``str -> str`` entries for the safetensors header (e.g. a component's
            own checkpoint metadata, so the file is also a checkpoint of that component).

    Returns:
        The manifest path. Each file is written atomically (tensors first, manifest last, so a
        manifest never describes a file that was not completely written).
    """
    from safetensors.torch import save_file

    from wormlab.runs import atomic_path

    _check_name(name)
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError(f"model {name!r}: kind {kind!r} must look like '<component>.<model>'")
    if not tensors:
        raise ValueError(f"model {name!r}: no tensors to save")
    metrics = {str(k): float(v) for k, v in dict(metrics).items()}
    for k, v in metrics.items():
        if not math.isfinite(v):
            raise ValueError(f"model {name!r}: metric {k!r} is not finite ({v})")
    tol = _tolerances(metrics, tolerance)
    try:
        config_plain, data_plain = _plain(config), _plain(dict(data))
    except TypeError as exc:
        raise ValueError(f"model {name!r}: config and data must be JSON-able ({exc})") from None
    folder = models_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILE
    state = {str(k): v.detach().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={str(k): str(v) for k, v in (metadata or {}).items()})
    manifest = {
        "format_version": FORMAT_VERSION, "name": name, "kind": kind, "file": MODEL_FILE,
        "sha256": _sha256(path), "bytes": path.stat().st_size,
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                    for k, v in state.items()},
        "config": config_plain, "command": str(command), "data": data_plain,
        "code_version": (dict(code_version) if code_version is not None
                         else current_code_version()),
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metrics": metrics, "tolerance": tol,
    }
    out = folder / MANIFEST_FILE
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return out


def manifest(name: str) -> dict:
    """The manifest of a shipped model, validated (fields present, file named inside its
    folder). ``ModelError`` names the model and the problem."""
    folder = models_dir() / _check_name(name)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        have = ", ".join(r["name"] for r in list_models()) or "none"
        raise ModelError(f"model {name!r}: no manifest at {path} (shipped models: {have})")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model {name!r}: unreadable manifest {path} ({exc})") from None
    if not isinstance(m, dict):
        raise ModelError(f"model {name!r}: manifest {path} is not a JSON object")
    missing = [k for k in _REQUIRED if k not in m]
    if missing:
        raise ModelError(f"model {name!r}: manifest {path} lacks the field(s) {missing}")
    if m["format_version"] != FORMAT_VERSION:
        raise ModelError(f"model {name!r}: manifest format_version {m['format_version']!r}, "
                         f"this wormlab reads {FORMAT_VERSION}")
    if m["name"] != name:
        raise ModelError(f"model {name!r}: manifest {path} names the model {m['name']!r}")
    if Path(str(m["file"])).name != m["file"]:
        raise ModelError(f"model {name!r}: manifest field 'file' {m['file']!r} must be a plain "
                         "file name inside the model's folder")
    return m


def _first_difference(want: Any, got: Any, where: str = "config") -> tuple[str, Any, Any] | None:
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got), key=str):
            if k not in got:
                return f"{where}.{k}", want[k], "(absent)"
            if k not in want:
                return f"{where}.{k}", "(absent)", got[k]
            d = _first_difference(want[k], got[k], f"{where}.{k}")
            if d:
                return d
        return None
    return None if want == got else (where, want, got)


def check_file(name: str, m: dict | None = None) -> Path:
    """The model file of ``name`` after checking its size and sha256 against the manifest."""
    m = m if m is not None else manifest(name)
    path = models_dir() / name / m["file"]
    if not path.is_file():
        raise ModelError(f"model {name!r}: its manifest names {path}, which is missing")
    size = path.stat().st_size
    if size != m["bytes"]:
        raise ModelError(f"model {name!r}: {path} has {size} bytes, the manifest says "
                         f"{m['bytes']} (truncated or replaced file)")
    digest = _sha256(path)
    if digest != m["sha256"]:
        raise ModelError(f"model {name!r}: sha256 of {path} is {digest}, the manifest says "
                         f"{m['sha256']} (corrupt or replaced file)")
    return path


def load(name: str, *, kind: str | None = None, config: Any = None) -> tuple[dict, dict]:
    """Tensors and manifest of a shipped model, checked.

    Args:
        name: the model's folder name.
        kind: when given, the manifest's kind must equal it.
        config: when given (dataclass or dict), the manifest's architecture must equal it.

    Returns:
        ``(tensors, manifest)``.

    Raises:
        ModelError (a ``ValueError``) naming the model, the field and both values on a missing
        manifest or file, a size or sha256 mismatch, another kind or architecture, or tensors
        that differ from those the manifest lists.
    """
    from wormlab.io import read_safetensors

    m = manifest(name)
    if kind is not None and m["kind"] != kind:
        raise ModelError(f"model {name!r}: kind is {m['kind']!r}, expected {kind!r}")
    if config is not None:
        d = _first_difference(_plain(config), m["config"])
        if d:
            raise ModelError(f"model {name!r}: architecture mismatch at {d[0]}: expected "
                             f"{d[1]!r}, the shipped model has {d[2]!r}")
    path = check_file(name, m)
    tensors, _ = read_safetensors(path, f"shipped model {name!r}")
    listed = m.get("tensors")
    if listed is not None:
        got = {k: list(v.shape) for k, v in tensors.items()}
        want = {k: v["shape"] for k, v in listed.items()}
        d = _first_difference(want, got, "tensors")
        if d:
            raise ModelError(f"model {name!r}: tensor shapes differ from the manifest at {d[0]}:"
                             f" manifest {d[1]!r}, file {d[2]!r}")
    return tensors, m


def ship_checkpoint(name: str, checkpoint: str | Path, *, kind: str, config: Any, command: str,
                    data: Mapping[str, Any], metrics: Mapping[str, float], tolerance,
                    code_version: dict | None = None) -> Path:
    """Ship a component's own safetensors checkpoint unchanged (tensors and header metadata):
    :func:`save` with the file's tensors and metadata, so the shipped file stays loadable by
    the component's loader (``load_model(checked_path(name, ...))``). Read safely
    (``wormlab.io.read_safetensors``: never a pickle, NaN/inf refused). Returns the manifest path.
    """
    from wormlab.io import read_safetensors

    tensors, meta = read_safetensors(checkpoint, f"checkpoint to ship as {name!r}")
    return save(name, tensors, kind=kind, config=config, command=command, data=data,
                metrics=metrics, tolerance=tolerance, code_version=code_version, metadata=meta)


def json_tensor(obj) -> Any:
    """A JSON document as a uint8 tensor of its UTF-8 text, for results that ship as a model
    (e.g. a table of per-split scores): the registry then checks it like weights (size,
    sha256). :func:`tensor_json` reads it back."""
    import json as _json

    import torch

    blob = bytearray(_json.dumps(obj).encode("utf-8"))
    return torch.frombuffer(blob, dtype=torch.uint8).clone()


def tensor_json(t) -> Any:
    """The JSON document of a :func:`json_tensor` tensor."""
    import json as _json

    return _json.loads(bytes(t.numpy().tobytes()).decode("utf-8"))


def checked_path(name: str, *, kind: str | None = None, config: Any = None) -> Path:
    """The shipped model file after every :func:`load` check (manifest, size, sha256, kind,
    architecture, tensor shapes), for components whose own loader reads the file."""
    load(name, kind=kind, config=config)
    return models_dir() / name / manifest(name)["file"]


HELDOUT_FILE = "heldout_{split}.safetensors"


def write_heldout(name: str, split: str, tensors: Mapping[str, Any], ids) -> dict:
    """Write a model's held-out set (``{name: tensor}``, first axis or a documented axis per
    sample, and one id per sample) to ``data/models/<name>/heldout_<split>.safetensors``
    atomically, before :func:`save`; put the returned entry into the manifest as
    ``data["heldout_files"][split]`` so that :func:`read_heldout` can check it. For verifiers
    that must run where the training data is absent (a fresh clone)."""
    import json as _json

    from safetensors.torch import save_file

    from wormlab.runs import atomic_path

    _check_name(name)
    if not re.match(r"^[a-z0-9_]+$", str(split)):
        raise ValueError(f"model {name!r}: held-out split name {split!r} must be a-z, 0-9, _")
    ids = [str(i) for i in ids]
    state = {str(k): v.detach().contiguous() for k, v in tensors.items()}
    if not state:
        raise ValueError(f"model {name!r}: no held-out tensors for split {split!r}")
    path = models_dir() / name / HELDOUT_FILE.format(split=split)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"ids_json": _json.dumps(ids)})
    return {"file": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size,
            "n": len(ids)}


def read_heldout(name: str, split: str, m: dict | None = None) -> tuple[dict, list[str]] | None:
    """``(tensors, ids)`` of the held-out file the manifest names for ``split`` (size and
    sha256 checked, read safely), or None when the manifest names none. A named file that is
    missing or differs is a :class:`ModelError`."""
    from wormlab.io import meta_json, read_safetensors

    m = m if m is not None else manifest(name)
    entry = ((m.get("data") or {}).get("heldout_files") or {}).get(split)
    if entry is None:
        return None
    path = models_dir() / name / Path(str(entry["file"])).name
    if not path.is_file():
        raise ModelError(f"model {name!r}: its manifest names the held-out file {path}, which "
                         "is missing")
    if path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
        raise ModelError(f"model {name!r}: sha256 of {path} is {_sha256(path)}, the manifest "
                         f"says {entry['sha256']} (corrupt or replaced held-out file)")
    tensors, meta = read_safetensors(path, f"held-out {split} file of model {name!r}")
    ids = [str(i) for i in meta_json(meta, "ids_json", path, "held-out file")]
    if len(ids) != entry.get("n", len(ids)):
        raise ModelError(f"model {name!r}: {path} holds {len(ids)} ids, the manifest says "
                         f"{entry['n']}")
    return tensors, ids


def exists(name: str) -> bool:
    """Whether a manifest for ``name`` is shipped (nothing is checked)."""
    return (models_dir() / _check_name(name) / MANIFEST_FILE).is_file()


def list_models() -> list[dict]:
    """One row per shipped model (sorted by name): name, kind, bytes, sha256 (first 12 hex
    digits), created, commit, metrics, tolerance; a folder with an unreadable manifest gives a
    row with ``error``. Nothing is hashed here (:func:`verify` does)."""
    rows = []
    root = models_dir()
    if not root.is_dir():
        return rows
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)):
        if not (folder / MANIFEST_FILE).exists():
            continue
        try:
            m = manifest(folder.name)
        except ModelError as exc:
            rows.append({"name": folder.name, "error": str(exc)})
            continue
        rows.append({"name": m["name"], "kind": m["kind"], "bytes": m["bytes"],
                     "sha256": str(m["sha256"])[:12], "created": m["created"],
                     "commit": str((m.get("code_version") or {}).get("commit"))[:12],
                     "dirty": (m.get("code_version") or {}).get("dirty"),
                     "metrics": m["metrics"], "tolerance": m["tolerance"]})
    return rows


def register_verifier(kind: str, fn: Verifier) -> None:
    """``fn(name, tensors, manifest) -> {metric: value}`` recomputes a kind's headline
    metric(s) on the held-out set its manifest records."""
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError(f"kind {kind!r} must look like '<component>.<model>'")
    VERIFIERS[kind] = fn


def _verifier(kind: str) -> Verifier:
    component = kind.split(".", 1)[0]
    # the component's package registers its verifiers on import; shipping glue that lives in
    # wormlab/<component>/_ship.py (kept apart from the component's own modules) is tried next
    for module in (f"wormlab.{component}", f"wormlab.{component}._ship"):
        if kind in VERIFIERS:
            break
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not (exc.name and (module == exc.name or module.startswith(exc.name + "."))):
                raise  # the module exists but one of its own imports is missing
    if kind not in VERIFIERS:
        raise ModelError(f"no verifier registered for kind {kind!r} (wormlab.{kind.split('.')[0]}"
                         " registers none)")
    return VERIFIERS[kind]


def verify(name: str) -> dict:
    """Check a shipped model and recompute its metrics.

    Returns ``{"name", "kind", "ok", "metrics": {metric: {"recorded", "recomputed",
    "tolerance", "ok"}}, "wall_s"}``, plus ``"error"`` when the model could not be loaded or
    its verifier failed (``ok`` False), or ``"skipped"`` (``ok`` False, not a failure: see
    :func:`failed`) when the file passed its checks but the verifier raised
    :class:`VerifySkipped`. A metric passes when ``|recomputed - recorded| <= tolerance``.
    """
    import time

    t0 = time.perf_counter()
    out: dict[str, Any] = {"name": name, "kind": None, "ok": False, "metrics": {}}
    try:
        m = manifest(name)
        out["kind"] = m["kind"]
        tensors, m = load(name)
        got = dict(_verifier(m["kind"])(name, tensors, m))
    except VerifySkipped as exc:
        out["skipped"] = f"file checked (sha256, kind, architecture); metric not recomputed: {exc}"
        out["wall_s"] = round(time.perf_counter() - t0, 2)
        return out
    except Exception as exc:  # noqa: BLE001 - reported per model, the CLI goes on with the rest
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["wall_s"] = round(time.perf_counter() - t0, 2)
        return out
    ok = True
    for k, tol in m["tolerance"].items():
        rec = m["metrics"][k]
        new = got.get(k)
        good = new is not None and math.isfinite(float(new)) and abs(float(new) - rec) <= tol
        out["metrics"][k] = {"recorded": rec, "recomputed": None if new is None else float(new),
                             "tolerance": tol, "ok": bool(good)}
        ok &= bool(good)
    out["ok"] = ok
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    return out


def failed(result: dict) -> bool:
    """Whether a :func:`verify` result is a failure (a skipped metric is not)."""
    return not result.get("ok") and "skipped" not in result


VERIFY_REPORT = "models_verify.json"  # written by the main job into the reports folder


def verify_table_html(reports_folder: Path) -> str:
    """The HTML table of ``<reports>/models_verify.json`` (``wormlab models verify --out``)
    for the report index; an empty string when the file is absent."""
    import html

    path = Path(reports_folder) / VERIFY_REPORT
    if not path.is_file():
        return ""
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
        rows = []
        for r in res["models"]:
            mets = "".join(
                f"<li>{html.escape(k)}: recorded {v['recorded']:.4g}, recomputed "
                f"{'-' if v['recomputed'] is None else format(v['recomputed'], '.4g')} "
                f"(tolerance {v['tolerance']:g}) {'ok' if v['ok'] else '<b>OUT</b>'}</li>"
                for k, v in r["metrics"].items())
            err = f"<br>{html.escape(r['error'])}" if r.get("error") else ""
            state = ("ok" if r["ok"] else "skipped<br>" + html.escape(r["skipped"])
                     if "skipped" in r else "<b>FAILED</b>")
            rows.append(f"<tr><td>{html.escape(str(r['name']))}</td>"
                        f"<td>{html.escape(str(r.get('kind')))}</td>"
                        f"<td>{state}{err}</td>"
                        f"<td><ul>{mets}</ul></td><td>{float(r.get('wall_s', 0)):.0f} s</td></tr>")
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        return f"<h2>shipped models</h2><p>unreadable {html.escape(str(path))} ({exc})</p>"
    when = _dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    return ("<h2>shipped models (<code>wormlab models verify</code>, " + when + ")</h2>"
            "<table border=1 cellpadding=4><tr><th>model</th><th>kind</th><th>verify</th>"
            "<th>headline metric on its held-out set</th><th>time</th></tr>"
            + "".join(rows) + "</table>")
