"""FNO surrogate of ElegansBot: 95 muscle activations over time -> body trajectory.

An ensemble of ``neuraloperator`` FNOs (1-D over time) predicts, per frame, 27 channels:
centre-of-mass displacement since the previous frame (x, y, um), heading change (mean rod
angle minus its initial value, rad) and the 24 joint angles (rad). The trajectory (COM by
cumulative sum, midline from heading + joint angles) is rebuilt in torch, so kinematic losses
are differentiable all the way back to the muscle activations. The ensemble's spread, scaled by
a factor calibrated against the physics on the validation split, is each prediction's error
estimate (body-point RMSE, % body length); :func:`predict_with_fallback` runs ElegansBot for
every sample whose estimate exceeds the threshold, with a warning.
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
from wormlab.body._muscles import N_MUSCLES
from wormlab.body._physics import N_JOINTS, N_RODS, Trajectory, forward_speed

DEFAULT_MUSCLECONFIG = MuscleConfig()
DEFAULT_PHYSICSCONFIG = PhysicsConfig()
DEFAULT_SURROGATECONFIG = SurrogateConfig()

N_OUT = 3 + N_JOINTS
HEADING0 = math.pi  # ElegansBot Worm(angle_init=0): every rod starts at angle pi


class SurrogateFallbackWarning(UserWarning):
    """The surrogate's error estimate exceeded the threshold; physics was used instead."""


# ------------------------------------------------------------------ targets <-> trajectories
def trajectory_to_channels(com_um: np.ndarray, tangent_rad: np.ndarray) -> np.ndarray:
    """(T, B, 2) COM + (T, B, 25) rod angles -> (T, B, 27) surrogate target channels."""
    d = np.concatenate([np.zeros_like(com_um[:1]), np.diff(com_um, axis=0)], 0)
    h = tangent_rad.mean(-1, keepdims=True) - HEADING0
    j = -np.diff(tangent_rad, axis=-1)
    return np.concatenate([d, h, j], -1).astype(np.float32)


def channels_to_trajectory(ch: torch.Tensor, frame_dt_s: float, body_length_um: float,
                           source: str = "surrogate") -> Trajectory:
    """Inverse of :func:`trajectory_to_channels` in torch (differentiable)."""
    com = torch.cumsum(ch[..., 0:2], dim=0)
    heading = ch[..., 2:3] + HEADING0
    j = ch[..., 3:]
    s = torch.cat([torch.zeros_like(j[..., :1]), -torch.cumsum(j, -1)], -1)
    s = s - s.mean(-1, keepdim=True) + heading
    t = np.arange(ch.shape[0]) * frame_dt_s
    return Trajectory(t, com, s, body_length_um, source)


# ------------------------------------------------------------------------------ the model
class Surrogate(nn.Module):
    """Ensemble of FNOs with input/output normalisation and a calibrated error estimate."""

    def __init__(self, cfg: SurrogateConfig = DEFAULT_SURROGATECONFIG, frame_dt_s: float = 0.04,
                 body_length_um: float = 1000.0):
        super().__init__()
        from neuralop.models import FNO

        if cfg.n_ensemble < 2:
            raise ValueError("n_ensemble must be >= 2 (the error estimate is the ensemble spread)")
        self.cfg = cfg
        self.frame_dt_s = float(frame_dt_s)
        self.body_length_um = float(body_length_um)
        g = torch.Generator().manual_seed(cfg.seed)
        members = []
        for _ in range(cfg.n_ensemble):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
            members.append(FNO(n_modes=(cfg.n_modes,), in_channels=N_MUSCLES,
                               out_channels=N_OUT, hidden_channels=cfg.hidden_channels,
                               n_layers=cfg.n_layers, domain_padding=0.25))
        self.members = nn.ModuleList(members)
        self.register_buffer("in_mean", torch.zeros(N_MUSCLES))
        self.register_buffer("in_std", torch.ones(N_MUSCLES))
        self.register_buffer("out_mean", torch.zeros(N_OUT))
        self.register_buffer("out_std", torch.ones(N_OUT))
        self.register_buffer("calibration", torch.ones(()))

    def member_channels(self, act: torch.Tensor) -> torch.Tensor:
        """Activation (T, B, 95) -> denormalised channels of every member (K, T, B, 27)."""
        if act.ndim != 3 or act.shape[-1] != N_MUSCLES:
            raise ValueError(f"activation must be (T, B, 95), got {tuple(act.shape)}")
        x = ((act.float() - self.in_mean) / self.in_std).permute(1, 2, 0)  # (B, 95, T)
        outs = [m(x).permute(2, 0, 1) for m in self.members]  # (T, B, 27)
        return torch.stack(outs) * self.out_std + self.out_mean

    def forward(self, act: torch.Tensor) -> Trajectory:
        """Ensemble-mean trajectory (torch tensors, differentiable)."""
        return channels_to_trajectory(self.member_channels(act).mean(0), self.frame_dt_s,
                                      self.body_length_um)

    def predict(self, act: torch.Tensor) -> tuple[Trajectory, torch.Tensor]:
        """(mean trajectory, estimated body-point RMSE in % body length per sample (B,))."""
        ch = self.member_channels(act)
        trajs = [channels_to_trajectory(c, self.frame_dt_s, self.body_length_um) for c in ch]
        pts = torch.stack([t.points_um for t in trajs])  # (K, T, B, 26, 2)
        mean = channels_to_trajectory(ch.mean(0), self.frame_dt_s, self.body_length_um)
        spread = ((pts - mean.points_um) ** 2).sum(-1).mean((0, 1, 3)).sqrt()
        return mean, self.calibration * spread / self.body_length_um * 100.0


