"""Shape representation: midline <-> tangent angles <-> eigenworm amplitudes.

Conventions (Stephens et al. 2008, PLoS Comput Biol; Brown et al. 2013, PNAS): a frame is
``n`` tangent angles theta_i (radians) of equal-length segments from head (i = 0) to tail,
sampled at segment centres s_i = (i + 0.5) / n of the normalised arclength. The mean angle
(the body's orientation) is removed before projection onto a basis of shapes; a
``(T, n_modes + 1)`` series of amplitudes plus the mean angle is the model's input.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


def _as_frames(theta: np.ndarray, name: str = "theta") -> np.ndarray:
    theta = np.asarray(theta, dtype=float)
    if theta.ndim == 1:
        theta = theta[None]
    if theta.ndim != 2 or theta.shape[1] < 2:
        raise ValueError(f"{name} must be (T, n_segments) with n_segments >= 2, got {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError(f"{name} contains NaN or inf ({int((~np.isfinite(theta)).sum())} values)")
    return theta


def resample_angles(theta: np.ndarray, n_out: int) -> np.ndarray:
    """Resample tangent angles to ``n_out`` equal segments (cubic spline in arclength).

    Args:
        theta: (T, n_in) or (n_in,) angles at segment centres (i + 0.5) / n_in.
        n_out: number of output segments (e.g. 30 Flavell, 49 Broekmans-style, 100/101 Leifer).
    Returns:
        (T, n_out) angles at centres (j + 0.5) / n_out (cubic spline in arclength).
    """
    squeeze = np.asarray(theta).ndim == 1
    theta = _as_frames(theta)
    if n_out < 2:
        raise ValueError(f"n_out must be >= 2, got {n_out}")
    from scipy.interpolate import CubicSpline

    n_in = theta.shape[1]
    s_in = (np.arange(n_in) + 0.5) / n_in
    s_out = (np.arange(n_out) + 0.5) / n_out
    # cubic spline along the body (not-a-knot: reproduces cubic profiles exactly); the ends
    # beyond the first/last segment centre are extrapolated by the end polynomials
    out = CubicSpline(s_in, theta, axis=1, extrapolate=True)(s_out) if n_in >= 4 else None
    if out is None:  # too few points for a cubic: linear
        idx = np.clip(np.searchsorted(s_in, s_out) - 1, 0, n_in - 2)
        w = (s_out - s_in[idx]) / (s_in[idx + 1] - s_in[idx])
        out = theta[:, idx] * (1 - w) + theta[:, idx + 1] * w
    return out[0] if squeeze else out


def midline_from_angles(theta: np.ndarray, length: float = 1.0, centre: bool = True) -> np.ndarray:
    """Midline points from tangent angles.

    Args:
        theta: (T, n) or (n,) tangent angles (rad), head first.
        length: body length (same unit as the output).
        centre: subtract the centroid of the n + 1 points.
    Returns:
        (T, n + 1, 2) or (n + 1, 2) points, head first.
    """
    squeeze = np.asarray(theta).ndim == 1
    theta = _as_frames(theta)
    ds = length / theta.shape[1]
    steps = np.stack([np.cos(theta), np.sin(theta)], axis=-1) * ds
    pts = np.concatenate([np.zeros((theta.shape[0], 1, 2)), np.cumsum(steps, axis=1)], axis=1)
    if centre:
        pts = pts - pts.mean(axis=1, keepdims=True)
    return pts[0] if squeeze else pts


def angles_from_midline(points: np.ndarray, n_segments: int | None = None) -> np.ndarray:
    """Tangent angles of a midline, after resampling it to equal arclength.

    Args:
        points: (T, P, 2) or (P, 2) midline points, head first (any spacing).
        n_segments: number of equal segments (default P - 1).
    Returns:
        (T, n_segments) or (n_segments,) angles, unwrapped along the body.
    """
    pts = np.asarray(points, dtype=float)
    squeeze = pts.ndim == 2
    if squeeze:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[2] != 2 or pts.shape[1] < 3:
        raise ValueError(f"points must be (T, P>=3, 2), got {np.asarray(points).shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("points contain NaN or inf")
    n = n_segments or pts.shape[1] - 1
    out = np.empty((pts.shape[0], n))
    for t, p in enumerate(pts):
        seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
        if np.any(seg <= 0):
            raise ValueError(f"frame {t}: repeated midline points (zero-length segment)")
        s = np.concatenate([[0], np.cumsum(seg)])
        s_new = np.linspace(0, s[-1], n + 1)
        q = np.stack([np.interp(s_new, s, p[:, 0]), np.interp(s_new, s, p[:, 1])], axis=1)
        d = np.diff(q, axis=0)
        out[t] = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    return out[0] if squeeze else out


def split_mean_angle(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, n) angles -> (mean-removed angles (T, n), mean angle (T,))."""
    theta = _as_frames(theta)
    mean = theta.mean(axis=1)
    return theta - mean[:, None], mean


