"""The worms table of notebook 06 (a plain list of dicts)."""

from __future__ import annotations

from wormlab.behaviour._config import DataConfig


def worms_table(worms, cfg: DataConfig | None = None) -> list[dict]:
    """One row per worm: id, frames, frame rate, identified neurons and the number of frames of
    each class of ``cfg.task``. Class counts are left out for a worm that has no labels for the
    task (Flavell worms have no four-state labels: only Kato's annotated states give them)."""
    from wormlab.behaviour._data import labels
    from wormlab.behaviour._labels import CLASSES

    cfg = cfg or DataConfig()
    rows = []
    for w in worms:
        counts = {}
        if cfg.task != "four_state" or w.dataset == "kato2015":
            y = labels(w, cfg)
            counts = {c: int((y == k).sum()) for k, c in enumerate(CLASSES[cfg.task])}
        rows.append({"worm": w.worm_id, "frames": w.n_frames, "fps": round(w.fps, 3),
                     "identified": len(w.identified()), **counts})
    return rows