# ------------------------------------------------------------------------- data handling
@dataclasses.dataclass
class Split:
    activation: np.ndarray  # (N, T, 95)
    com_um: np.ndarray  # (N, T, 2)
    tangent_rad: np.ndarray  # (N, T, 25)
    family: np.ndarray

    def __len__(self):
        return len(self.activation)

    def act(self, idx=slice(None)) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.activation[idx].transpose(1, 0, 2)))

    def trajectory(self, frame_dt_s, body_length_um, idx=slice(None)) -> Trajectory:
        com = self.com_um[idx].transpose(1, 0, 2).astype(np.float64)
        tan = self.tangent_rad[idx].transpose(1, 0, 2).astype(np.float64)
        return Trajectory(np.arange(com.shape[0]) * frame_dt_s, com, tan, body_length_um)


def split_data(data: dict, cfg: SurrogateConfig) -> dict[str, Split]:
    """train / val / test from ``cfg.train_families`` (random, seeded), ``general`` = the rest."""
    fam = data["family"]
    seen = np.isin(fam, list(cfg.train_families))
    rng = np.random.default_rng(cfg.seed)
    idx = rng.permutation(np.flatnonzero(seen))
    n_val = max(1, int(round(cfg.val_fraction * len(idx))))
    parts = {"val": idx[:n_val], "test": idx[n_val:2 * n_val], "train": idx[2 * n_val:],
             "general": np.flatnonzero(~seen)}
    if len(parts["train"]) < 2:
        raise ValueError(f"too few training samples ({len(parts['train'])}) in families "
                         f"{cfg.train_families}")
    return {k: Split(data["activation"][v], data["com_um"][v], data["tangent_rad"][v], fam[v])
            for k, v in parts.items()}


# ---------------------------------------------------------------------------- training
def _fit_normalisation(model: Surrogate, train: Split) -> None:
    a = train.activation.reshape(-1, N_MUSCLES)
    ch = trajectory_to_channels(train.com_um.transpose(1, 0, 2),
                                train.tangent_rad.transpose(1, 0, 2)).reshape(-1, N_OUT)
    model.in_mean.copy_(torch.from_numpy(a.mean(0)))
    model.in_std.copy_(torch.from_numpy(np.maximum(a.std(0), 1e-2)))
    model.out_mean.copy_(torch.from_numpy(ch.mean(0)))
    model.out_std.copy_(torch.from_numpy(np.maximum(ch.std(0), 1e-4)))


def _loss(model: Surrogate, act, target_ch, target_com, cfg: SurrogateConfig):
    ch = model.member_channels(act)  # (K, T, B, 27)
    norm = ((ch - target_ch) / model.out_std) ** 2
    com = torch.cumsum(ch[..., 0:2], dim=1)
    pos = ((com - target_com) / (0.1 * model.body_length_um)) ** 2
    return norm.mean() + cfg.position_loss_weight * pos.mean()


def _targets(split: Split, idx):
    com = split.com_um[idx].transpose(1, 0, 2)
    ch = trajectory_to_channels(com, split.tangent_rad[idx].transpose(1, 0, 2))
    return torch.from_numpy(ch), torch.from_numpy(np.ascontiguousarray(com))


