"""ElegansBot (Newtonian 25-rod body on agar) behind a small adapter, plus kinematics.

ElegansBot works in mm, ug and s; here outputs are in um and s. Conventions
(``polarity_clockwise=False``, ElegansBot's default): rod 0 is the head; ``tangent`` is each
rod's angle from +x pointing head -> tail (ElegansBot ``s``); joint angle ``theta = -diff(s)``;
a positive joint angle bends the body dorsally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wormlab.body._config import MuscleConfig, PhysicsConfig
from wormlab.body._muscles import joint_commands

DEFAULT_MUSCLECONFIG = MuscleConfig()
DEFAULT_PHYSICSCONFIG = PhysicsConfig()

N_RODS = 25
N_JOINTS = 24


@dataclass
class Trajectory:
    """Body trajectory, time-first. Arrays are NumPy or torch (surrogate output keeps grads).

    ``t_s`` (T,), ``com_um`` (T, B, 2) centre of mass, ``tangent_rad`` (T, B, 25) rod angles
    (head -> tail direction, unwrapped), ``body_length_um``.
    """

    t_s: np.ndarray
    com_um: np.ndarray | torch.Tensor
    tangent_rad: np.ndarray | torch.Tensor
    body_length_um: float = 1000.0
    source: str = "elegansbot"

    @property
    def joints_rad(self):
        """(T, B, 24) joint angles, positive = dorsal bend."""
        return -(self.tangent_rad[..., 1:] - self.tangent_rad[..., :-1])

    @property
    def points_um(self):
        """(T, B, 26, 2) midline points (rod tips) from head to tail, um."""
        return body_points(self.com_um, self.tangent_rad, self.body_length_um)

    @property
    def speed_um_s(self):
        """(T, B) centre-of-mass speed (finite differences), um/s."""
        v = (np.diff(self.com_um, axis=0) if isinstance(self.com_um, np.ndarray)
             else torch.diff(self.com_um, dim=0))
        dt = float(self.t_s[1] - self.t_s[0])
        sp = (v**2).sum(-1) ** 0.5 / dt
        return np.concatenate([sp[:1], sp]) if isinstance(sp, np.ndarray) else torch.cat(
            [sp[:1], sp])

    def numpy(self) -> Trajectory:
        f = (lambda a: a.detach().cpu().numpy()) if isinstance(self.com_um, torch.Tensor) else (
            lambda a: a)
        return Trajectory(np.asarray(self.t_s), f(self.com_um), f(self.tangent_rad),
                          self.body_length_um, self.source)

    def sample(self, b: int) -> Trajectory:
        return Trajectory(self.t_s, self.com_um[:, b:b + 1], self.tangent_rad[:, b:b + 1],
                          self.body_length_um, self.source)


def body_points(com_um, tangent_rad, body_length_um: float = 1000.0):
    """Rod-tip midline points (T, B, 26, 2) from centre of mass and rod angles (as ElegansBot's
    ``xy_tip_log``: rods of length L/25 chained from the head, centred on the COM)."""
    is_t = isinstance(tangent_rad, torch.Tensor)
    cos, sin = (torch.cos, torch.sin) if is_t else (np.cos, np.sin)
    seg = body_length_um / N_RODS
    d = (torch.stack if is_t else np.stack)([cos(tangent_rad), sin(tangent_rad)], -1) * seg
    zero = d[..., :1, :] * 0
    tips = (torch.cat if is_t else np.concatenate)(
        [zero, (torch.cumsum(d, -2) if is_t else np.cumsum(d, -2))], -2)
    mids = 0.5 * (tips[..., 1:, :] + tips[..., :-1, :])
    return tips - mids.mean(-2, keepdims=True) + com_um[..., None, :]


def simulate_joints(joints_rad, cfg: PhysicsConfig = DEFAULT_PHYSICSCONFIG, progress=False
                    ) -> Trajectory:
    """Run ElegansBot on target joint angles (T, B, 24) rad sampled every ``frame_dt_s``.

    Frame ``k`` of the output is the state after the commands of frames ``0..k-1`` (causal); the
    initial posture is the first command (ElegansBot ``Worm.run``).
    """
    from elegansbot import Worm

    j = np.asarray(joints_rad.detach().cpu().numpy() if isinstance(joints_rad, torch.Tensor)
                   else joints_rad, dtype=np.float64)
    if j.ndim != 3 or j.shape[-1] != N_JOINTS:
        raise ValueError(f"joint commands must be (T, B, 24), got {j.shape}")
    if not np.all(np.isfinite(j)):
        t, b, k = (int(i) for i in np.argwhere(~np.isfinite(j))[0])
        raise ValueError(f"joint commands contain NaN or inf: {j[t, b, k]} at time index {t}, "
                         f"sample {b}, joint {k}")
    T, B, _ = j.shape
    if T < 2:
        raise ValueError("need at least 2 frames")
    com = np.zeros((T, B, 2))
    tan = np.zeros((T, B, N_RODS))
    it = range(B)
    if progress:
        from wormlab.runs import progress as _p
        it = _p(it, desc="ElegansBot", total=B)
    for b in it:
        env = Worm(dt=cfg.dt_s, scale_friction=cfg.scale_friction,
                   scale_muscle=cfg.scale_muscle, simTime=None, dt_snapshot=None)
        env.run(j[:, b], cfg.frame_dt_s)
        com[:, b] = env.xyc_log * 1000.0  # mm -> um
        tan[:, b] = env.s_log
    t = np.arange(T) * cfg.frame_dt_s
    return Trajectory(t, com, tan, body_length_um=cfg.body_length_um * 1.0)


def simulate(activation, cfg: PhysicsConfig = DEFAULT_PHYSICSCONFIG,
             muscle: MuscleConfig = DEFAULT_MUSCLECONFIG, progress=False) -> Trajectory:
    """Muscle activation (T, B, 95) -> ElegansBot trajectory (the ground-truth physics).

    NaN, inf or negative activations raise ``ValueError`` naming the time index, sample and
    muscle (:func:`wormlab.body._muscles.check_activation`)."""
    a = torch.as_tensor(np.asarray(activation) if not isinstance(activation, torch.Tensor)
                        else activation.detach(), dtype=torch.float64)
    return simulate_joints(joint_commands(a, muscle), cfg, progress=progress)


# ----------------------------------------------------------------------------- kinematics
def forward_speed(traj: Trajectory, skip_s: float = 0.5):
    """(B,) mean forward speed, um/s: COM velocity projected on the tail->head axis, averaged
    after ``skip_s`` (start-up transient). Torch in -> torch out (differentiable)."""
    com, pts = traj.com_um, traj.points_um
    dt = float(traj.t_s[1] - traj.t_s[0])
    k = max(1, int(round(skip_s / dt)))
    if isinstance(com, torch.Tensor):
        v = torch.diff(com, dim=0) / dt
        axis = pts[1:, :, 0] - pts[1:, :, -1]
        axis = axis / torch.linalg.norm(axis, dim=-1, keepdim=True).clamp_min(1e-9)
        return (v * axis).sum(-1)[k - 1:].mean(0)
    v = np.diff(com, axis=0) / dt
    axis = pts[1:, :, 0] - pts[1:, :, -1]
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-9)
    return (v * axis).sum(-1)[k - 1:].mean(0)


def wave_kinematics(traj: Trajectory, skip_s: float = 0.5) -> dict[str, np.ndarray]:
    """Undulation frequency (Hz), wavelength (body lengths) and wave direction per sample.

    The dominant temporal frequency of the linearly detrended, Hann-windowed joint-angle
    kymogram (8x zero-padded FFT, summed
    power over joints); at that frequency each joint's phase is unwrapped along the body and
    fitted by a line: wavelength = 2 pi / |slope| (joint spacing L/25); direction +1 when the
    wave travels head -> tail (forward locomotion), -1 for tail -> head. ``nan`` wavelength when
    the joint oscillation is too weak (< 0.01 rad) to define a wave.
    """
    tr = traj.numpy()
    dt = float(tr.t_s[1] - tr.t_s[0])
    k = int(round(skip_s / dt))
    j = tr.joints_rad[k:]  # (T, B, 24)
    from scipy.signal import detrend

    j = detrend(j, axis=0)  # slow drifts (turning) would otherwise dominate the spectrum
    T = j.shape[0]
    j = j * np.hanning(T)[:, None, None]
    n = 8 * T
    spec = np.fft.rfft(j, n=n, axis=0)  # (F, B, 24)
    freqs = np.fft.rfftfreq(n, dt)
    power = (np.abs(spec) ** 2).sum(-1)  # (F, B)
    power[0] = 0
    idx = power.argmax(0)
    B = j.shape[1]
    freq = freqs[idx]
    wl = np.full(B, np.nan)
    direction = np.zeros(B)
    amp = np.abs(j).max(0).mean(-1)
    x = np.arange(N_JOINTS) / N_RODS  # body lengths
    for b in range(B):
        if amp[b] < 0.01:
            freq[b] = np.nan
            continue
        ph = np.unwrap(np.angle(spec[idx[b], b]))
        slope = np.polyfit(x, ph, 1)[0]  # rad per body length
        if abs(slope) > 1e-6:
            wl[b] = 2 * np.pi / abs(slope)
            direction[b] = -np.sign(slope)
    return {"frequency_hz": freq, "wavelength_bl": wl, "direction": direction}


def kinematics(traj: Trajectory) -> dict[str, np.ndarray]:
    """Per-sample forward speed (um/s), undulation frequency (Hz), wavelength (body lengths)."""
    fs = forward_speed(traj.numpy())
    out = {"forward_speed_um_s": np.asarray(fs)}
    out.update(wave_kinematics(traj))
    return out