@dataclass(frozen=True)
class Basis:
    """A set of shapes (``modes``: (k, n)) spanning mean-removed tangent angles.

    Projection is least squares (``pinv``), so non-orthogonal ICA bases work too.
    """

    modes: np.ndarray
    kind: str
    source: str = ""

    @property
    def n_modes(self) -> int:
        return int(self.modes.shape[0])

    @property
    def n_segments(self) -> int:
        return int(self.modes.shape[1])

    def truncate(self, k: int) -> Basis:
        if not 1 <= k <= self.n_modes:
            raise ValueError(f"k must be in 1..{self.n_modes}, got {k}")
        return dataclasses.replace(self, modes=self.modes[:k])

    def resampled(self, n_segments: int) -> Basis:
        """The same shapes resampled to ``n_segments`` angles (each mode re-centred)."""
        m = resample_angles(self.modes, n_segments)
        m = m - m.mean(axis=1, keepdims=True)
        return dataclasses.replace(self, modes=m, source=f"{self.source} resampled to {n_segments}")

    def _check(self, x: np.ndarray) -> None:
        if x.shape[1] != self.n_segments:
            raise ValueError(
                f"angles have {x.shape[1]} segments but the basis has {self.n_segments}; "
                "resample explicitly with resample_angles() or Basis.resampled()"
            )

    def project(self, theta_centred: np.ndarray) -> np.ndarray:
        """(T, n) mean-removed angles -> (T, k) amplitudes (least squares)."""
        x = _as_frames(theta_centred)
        self._check(x)
        return x @ np.linalg.pinv(self.modes)

    def reconstruct(self, amplitudes: np.ndarray) -> np.ndarray:
        """(T, k) amplitudes -> (T, n) mean-removed angles."""
        a = np.atleast_2d(np.asarray(amplitudes, dtype=float))
        if a.shape[1] != self.n_modes:
            raise ValueError(f"amplitudes have {a.shape[1]} columns, basis has {self.n_modes}")
        return a @ self.modes

    def variance_explained(self, theta_centred: np.ndarray, max_k: int | None = None) -> np.ndarray:
        """Fraction of the (mean-removed) angle variance captured by the first k modes, k=1..K."""
        x = _as_frames(theta_centred)
        self._check(x)
        total = float((x**2).sum())
        out = []
        for k in range(1, (max_k or self.n_modes) + 1):
            b = self.truncate(k)
            r = x - b.reconstruct(b.project(x))
            out.append(1.0 - float((r**2).sum()) / total)
        return np.array(out)


def fit_pca(theta_centred: np.ndarray, n_modes: int = 6) -> Basis:
    """Eigenworms by PCA (Stephens et al. 2008): eigenvectors of the angle covariance."""
    x = _as_frames(theta_centred)
    if n_modes > x.shape[1]:
        raise ValueError(f"n_modes {n_modes} > n_segments {x.shape[1]}")
    # Stephens et al. use the covariance of mean-removed angles without re-centring frames.
    cov = x.T @ x / len(x)
    w, v = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1][:n_modes]
    modes = v[:, order].T
    # sign convention: positive first (head) element for reproducibility
    modes = modes * np.where(modes[:, 0:1] < 0, -1.0, 1.0)
    return Basis(modes=modes, kind="pca", source=f"PCA fit on {len(x)} frames")


def fit_ica(theta_centred: np.ndarray, n_modes: int = 6, seed: int = 0) -> Basis:
    """ICA basis (the Brown-lab LSTM paper's choice): FastICA on the mean-removed angles.

    The k ICA shapes span the same subspace as the first k principal components (FastICA
    whitens by PCA first), so the full set explains as much variance as k PCs; the axes are
    rotated to maximally independent, more local shapes. ICA sets are not nested: the first j < k
    shapes of a k-shape fit explain less than j PCs. Modes are ordered by the variance they carry.
    """
    from sklearn.decomposition import FastICA

    x = _as_frames(theta_centred)
    ica = FastICA(
        n_components=n_modes, random_state=seed, max_iter=2000, tol=1e-5, whiten="unit-variance"
    )
    s = ica.fit_transform(x)
    modes = ica.mixing_.T  # (k, n): x ~ s @ mixing.T + mean
    scale = s.std(axis=0)
    modes = modes * scale[:, None]
    modes = modes / np.linalg.norm(modes, axis=1, keepdims=True)
    order = np.argsort(-(scale * np.linalg.norm(ica.mixing_, axis=0)))
    modes = modes[order]
    # sign convention: the largest-magnitude element of each shape is positive
    peak = modes[np.arange(len(modes)), np.abs(modes).argmax(axis=1)]
    modes = modes * np.sign(peak)[:, None]
    return Basis(modes=modes, kind="ica", source=f"FastICA fit on {len(x)} frames")


def shape_series(theta: np.ndarray, basis: Basis, wrap_heading: bool = False) -> np.ndarray:
    """(T, n) tangent angles -> (T, k + 1) series: k amplitudes + per-frame change of mean angle.

    The last channel is d(mean angle)/frame (rad/frame), not the mean angle itself: the
    orientation wanders without bound while its increments are stationary, which a
    next-frame predictor needs. ``angles_from_series`` integrates it back.

    ``wrap_heading``: wrap that increment into [-pi, pi). Angles are only defined modulo 2 pi
    and recordings unwrapped along the body can shift the whole body by 2 pi from one frame
    to the next (Flavell 2023: 18 jumps of |d mean| > 3 rad in 4,799 frames, several within
    0.3 rad of 2 pi); the body, and so every mode amplitude, is unchanged by such a shift, but
    the raw increment gets a spike. Wrapping keeps the smallest rotation.
    """
    centred, mean = split_mean_angle(theta)
    amps = basis.project(centred)
    dmean = np.diff(mean, prepend=mean[0])
    if wrap_heading:
        dmean = (dmean + np.pi) % (2 * np.pi) - np.pi
    return np.concatenate([amps, dmean[:, None]], axis=1)


def angles_from_series(series: np.ndarray, basis: Basis, mean0: float = 0.0) -> np.ndarray:
    """Inverse of :func:`shape_series` up to the basis truncation: (T, k + 1) -> (T, n)."""
    s = np.atleast_2d(np.asarray(series, dtype=float))
    if s.shape[1] != basis.n_modes + 1:
        raise ValueError(f"series has {s.shape[1]} channels, expected {basis.n_modes + 1}")
    mean = mean0 + np.cumsum(s[:, -1]) - s[0, -1]
    return basis.reconstruct(s[:, :-1]) + mean[:, None]
