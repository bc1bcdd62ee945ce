"""Where the notebook finds its data and experiment tables (public, tested helpers)."""

from __future__ import annotations

import json
from pathlib import Path

from wormlab.paths import cache_dir

#: the tables of ``wormlab rom experiment``, in the order the notebook shows them
TABLE_NAMES = ("arch", "sweep", "long", "inputs", "two")
#: cache folders searched for them, first match wins (docs/rom.md: results_paper is the full run)
TABLE_FOLDERS = ("results_paper", "results")


def generated_data_dir(backend: str = "auto", *, smoke: bool = False) -> tuple[str, Path]:
    """``(resolved backend, folder)`` for :func:`generate_dataset` output in the cache.

    NEURON data go to the folder that ``wormlab rom generate --backend neuron`` fills
    (``synthetic_c302_C1_forward``, docs/rom.md); the torch circuit's to
    ``synthetic_circuit_forward``; smoke runs to a ``_smoke`` sibling so they never mix.
    """
    from wormlab.rom._generate import resolve_backend

    resolved = resolve_backend(backend)
    stem = "synthetic_c302_C1_forward" if resolved == "neuron" else f"synthetic_{resolved}_forward"
    return resolved, cache_dir("rom", stem + ("_smoke" if smoke else ""))


def saved_tables(names=TABLE_NAMES, folders=TABLE_FOLDERS) -> list[tuple[str, Path, dict]]:
    """The experiment tables already computed in the cache: ``[(name, path, table), ...]``.

    For each name the first folder of ``folders`` (under ``cache_dir("rom")``) holding
    ``<name>.json`` wins. A file that is not a JSON table raises ``ValueError`` naming it.
    """
    unknown = [n for n in names if n not in TABLE_NAMES]
    if unknown:
        raise ValueError(f"unknown rom tables {unknown}; available: {', '.join(TABLE_NAMES)}")
    out = []
    for name in names:
        for folder in folders:
            path = cache_dir("rom", folder, create=False) / f"{name}.json"
            if not path.exists():
                continue
            try:
                table = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"{path}: not a rom experiment table ({exc})") from None
            if not isinstance(table, dict) or not isinstance(table.get("rows"), dict):
                raise ValueError(f"{path}: not a rom experiment table (no 'rows' object)")
            out.append((name, path, table))
            break
    return out


def quick_table(name: str = "arch", *, runs: int = 2, epochs: int = 2,
                show_progress: bool = False) -> tuple[str, dict]:
    """Compute experiment table ``name`` on the small shipped dataset (a few seconds per row at
    the default ``epochs``), in ``cache_dir("rom", "notebook_tables")``; returns
    ``(markdown, table)``. For a first look only: the paper-size tables come from
    ``wormlab rom experiment``."""
    from wormlab.rom._experiments import markdown, run_experiment
    from wormlab.rom._format import save_npz, smoke_dataset

    tmp = cache_dir("rom", "notebook_tables")
    save_npz(smoke_dataset(), tmp / "smoke.npz")
    run_experiment(name, tmp / "smoke.npz", tmp / f"{name}.json", runs=runs, epochs=epochs,
                   show_progress=show_progress)
    table = json.loads((tmp / f"{name}.json").read_text(encoding="utf-8"))
    return markdown(table), table
