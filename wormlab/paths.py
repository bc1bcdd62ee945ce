"""Where things live: project root, shipped data, caches, reports and the shared recordings."""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def project_root() -> Path:
    """The repository root (holds ``notebooks/``); ``WORMLAB_ROOT`` overrides it."""
    env = os.environ.get("WORMLAB_ROOT")
    if env:
        return Path(env).resolve()
    return _PKG.parent


def package_data(*parts: str) -> Path:
    """Path of a file shipped inside the ``wormlab`` package."""
    return _PKG.joinpath(*parts)


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def reports_dir() -> Path:
    """Where executed notebooks go; ``WORMLAB_REPORTS`` overrides it."""
    env = os.environ.get("WORMLAB_REPORTS")
    return Path(env).resolve() if env else project_root() / "reports"


def cache_dir(*parts: str, create: bool = True) -> Path:
    """Cache for generated data (git-ignored); ``WORMLAB_CACHE`` overrides ``data/cache``."""
    env = os.environ.get("WORMLAB_CACHE")
    base = Path(env).resolve() if env else project_root() / "data" / "cache"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data_dir() -> Path | None:
    """Folder with the real recordings (Kato 2015, Flavell 2023, UCR Worms, Broekmans 2016).

    ``WORMLAB_SHARED_DATA`` overrides the default ``<root>/../shared/data``. Returns ``None``
    when the folder does not exist, so callers can fall back to synthetic data.
    """
    env = os.environ.get("WORMLAB_SHARED_DATA")
    path = Path(env) if env else project_root().parent / "shared" / "data"
    return path.resolve() if path.is_dir() else None


def require_shared_data(*parts: str) -> Path:
    """Path inside the shared data folder; a clear error when it is absent."""
    base = shared_data_dir()
    if base is None:
        raise FileNotFoundError(
            "real recordings not found: set WORMLAB_SHARED_DATA to the folder holding "
            "kato2015/, flavell2023/, ucr_worms/, broekmans2016/ (default ../shared/data)"
        )
    path = base.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist in the shared data folder {base}")
    return path
