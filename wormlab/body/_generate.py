"""Training-data generator: ElegansBot on activation families, in parallel on dask.distributed.

Resumable by construction: every finished sample is written atomically by the worker to its own
shard ``<store>.parts/<id>.npz`` (NumPy, no pickle). A rerun after a kill skips every sample
whose shard exists and then consolidates all shards into one HDF5 store (written atomically).
"""

from __future__ import annotations

import json
import platform
import subprocess
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from wormlab.body._config import DataConfig, MuscleConfig, PhysicsConfig
from wormlab.body._families import make_activation, sample_specs

DEFAULT_DATACONFIG = DataConfig()
DEFAULT_MUSCLECONFIG = MuscleConfig()
DEFAULT_PHYSICSCONFIG = PhysicsConfig()


def package_versions() -> dict[str, str]:
    """Versions recorded with every sample (and the wormlab git commit when available)."""
    out = {"python": platform.python_version()}
    for pkg in ("elegansbot", "numpy", "torch", "dask", "distributed", "h5py"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    try:
        from wormlab.paths import project_root

        out["wormlab_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=project_root(), capture_output=True,
            text=True, timeout=5).stdout.strip() or "unknown"
    except Exception:  # noqa: BLE001 - a missing git must not stop data generation
        out["wormlab_commit"] = "unknown"
    return out


def n_frames(data: DataConfig, physics: PhysicsConfig) -> int:
    return int(round(data.duration_s / physics.frame_dt_s)) + 1


def simulate_spec(spec: dict, T: int, physics: PhysicsConfig, muscle: MuscleConfig) -> dict:
    """Activation + ElegansBot trajectory of one sample spec (float32 arrays)."""
    import torch

    from wormlab.body._physics import simulate

    a = make_activation(spec, T, physics.frame_dt_s)
    tr = simulate(torch.from_numpy(a)[:, None], physics, muscle)
    return {"activation": a, "com_um": tr.com_um[:, 0].astype(np.float32),
            "tangent_rad": tr.tangent_rad[:, 0].astype(np.float32)}


def _shard_path(parts: Path, sid: str) -> Path:
    return parts / f"{sid}.npz"


def _shard_done(parts: Path, spec: dict) -> bool:
    """A shard exists for this id AND was made from the same spec (ids alone could collide
    when sample counts change); a mismatching or unreadable shard is removed and redone."""
    path = _shard_path(parts, spec["id"])
    if not path.exists():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        same = all(meta.get(k) == spec[k] for k in ("family", "params", "seed"))
    except Exception:  # noqa: BLE001 - a truncated shard is simply redone
        same = False
    if not same:
        path.unlink()
    return same


def _work(spec: dict, T: int, physics_json: str, muscle_json: str, parts: str,
          versions: dict) -> str:
    """Dask task: simulate one spec and write its shard atomically; returns the id."""
    from wormlab.runs import atomic_path

    physics = PhysicsConfig(**json.loads(physics_json))
    muscle = MuscleConfig(**json.loads(muscle_json))
    out = simulate_spec(spec, T, physics, muscle)
    meta = dict(spec, versions=versions, physics=json.loads(physics_json),
                muscle=json.loads(muscle_json))
    path = _shard_path(Path(parts), spec["id"])
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **out)
    return spec["id"]


def _client(scheduler, n_workers):
    from dask.distributed import Client, LocalCluster

    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        return Client(cluster), cluster
    if isinstance(scheduler, str):
        return Client(scheduler), None
    return scheduler, None  # an existing Client


