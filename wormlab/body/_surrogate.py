"""FNO surrogate of ElegansBot: 95 muscle activations over time -> body trajectory.

The input goes through the fixed, documented muscle -> joint map (:func:`joint_matrix` x gain,
the only thing ElegansBot sees) to 24 joint-command channels (``input_space="joints"``,
default), and one ``neuraloperator`` FNO (1-D over time) predicts 27 channels per frame. In the
default ``body_frame`` representation they are the centre-of-mass displacement since the
previous frame expressed in the body frame (heading) of the previous frame, the heading
increment and the 24 joint angles; the trajectory (heading by cumulative sum, COM by rotating
and summing the displacements, midline from heading + joint angles) is rebuilt in torch, so
kinematic losses are differentiable all the way back to the muscle activations, and training
penalises the integrated midline directly.

The error estimate (body-point RMSE, % body length) comes from a learned error head: a small
MLP on summary features of the joint commands and of the prediction, including a novelty
score (distance to the nearest training inputs), trained on held-out samples (the validation
split plus an out-of-range ``perturbed`` family never used to fit the FNO) against the physics
error, and scaled by a factor calibrated out-of-fold. With ``error_head=False`` and several
members the estimate is the ensemble spread (last session's method).
:func:`predict_with_fallback` runs ElegansBot for every sample whose estimate exceeds the
threshold, with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wormlab.body._config import MuscleConfig, PhysicsConfig, SurrogateConfig
from wormlab.body._muscles import N_MUSCLES, check_activation, joint_matrix
from wormlab.body._physics import N_JOINTS, N_RODS, Trajectory, body_points, forward_speed

DEFAULT_MUSCLECONFIG = MuscleConfig()
DEFAULT_PHYSICSCONFIG = PhysicsConfig()
DEFAULT_SURROGATECONFIG = SurrogateConfig()

N_OUT = 3 + N_JOINTS
HEADING0 = math.pi  # ElegansBot Worm(angle_init=0): every rod starts at angle pi


class SurrogateFallbackWarning(UserWarning):
    """The surrogate's error estimate exceeded the threshold; physics was used instead."""


# ------------------------------------------------------------------ targets <-> trajectories
def _rot(v, ang):
    """Rotate 2-vectors ``v`` (..., 2) by angles ``ang`` (...) (NumPy or torch)."""
    lib = torch if isinstance(v, torch.Tensor) else np
    c, s = lib.cos(ang), lib.sin(ang)
    return lib.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], -1)


def trajectory_to_channels(com_um: np.ndarray, tangent_rad: np.ndarray,
                           representation: str = "body_frame") -> np.ndarray:
    """(T, B, 2) COM + (T, B, 25) rod angles -> (T, B, 27) surrogate target channels.

    ``body_frame``: [COM displacement rotated into the heading of the previous frame (frame
    0: the initial COM in the initial heading pi), heading increment (frame 0: heading - pi),
    24 joint angles]. ``lab_delta``: [COM displacement (frame 0: initial COM), heading - pi,
    joints]. Heading = mean rod angle. Exact inverse: :func:`channels_to_trajectory`.
    """
    com = np.asarray(com_um, dtype=np.float64)
    tan = np.asarray(tangent_rad, dtype=np.float64)
    d = np.concatenate([com[:1], np.diff(com, axis=0)], 0)
    h = tan.mean(-1)
    j = -np.diff(tan, axis=-1)
    if representation == "lab_delta":
        return np.concatenate([d, (h - HEADING0)[..., None], j], -1).astype(np.float32)
    if representation != "body_frame":
        raise ValueError(f"unknown representation {representation!r}")
    h_prev = np.concatenate([np.full_like(h[:1], HEADING0), h[:-1]], 0)
    vb = _rot(d, -h_prev)
    dh = np.diff(np.concatenate([np.full_like(h[:1], HEADING0), h], 0), axis=0)
    return np.concatenate([vb, dh[..., None], j], -1).astype(np.float32)


def channels_to_trajectory(ch: torch.Tensor, frame_dt_s: float, body_length_um: float,
                           source: str = "surrogate", representation: str = "body_frame"
                           ) -> Trajectory:
    """Inverse of :func:`trajectory_to_channels` in torch (differentiable); time is dim 0."""
    if representation == "body_frame":
        heading = HEADING0 + torch.cumsum(ch[..., 2], dim=0)
        h_prev = torch.cat([torch.full_like(heading[:1], HEADING0), heading[:-1]], 0)
        com = torch.cumsum(_rot(ch[..., 0:2], h_prev), dim=0)
    elif representation == "lab_delta":
        com = torch.cumsum(ch[..., 0:2], dim=0)
        heading = ch[..., 2] + HEADING0
    else:
        raise ValueError(f"unknown representation {representation!r}")
    j = ch[..., 3:]
    s = torch.cat([torch.zeros_like(j[..., :1]), -torch.cumsum(j, -1)], -1)
    s = s - s.mean(-1, keepdim=True) + heading[..., None]
    t = np.arange(ch.shape[0]) * frame_dt_s
    return Trajectory(t, com, s, body_length_um, source)


# ------------------------------------------------------------------------ error-head features
BANDS_HZ = (0.0, 0.5, 1.0, 1.5, 2.5, float("inf"))


