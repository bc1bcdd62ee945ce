"""Kinematics from a shape series by resistive force theory (RFT).

Each body segment feels a drag force f = -c_t (v.t) t - c_n (v.n) n (Gray & Hancock 1955;
for crawling on agar c_n / c_t = K >> 1). A crawling worm is inertia-free, so the net force and
torque vanish at every instant; given the shape's own deformation, this fixes the rigid-body
velocity (2 translations + 1 rotation) -> centroid track, heading and signed speed.

For an infinite sinusoidal tangent-angle wave theta = theta0 cos(k s - w t) the exact RFT speed is
U = (w / k) J0(theta0) (K - 1) S / (1 + (K - 1) S), S = (1 - J0(2 theta0)) / 2 (arclength averages
of cos and sin^2 of the angle); :func:`travelling_wave_speed` gives it and the tests check it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wormlab.posture._config import KinematicsConfig
from wormlab.posture._shape import _as_frames


@dataclass
class Kinematics:
    """Per-frame kinematics. Lengths in mm (body length from the config), time in s."""

    xy: np.ndarray  # (T, 2) centroid track, mm
    heading: np.ndarray  # (T,) mean tangent angle (rad), RFT-integrated
    speed: np.ndarray  # (T,) signed centroid speed along the body axis, mm/s (+ = forward)
    angular_velocity: np.ndarray  # (T,) rad/s
    curvature: np.ndarray  # (T,) mean |d theta / ds| along the body, rad per body length
    reversal: np.ndarray  # (T,) bool, backward runs lasting >= reversal_min_s
    turn: np.ndarray  # (T,) bool, head-tail distance below turn_end_to_end body lengths
    fps: float

    @property
    def reversal_rate_per_min(self) -> float:
        starts = np.flatnonzero(np.diff(self.reversal.astype(int)) == 1).size + int(
            self.reversal[0]
        )
        return 60.0 * starts * self.fps / max(len(self.speed), 1)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ("speed", "curvature", "reversal", "turn")}


def travelling_wave_speed(
    theta0: float, k_per_body: float, omega: float, drag_ratio: float
) -> float:
    """Exact RFT speed (body lengths/s) of an infinite wave theta0 cos(k s - w t), s in body lengths."""
    from scipy.special import j0

    s2 = (1.0 - j0(2 * theta0)) / 2.0
    km1 = drag_ratio - 1.0
    return float((omega / k_per_body) * j0(theta0) * km1 * s2 / (1.0 + km1 * s2))


def travelling_wave(
    n_frames: int,
    n_segments: int,
    fps: float,
    theta0: float = 0.8,
    wavelengths: float = 1.0,
    freq_hz: float = 0.5,
) -> np.ndarray:
    """Tangent angles of a travelling wave theta0 cos(2 pi (wavelengths s - f t)), head first.

    A positive ``freq_hz`` sends the wave from head to tail, which drives forward crawling.
    """
    s = (np.arange(n_segments) + 0.5) / n_segments
    t = np.arange(n_frames) / fps
    return theta0 * np.cos(2 * np.pi * (wavelengths * s[None] - freq_hz * t[:, None]))


def rft_body_velocity(theta: np.ndarray, fps: float, drag_ratio: float = 30.0) -> np.ndarray:
    """Body-frame rigid velocity (T, 3) = (Vx, Vy, Omega) from a tangent-angle series.

    The body frame has its origin at the centroid of the segment midpoints and the mean
    tangent angle along +x (head -> tail). Units: body lengths per s and rad/s.
    """
    theta = _as_frames(theta)
    if theta.shape[0] < 3:
        raise ValueError("need at least 3 frames to differentiate the shape in time")
    if drag_ratio <= 0:
        raise ValueError(f"drag_ratio must be > 0, got {drag_ratio}")
    n = theta.shape[1]
    ds = 1.0 / n
    th = theta - theta.mean(axis=1, keepdims=True)
    tx, ty = np.cos(th), np.sin(th)
    # segment midpoints, centred
    px = np.cumsum(tx, axis=1) * ds - 0.5 * tx * ds
    py = np.cumsum(ty, axis=1) * ds - 0.5 * ty * ds
    px -= px.mean(axis=1, keepdims=True)
    py -= py.mean(axis=1, keepdims=True)
    dt = 1.0 / fps
    ux = np.gradient(px, dt, axis=0)
    uy = np.gradient(py, dt, axis=0)
    c_t, c_n = 1.0, float(drag_ratio)
    # D = c_t t t^T + c_n n n^T with n = (-ty, tx)
    dxx = c_t * tx * tx + c_n * ty * ty
    dxy = (c_t - c_n) * tx * ty
    dyy = c_t * ty * ty + c_n * tx * tx
    # velocity of a point = V + Omega * (-py, px) + u; force = -D v; torque = p x f
    # columns: response to Vx, Vy, Omega
    fx_v = np.stack([dxx, dxy, -dxx * py + dxy * px], axis=-1)  # (T, n, 3)
    fy_v = np.stack([dxy, dyy, -dxy * py + dyy * px], axis=-1)
    fx_u = dxx * ux + dxy * uy
    fy_u = dxy * ux + dyy * uy
    a = np.stack(
        [fx_v.sum(1), fy_v.sum(1), (px[..., None] * fy_v - py[..., None] * fx_v).sum(1)], axis=1
    )  # (T, 3, 3)
    b = -np.stack([fx_u.sum(1), fy_u.sum(1), (px * fy_u - py * fx_u).sum(1)], axis=1)
    return np.linalg.solve(a, b[..., None])[..., 0]


def _runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = np.zeros_like(mask, dtype=bool)
    if min_len <= 1:
        return mask.astype(bool)
    d = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
        if b - a >= min_len:
            out[a:b] = True
    return out


def curvature(theta: np.ndarray) -> np.ndarray:
    """Mean |d theta / ds| along the body (rad per body length), per frame."""
    theta = _as_frames(theta)
    return np.abs(np.diff(theta, axis=1)).mean(axis=1) * theta.shape[1]


def end_to_end(theta: np.ndarray) -> np.ndarray:
    """Head-to-tail distance in body lengths, per frame (1 = straight)."""
    theta = _as_frames(theta)
    return np.hypot(np.cos(theta).mean(axis=1), np.sin(theta).mean(axis=1))


def kinematics(
    theta: np.ndarray, fps: float, config: KinematicsConfig | None = None, heading0: float = 0.0
) -> Kinematics:
    """Centroid track, signed speed, curvature, reversals and turns from tangent angles.

    Args:
        theta: (T, n) tangent angles (rad), head first; the mean angle is ignored (the RFT
            heading is integrated from ``heading0``).
        fps: frames per second.
    """
    cfg = config or KinematicsConfig()
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    theta = _as_frames(theta)
    vel = rft_body_velocity(theta, fps, cfg.drag_ratio)
    omega = vel[:, 2]
    heading = heading0 + np.concatenate([[0.0], np.cumsum(0.5 * (omega[1:] + omega[:-1]) / fps)])
    c, s = np.cos(heading), np.sin(heading)
    vx = (c * vel[:, 0] - s * vel[:, 1]) * cfg.body_length_mm
    vy = (s * vel[:, 0] + c * vel[:, 1]) * cfg.body_length_mm
    xy = np.concatenate(
        [
            [[0.0, 0.0]],
            np.cumsum(0.5 * (np.stack([vx, vy], 1)[1:] + np.stack([vx, vy], 1)[:-1]) / fps, axis=0),
        ]
    )
    # body axis points head -> tail (+x), so forward motion is -Vx
    speed = -vel[:, 0] * cfg.body_length_mm
    sm = speed
    if cfg.smooth_s > 0:
        w = max(1, int(round(cfg.smooth_s * fps)))
        sm = np.convolve(speed, np.ones(w) / w, mode="same")
    min_len = max(1, int(round(cfg.reversal_min_s * fps)))
    rev = _runs(sm < 0, min_len)
    turn = end_to_end(theta) < cfg.turn_end_to_end
    return Kinematics(
        xy=xy,
        heading=heading,
        speed=speed,
        angular_velocity=omega,
        curvature=curvature(theta),
        reversal=rev,
        turn=turn,
        fps=fps,
    )
