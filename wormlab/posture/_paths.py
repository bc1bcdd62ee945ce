"""Paths given as notebook or CLI text, resolved the way the rest of wormlab resolves them."""

from __future__ import annotations

from pathlib import Path

from wormlab.paths import cache_dir, project_root


def resolve_path(text: str | Path) -> Path:
    """An absolute path as is; ``data/cache/...`` under :func:`wormlab.paths.cache_dir` (so
    ``WORMLAB_CACHE`` moves it, e.g. to an isolated test cache); any other relative path under
    the project root."""
    p = Path(text)
    if p.is_absolute():
        return p
    parts = p.parts
    if parts[:2] == ("data", "cache"):
        return cache_dir(create=False).joinpath(*parts[2:])
    return project_root() / p