def command_features(j: torch.Tensor, frame_dt_s: float) -> torch.Tensor:
    """Summary features (B, 58) of joint commands (T, B, 24) rad: per-joint mean and std, then
    10 global ones (the novelty features): log power in 5 temporal frequency bands, log
    spatial and temporal roughness, max |j|, mean |per-joint mean|, mean per-joint std.

    Computed on a (B, 24, T) contiguous copy: reductions and the FFT along the last axis are
    several times cheaper than along time-first dim 0 (this sits in every ``predict``)."""
    T = j.shape[0]
    jt = j.permute(1, 2, 0).contiguous()  # (B, 24, T)
    mean = jt.mean(-1)
    c = jt - mean[..., None]
    std = (c.pow(2).sum(-1) / max(T - 1, 1)).sqrt()  # unbiased, as Tensor.std
    n = fft_length(T, 0.0)
    spec = torch.view_as_real(torch.fft.rfft(c, n=n, dim=-1)).pow(2).sum((-1, 1))  # (B, F)
    f = torch.fft.rfftfreq(n, frame_dt_s)  # spec: power summed over joints
    bands = []
    for lo, hi in zip(BANDS_HZ[:-1], BANDS_HZ[1:], strict=True):
        idx = torch.nonzero((f >= lo) & (f < hi))[:, 0]
        bands.append(torch.log(1e-6 + spec[:, idx].sum(-1) / T))
    rough_x = torch.log(1e-6 + (torch.diff(jt, dim=1) ** 2).mean((1, 2)))
    rough_t = torch.log(1e-6 + (torch.diff(jt, dim=-1) ** 2).mean((1, 2)))
    return torch.cat([mean, std, torch.stack(bands, -1), rough_x[:, None], rough_t[:, None],
                      jt.abs().flatten(1).amax(-1)[:, None], mean.abs().mean(-1, keepdim=True),
                      std.mean(-1, keepdim=True)], -1)


def prediction_features(ch: torch.Tensor, traj: Trajectory) -> torch.Tensor:
    """Features (B, 5) of a predicted trajectory: net heading change, RMS heading rate, mean
    COM step, RMS predicted joint angle, path length (all from the surrogate's own output)."""
    tan = traj.tangent_rad
    h = tan.mean(-1)
    step = torch.linalg.norm(torch.diff(traj.com_um, dim=0), dim=-1)
    return torch.stack([(h[-1] - h[0]).abs(), torch.diff(h, dim=0).pow(2).mean(0).sqrt(),
                        step.mean(0), ch[..., 3:].pow(2).mean((0, 2)).sqrt(),
                        torch.log1p(step.sum(0))], -1)


N_GLOBAL_FEAT = (len(BANDS_HZ) - 1) + 5
N_CMD_FEAT = 2 * N_JOINTS + N_GLOBAL_FEAT
N_PRED_FEAT = 5
MAX_REF = 1024  # training inputs kept as the novelty reference


class ErrorHead(nn.Module):
    """log(body RMSE %) = MLP(standardised features) + a * log1p(kNN distance) + b * log1p(mean
    squared z), with a, b >= 0: the novelty terms (distance of the global command features to
    the nearest training inputs) can only raise the estimate, so inputs far from the training
    distribution get large estimates even where the MLP extrapolates poorly."""

    def __init__(self, n_ref: int = 1, hidden: int = 32, k: int = 5):
        super().__init__()
        self.k = k
        self.register_buffer("feat_mean", torch.zeros(N_CMD_FEAT + N_PRED_FEAT))
        self.register_buffer("feat_std", torch.ones(N_CMD_FEAT + N_PRED_FEAT))
        # the global command features (standardised) of training inputs: novelty reference
        self.register_buffer("ref", torch.zeros(n_ref, N_GLOBAL_FEAT))
        self.net = nn.Sequential(nn.Linear(N_CMD_FEAT + N_PRED_FEAT, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 1))
        self.novelty_w = nn.Parameter(torch.zeros(2))

    def inputs(self, feat: torch.Tensor) -> torch.Tensor:
        """(B, F + 2): standardised features, then the two novelty scores."""
        z = (feat - self.feat_mean) / self.feat_std
        zc = z[:, 2 * N_JOINTS:N_CMD_FEAT]
        d = torch.cdist(zc, self.ref)
        k = min(self.k, self.ref.shape[0])
        knn = d.topk(k, dim=1, largest=False).values.mean(1)
        return torch.cat([z, torch.log1p(knn)[:, None],
                          torch.log1p(zc.pow(2).mean(1))[:, None]], -1)

    def from_inputs(self, x: torch.Tensor) -> torch.Tensor:
        nov = (torch.nn.functional.softplus(self.novelty_w) * x[:, -2:]).sum(-1)
        return self.net(x[:, :-2])[:, 0] + nov

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.from_inputs(self.inputs(feat))


