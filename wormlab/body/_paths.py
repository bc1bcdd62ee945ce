"""Where the full-size pipeline (``python -m wormlab.body.cli``) keeps its files, and where the
notebook keeps its own smaller ones; all under ``cache_dir("body")`` (``WORMLAB_CACHE``)."""

from __future__ import annotations

from pathlib import Path

from wormlab.paths import cache_dir


def default_store() -> Path:
    """The full-size synthetic ElegansBot store written by ``wormlab.body.cli generate``."""
    return cache_dir("body") / "synthetic_elegansbot.h5"


def notebook_files(*, smoke: bool, duration_s: float, seed: int) -> tuple[Path, Path]:
    """``(store, checkpoint)`` the notebook generates and trains when it does not use the CLI's
    model; smoke and full runs, durations and seeds never share a file."""
    mode = "smoke" if smoke else "full"
    folder = cache_dir("body", "notebook")
    return (folder / f"synthetic_elegansbot_{mode}_{duration_s:g}s_seed{seed}.h5",
            folder / f"surrogate_{mode}_seed{seed}.safetensors")


# ------------------------------------------------------------------ the shipped surrogate
# (issue 19) data/models/body_surrogate/: the full-size surrogate committed with the code, so a
# fresh clone loads it instead of training. A checkpoint the user trained with
# ``python -m wormlab.body.cli train`` (default_cache_model) wins over it: training is explicit.
SHIPPED_NAME = "body_surrogate"
SHIPPED_KIND = "body.surrogate"
HEADLINE = "rmse_body_length_pct"  # mean 26-point midline RMSE on the recorded test ids, % BL
HEADLINE_TOLERANCE = 0.05  # % BL, absolute; the store and a re-simulation agree to float32


def default_cache_model() -> Path:
    """Where ``python -m wormlab.body.cli train`` writes the full-size checkpoint."""
    return cache_dir("body") / "surrogate.safetensors"


def shipped_model() -> Path | None:
    """The shipped surrogate's file (``data/models/body_surrogate/model.safetensors``), or
    None when no manifest is shipped. Not hash-checked here: :func:`load_default` does."""
    from wormlab import models

    return models.model_path(SHIPPED_NAME) if models.exists(SHIPPED_NAME) else None


def default_model() -> Path:
    """The surrogate the library, bench and notebook use: the checkpoint trained by
    ``python -m wormlab.body.cli train`` when there is one, else the shipped model, else the
    (absent) cache path, so callers can say which file is missing."""
    cache = default_cache_model()
    if cache.exists():
        return cache
    return shipped_model() or cache


def load_default(path: Path | None = None):
    """``(model, history, source)`` for ``path`` (default: :func:`default_model`). The shipped
    model is loaded through :func:`wormlab.models.load`, which checks its sha256, size, kind and
    architecture against the manifest first; ``source`` names the file and where it came from."""
    from wormlab.body._surrogate import load_surrogate

    path = Path(path) if path is not None else default_model()
    shipped = shipped_model()
    if shipped is not None and path.resolve() == shipped.resolve():
        from wormlab import models

        m = models.manifest(SHIPPED_NAME)
        models.load(SHIPPED_NAME, kind=SHIPPED_KIND, config=m["config"])  # hash + shapes
        model, hist = load_surrogate(path)
        _check_architecture(model, m)
        return model, hist, f"shipped model {SHIPPED_NAME} (sha256 {m['sha256'][:12]})"
    model, hist = load_surrogate(path)
    return model, hist, f"trained checkpoint {path}"


def _check_architecture(model, manifest: dict) -> None:
    import dataclasses

    from wormlab.models import ModelError

    got = {k: list(v) if isinstance(v, tuple) else v
           for k, v in dataclasses.asdict(model.cfg).items()}
    for k in sorted(set(got) | set(manifest["config"])):
        if got.get(k) != manifest["config"].get(k):
            raise ModelError(f"model {SHIPPED_NAME!r}: architecture mismatch at config.{k}: the "
                             f"manifest says {manifest['config'].get(k)!r}, the file's own "
                             f"checkpoint metadata {got.get(k)!r}")


