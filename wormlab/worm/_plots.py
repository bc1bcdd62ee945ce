"""Plots of the crawling worm: kymographs, the midline animation, a real kymograph beside it,
the fit's loss curve. Pure functions of :class:`~wormlab.worm.LoopResult` and arrays."""

from __future__ import annotations

import numpy as np

from wormlab.body._muscles import muscle_table


def muscle_kymograph(activation: np.ndarray) -> np.ndarray:
    """(T, 95) muscle activation -> (T, 24) dorsal minus ventral activation per body row
    (row 1 = head), the mean over the muscles of each quadrant pair."""
    tab = muscle_table()
    rows = np.asarray(tab["row"])
    dorsal = np.asarray(tab["dorsal"], dtype=bool)
    out = np.zeros((activation.shape[0], 24))
    for r in range(1, 25):
        d = (rows == r) & dorsal
        v = (rows == r) & ~dorsal
        if d.any():
            out[:, r - 1] += activation[:, d].mean(1)
        if v.any():
            out[:, r - 1] -= activation[:, v].mean(1)
    return out


def plot_kymographs(res, member: int = 0, axes=None, title: str = ""):
    """Muscle (dorsal - ventral activation) and body-curvature (joint angle, rad) kymographs
    of one member of a closed-loop run; time down, head on the left."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    t = res.t_s
    mk = muscle_kymograph(res.activation[:, member])
    j = np.asarray(res.trajectory.joints_rad)[:, member]
    lim = max(1e-6, float(np.abs(mk).max()))
    ext = [0.5, 24.5, t[-1], t[0]]
    im0 = axes[0].imshow(mk, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=ext)
    axes[0].set(xlabel="body row (head -> tail)", ylabel="time (s)",
                title="muscles: dorsal - ventral activation")
    plt.colorbar(im0, ax=axes[0], fraction=0.046)
    jl = max(1e-6, float(np.abs(j).max()))
    im1 = axes[1].imshow(j, aspect="auto", cmap="PuOr", vmin=-jl, vmax=jl, extent=ext)
    axes[1].set(xlabel="joint (head -> tail)", title="body: joint angle (rad, + dorsal)")
    plt.colorbar(im1, ax=axes[1], fraction=0.046)
    if title:
        axes[0].figure.suptitle(title)
    return axes


def plot_real_kymograph(angles: np.ndarray, fps: float, ax=None, title: str = ""):
    """Curvature kymograph of a real recording: ``angles`` (T, S) tangent angles (rad, head
    first) -> joint angles (differences along the body)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.6))
    k = np.diff(np.unwrap(angles, axis=1), axis=1)
    lim = float(np.nanpercentile(np.abs(k), 99)) or 1.0
    T = k.shape[0]
    ax.imshow(k, aspect="auto", cmap="PuOr", vmin=-lim, vmax=lim,
              extent=[0.5, k.shape[1] + 0.5, T / fps, 0])
    ax.set(xlabel="joint (head -> tail)", ylabel="time (s)",
           title=title or "real worm: joint angle (rad)")
    return ax


def midline_animation(res, member: int = 0, every: int = 1, fps: int = 12):
    """A matplotlib animation of the crawling midline (head marked), in the body's mm; call
    ``.to_jshtml()`` for the report."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    pts = np.asarray(res.trajectory.points_um)[::every, member] / 1000.0  # (T, 26, 2) mm
    t = res.t_s[::every]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    lo, hi = pts.reshape(-1, 2).min(0) - 0.2, pts.reshape(-1, 2).max(0) + 0.2
    span = float((hi - lo).max())
    ax.set(xlim=(lo[0], lo[0] + span), ylim=(lo[1], lo[1] + span), aspect="equal",
           xlabel="x (mm)", ylabel="y (mm)")
    (body,) = ax.plot([], [], "-", lw=4, color="tab:brown", solid_capstyle="round")
    (head,) = ax.plot([], [], "o", color="k", ms=5)
    (path,) = ax.plot([], [], ":", color="grey", lw=1)
    com = np.asarray(res.trajectory.com_um)[::every, member] / 1000.0
    txt = ax.text(0.02, 0.95, "", transform=ax.transAxes)

    def update(i):
        body.set_data(pts[i, :, 0], pts[i, :, 1])
        head.set_data([pts[i, 0, 0]], [pts[i, 0, 1]])
        path.set_data(com[: i + 1, 0], com[: i + 1, 1])
        txt.set_text(f"t = {t[i]:.2f} s")
        return body, head, path, txt

    anim = animation.FuncAnimation(fig, update, frames=len(t), interval=1000 / fps, blit=True)
    plt.close(fig)
    return anim


def plot_fit_history(state: dict, ax=None):
    """Best and median loss per CMA-ES generation against wall time: a fit's state dict, or
    ``{"stages": [{"label", "history", ...}, ...]}`` for fits run one after another (wall
    time accumulates across stages; each stage's loss is on its own run length)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    stages = state["stages"] if "stages" in state else [{"label": "", **state}]
    offset = 0.0
    for k, st in enumerate(stages):
        h = st["history"]
        if not h:
            raise ValueError(f"fit stage {k} has no generations yet")
        w = [offset + r["wall_s"] / 60 for r in h]
        lab = f"{st.get('label', '')}: " if st.get("label") else ""
        ax.plot(w, [r["best_loss"] for r in h], "o-", ms=3, label=f"{lab}best of generation")
        ax.plot(w, [r["median_loss"] for r in h], ".-", alpha=0.6, label=f"{lab}median")
        offset = w[-1]
    ax.set(xlabel="wall time (min)", ylabel="crawl loss (0 = inside every target band)",
           title="CMA-ES on the closed loop (ElegansBot)")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.legend(fontsize=7)
    return ax
