"""Run hygiene shared by every component: seeds, threads, progress bars, atomic writes."""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def configure_torch(threads: int | None = None) -> None:
    """Set torch's intra-op threads (default ``WORMLAB_THREADS`` or 1).

    On 2 shared cores torch with 2 threads collapsed under load in scout runs (an FNO step went
    from 60 ms to 2.4 s), so one thread is the default; benchmarks may ask for more.
    """
    import torch

    n = threads if threads is not None else int(os.environ.get("WORMLAB_THREADS", "1"))
    torch.set_num_threads(max(1, n))


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; returns a NumPy ``Generator`` for explicit use.

    With the same seed, CPU results are bit-identical (deterministic algorithms are requested
    where torch offers them).
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    with contextlib.suppress(Exception):
        torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def progress(iterable=None, **kwargs):
    """A tqdm progress bar (notebook-aware); ``WORMLAB_PROGRESS=0`` silences it."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", os.environ.get("WORMLAB_PROGRESS", "1") == "0")
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place only on success.

    Nothing half-written is ever left at ``path``: on an exception the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; finished files are ordinary
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def keep_heap_memory() -> bool:
    """Ask glibc to serve large blocks from the heap and keep freed memory for reuse.

    glibc's default maps each large block freshly (mmap) and unmaps it on free, so code that
    allocates the same big tensors again and again faults all those pages in every time.
    Measured here: a training step of the dynamic behaviour GNNs ((B, T, N, N, E) tensors of
    ~33 MB) took 1.5-1.8x longer that way (no consistent effect on the body bench). This changes the allocator only: every computed number is bitwise the
    same. Process-wide; a no-op off glibc. Returns whether it was applied.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(
            libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):  # not glibc
        return False