# ------------------------------------------------------------------------------ the model
class PointwiseConv1d(nn.Conv1d):
    """A kernel-size-1 ``nn.Conv1d`` computed as one batched matrix product.

    Same parameters and state-dict keys as the convolution it replaces, same result up to
    float rounding. neuraloperator's FNO makes every channel MLP, skip and lifting/projection
    layer such a convolution; on CPU oneDNN takes ~8x longer for them than ``baddbmm`` at the
    surrogate's shapes (batch 64, 32 channels, 128 frames), and they were ~40 % of a
    prediction. ``wormlab bench surrogate`` times both in the same run.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:  # unbatched input: the library path
            return super().forward(x)
        w = self.weight[..., 0].expand(x.shape[0], -1, -1)
        if self.bias is None:
            return torch.bmm(w, x)
        return torch.baddbmm(self.bias[None, :, None], w, x)


def use_pointwise_matmul(module: nn.Module, enable: bool = True) -> nn.Module:
    """Swap every plain kernel-size-1 ``nn.Conv1d`` in ``module`` for :class:`PointwiseConv1d`
    (``enable=False``: back to ``nn.Conv1d``), keeping the parameters. Returns ``module``."""
    src, dst = (nn.Conv1d, PointwiseConv1d) if enable else (PointwiseConv1d, nn.Conv1d)
    for name, child in module.named_children():
        if (type(child) is src and child.kernel_size == (1,) and child.stride == (1,)
                and child.padding == (0,) and child.dilation == (1,) and child.groups == 1
                and child.padding_mode == "zeros"):
            new = dst(child.in_channels, child.out_channels, 1, bias=child.bias is not None,
                      device=child.weight.device, dtype=child.weight.dtype)
            new.weight, new.bias = child.weight, child.bias
            setattr(module, name, new)
        else:
            use_pointwise_matmul(child, enable)
    return module


def fft_length(T: int, padding: float) -> int:
    """Smallest length >= T * (1 + padding) of the form 2^a 3^b (fast FFT; a prime length
    such as 101 frames is ~6x slower)."""
    need = int(math.ceil(T * (1 + padding)))
    best = 2 ** math.ceil(math.log2(max(need, 1)))
    p3 = 1
    while p3 <= best:
        m = p3 * 2 ** max(0, math.ceil(math.log2(max(need / p3, 1))))
        best = min(best, m)
        p3 *= 3
    return max(best, T)


class Surrogate(nn.Module):
    """FNO(s) with input/output normalisation, trajectory reconstruction and an error
    estimate (learned error head, or calibrated ensemble spread)."""

    def __init__(self, cfg: SurrogateConfig = DEFAULT_SURROGATECONFIG, frame_dt_s: float = 0.04,
                 body_length_um: float = 1000.0, muscle: MuscleConfig = DEFAULT_MUSCLECONFIG,
                 n_ref: int = 1):
        super().__init__()
        from neuralop.models import FNO

        self.cfg = cfg
        self.muscle = muscle
        self.frame_dt_s = float(frame_dt_s)
        self.body_length_um = float(body_length_um)
        n_in = N_JOINTS if cfg.input_space == "joints" else N_MUSCLES
        g = torch.Generator().manual_seed(cfg.seed)
        members = []
        for _ in range(cfg.n_ensemble):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
            members.append(FNO(n_modes=(cfg.n_modes,), in_channels=n_in,
                               out_channels=N_OUT, hidden_channels=cfg.hidden_channels,
                               n_layers=cfg.n_layers, domain_padding=None))
        self.members = use_pointwise_matmul(nn.ModuleList(members))
        # the fixed muscle -> joint-command map (rad per unit activation), as joint_commands()
        self.register_buffer("joint_proj", (muscle.joint_gain_rad * muscle.max_force_coeff
                                            * joint_matrix()).float())
        self.register_buffer("in_mean", torch.zeros(n_in))
        self.register_buffer("in_std", torch.ones(n_in))
        self.register_buffer("out_mean", torch.zeros(N_OUT))
        self.register_buffer("out_std", torch.ones(N_OUT))
        self.register_buffer("calibration", torch.ones(()))
        self.head = ErrorHead(n_ref) if cfg.error_head else None

    def _check(self, act: torch.Tensor) -> torch.Tensor:
        act = torch.as_tensor(act)
        if act.ndim != 3 or act.shape[-1] != N_MUSCLES:
            raise ValueError(f"activation must be (T, B, 95), got {tuple(act.shape)}")
        return check_activation(act).float()  # NaN / inf / negative: error naming muscle, time

    def commands(self, act: torch.Tensor) -> torch.Tensor:
        """(T, B, 95) activation -> (T, B, 24) ElegansBot joint commands, rad."""
        return self._check(act) @ self.joint_proj

    def member_channels(self, act: torch.Tensor, commands: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """Activation (T, B, 95) -> denormalised channels of every member (K, T, B, 27).
        ``commands``: ``self.commands(act)`` if already computed (joint-command input only)."""
        act = self._check(act)
        if self.cfg.input_space == "joints":
            x = act @ self.joint_proj if commands is None else commands
        else:
            x = act
        x = ((x - self.in_mean) / self.in_std).permute(1, 2, 0)  # (B, C, T)
        T = x.shape[-1]
        n = fft_length(T, self.cfg.domain_padding)
        if n > T:  # non-periodic signal: pad (hold the last value) to a fast FFT length
            x = torch.cat([x, x[..., -1:].expand(-1, -1, n - T)], -1)  # = pad "replicate"
        outs = [m(x)[..., :T].permute(2, 0, 1) for m in self.members]  # (T, B, 27)
        return torch.stack(outs) * self.out_std + self.out_mean

    def to_trajectory(self, ch: torch.Tensor) -> Trajectory:
        return channels_to_trajectory(ch, self.frame_dt_s, self.body_length_um,
                                      representation=self.cfg.representation)

    def forward(self, act: torch.Tensor) -> Trajectory:
        """Mean trajectory over members (torch tensors, differentiable)."""
        return self.to_trajectory(self.member_channels(act).mean(0))

    def head_features(self, act: torch.Tensor, ch: torch.Tensor, traj: Trajectory,
                      commands: torch.Tensor | None = None):
        j = self.commands(act) if commands is None else commands
        return torch.cat([command_features(j, self.frame_dt_s),
                          prediction_features(ch, traj)], -1)

    def raw_estimate(self, act: torch.Tensor, ch: torch.Tensor, mean: Trajectory,
                     commands: torch.Tensor | None = None):
        """Uncalibrated estimate (B,): error-head output or ensemble spread, % body length."""
        if self.head is not None:
            return torch.exp(self.head(self.head_features(act, ch.mean(0), mean, commands)))
        pts = torch.stack([self.to_trajectory(c).points_um for c in ch])  # (K, T, B, 26, 2)
        spread = ((pts - mean.points_um) ** 2).sum(-1).mean((0, 1, 3)).sqrt()
        return spread / self.body_length_um * 100.0

    def predict(self, act: torch.Tensor) -> tuple[Trajectory, torch.Tensor]:
        """(mean trajectory, estimated body-point RMSE in % body length per sample (B,)),
        in one forward pass."""
        act = self._check(act)
        j = act @ self.joint_proj  # joint commands, shared by the FNO input and the error head
        ch = self.member_channels(act, j)
        mean = self.to_trajectory(ch.mean(0))
        return mean, self.calibration * self.raw_estimate(act, ch, mean, j)


# ------------------------------------------------------------------------- data handling
@dataclasses.dataclass
class Split:
    activation: np.ndarray  # (N, T, 95)
    com_um: np.ndarray  # (N, T, 2)
    tangent_rad: np.ndarray  # (N, T, 25)
    family: np.ndarray
    id: np.ndarray | None = None  # sample ids, when the data has them

    def __len__(self):
        return len(self.activation)

    def act(self, idx=slice(None)) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.activation[idx].transpose(1, 0, 2)))

    def trajectory(self, frame_dt_s, body_length_um, idx=slice(None)) -> Trajectory:
        com = self.com_um[idx].transpose(1, 0, 2).astype(np.float64)
        tan = self.tangent_rad[idx].transpose(1, 0, 2).astype(np.float64)
        return Trajectory(np.arange(com.shape[0]) * frame_dt_s, com, tan, body_length_um)


def split_data(data: dict, cfg: SurrogateConfig, heldout: dict | None = None
               ) -> dict[str, Split]:
    """train / val / test from ``cfg.train_families`` (random, seeded); ``calib``: the
    ``cfg.errorhead_families`` (error-head training only); ``general`` = all other families.

    ``heldout``: ``{"val": [ids], "test": [ids]}`` fixes the validation and test samples
    (e.g. an earlier model's, recorded in its history as ``heldout_ids``) and every other
    sample of the training families goes to training, so a store can grow without moving an
    earlier model's training samples into the test set. A training family with no sample
    named in ``heldout`` is split at random (seeded) as without ids. Unknown ids are an error.
    """
    fam = data["family"]
    seen = np.isin(fam, list(cfg.train_families))
    calib = np.isin(fam, list(cfg.errorhead_families)) & ~seen
    if heldout is None:
        rng = np.random.default_rng(cfg.seed)
        idx = rng.permutation(np.flatnonzero(seen))
        n_val = max(1, int(round(cfg.val_fraction * len(idx))))
        val, test, train = idx[:n_val], idx[n_val:2 * n_val], idx[2 * n_val:]
    else:
        if "id" not in data:
            raise ValueError("a fixed held-out split needs the sample ids (data['id'])")
        where = {str(i): k for k, i in enumerate(data["id"])}
        parts_ = {}
        for k in ("val", "test"):
            ids = [str(i) for i in heldout.get(k, [])]
            missing = [i for i in ids if i not in where]
            if missing or not ids:
                raise ValueError(f"held-out {k} ids not in the data: {missing[:5]} "
                                 f"({len(missing)} of {len(ids)})")
            parts_[k] = np.array([where[i] for i in ids])
            if not seen[parts_[k]].all():
                raise ValueError(f"held-out {k} ids outside the training families "
                                 f"{cfg.train_families}")
        val, test = parts_["val"], parts_["test"]
        # a training family none of whose samples is named (e.g. a family added to the data
        # after the held-out ids were chosen) is split at random like a store without ids
        named = set(fam[np.concatenate([val, test])])
        free = seen & ~np.isin(fam, list(named))
        if free.any():
            rng = np.random.default_rng(cfg.seed)
            idx = rng.permutation(np.flatnonzero(free))
            n_val = max(1, int(round(cfg.val_fraction * len(idx))))
            val = np.concatenate([val, idx[:n_val]])
            test = np.concatenate([test, idx[n_val:2 * n_val]])
        out = np.zeros(len(fam), bool)
        out[val] = out[test] = True
        train = np.flatnonzero(seen & ~out)
    parts = {"val": val, "test": test, "train": train,
             "calib": np.flatnonzero(calib), "general": np.flatnonzero(~seen & ~calib)}
    if len(parts["train"]) < 2:
        raise ValueError(f"too few training samples ({len(parts['train'])}) in families "
                         f"{cfg.train_families}")
    ids = np.asarray(data["id"]) if "id" in data else None
    return {k: Split(data["activation"][v], data["com_um"][v], data["tangent_rad"][v], fam[v],
                     None if ids is None else ids[v])
            for k, v in parts.items()}


# ---------------------------------------------------------------------------- training
def _fit_normalisation(model: Surrogate, train: Split) -> None:
    a = torch.from_numpy(train.activation.reshape(-1, N_MUSCLES))
    x = a @ model.joint_proj if model.cfg.input_space == "joints" else a
    ch = trajectory_to_channels(train.com_um.transpose(1, 0, 2),
                                train.tangent_rad.transpose(1, 0, 2),
                                model.cfg.representation).reshape(-1, N_OUT)
    model.in_mean.copy_(x.mean(0))
    model.in_std.copy_(torch.clamp(x.std(0), min=1e-2))
    model.out_mean.copy_(torch.from_numpy(ch.mean(0)))
    model.out_std.copy_(torch.from_numpy(np.maximum(ch.std(0), 1e-4)))


def _loss(model: Surrogate, act, target_ch, target_pts, cfg: SurrogateConfig,
          position_weight: float | None = None, target_speed=None):
    """Normalised channel MSE + midline-points MSE of the rebuilt trajectory (units of 0.1
    body length) + (with ``cfg.speed_loss_weight`` and ``target_speed`` (B,), um/s) the
    relative forward-speed error, averaged over members."""
    ch = model.member_channels(act)  # (K, T, B, 27)
    norm = ((ch - target_ch) / model.out_std) ** 2
    K, T, B, C = ch.shape
    flat = ch.permute(1, 0, 2, 3).reshape(T, K * B, C)
    traj = model.to_trajectory(flat)
    pts = traj.points_um.reshape(T, K, B, N_RODS + 1, 2)
    pos = ((pts - target_pts[:, None]) / (0.1 * model.body_length_um)) ** 2
    w = cfg.position_loss_weight if position_weight is None else position_weight
    loss = norm.mean() + w * pos.mean()
    if cfg.speed_loss_weight > 0 and target_speed is not None:
        v = forward_speed(traj).reshape(K, B)
        rel = (v - target_speed).abs() / target_speed.abs().clamp_min(cfg.speed_loss_floor_um_s)
        loss = loss + cfg.speed_loss_weight * rel.mean()
    return loss


def _targets(split: Split, idx, representation: str, body_length_um: float,
             frame_dt_s: float = 0.04):
    """Channels (T, B, 27), midline points (T, B, 26, 2) and forward speed (B,), um/s."""
    com = split.com_um[idx].transpose(1, 0, 2)
    tan = split.tangent_rad[idx].transpose(1, 0, 2)
    ch = trajectory_to_channels(com, tan, representation)
    com64, tan64 = com.astype(np.float64), tan.astype(np.float64)
    pts = body_points(com64, tan64, body_length_um)
    v = forward_speed(Trajectory(np.arange(com.shape[0]) * frame_dt_s, com64, tan64,
                                 body_length_um))
    return (torch.from_numpy(ch), torch.from_numpy(pts.astype(np.float32)),
            torch.from_numpy(np.asarray(v, dtype=np.float32)))


# configuration fields that fix the network's shape: a fine-tune must keep them
ARCHITECTURE_FIELDS = ("hidden_channels", "n_modes", "n_layers", "n_ensemble", "input_space",
                       "representation", "error_head")


def train_surrogate(splits: dict[str, Split], cfg: SurrogateConfig, frame_dt_s: float,
                    body_length_um: float, checkpoint: str | Path | None = None,
                    progress: bool = True, time_budget_s: float | None = None,
                    muscle: MuscleConfig = DEFAULT_MUSCLECONFIG,
                    init: str | Path | None = None) -> tuple[Surrogate, dict]:
    """Train the FNO(s) (AdamW, cosine LR, optional gradient clipping) keeping the best-validation
    weights, then the error head (or the spread calibration).

    ``init``: a checkpoint (:func:`save_surrogate`) to fine-tune from. Its weights and
    normalisation are the start, its architecture (:data:`ARCHITECTURE_FIELDS`), frame step and
    body length must match ``cfg`` and the data, the midline loss is not ramped in, and the
    starting weights count as epoch -1 (kept if no epoch beats them on validation).

    Returns the model and a history dict with ``train_loss``, ``val_loss`` per epoch,
    ``best_epoch``, ``wall_s`` and ``calibration`` (error-estimate fit). With ``checkpoint``
    the model is saved as safetensors (see :func:`save_surrogate`).

    Resumable: with ``checkpoint`` and no ``time_budget_s``, the training state (weights,
    best weights, AdamW and LR-schedule state, the NumPy and torch random states, the history)
    is written atomically after every epoch to ``<checkpoint>.resume.pt``; a rerun with the
    same arguments continues from the last finished epoch and ends with the same weights as an
    uninterrupted run (bitwise on CPU). The file is removed once the checkpoint is written.
    A time budget makes the schedule depend on the clock, so such runs are not resumed.
    """
    from wormlab.runs import progress as bar_

    torch.manual_seed(cfg.seed)
    train, val = splits["train"], splits["val"]
    model = Surrogate(cfg, frame_dt_s, body_length_um, muscle, n_ref=min(len(train), MAX_REF))
    hist = {"train_loss": [], "val_loss": [], "best_epoch": -1}
    if val.id is not None and splits.get("test") is not None and splits["test"].id is not None:
        # the held-out sets, so that a later report can check it evaluates the same samples
        hist["heldout_ids"] = {"val": val.id.tolist(), "test": splits["test"].id.tolist()}
    if init is None:
        _fit_normalisation(model, train)
    else:
        start, start_hist = load_surrogate(init)
        diff = {k: (getattr(start.cfg, k), getattr(cfg, k)) for k in ARCHITECTURE_FIELDS
                if getattr(start.cfg, k) != getattr(cfg, k)}
        if abs(start.frame_dt_s - frame_dt_s) > 1e-12 or abs(
                start.body_length_um - body_length_um) > 1e-6:
            diff["frame_dt_s, body_length_um"] = ((start.frame_dt_s, start.body_length_um),
                                                  (frame_dt_s, body_length_um))
        if diff:
            raise ValueError(f"cannot fine-tune {init}: (checkpoint, requested) differ in {diff}")
        start_state = _tensors(start)
        if model.head is not None and start_state["head.ref"].shape != model.head.ref.shape:
            start_state = {k: v for k, v in start_state.items() if not k.startswith("head.")}
        model.load_state_dict(start_state, strict=False)
        hist["init"] = {"checkpoint": str(init), "config": dataclasses.asdict(start.cfg),
                        "best_epoch": start_hist.get("best_epoch"),
                        "wall_s": start_hist.get("wall_s")}
    params = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
    rng = np.random.default_rng(cfg.seed)
    resume = (_resume_path(checkpoint) if checkpoint is not None and time_budget_s is None
              else None)
    fingerprint = json.dumps({"cfg": dataclasses.asdict(cfg), "frame_dt_s": frame_dt_s,
                              "body_length_um": body_length_um,
                              "muscle": dataclasses.asdict(muscle),
                              "init": None if init is None else str(init),
                              "train_id": None if train.id is None else train.id.tolist(),
                              "val_id": None if val.id is None else val.id.tolist(),
                              "n_train": len(train)}, sort_keys=True, default=str)
    va_act = val.act()
    va_ch, va_pts, va_v = _targets(val, slice(None), cfg.representation, body_length_um,
                                   frame_dt_s)
    # targets of every training sample once (per sample, so identical to per-batch targets;
    # ~12 % of a step's CPU time when recomputed per batch)
    tr_ch, tr_pts, tr_v = _targets(train, slice(None), cfg.representation, body_length_um,
                                   frame_dt_s)
    best, best_state = float("inf"), None
    if init is not None:
        model.eval()
        with torch.no_grad():
            best = float(_loss(model, va_act, va_ch, va_pts, cfg, target_speed=va_v))
        best_state = _snapshot(model)
        hist["init"]["val_loss"] = best
    start_epoch, wall_before = 0, 0.0
    if resume is not None:
        from wormlab.runs import remove_orphan_tmp

        remove_orphan_tmp(resume.parent)
        state = _load_resume(resume, fingerprint)
        if state is not None:
            model.load_state_dict(state["model"], strict=False)
            best_state = state["best_state"] or None
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            torch.set_rng_state(state["torch_rng"])
            info = json.loads(state["info"])
            rng.bit_generator.state = info["np_rng"]
            hist, best = info["hist"], info["best"]
            start_epoch, wall_before = info["epoch"] + 1, info["wall_s"]
    t0 = time.perf_counter() - wall_before
    bar = bar_(range(start_epoch, cfg.epochs), desc="FNO epochs",
               **({} if progress else {"disable": True}))
    def progress_frac(ep_frac: float) -> float:
        """Fraction of training done: by time when a budget is set, else by epochs."""
        if time_budget_s is not None:
            return min(1.0, (time.perf_counter() - t0) / time_budget_s)
        return min(1.0, ep_frac / max(1, cfg.epochs))

    for ep in bar:
        model.train()
        perm = rng.permutation(len(train))
        tot = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            b = np.sort(perm[i:i + cfg.batch_size])
            f = progress_frac(ep + i / len(perm))
            if time_budget_s is not None:  # cosine LR over the time budget
                for gr in opt.param_groups:
                    gr["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * f))
            # the integrated-midline loss is ramped in over the first 30 % of training, so
            # the per-frame channels (joints first) are learned before the trajectory (not
            # when fine-tuning: the start has learned both)
            w = cfg.position_loss_weight * (1.0 if init is not None else min(1.0, f / 0.3))
            tb = torch.from_numpy(b)
            loss = _loss(model, train.act(b), tr_ch[:, tb], tr_pts[:, tb], cfg,
                         position_weight=w, target_speed=tr_v[tb])
            opt.zero_grad()
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            tot += float(loss.detach()) * len(b)
        if time_budget_s is None:
            sched.step()
        model.eval()
        with torch.no_grad():
            vl = float(_loss(model, va_act, va_ch, va_pts, cfg, target_speed=va_v))
        hist["train_loss"].append(tot / len(train))
        hist["val_loss"].append(vl)
        if vl < best:
            best, hist["best_epoch"] = vl, ep
            best_state = _snapshot(model)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(train=f"{tot / len(train):.4f}", val=f"{vl:.4f}")
        if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
            hist["stopped_at_time_budget_epoch"] = ep
            break
        if resume is not None:
            _save_resume(resume, fingerprint, ep, model, best_state, opt, sched, rng, hist, best,
                         time.perf_counter() - t0)
    model.load_state_dict(best_state, strict=False)
    model.eval()
    hist["wall_s"] = time.perf_counter() - t0
    if model.head is not None:
        hist["calibration"] = fit_error_head(model, train, [val, splits.get("calib")])
    else:
        hist["calibration"] = calibrate(model, val, frame_dt_s, body_length_um)
    if checkpoint is not None:
        save_surrogate(model, checkpoint, history=hist)
        if resume is not None and resume.exists():
            resume.unlink()  # the finished checkpoint supersedes the training state
    return model, hist


def _resume_path(checkpoint: str | Path) -> Path:
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + ".resume.pt")


def _save_resume(path: Path, fingerprint: str, epoch: int, model, best_state, opt, sched, rng,
                 hist: dict, best: float, wall_s: float) -> None:
    """The training state after ``epoch`` (plain tensors and strings: loads weights-only)."""
    from wormlab.runs import atomic_path

    info = json.dumps({"epoch": epoch, "np_rng": rng.bit_generator.state, "hist": hist,
                       "best": best, "wall_s": wall_s})
    state = {"fingerprint": fingerprint, "info": info, "model": _snapshot(model),
             "best_state": best_state or {}, "opt": opt.state_dict(),
             "sched": sched.state_dict(), "torch_rng": torch.get_rng_state()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_resume(path: Path, fingerprint: str) -> dict | None:
    """The saved training state, or ``None`` when absent or from other settings (then training
    starts afresh and overwrites it); an unreadable file raises ``CheckpointError``."""
    from wormlab.io import load_torch_weights

    if not path.exists():
        return None
    state = load_torch_weights(path, "surrogate training state")
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        return None
    return state


def _head_data(model: Surrogate, split: Split) -> tuple[torch.Tensor, np.ndarray]:
    """Head features (N, F) and measured body RMSE (N,) % BL of the surrogate on a split."""
    act = split.act()
    with torch.no_grad():
        ch = model.member_channels(act)
        mean = model.to_trajectory(ch.mean(0))
        feat = model.head_features(act, ch.mean(0), mean)
    err = body_rmse_pct(mean.numpy(), split.trajectory(model.frame_dt_s, model.body_length_um))
    return feat, err


def _fit_mlp(head: ErrorHead, x: torch.Tensor, y: torch.Tensor, seed: int, steps: int = 600):
    torch.manual_seed(seed)
    for m in head.net:
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    head.novelty_w.data.zero_()
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(steps):
        loss = ((head.from_inputs(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def fit_error_head(model: Surrogate, train: Split, held_out: list, quantile: float = 0.8,
                   n_folds: int = 5) -> dict:
    """Fit the error head on held-out samples (never the FNO's training samples).

    Feature standardisation and the novelty reference come from the training inputs. The head
    regresses log(measured body RMSE); its out-of-fold predictions (``n_folds`` cross-fit)
    give the calibration factor (the ``quantile`` of measured / estimated) and the reported
    out-of-fold correlation; the final head is refit on all held-out samples.
    """
    head = model.head
    ftr, _ = _head_data(model, train)
    head.feat_mean.copy_(ftr.mean(0))
    head.feat_std.copy_(ftr.std(0).clamp_min(1e-3))
    z = (ftr - head.feat_mean) / head.feat_std
    keep = np.sort(np.random.default_rng(model.cfg.seed).permutation(len(z))[:head.ref.shape[0]])
    head.ref = z[keep, 2 * N_JOINTS:N_CMD_FEAT].contiguous()
    feats, errs = [], []
    for sp in held_out:
        if sp is not None and len(sp):
            f, e = _head_data(model, sp)
            feats.append(f)
            errs.append(e)
    feat = torch.cat(feats)
    err = np.concatenate(errs)
    with torch.no_grad():
        x = head.inputs(feat)
    y = torch.from_numpy(np.log(np.maximum(err, 1e-3))).float()
    n = len(y)
    folds = np.random.default_rng(model.cfg.seed).permutation(n) % max(2, min(n_folds, n))
    oof = np.zeros(n)
    for k in np.unique(folds):
        tr = torch.from_numpy(folds != k)
        _fit_mlp(head, x[tr], y[tr], model.cfg.seed + int(k))
        with torch.no_grad():
            oof[folds == k] = head.from_inputs(x[~tr]).exp().numpy()
    _fit_mlp(head, x, y, model.cfg.seed)
    ratio = err / np.maximum(oof, 1e-9)
    c = float(np.quantile(ratio, quantile, method="higher")) * 1.001
    model.calibration.fill_(c)
    r = float(np.corrcoef(oof, err)[0, 1]) if n > 2 else float("nan")
    return {"method": "error_head", "factor": c, "quantile": quantile, "n_held_out": int(n),
            "oof_corr_estimate_error": r,
            "oof_bounds_frac": float(np.mean(c * oof >= err))}


@torch.no_grad()
def calibrate(model: Surrogate, val: Split, frame_dt_s: float, body_length_um: float,
              quantile: float = 0.8) -> dict:
    """Ensemble spread only: scale it so it bounds the physics error on ``quantile`` of the
    validation samples; returns the factor and the spread/error correlation."""
    model.calibration.fill_(1.0)
    pred, spread = model.predict(val.act())
    true = val.trajectory(frame_dt_s, body_length_um)
    err = body_rmse_pct(pred.numpy(), true)
    ratio = err / np.maximum(spread.numpy(), 1e-9)
    c = float(np.quantile(ratio, quantile, method="higher")) * 1.001  # float32 rounding margin
    model.calibration.fill_(c)
    r = float(np.corrcoef(spread.numpy(), err)[0, 1]) if len(err) > 2 else float("nan")
    return {"method": "ensemble_spread", "factor": c, "quantile": quantile,
            "val_corr_spread_error": r}


# ------------------------------------------------------------------------- checkpoints
def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without neuralop's non-tensor ``_metadata`` entries."""
    return {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of :func:`_tensors` (best-validation weights)."""
    return {k: v.detach().clone() for k, v in _tensors(model).items()}


def save_surrogate(model: Surrogate, path: str | Path, history: dict | None = None) -> Path:
    """safetensors weights + JSON metadata (config, units, history) in the same file."""
    from safetensors.torch import save_file

    from wormlab.runs import atomic_path

    meta = {"surrogate_config": json.dumps(dataclasses.asdict(model.cfg)),
            "muscle_config": json.dumps(dataclasses.asdict(model.muscle)),
            "frame_dt_s": repr(model.frame_dt_s), "body_length_um": repr(model.body_length_um),
            "history": json.dumps(history or {})}
    state = {k: v.contiguous() for k, v in _tensors(model).items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return Path(path)


LEGACY_DEFAULTS = {"input_space": "muscles", "representation": "lab_delta",
                   "error_head": False, "domain_padding": 0.25,
                   "errorhead_families": ()}


def load_surrogate(path: str | Path) -> tuple[Surrogate, dict]:
    """Load a surrogate saved by :func:`save_surrogate` (safetensors only, never a pickle).

    A missing, truncated or foreign file, a missing or malformed metadata field or a weight
    that does not fit raises ``ValueError`` (:class:`wormlab.io.CheckpointError`) naming the
    file and the problem; ``FileNotFoundError`` when the file is absent."""
    from wormlab.io import CheckpointError, meta_json, read_safetensors

    path = Path(path)
    what = "surrogate checkpoint"
    state, meta = read_safetensors(path, what)
    if "surrogate_config" not in meta:
        raise CheckpointError(f"{path}: not a body surrogate checkpoint (metadata lacks "
                              "'surrogate_config')")
    d = meta_json(meta, "surrogate_config", path, what)
    if not isinstance(d, dict):
        raise CheckpointError(f"{path}: {what} field 'surrogate_config' is not an object")
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    for k, legacy in LEGACY_DEFAULTS.items():  # checkpoints written before these fields
        d.setdefault(k, legacy)
    mc = meta_json(meta, "muscle_config", path, what, default={})
    scalars = {}
    for k in ("frame_dt_s", "body_length_um"):
        if k not in meta:
            raise CheckpointError(f"{path}: {what} metadata lacks the field {k!r}")
        try:
            scalars[k] = float(meta[k])
        except ValueError:
            raise CheckpointError(f"{path}: {what} field {k!r} is not a number: "
                                  f"{meta[k]!r}") from None
        if not (math.isfinite(scalars[k]) and scalars[k] > 0):
            raise CheckpointError(f"{path}: {what} field {k!r} must be a positive number, "
                                  f"got {meta[k]!r}")
    try:
        cfg, muscle = SurrogateConfig(**d), MuscleConfig(**mc)
    except TypeError as exc:
        raise CheckpointError(f"{path}: {what} config does not match this wormlab "
                              f"({exc})") from None
    n_ref = state["head.ref"].shape[0] if "head.ref" in state else 1
    model = Surrogate(cfg, scalars["frame_dt_s"], scalars["body_length_um"], muscle, n_ref=n_ref)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        raise CheckpointError(f"{path}: {what} weights do not fit its config: "
                              f"{str(exc).splitlines()[-1].strip()}") from None
    missing = [k for k in missing if not k.endswith("_metadata")]
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {path} does not match: missing {missing}, "
                              f"unexpected {unexpected}")
    model.eval()
    return model, meta_json(meta, "history", path, what, default={})


# ----------------------------------------------------------------------------- metrics
def body_rmse_pct(pred: Trajectory, true: Trajectory) -> np.ndarray:
    """(B,) RMSE over time and the 26 midline points, % of body length."""
    d = np.asarray(pred.points_um) - np.asarray(true.points_um)
    return np.sqrt((d**2).sum(-1).mean((0, 2))) / true.body_length_um * 100.0


def com_rmse_pct(pred: Trajectory, true: Trajectory) -> np.ndarray:
    """(B,) centre-of-mass trajectory RMSE, % of body length."""
    d = np.asarray(pred.com_um) - np.asarray(true.com_um)
    return np.sqrt((d**2).sum(-1).mean(0)) / true.body_length_um * 100.0


def _spearman(a, b) -> float:
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def evaluate(model: Surrogate, split: Split, min_speed_um_s: float = 20.0) -> dict:
    """Accuracy of the surrogate against the stored physics on one split.

    Relative kinematic errors are computed where they are defined: forward speed on samples
    moving faster than ``min_speed_um_s`` (2% body length per second), wavelength and
    frequency on samples where both the physics and the surrogate show a wave.
    """
    from wormlab.body._physics import kinematics

    with torch.no_grad():
        pred, est = model.predict(split.act())
    pred = pred.numpy()
    true = split.trajectory(model.frame_dt_s, model.body_length_um)
    kp, kt = kinematics(pred), kinematics(true)
    body = body_rmse_pct(pred, true)
    com = com_rmse_pct(pred, true)
    v_ok = np.abs(kt["forward_speed_um_s"]) >= min_speed_um_s
    v_err = np.abs(kp["forward_speed_um_s"] - kt["forward_speed_um_s"]) / np.maximum(
        np.abs(kt["forward_speed_um_s"]), 1e-9)
    w_ok = np.isfinite(kp["wavelength_bl"]) & np.isfinite(kt["wavelength_bl"])
    w_err = np.abs(kp["wavelength_bl"] - kt["wavelength_bl"]) / kt["wavelength_bl"]
    f_ok = np.isfinite(kp["frequency_hz"]) & np.isfinite(kt["frequency_hz"])
    f_err = np.abs(kp["frequency_hz"] - kt["frequency_hz"]) / kt["frequency_hz"]
    est = est.numpy()
    corr = float(np.corrcoef(est, body)[0, 1]) if len(body) > 2 else float("nan")

    def med(x, ok):
        return float(np.median(x[ok]) * 100) if ok.any() else float("nan")

    thr = model.cfg.fallback_threshold_pct
    fb = est > thr
    above = body > thr
    return {
        "n": int(len(split)),
        "fallback_frac": float(fb.mean()),
        "n_above_threshold": int(above.sum()),
        "caught_frac": float((fb & above).sum() / above.sum()) if above.any() else float("nan"),
        "body_rmse_pct_mean_after_fallback": float(np.where(fb, 0.0, body).mean()),
        "missed_above_threshold": int(((body > thr) & ~fb).sum()),
        "body_rmse_pct_mean": float(body.mean()), "body_rmse_pct_median": float(np.median(body)),
        "com_rmse_pct_mean": float(com.mean()), "com_rmse_pct_median": float(np.median(com)),
        "forward_speed_err_pct_median": med(v_err, v_ok), "n_speed": int(v_ok.sum()),
        "wavelength_err_pct_median": med(w_err, w_ok), "n_wavelength": int(w_ok.sum()),
        "frequency_err_pct_median": med(f_err, f_ok),
        "error_estimate_corr": corr,
        "error_estimate_spearman": float(_spearman(est, body)) if len(body) > 2 else float("nan"),
        "error_estimate_bounds_frac": float(np.mean(est >= body)),
        "per_sample": {"body_rmse_pct": body, "com_rmse_pct": com, "estimate_pct": est,
                       "family": split.family,
                       # nan where the physics moves slower than min_speed_um_s
                       "forward_speed_err_pct": np.where(v_ok, v_err * 100, np.nan),
                       "forward_speed_true_um_s": np.asarray(kt["forward_speed_um_s"])},
    }


# ------------------------------------------------------------------------------ fail-safe
def predict_with_fallback(model: Surrogate, act, physics: PhysicsConfig = DEFAULT_PHYSICSCONFIG,
                          muscle: MuscleConfig = DEFAULT_MUSCLECONFIG,
                          threshold_pct: float | None = None) -> tuple[Trajectory, dict]:
    """Surrogate prediction; samples whose error estimate exceeds ``threshold_pct`` (default
    ``cfg.fallback_threshold_pct``, 15% body length) are re-run in ElegansBot, with a
    :class:`SurrogateFallbackWarning`. Returns a NumPy trajectory and
    ``{"estimate_pct", "fallback" (bool per sample), "source"}``."""
    from wormlab.body._physics import simulate

    thr = model.cfg.fallback_threshold_pct if threshold_pct is None else threshold_pct
    act = torch.as_tensor(act)
    if physics.frame_dt_s != model.frame_dt_s:
        raise ValueError(f"physics frame_dt_s {physics.frame_dt_s} != surrogate's "
                         f"{model.frame_dt_s}")
    with torch.no_grad():
        pred, est = model.predict(act)
    out = pred.numpy()
    est = est.numpy()
    bad = est > thr
    src = np.array(["surrogate"] * len(est), dtype=object)
    if bad.any():
        warnings.warn(f"surrogate error estimate above {thr}% body length for "
                      f"{int(bad.sum())}/{len(bad)} samples "
                      f"(max {est.max():.1f}%); falling back to ElegansBot physics",
                      SurrogateFallbackWarning, stacklevel=2)
        phys = simulate(act[:, bad], physics, muscle)
        out.com_um[:, bad] = phys.com_um
        out.tangent_rad[:, bad] = phys.tangent_rad
        src[bad] = "elegansbot"
        out.source = "surrogate+elegansbot"
    return out, {"estimate_pct": est, "fallback": bad, "source": src}


# ---------------------------------------------------------------------- differentiable
def speed_gradient(model: Surrogate, act: torch.Tensor, groups=None) -> dict[str, float]:
    """d(mean forward speed, um/s) / d(scale of each muscle group's activation) at scale 1,
    by autograd through the surrogate (the activation of each group is multiplied by its
    scale)."""
    from wormlab.body._muscles import GROUPS, group_mask

    groups = tuple(groups or GROUPS)
    masks = torch.stack([torch.from_numpy(group_mask(g)).float() for g in groups])  # (G, 95)
    scale = torch.ones(len(groups), requires_grad=True)
    factor = 1 + ((scale - 1)[:, None] * masks).sum(0)
    traj = model(torch.as_tensor(act).float() * factor)
    speed = forward_speed(traj).mean()
    (grad,) = torch.autograd.grad(speed, scale)
    return dict(zip(groups, grad.tolist(), strict=True))


__all__ = ["N_OUT", "N_RODS", "Surrogate", "SurrogateFallbackWarning"]