def generate(store: str | Path, data: DataConfig = DEFAULT_DATACONFIG,
             physics: PhysicsConfig = DEFAULT_PHYSICSCONFIG, muscle: MuscleConfig = DEFAULT_MUSCLECONFIG,
             specs: list[dict] | None = None, scheduler=None, n_workers: int = 2,
             max_samples: int | None = None) -> dict:
    """Generate (or resume) a dataset; returns counts and the HDF5 store path.

    Args:
        store: HDF5 file to write (``.h5``); shards go to ``<store>.parts/``.
        specs: sample specs (default: :func:`sample_specs` from ``data``).
        scheduler: ``None`` (a LocalCluster with ``n_workers`` processes), a scheduler
            address such as ``"tcp://host:8786"``, or a ``dask.distributed.Client``.
        max_samples: stop after this many new samples without consolidating (used to test
            resuming; the store is written when every spec is done).
    """
    import dataclasses

    from dask.distributed import as_completed

    from wormlab.runs import progress, remove_orphan_tmp

    store = Path(store)
    parts = store.with_name(store.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    for folder in (parts, store.parent):  # temporaries of a killed run (never a live one's)
        remove_orphan_tmp(folder)
    specs = specs if specs is not None else sample_specs(data.n_per_family, data.seed)
    ids = [s["id"] for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("sample spec ids must be unique")
    T = n_frames(data, physics)
    todo = [s for s in specs if not _shard_done(parts, s)]
    done_before = len(specs) - len(todo)
    if max_samples is not None:
        todo = todo[:max_samples]
    computed = 0
    if todo:
        versions = package_versions()
        pj = json.dumps(dataclasses.asdict(physics))
        mj = json.dumps(dataclasses.asdict(muscle))
        client, cluster = _client(scheduler, n_workers)
        try:
            futs = [client.submit(_work, s, T, pj, mj, str(parts), versions, pure=False)
                    for s in todo]
            bar = progress(total=len(futs), desc="ElegansBot samples")
            for fut in as_completed(futs):
                fut.result()
                computed += 1
                bar.update(1)
            bar.close()
        finally:
            if cluster is not None:
                client.close()
                cluster.close()
    missing = [i for i in ids if not _shard_path(parts, i).exists()]
    if not missing:
        consolidate(store, specs, parts, data, physics, muscle)
    return {"store": str(store), "n_total": len(specs), "n_computed": computed,
            "n_skipped": done_before, "n_missing": len(missing),
            "complete": not missing}


def finished_specs(store: str | Path, specs: list[dict]) -> list[dict]:
    """The specs whose shard exists and matches (for consolidating a stopped run)."""
    store = Path(store)
    parts = store.with_name(store.name + ".parts")
    return [s for s in specs if parts.exists() and _shard_done(parts, s)]


def consolidate(store: Path, specs: list[dict], parts: Path, data, physics, muscle) -> Path:
    """Merge shards into one HDF5 file (atomic write)."""
    import dataclasses

    import h5py

    from wormlab.runs import atomic_path

    arrs = {"activation": [], "com_um": [], "tangent_rad": []}
    metas = []
    for s in specs:
        shard = _shard_path(parts, s["id"])
        try:
            with np.load(shard, allow_pickle=False) as z:
                for k in arrs:
                    arrs[k].append(z[k])
                metas.append(str(z["meta"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{shard}: unreadable sample shard ({type(exc).__name__}: {exc}); "
                             "delete it and rerun generate() to redo that sample") from None
    shapes = {k: {a.shape for a in v} for k, v in arrs.items()}
    for k, sh in shapes.items():
        if len(sh) != 1:
            raise ValueError(f"{parts}: shards disagree on the shape of {k!r}: {sorted(sh)}")
    with atomic_path(store) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, v in arrs.items():
                f.create_dataset(k, data=np.stack(v), compression="gzip", compression_opts=1)
            str_dt = h5py.string_dtype()
            f.create_dataset("id", data=np.array([s["id"] for s in specs], dtype=object),
                             dtype=str_dt)
            f.create_dataset("family", data=np.array([s["family"] for s in specs],
                                                     dtype=object), dtype=str_dt)
            f.create_dataset("meta_json", data=np.array(metas, dtype=object), dtype=str_dt)
            f.attrs["frame_dt_s"] = physics.frame_dt_s
            f.attrs["body_length_um"] = physics.body_length_um
            f.attrs["config_json"] = json.dumps({
                "data": dataclasses.asdict(data), "physics": dataclasses.asdict(physics),
                "muscle": dataclasses.asdict(muscle)}, sort_keys=True)
            f.attrs["units"] = "activation: 1; com_um: um; tangent_rad: rad; time step frame_dt_s"
    return store


_STORE_ARRAYS = {"activation": 95, "com_um": 2, "tangent_rad": 25}  # last-axis sizes


def load_store(store: str | Path, families: tuple | None = None) -> dict:
    """Read an HDF5 store into NumPy arrays (optionally only some families).

    A missing, truncated or corrupt file, a missing dataset or attribute, arrays of the wrong
    shape or length, non-finite values or unreadable per-sample metadata raise ``ValueError``
    naming the store and the problem (``FileNotFoundError`` when absent).
    """
    import h5py

    store = Path(store)
    if not store.is_file():
        raise FileNotFoundError(f"no body data store at {store}")
    try:
        f = h5py.File(store, "r")
    except OSError as exc:  # truncated / not HDF5: h5py says "unable to open file (...)"
        raise ValueError(f"{store}: not a readable body data store (truncated or corrupt "
                         f"HDF5: {exc})") from None
    try:
        with f:
            return _read_store(f, store, families)
    except (OSError, RuntimeError, KeyError) as exc:  # corrupt chunks inside a valid header
        raise ValueError(f"{store}: corrupt body data store ({exc})") from None


def load_stores(stores, families: tuple | None = None) -> dict:
    """:func:`load_store` of one or several stores, merged (e.g. the generator's store and the
    crawling worm's ``crawl`` store). The stores must share the frame step, body length and
    sample length; a sample id in two stores is an error."""
    paths = [stores] if isinstance(stores, (str, Path)) else list(stores)
    if not paths:
        raise ValueError("no body data store given")
    ds = [load_store(p, families) for p in paths]
    if len(ds) == 1:
        return ds[0]
    first = ds[0]
    for p, d in zip(paths[1:], ds[1:]):
        for k in ("frame_dt_s", "body_length_um"):
            if d[k] != first[k]:
                raise ValueError(f"{p}: {k} {d[k]} differs from {paths[0]}'s {first[k]}")
        if d["activation"].shape[1:] != first["activation"].shape[1:]:
            raise ValueError(f"{p}: samples of {d['activation'].shape[1]} frames, "
                             f"{paths[0]} has {first['activation'].shape[1]}")
    ids = np.concatenate([d["id"] for d in ds])
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"sample ids in more than one store: {list(uniq[counts > 1][:5])}")
    out = {k: np.concatenate([d[k] for d in ds]) for k in (*_STORE_ARRAYS, "family", "id")}
    out["meta"] = [m for d in ds for m in d["meta"]]
    out["frame_dt_s"], out["body_length_um"] = first["frame_dt_s"], first["body_length_um"]
    return out


def _read_store(f, store: Path, families) -> dict:
    def dec(x):
        return x.decode() if isinstance(x, bytes) else str(x)

    for k in (*_STORE_ARRAYS, "id", "family", "meta_json"):
        if k not in f:
            raise ValueError(f"{store}: body data store lacks the dataset {k!r}")
    for k in ("frame_dt_s", "body_length_um"):
        if k not in f.attrs:
            raise ValueError(f"{store}: body data store lacks the attribute {k!r}")
    n = len(f["id"])
    for k, c in _STORE_ARRAYS.items():
        shape = f[k].shape
        if len(shape) != 3 or shape[0] != n or shape[2] != c:
            raise ValueError(f"{store}: dataset {k!r} has shape {shape}, expected "
                             f"({n}, T, {c}) for {n} samples")
    if len({f[k].shape[1] for k in _STORE_ARRAYS}) != 1:
        raise ValueError(f"{store}: activation, com_um and tangent_rad differ in length "
                         f"{[f[k].shape[1] for k in _STORE_ARRAYS]}")
    for k in ("family", "meta_json"):
        if len(f[k]) != n:
            raise ValueError(f"{store}: dataset {k!r} has {len(f[k])} entries for {n} samples")
    fam = np.array([dec(x) for x in f["family"][:]])
    sel = np.ones(len(fam), bool) if families is None else np.isin(fam, list(families))
    idx = np.flatnonzero(sel)
    out = {k: f[k][:][idx] for k in _STORE_ARRAYS}
    ids = np.array([dec(x) for x in f["id"][:]])[idx]
    for k in _STORE_ARRAYS:
        bad = ~np.isfinite(out[k])
        if bad.any():
            i, t = (int(v) for v in np.argwhere(bad)[0][:2])
            raise ValueError(f"{store}: dataset {k!r} holds NaN or inf (sample {str(ids[i])!r}, "
                             f"time index {t}); {int(bad.sum())} bad values")
    out["family"] = fam[idx]
    out["id"] = ids
    metas = []
    for i, x in zip(idx, np.asarray(f["meta_json"][:])[idx], strict=True):
        try:
            metas.append(json.loads(x))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{store}: meta_json of sample {i} is not valid JSON "
                             f"({exc})") from None
    out["meta"] = metas
    for k in ("frame_dt_s", "body_length_um"):
        v = float(f.attrs[k])
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{store}: attribute {k!r} must be a positive number, got {v}")
        out[k] = v
    return out
