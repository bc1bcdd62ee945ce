"""Real posture data (read offline from the shared folder) and labelled synthetic fallbacks.

Sources (cite them wherever used):
- Flavell lab, Dag et al. 2023 (Cell): freely moving worms, ``behavior/body_angle`` = 30
  tangent angles per frame (~1.7 Hz), ``velocity``, ``reversal_vec``.
- Broekmans et al. 2016 (eLife): 12 escape responses, 4 eigenworm amplitudes at 10 Hz.
- UCR/UEA archive "Worms" (Brown et al. 2013 PNAS; Yemini et al. 2013): first-eigenworm series,
  900 samples per worm, 5 strains, training split only.
- Leifer lab eigenworm basis (``leiferlab-wbi``, ``wbi/data/eigenWorms.mat``, 6 x 101).
- WormPose (Hebert et al. 2021) Gaussian-mixture model of real postures (270 x 100 angles).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wormlab.paths import shared_data_dir

UCR_STRAINS = {1: "N2", 2: "goa-1", 3: "unc-1", 4: "unc-38", 5: "unc-63"}


@dataclass
class PostureRecording:
    """One worm: tangent angles and, where recorded, velocity and reversal state."""

    name: str
    angles: np.ndarray  # (T, n_segments) rad, head first
    fps: float
    velocity: np.ndarray | None = None  # (T,) as recorded (Flavell: mm/s, signed)
    reversal: np.ndarray | None = None  # (T,) 0/1
    source: str = ""
    synthetic: bool = False
    extra: dict = field(default_factory=dict)


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed (pip install --no-deps {package})"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found in the installed {package!r} package")
    return path


def leifer_basis():
    """The Leifer-lab eigenworm basis, 6 x 101 orthonormal shapes (``leiferlab-wbi``)."""
    import scipy.io as sio

    from wormlab.posture._shape import Basis

    path = _package_file("wbi", "data", "eigenWorms.mat")
    modes = np.asarray(sio.loadmat(path)["eigbasis"], dtype=float)
    return Basis(modes=modes, kind="leifer", source=f"leiferlab-wbi {path.name} (6x101)")


def wormpose_postures(n: int, seed: int = 0) -> np.ndarray:
    """Sample ``n`` real-posture-distribution frames (100 tangent angles) from WormPose's GMM.

    Reads ``wormpose/resources/postures_model.json.gz`` with gzip+json (the package itself
    needs TensorFlow and is never imported). Returns (n, 100) mean-removed angles.
    """
    path = _package_file("wormpose", "resources", "postures_model.json.gz")
    with gzip.open(path, "rt") as f:
        model = json.load(f)
    means = np.asarray(model["means"])
    covs = np.asarray(model["covariances"])
    w = np.asarray(model["weights"])
    rng = np.random.default_rng(seed)
    comp = rng.choice(len(w), size=n, p=w / w.sum())
    out = np.empty((n, means.shape[1]))
    for c in np.unique(comp):
        idx = np.flatnonzero(comp == c)
        out[idx] = rng.multivariate_normal(means[c], covs[c], size=len(idx), method="cholesky")
    return out - out.mean(axis=1, keepdims=True)


def load_flavell(root: Path | None = None, max_worms: int | None = None) -> list[PostureRecording]:
    """Flavell-lab (Dag et al. 2023) freely moving worms that have 30-segment body angles."""
    import h5py

    base = Path(root) if root else shared_data_dir()
    if base is None:
        raise FileNotFoundError("shared data folder not found (set WORMLAB_SHARED_DATA)")
    folder = base / "flavell2023" / "recordings" if (base / "flavell2023").is_dir() else base
    files = sorted(folder.glob("*.h5"))
    if not files:
        raise FileNotFoundError(f"no Flavell 2023 .h5 recordings in {folder}")
    out = []
    for path in files:
        with h5py.File(path, "r") as f:
            beh = f["behavior"]
            ang = np.asarray(beh["body_angle"][:], dtype=float)
            if ang.ndim != 2:  # one file ships without per-segment angles
                continue
            t = np.asarray(f["timing/timestamp_confocal"][:], dtype=float)
            fps = 1.0 / float(np.median(np.diff(t)))
            ok = np.all(np.isfinite(ang), axis=1)
            out.append(
                PostureRecording(
                    name=path.stem.replace("-data", ""),
                    angles=ang[ok],
                    fps=fps,
                    velocity=np.asarray(beh["velocity"][:], dtype=float)[ok],
                    reversal=np.asarray(beh["reversal_vec"][:], dtype=float)[ok],
                    source="Flavell lab, Dag et al. 2023 Cell (behavior/body_angle)",
                )
            )
        if max_worms and len(out) >= max_worms:
            break
    return out


def load_broekmans(root: Path | None = None) -> list[np.ndarray]:
    """Broekmans et al. 2016 escape responses: list of (200, 4) eigenworm amplitudes, 10 Hz."""
    import h5py

    base = Path(root) if root else shared_data_dir()
    if base is None:
        raise FileNotFoundError("shared data folder not found (set WORMLAB_SHARED_DATA)")
    path = base / "broekmans2016" / "worm_tseries.h5" if base.is_dir() else base
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    with h5py.File(path, "r") as f:
        keys = sorted(f.keys(), key=lambda k: int(k) if k.isdigit() else k)
        return [np.asarray(f[k]["tseries"][:], dtype=float) for k in keys]


def _text_lines(path: Path) -> list[str]:
    """The lines of a text file, gzip-compressed or not (a UTF-8 BOM is dropped)."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8-sig").splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable text file ({exc})") from None