def heldout_data(manifest: dict, split: str = "test", *, store: Path | None = None,
                 show_progress: bool = True, regenerate: bool = False) -> dict:
    """The shipped model's recorded held-out samples as a store-like dict.

    From ``store`` (default: :func:`default_store`) when it holds every id with the recorded
    spec; else from the held-out file shipped beside the model (``heldout_<split>.safetensors``,
    sha256 in the manifest: the ElegansBot outputs, activations rebuilt from the specs); else
    from a cache file ``cache_dir("body")/shipped_<split>_<sha12>.npz``; else regenerated
    deterministically: the specs follow from the manifest's data config
    (``sample_specs(n_per_family, seed)``), ElegansBot simulates them (about 0.5-1 s each here,
    progress bar) and the result is cached (atomically) for the next call. ``regenerate=True``
    skips store, shipped file and cache (a check of the physics code against the shipped data).
    """
    import numpy as np

    from wormlab.body._config import MuscleConfig, PhysicsConfig
    from wormlab.body._families import sample_specs
    from wormlab.runs import atomic_path, progress

    d = manifest["data"]
    ids = [str(i) for i in d["heldout_ids"][split]]
    store = Path(store) if store is not None else default_store()
    if store.is_file() and not regenerate:
        from wormlab.body._generate import load_store

        s = load_store(store)
        where = {str(i): k for k, i in enumerate(s["id"])}
        if all(i in where for i in ids):
            k = np.array([where[i] for i in ids])
            spec = {x["id"]: x for x in sample_specs(d["n_per_family"], d["data_seed"])}
            if all(s["meta"][j].get("params") == spec[i]["params"] for i, j in zip(ids, k)):
                return {"activation": s["activation"][k], "com_um": s["com_um"][k],
                        "tangent_rad": s["tangent_rad"][k], "family": s["family"][k],
                        "id": np.array(ids), "source": f"store {store}"}
    shipped = None if regenerate else _shipped_heldout(manifest, split, ids)
    if shipped is not None:
        return shipped
    cache = cache_dir("body") / f"shipped_{split}_{manifest['sha256'][:12]}.npz"
    if cache.is_file() and not regenerate:
        with np.load(cache, allow_pickle=False) as z:
            if [str(i) for i in z["id"]] == ids:
                return {k: z[k] for k in ("activation", "com_um", "tangent_rad", "family", "id")
                        } | {"source": f"cache {cache}"}
    specs = {x["id"]: x for x in sample_specs(d["n_per_family"], d["data_seed"])}
    missing = [i for i in ids if i not in specs]
    if missing:
        raise ValueError(f"model {SHIPPED_NAME!r}: held-out ids {missing[:3]} are not produced by"
                         f" the manifest's data config {d['n_per_family']} seed {d['data_seed']}")
    physics = PhysicsConfig(**d.get("physics", {}))
    muscle = MuscleConfig(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in d.get("muscle", {}).items()})
    T = int(round(d["duration_s"] / physics.frame_dt_s)) + 1
    from wormlab.body._generate import simulate_spec

    sims = [simulate_spec(specs[i], T, physics, muscle) for i in progress(
        ids, desc=f"ElegansBot: shipped {split} set", unit="sample", disable=not show_progress)]
    out = {k: np.stack([x[k] for x in sims]) for k in ("activation", "com_um", "tangent_rad")}
    out["family"] = np.array([specs[i]["family"] for i in ids])
    out["id"] = np.array(ids)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **out)
    return out | {"source": f"regenerated with ElegansBot ({len(ids)} samples)"}


