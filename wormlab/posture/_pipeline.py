"""End-to-end steps shared by the notebook and the CLI: prepare series, train, evaluate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wormlab.posture._config import PostureConfig
from wormlab.posture._data import PostureRecording, leifer_basis, load_postures
from wormlab.posture._shape import (
    Basis,
    fit_ica,
    fit_pca,
    resample_angles,
    shape_series,
    split_mean_angle,
)


@dataclass
class PreparedData:
    recordings: list[PostureRecording]
    angles: list[np.ndarray]  # (T, n_segments) per worm, resampled
    basis: Basis
    series: list[np.ndarray]  # (T, n_modes + 1) per worm
    fps: float
    synthetic: bool

    @property
    def label(self) -> str:
        return "synthetic" if self.synthetic else "real"


def make_basis(kind: str, angles: list[np.ndarray], n_modes: int, seed: int = 0) -> Basis:
    """Fit (``pca``/``ica``) or load (``leifer``) a basis for angles with their segment count."""
    n_seg = angles[0].shape[1]
    if kind == "leifer":
        b = leifer_basis()
        if n_modes > b.n_modes:
            raise ValueError(f"the Leifer basis has {b.n_modes} modes, asked for {n_modes}")
        return b.truncate(n_modes).resampled(n_seg)
    x = np.concatenate([split_mean_angle(a)[0] for a in angles])
    if kind == "pca":
        return fit_pca(x, n_modes)
    if kind == "ica":
        return fit_ica(x, n_modes, seed=seed)
    raise ValueError(f"unknown basis {kind!r}; choices: pca, ica, leifer")


def prepare(
    config: PostureConfig, recordings: list[PostureRecording] | None = None, smoke: bool = False
) -> PreparedData:
    """Load recordings (or use the given ones), resample, fit the basis, build the series."""
    recs = (
        recordings if recordings is not None else load_postures(config.dataset, config.seed, smoke)
    )
    if not recs:
        raise ValueError("no posture recordings")
    n = config.shape.n_segments
    angles = [a if a.shape[1] == n else resample_angles(a, n) for a in (r.angles for r in recs)]
    basis = make_basis(config.shape.basis, angles, config.shape.n_modes, config.seed)
    series = [shape_series(a, basis, config.shape.wrap_heading) for a in angles]
    fps = float(np.median([r.fps for r in recs]))
    return PreparedData(recs, angles, basis, series, fps, any(r.synthetic for r in recs))


def save_basis(path: Path, basis: Basis) -> None:
    from wormlab.runs import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps({"kind": basis.kind, "source": basis.source, "modes": basis.modes.tolist()})
        )


def load_basis(path: Path) -> Basis:
    d = json.loads(Path(path).read_text())
    return Basis(modes=np.asarray(d["modes"]), kind=d["kind"], source=d["source"])
