"""Run hygiene shared by every component: seeds, threads, progress bars, atomic writes."""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
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
    # the writer's host and pid in the name let a resumed job remove the temporaries of a
    # killed writer (remove_orphan_tmp) without touching those of a live concurrent one
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
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


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path`` (an existing
    folder of that name is removed first), on an exception it is removed and ``path`` is left
    as it was."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


_HOST = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname()) or "host"
_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def remove_orphan_tmp(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that :func:`atomic_path` writers on this host left in ``folder``
    when they were killed (SIGKILL skips their cleanup); returns the removed paths.

    Only files whose writer process no longer exists are removed, so a concurrent live writer
    (another process running the same job) keeps its temporary. Long jobs call this when they
    resume.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.glob(".*.tmp"):
        m = _TMP_NAME.match(p.name)
        if m is None or m["host"] != _HOST or _pid_alive(int(m["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


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


RESULTS_ENV = "WORMLAB_RESULTS_FILE"


def record_result(name: str, value, *, goal: str | None = None, unit: str = "") -> dict:
    """Record one headline result of a notebook run (scrapbook-style glue).

    Under ``wormlab run`` (which sets ``WORMLAB_RESULTS_FILE`` for the kernel) the result is
    appended as one JSON line to that file; the runner collects the lines into
    ``reports/<notebook>/<run-id>.results.json``. Elsewhere (an interactive session) it is only
    returned, so a notebook cell behaves the same either way.

    Args:
        name: a short key, unique within the notebook (``"test_rmse_mV"``).
        value: a finite number, a bool or a short string (numpy scalars are converted).
        goal: the target in words, shown next to the value in the reports index
            (``"< 5 % BL"``); ``None`` for a result without a goal.
        unit: the unit of ``value`` (``"mV"``, ``"%"``), empty when dimensionless.

    Returns:
        The recorded entry ``{"name", "value", "goal", "unit"}``.
    """
    import json
    import math
    import numbers

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"record_result: name must be a non-empty string, got {name!r}")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or isinstance(value, str):
        pass
    elif isinstance(value, numbers.Real):
        value = float(value) if not isinstance(value, numbers.Integral) else int(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"record_result: {name!r} is {value!r}, not a finite number")
    else:
        raise TypeError(f"record_result: {name!r} must be a number, bool or string, "
                        f"got {type(value).__name__} {value!r}")
    entry = {"name": name, "value": value, "goal": goal, "unit": unit}
    target = os.environ.get(RESULTS_ENV)
    if target:
        # one short line per write: appended whole, so a killed kernel leaves complete lines
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
    return entry


def emit_json(obj, out: str | os.PathLike | None = None, *, indent: int | None = 1,
              default=None, echo: bool = True) -> str:
    """The one "print a JSON result, and write it to ``--out`` if given" of the CLIs.

    The file (when ``out`` is given) is written atomically (:func:`atomic_path`), ending in a
    newline; the text is printed to stdout unless ``echo`` is False. ``default`` is passed to
    ``json.dumps`` (e.g. ``float`` for numpy scalars). Returns the JSON text. An object that
    is not JSON-able raises ``TypeError`` before anything is written.
    """
    import json

    text = json.dumps(obj, indent=indent, default=default)
    if out is not None:
        with atomic_path(out) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    if echo:
        print(text)
    return text


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """An exclusive inter-process lock on the file ``path`` (created if missing; flock, so it
    is released when the holder dies). Read-merge-write of a shared table, the ``latest.*``
    copies of a notebook's report and a network built by several Dask workers use it."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