def _series_values(path: Path, lineno: int, parts: list[str]) -> list[float]:
    try:  # "?" is the ARFF / .ts missing value
        return [float("nan") if v.strip() == "?" else float(v) for v in parts]
    except ValueError as exc:
        raise ValueError(f"{path}:{lineno}: not a number ({exc})") from None


def _ucr_rows(path: Path, lines: list[str]):
    """UCR text (.txt/.tsv/.csv): class, then the values; whitespace, tab or comma separated."""
    for i, line in enumerate(lines, 1):
        parts = line.replace(",", " ").split()
        if parts:
            yield i, parts[0], _series_values(path, i, parts[1:])


def _header_rows(path: Path, lines: list[str]):
    """UEA ``.arff`` (``@attribute`` ...; the class is the one nominal attribute, else the last)
    or sktime/aeon ``.ts`` (``@classLabel``; rows ``v1,v2,...:class``), after ``@data``."""
    header, data_at = [], None
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s[0] in "%#":
            continue
        if s.lower().startswith("@data"):
            data_at = i + 1
            break
        header.append(s)
    if data_at is None:
        raise ValueError(f"{path}: header without an @data line (ARFF / .ts format)")
    attrs = [h.split(None, 2)[1:] for h in header if h.lower().startswith("@attribute")]
    if any(len(a) == 2 and a[1].lower().startswith("relational") for a in attrs):
        raise ValueError(f"{path}: multivariate (relational) ARFF; one series per row expected")
    nominal = [j for j, a in enumerate(attrs) if len(a) == 2 and a[1].startswith("{")]
    cls = nominal[0] if len(nominal) == 1 else len(attrs) - 1
    for i, line in enumerate(lines[data_at:], data_at + 1):
        s = line.strip()
        if not s or s[0] in "%#":
            continue
        if attrs:
            parts = [v.strip().strip("'\"") for v in s.split(",")]
            if len(parts) != len(attrs):
                raise ValueError(f"{path}:{i}: {len(parts)} values for {len(attrs)} attributes")
            yield i, parts[cls], _series_values(path, i, parts[:cls] + parts[cls + 1:])
            continue
        dims = s.split(":")
        if len(dims) != 2:
            raise ValueError(f"{path}:{i}: expected 'values:class' (one dimension); found "
                             f"{len(dims) - 1} ':' separators (multivariate or no class label)")
        yield i, dims[1].strip(), _series_values(path, i, dims[0].split(","))


def _class_labels(path: Path, raw: list[str]) -> np.ndarray:
    """Integer labels when every label is an integer number, else the labels as text."""
    try:
        num = np.array([float(v) for v in raw])
    except ValueError:
        return np.array([v.strip() for v in raw])
    if not np.all(np.isfinite(num) & (num == np.round(num))):
        raise ValueError(f"{path}: column 0 must hold integer class labels")
    return num.astype(int)


def read_ucr(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a univariate series file in a UCR/UEA archive format.

    Formats (found from the content, gzip-compressed or not): UCR text (``.txt``, ``.tsv``,
    ``.csv``: one series a line, column 0 = class label, whitespace, tab or comma separated),
    UEA ``.arff`` and sktime/aeon ``.ts`` (the archive ships the Worms set in all of them).

    Returns (X (n, L) float, y (n,)): labels as ints when every label is an integer number
    (``1.0000000e+00`` too), else as text (``"N2"``). Raises ValueError naming the file (and
    line) on bad input: non-numbers, missing values (NaN, ``?``), unequal lengths.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"UCR file {path} does not exist")
    lines = _text_lines(path)
    first = next((s.strip() for s in lines if s.strip() and s.strip()[0] not in "%#"), "")
    rows = list((_header_rows if first.startswith("@") else _ucr_rows)(path, lines))
    if not rows:
        raise ValueError(f"{path}: no series found")
    lengths = {len(r[2]) for r in rows}
    if len(lengths) != 1:
        raise ValueError(f"{path}: series have different lengths {sorted(lengths)[:5]}")
    if min(lengths) < 2:
        raise ValueError(f"{path}: each line needs a label and at least 2 values")
    X = np.asarray([r[2] for r in rows])
    if not np.all(np.isfinite(X)):
        i = rows[int(np.flatnonzero(~np.all(np.isfinite(X), axis=1))[0])][0]
        raise ValueError(f"{path}:{i}: contains missing (NaN, '?') or infinite values")
    return X, _class_labels(path, [r[1] for r in rows])


