"""Where the full-size pipeline (``python -m wormlab.body.cli``) keeps its files, and where the
notebook keeps its own smaller ones; all under ``cache_dir("body")`` (``WORMLAB_CACHE``)."""

from __future__ import annotations

from pathlib import Path

from wormlab.paths import cache_dir


def default_store() -> Path:
    """The full-size synthetic ElegansBot store written by ``wormlab.body.cli generate``."""
    return cache_dir("body") / "synthetic_elegansbot.h5"


def default_model() -> Path:
    """The full-size surrogate checkpoint written by ``wormlab.body.cli train``."""
    return cache_dir("body") / "surrogate.safetensors"


def notebook_files(*, smoke: bool, duration_s: float, seed: int) -> tuple[Path, Path]:
    """``(store, checkpoint)`` the notebook generates and trains when it does not use the CLI's
    model; smoke and full runs, durations and seeds never share a file."""
    mode = "smoke" if smoke else "full"
    folder = cache_dir("body", "notebook")
    return (folder / f"synthetic_elegansbot_{mode}_{duration_s:g}s_seed{seed}.h5",
            folder / f"surrogate_{mode}_seed{seed}.safetensors")