def train_surrogate(splits: dict[str, Split], cfg: SurrogateConfig, frame_dt_s: float,
                    body_length_um: float, checkpoint: str | Path | None = None,
                    progress: bool = True, time_budget_s: float | None = None
                    ) -> tuple[Surrogate, dict]:
    """Train the ensemble (Adam, cosine LR) keeping the best-validation weights.

    Returns the model (calibrated on the validation split) and a history dict with
    ``train_loss``, ``val_loss`` per epoch, ``best_epoch``, ``wall_s``. With ``checkpoint``
    the best model is saved as safetensors (see :func:`save_surrogate`).
    """
    from wormlab.runs import progress as bar_

    torch.manual_seed(cfg.seed)
    model = Surrogate(cfg, frame_dt_s, body_length_um)
    train, val = splits["train"], splits["val"]
    _fit_normalisation(model, train)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
    rng = np.random.default_rng(cfg.seed)
    va_act = val.act()
    va_ch, va_com = _targets(val, slice(None))
    hist = {"train_loss": [], "val_loss": [], "best_epoch": -1}
    best, best_state = float("inf"), None
    t0 = time.perf_counter()
    bar = bar_(range(cfg.epochs), desc="FNO epochs", **({} if progress else {"disable": True}))
    for ep in bar:
        model.train()
        perm = rng.permutation(len(train))
        tot = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            b = np.sort(perm[i:i + cfg.batch_size])
            ch, com = _targets(train, b)
            loss = _loss(model, train.act(b), ch, com, cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(b)
        sched.step()
        model.eval()
        with torch.no_grad():
            vl = float(_loss(model, va_act, va_ch, va_com, cfg))
        hist["train_loss"].append(tot / len(train))
        hist["val_loss"].append(vl)
        if vl < best:
            best, hist["best_epoch"] = vl, ep
            best_state = {k: v.detach().clone() for k, v in _tensors(model).items()}
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(train=f"{tot / len(train):.4f}", val=f"{vl:.4f}")
        if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
            hist["stopped_early_at_epoch"] = ep
            break
    model.load_state_dict(best_state, strict=False)
    hist["wall_s"] = time.perf_counter() - t0
    hist["calibration"] = calibrate(model, val, frame_dt_s, body_length_um)
    if checkpoint is not None:
        save_surrogate(model, checkpoint, history=hist)
    return model, hist


@torch.no_grad()
def calibrate(model: Surrogate, val: Split, frame_dt_s: float, body_length_um: float,
              quantile: float = 0.8) -> dict:
    """Scale the ensemble spread so it bounds the physics error on ``quantile`` of the
    validation samples; returns the factor and the spread/error correlation."""
    model.calibration.fill_(1.0)
    pred, spread = model.predict(val.act())
    true = val.trajectory(frame_dt_s, body_length_um)
    err = body_rmse_pct(pred.numpy(), true)
    ratio = err / np.maximum(spread.numpy(), 1e-9)
    c = float(np.quantile(ratio, quantile, method="higher")) * 1.001  # float32 rounding margin
    model.calibration.fill_(c)
    r = float(np.corrcoef(spread.numpy(), err)[0, 1]) if len(err) > 2 else float("nan")
    return {"factor": c, "quantile": quantile, "val_corr_spread_error": r}


# ------------------------------------------------------------------------- checkpoints
def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without neuralop's non-tensor ``_metadata`` entries."""
    return {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}


def save_surrogate(model: Surrogate, path: str | Path, history: dict | None = None) -> Path:
    """safetensors weights + JSON metadata (config, units, history) in the same file."""
    from safetensors.torch import save_file

    from wormlab.runs import atomic_path

    meta = {"surrogate_config": json.dumps(dataclasses.asdict(model.cfg)),
            "frame_dt_s": repr(model.frame_dt_s), "body_length_um": repr(model.body_length_um),
            "history": json.dumps(history or {})}
    state = {k: v.contiguous() for k, v in _tensors(model).items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return Path(path)


def load_surrogate(path: str | Path) -> tuple[Surrogate, dict]:
    """Load a surrogate saved by :func:`save_surrogate` (no pickle)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no surrogate checkpoint at {path}")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    d = json.loads(meta["surrogate_config"])
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    model = Surrogate(SurrogateConfig(**d), float(meta["frame_dt_s"]),
                      float(meta["body_length_um"]))
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    missing = [k for k in missing if not k.endswith("_metadata")]
    if missing or unexpected:
        raise ValueError(f"checkpoint {path} does not match: missing {missing}, "
                         f"unexpected {unexpected}")
    model.eval()
    return model, json.loads(meta.get("history", "{}"))


# ----------------------------------------------------------------------------- metrics
def body_rmse_pct(pred: Trajectory, true: Trajectory) -> np.ndarray:
    """(B,) RMSE over time and the 26 midline points, % of body length."""
    d = np.asarray(pred.points_um) - np.asarray(true.points_um)
    return np.sqrt((d**2).sum(-1).mean((0, 2))) / true.body_length_um * 100.0


def com_rmse_pct(pred: Trajectory, true: Trajectory) -> np.ndarray:
    """(B,) centre-of-mass trajectory RMSE, % of body length."""
    d = np.asarray(pred.com_um) - np.asarray(true.com_um)
    return np.sqrt((d**2).sum(-1).mean(0)) / true.body_length_um * 100.0


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
    return {
        "n": int(len(split)),
        "fallback_frac": float(fb.mean()),
        "body_rmse_pct_mean_after_fallback": float(np.where(fb, 0.0, body).mean()),
        "missed_above_threshold": int(((body > thr) & ~fb).sum()),
        "body_rmse_pct_mean": float(body.mean()), "body_rmse_pct_median": float(np.median(body)),
        "com_rmse_pct_mean": float(com.mean()), "com_rmse_pct_median": float(np.median(com)),
        "forward_speed_err_pct_median": med(v_err, v_ok), "n_speed": int(v_ok.sum()),
        "wavelength_err_pct_median": med(w_err, w_ok), "n_wavelength": int(w_ok.sum()),
        "frequency_err_pct_median": med(f_err, f_ok),
        "error_estimate_corr": corr,
        "error_estimate_bounds_frac": float(np.mean(est >= body)),
        "per_sample": {"body_rmse_pct": body, "com_rmse_pct": com, "estimate_pct": est,
                       "family": split.family},
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