def write_ucr(path: str | Path, X: np.ndarray, y: np.ndarray) -> None:
    """Write series in the UCR text format (atomic)."""
    from wormlab.runs import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for label, row in zip(y, X):
            f.write(" ".join([f"{float(label):.7e}"] + [f"{v:.7e}" for v in row]) + "\n")


def load_ucr_worms(root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The UCR "Worms" training split (181 worms x 900 samples, labels 1-5)."""
    base = Path(root) if root else shared_data_dir()
    if base is None:
        raise FileNotFoundError("shared data folder not found (set WORMLAB_SHARED_DATA)")
    return read_ucr(base / "ucr_worms" / "Worms_TRAIN.txt")


def synthetic_recording(
    n_frames: int = 2000,
    n_segments: int = 30,
    fps: float = 10.0,
    seed: int = 0,
    name: str = "synthetic",
) -> PostureRecording:
    """A SYNTHETIC worm from a travelling-wave model with forward/reverse runs and turns.

    Tangent angles theta(s, t) = A(t) sin(2 pi (s / lambda - phi(t))) + turn(t) * bend(s) + heading,
    phi advancing at f_undulation (sign flips during reversals, ~10% of the time); omega-like
    turns add a deep ventral bend after some reversals. Used for tests and when real data
    are absent; every output is flagged ``synthetic=True``.
    """
    rng = np.random.default_rng(seed)
    dt = 1.0 / fps
    s = (np.arange(n_segments) + 0.5) / n_segments
    state = np.ones(n_frames)  # +1 forward, -1 reverse
    t = 0
    while t < n_frames:
        run = int(rng.exponential(20.0) * fps) + int(2 * fps)
        state[t : t + run] = 1
        t += run
        rev = int(rng.uniform(1.5, 4.0) * fps)
        state[t : t + rev] = -1
        t += rev
    freq = 0.5 * (1 + 0.1 * np.sin(np.arange(n_frames) * dt * 0.05))
    phase = np.cumsum(state * freq * dt)
    amp = 1.0 + 0.15 * np.convolve(rng.standard_normal(n_frames), np.ones(20) / 20, "same") * 4
    turn = np.zeros(n_frames)
    ends = np.flatnonzero((state[:-1] < 0) & (state[1:] > 0))
    for e in ends:
        if rng.random() < 0.5:
            d = int(3 * fps)
            turn[e : e + d] += np.sin(np.linspace(0, np.pi, len(turn[e : e + d]))) * 2.0
    bend = np.exp(-((s - 0.4) ** 2) / 0.05)
    theta = (
        amp[:, None] * np.sin(2 * np.pi * (s[None] / 0.65 - phase[:, None]))
        + turn[:, None] * bend[None]
    )
    heading = np.cumsum(0.02 * rng.standard_normal(n_frames))
    theta = theta + heading[:, None]
    return PostureRecording(
        name=name,
        angles=theta,
        fps=fps,
        reversal=(state < 0).astype(float),
        source="synthetic travelling-wave model (wormlab.posture.synthetic_recording)",
        synthetic=True,
    )


def load_postures(
    dataset: str = "flavell", seed: int = 0, smoke: bool = False
) -> list[PostureRecording]:
    """Posture recordings by name; falls back to labelled synthetic data when real are absent.

    ``flavell``: Dag et al. 2023 (30 angles, ~1.7 Hz). ``synthetic``: travelling-wave model.
    """
    if dataset not in ("flavell", "synthetic"):
        raise ValueError(f"unknown posture dataset {dataset!r}; choices: flavell, synthetic")
    base = shared_data_dir()
    if dataset == "flavell" and base is not None and (base / "flavell2023").is_dir():
        # only absent data fall back; a loader failing on data that are there is an error
        recs = load_flavell(max_worms=3 if smoke else None)
        if recs:
            return recs
    n = 3 if smoke else 6
    return [
        synthetic_recording(
            n_frames=600 if smoke else 3000,
            fps=1.7 if dataset == "flavell" else 10.0,
            seed=seed + i,
            name=f"synthetic-{i}",
        )
        for i in range(n)
    ]