def write_heldout_file(name: str, split: str, ids, com_um, tangent_rad) -> dict:
    """Ship the ElegansBot outputs (centroid, tangent angles; float32) of the held-out samples
    ``ids`` beside the model (:func:`wormlab.models.write_heldout`) and return the manifest
    entry. The activations are not stored: they follow from the sample specs
    (:func:`~wormlab.body._families.make_activation`, milliseconds)."""
    import numpy as np
    import torch

    from wormlab import models

    com, tan = np.asarray(com_um, np.float32), np.asarray(tangent_rad, np.float32)
    if not (len(ids) == len(com) == len(tan)):
        raise ValueError(f"held-out {split}: {len(ids)} ids but {len(com)} centroid and "
                         f"{len(tan)} tangent tracks")
    return models.write_heldout(name, split, {"com_um": torch.from_numpy(com),
                                              "tangent_rad": torch.from_numpy(tan)}, ids)


def _shipped_heldout(manifest: dict, split: str, ids: list[str]) -> dict | None:
    """The held-out samples from the file shipped beside the model (size and sha256 checked),
    with the activations rebuilt from the specs; None when the manifest names no such file."""
    import numpy as np

    from wormlab import models
    from wormlab.body._config import PhysicsConfig
    from wormlab.body._families import make_activation, sample_specs

    got = models.read_heldout(manifest["name"], split, manifest)
    if got is None:
        return None
    t, got_ids = got
    if got_ids != ids:
        raise models.ModelError(f"model {manifest['name']!r}: its held-out {split} file holds "
                                f"other ids than the manifest's heldout_ids[{split!r}]")
    d = manifest["data"]
    physics = PhysicsConfig(**d.get("physics", {}))
    T = int(t["com_um"].shape[1])
    specs = {x["id"]: x for x in sample_specs(d["n_per_family"], d["data_seed"])}
    act = np.stack([make_activation(specs[i], T, physics.frame_dt_s) for i in ids])
    file = d["heldout_files"][split]["file"]
    return {"activation": act.astype(np.float32), "com_um": t["com_um"].numpy(),
            "tangent_rad": t["tangent_rad"].numpy(),
            "family": np.array([specs[i]["family"] for i in ids]), "id": np.array(ids),
            "source": f"shipped held-out file {file} ({len(ids)} samples)"}


def shipped_splits(show_progress: bool = True) -> tuple[dict, str]:
    """``({"test": Split, "general": empty Split}, source)``: the shipped model's recorded test samples
    (:func:`heldout_data`) for evaluating it (the notebook's full mode on a fresh clone). The
    generalisation families are not regenerated (another ~200 ElegansBot runs)."""
    import numpy as np

    from wormlab import models
    from wormlab.body._surrogate import Split

    d = heldout_data(models.manifest(SHIPPED_NAME), "test", show_progress=show_progress)
    T = d["activation"].shape[1]
    empty = Split(np.zeros((0, T, 95), np.float32), np.zeros((0, T, 2), np.float32),
                  np.zeros((0, T, 25), np.float32), np.array([], dtype=str), np.array([], str))
    return {"test": Split(d["activation"], d["com_um"], d["tangent_rad"], d["family"], d["id"]),
            "general": empty}, d["source"]


def verify_shipped(name: str, tensors: dict, manifest: dict) -> dict:
    """Verifier of kind ``body.surrogate``: the midline RMSE (% BL, mean) on the test ids the
    manifest records, recomputed against ElegansBot (see :func:`heldout_data`)."""
    import numpy as np

    from wormlab.body._surrogate import Split, evaluate, load_surrogate
    from wormlab.models import model_path

    model, _ = load_surrogate(model_path(name))
    _check_architecture(model, manifest)
    d = heldout_data(manifest, "test")
    sp = Split(d["activation"], d["com_um"], d["tangent_rad"], d["family"], d["id"])
    r = evaluate(model, sp)
    return {HEADLINE: float(r["body_rmse_pct_mean"]),
            "n_test": float(len(sp)), "median_body_rmse_pct": float(
                np.median(r["per_sample"]["body_rmse_pct"]))}


def _register() -> None:
    from wormlab.models import register_verifier

    register_verifier(SHIPPED_KIND, verify_shipped)


_register()
