"""Reading untrusted files safely: tensors come from safetensors only, never from a pickle.

Every checkpoint loader in wormlab goes through :func:`read_safetensors` (or
:func:`safetensors_header` for the metadata alone), so a truncated, corrupt or wrong-format file
raises :class:`CheckpointError` naming the file and the problem, and a pickle (``torch.save``
output, or a crafted file that would run code when unpickled) is refused before any byte of it
is interpreted. The one ``torch.load`` left (optimiser state of the posture LSTM) goes through
:func:`load_torch_weights`, which uses ``weights_only=True`` (no code execution) and names the file.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

_MISSING = object()
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


class CheckpointError(ValueError):
    """A checkpoint or parameter file is missing a part, truncated, corrupt or not safetensors."""


def _sniff(head: bytes) -> str | None:
    """A name for a file format that is NOT safetensors, from its first bytes (or None)."""
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return "a Python pickle"
    if head[:2] == b"PK":
        return "a zip archive (torch.save output, which holds a pickle)"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "an HDF5 file"
    if head[:6] == b"\x93NUMPY":
        return "a NumPy .npy file"
    return None


def safetensors_header(path: str | Path, what: str = "checkpoint") -> tuple[dict[str, str],
                                                                             dict[str, tuple]]:
    """Validate the framing of a safetensors file without loading tensors.

    Returns ``(metadata, {tensor name: shape})``. Raises :class:`CheckpointError` (a
    ``ValueError``) naming ``path`` when the file is not safetensors (pickles are named as such and
    never unpickled), when its header is truncated or not JSON, or when the data section is
    shorter than the header declares (a truncated copy); ``FileNotFoundError`` when absent.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
        # a safetensors file: an 8-byte little-endian header length, then the JSON header. Its
        # length bytes can look like a pickle's magic (a 640-byte header starts 80 02), so a
        # valid framing is recognised before any sniffing
        framed = (len(head) == 9 and head[8:9] == b"{"
                  and 0 < struct.unpack("<Q", head[:8])[0] <= size - 8)
        head = head[:8]
        fh.seek(8)
        other = None if framed else _sniff(head)
        if other:
            raise CheckpointError(f"{path}: {what} is {other}, not safetensors; wormlab never "
                                  "loads pickles (re-save it with safetensors)")
        if len(head) < 8:
            raise CheckpointError(f"{path}: unreadable or truncated {what} ({size} bytes, no "
                                  "safetensors header)")
        (n,) = struct.unpack("<Q", head)
        if n > min(_MAX_HEADER, size - 8):
            raise CheckpointError(f"{path}: unreadable or truncated {what}, or not safetensors "
                                  f"(header declares {n} bytes, file has {size})")
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: {what} has a corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: {what} has a corrupt safetensors header (not an object)")
    meta = header.pop("__metadata__", None) or {}
    end, shapes = 0, {}
    for name, info in header.items():
        try:
            shapes[name] = tuple(int(s) for s in info["shape"])
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise CheckpointError(f"{path}: {what} has a corrupt entry for tensor {name!r}"
                                  ) from None
    if 8 + n + end > size:
        raise CheckpointError(f"{path}: unreadable or truncated {what} ({size} bytes, its "
                              f"header needs {8 + n + end})")
    return dict(meta), shapes


def read_safetensors(path: str | Path, what: str = "checkpoint", *, finite: bool = True
                     ) -> tuple[dict[str, Any], dict[str, str]]:
    """All tensors and the metadata of a safetensors file, validated.

    Args:
        path: the file.
        what: words for error messages ("SAE checkpoint", "parameter file", ...).
        finite: refuse floating-point tensors holding NaN or inf (a corrupt or diverged save).

    Returns:
        ``(tensors, metadata)``. Errors as :func:`safetensors_header`, plus the name of the first
        tensor holding NaN/inf when ``finite``.
    """
    import torch
    from safetensors import safe_open

    meta, _ = safetensors_header(path, what)
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # SafetensorError: any other corruption the framing check missed
        raise CheckpointError(f"{path}: unreadable or corrupt {what} ({exc})") from exc
    if finite:
        for k, v in tensors.items():
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                raise CheckpointError(f"{path}: {what} tensor {k!r} contains NaN or inf")
    return tensors, meta


def meta_json(meta: dict[str, str], key: str, path: str | Path, what: str = "checkpoint",
              default: Any = _MISSING) -> Any:
    """``json.loads(meta[key])`` with an error naming the file and the field when the field is
    absent (and no ``default``) or not valid JSON."""
    if key not in meta:
        if default is _MISSING:
            raise CheckpointError(f"{path}: {what} metadata lacks the field {key!r}")
        return default
    try:
        return json.loads(meta[key])
    except (TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: {what} metadata field {key!r} is not valid JSON "
                              f"({exc})") from None


def load_torch_weights(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only (a pickle that
    would import or call anything is refused without running it), errors naming ``path``."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        # torch's first line suggests weights_only=False; the useful reason is further down
        why = next((ln for ln in lines if "GLOBAL" in ln or "Unsupported" in ln),
                   lines[0] if lines else type(exc).__name__)
        raise CheckpointError(f"{path}: refused or unreadable {what} (only plain tensors are "
                              f"loaded, never arbitrary pickles): {why}") from None


def config_to_dict(cfg) -> dict[str, Any]:
    """A frozen config dataclass (nested) as a plain dict; tuples stay tuples (JSON writes them
    as lists, which :func:`config_from_dict` turns back)."""
    import dataclasses

    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"config_to_dict expects a dataclass instance, got {type(cfg).__name__}")
    return dataclasses.asdict(cfg)


def _field_types(cls) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be evaluated: fall back to the defaults
        return {}


def _convert(hint: Any, value: Any, where: str) -> Any:
    """``value`` (from JSON) converted to the annotated type: nested dataclasses from dicts,
    tuples from lists (elements converted too); anything else unchanged."""
    import dataclasses
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(options[0], value, where) if len(options) == 1 else value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return config_from_dict(hint, value, where=where)
    if hint is tuple and isinstance(value, list):
        return tuple(value)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) == len(value):
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in
                         enumerate(zip(args, value)))
        return tuple(value)
    return value


def config_from_dict(cls, d: Any, *, where: str | None = None):
    """Build the frozen config dataclass ``cls`` from a (JSON-loaded) dict.

    Nested config dataclasses are built from nested dicts, lists become tuples where the field
    is a tuple (elements converted too, e.g. a tuple of stimulus specs), missing fields keep
    their defaults, ``None`` means all defaults. An unknown key raises ``ValueError`` naming it,
    where it is (``"BodyConfig.data"``) and the valid fields.
    """
    import dataclasses

    where = where or cls.__name__
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise TypeError(f"{where}: expected a mapping of fields, got {type(d).__name__} {d!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown field{'s' * (len(unknown) > 1)} "
                         f"{', '.join(map(repr, unknown))}; valid fields: {', '.join(fields)}")
    hints = _field_types(cls)
    kw = {}
    for key, value in d.items():
        f = fields[key]
        hint = hints.get(key)
        if hint is None:  # unresolvable annotation: go by the default's type
            default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                       else f.default)
            hint = type(default) if default is not dataclasses.MISSING else None
        kw[key] = _convert(hint, value, f"{where}.{key}") if hint is not None else value
    return cls(**kw)
