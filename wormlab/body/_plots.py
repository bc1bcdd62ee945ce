"""Figures for the body notebook and widget: worm shapes, centroid tracks, error over time."""

from __future__ import annotations

import numpy as np
import torch

from wormlab.body._config import MuscleConfig, PhysicsConfig
from wormlab.body._physics import Trajectory, kinematics, simulate
from wormlab.body._surrogate import Surrogate, body_rmse_pct

DEFAULT_PHYSICSCONFIG = PhysicsConfig()
DEFAULT_MUSCLECONFIG = MuscleConfig()


def compare(model: Surrogate, act, physics: PhysicsConfig = DEFAULT_PHYSICSCONFIG,
            muscle: MuscleConfig = DEFAULT_MUSCLECONFIG, phys: Trajectory | None = None) -> dict:
    """Physics and surrogate on the same activation (T, B, 95): both trajectories (NumPy), the
    surrogate's error estimate, the measured body RMSE (% body length) per sample and over
    time, and the kinematics of both. ``phys``: an already simulated physics trajectory of
    ``act`` (e.g. from the data store) instead of running ElegansBot again."""
    act = torch.as_tensor(act).float()
    phys = simulate(act, physics, muscle) if phys is None else phys.numpy()
    with torch.no_grad():
        pred, est = model.predict(act)
    pred = pred.numpy()
    d = pred.points_um - phys.points_um
    err_t = np.sqrt((d**2).sum(-1).mean(-1)) / phys.body_length_um * 100  # (T, B)
    return {"physics": phys, "surrogate": pred, "estimate_pct": est.numpy(),
            "body_rmse_pct": body_rmse_pct(pred, phys), "error_over_time_pct": err_t,
            "kin_physics": kinematics(phys), "kin_surrogate": kinematics(pred)}


def plot_shapes(trajs: dict[str, Trajectory], b: int = 0, n_times: int = 6, axes=None,
                title: str = ""):
    """Small multiples: the midline of sample ``b`` at ``n_times`` times, one colour per
    trajectory (e.g. physics vs surrogate), head marked by a dot."""
    import matplotlib.pyplot as plt

    first = next(iter(trajs.values()))
    T = len(first.t_s)
    idx = np.linspace(0, T - 1, n_times).astype(int)
    if axes is None:
        _, axes = plt.subplots(1, n_times, figsize=(2.2 * n_times, 2.4))
    for ax, i in zip(np.ravel(axes), idx, strict=False):
        for (name, tr), c in zip(trajs.items(), ("k", "tab:orange", "tab:blue"), strict=False):
            p = np.asarray(tr.points_um)[i, b]
            ax.plot(p[:, 0], p[:, 1], "-", color=c, lw=2, label=name)
            ax.plot(p[0, 0], p[0, 1], "o", color=c, ms=4)
        ax.set_aspect("equal")
        ax.set_title(f"t = {first.t_s[i]:.1f} s", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    np.ravel(axes)[0].legend(fontsize=7, loc="best")
    if title:
        np.ravel(axes)[0].figure.suptitle(title, fontsize=10)
    return axes


def plot_tracks(trajs: dict[str, Trajectory], ax=None, samples=None):
    """Centre-of-mass tracks (um) of several samples, physics solid, surrogate dashed."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    styles = ("-", "--", ":")
    first = next(iter(trajs.values()))
    samples = range(np.asarray(first.com_um).shape[1]) if samples is None else samples
    for b in samples:
        for (name, tr), ls in zip(trajs.items(), styles, strict=False):
            c = np.asarray(tr.com_um)[:, b]
            ax.plot(c[:, 0], c[:, 1], ls, color=f"C{b % 10}", lw=1.5,
                    label=name if b == list(samples)[0] else None)
    ax.set_xlabel("x (um)")
    ax.set_ylabel("y (um)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=8)
    return ax


def plot_error_over_time(err_t: np.ndarray, t_s: np.ndarray, ax=None, label="", estimate=None):
    """Body-point error over time (% body length): median and 10-90 % band over samples."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    med = np.median(err_t, 1)
    ax.plot(t_s, med, label=f"{label} median".strip())
    if err_t.shape[1] > 1:
        ax.fill_between(t_s, np.percentile(err_t, 10, 1), np.percentile(err_t, 90, 1),
                        alpha=0.3)
    if estimate is not None:
        ax.axhline(float(np.median(estimate)), ls="--", color="gray",
                   label="median error estimate (RMSE)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("body-point error (% body length)")
    ax.legend(fontsize=8)
    return ax


def plot_loss(history: dict, ax=None):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    ax.semilogy(history["train_loss"], label="train")
    ax.semilogy(history["val_loss"], label="validation")
    ax.axvline(history["best_epoch"], color="gray", ls=":", label="best (kept)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    return ax
