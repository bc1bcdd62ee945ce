"""Matplotlib figures used by the notebook and the widgets (kept in the library, tested)."""

from __future__ import annotations

import numpy as np

from wormlab.posture._shape import Basis, midline_from_angles


def plot_skeleton(ax, angles: np.ndarray, color="k", title: str | None = None, lim: float = 0.6):
    """Draw one frame's midline (head marked) from (n,) tangent angles, centred, 1 body length."""
    pts = midline_from_angles(np.asarray(angles))
    ax.plot(pts[:, 0], pts[:, 1], "-", color=color, lw=3, solid_capstyle="round")
    ax.plot(pts[0, 0], pts[0, 1], "o", color="tab:red", ms=5)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def clip_animation_html(
    angles: np.ndarray, fps: float, title: str = "", size: float = 2.5, dpi: int = 60
) -> str:
    """An HTML/JS animation (matplotlib ``to_jshtml``) of a clip of tangent angles (T, n)."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    angles = np.asarray(angles)
    fig, ax = plt.subplots(figsize=(size, size), dpi=dpi)
    pts = midline_from_angles(angles)
    (line,) = ax.plot([], [], "-k", lw=3, solid_capstyle="round")
    (head,) = ax.plot([], [], "o", color="tab:red", ms=5)
    ax.set_xlim(-0.6, 0.6)
    ax.set_ylim(-0.6, 0.6)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)

    def draw(t):
        line.set_data(pts[t, :, 0], pts[t, :, 1])
        head.set_data([pts[t, 0, 0]], [pts[t, 0, 1]])
        return line, head

    anim = animation.FuncAnimation(fig, draw, frames=len(pts), interval=1000 / fps, blit=True)
    html = anim.to_jshtml(fps=fps, default_mode="loop")
    plt.close(fig)
    return html


def plot_basis(basis: Basis, ax=None):
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    s = (np.arange(basis.n_segments) + 0.5) / basis.n_segments
    for i, m in enumerate(basis.modes):
        ax.plot(s, m, label=f"{basis.kind} {i + 1}")
    ax.set_xlabel("body coordinate (head = 0)")
    ax.set_ylabel("tangent angle (a.u.)")
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_scrub(
    angles: np.ndarray,
    activity: np.ndarray,
    names: list[str],
    frame: int,
    fps: float,
    label: str = "",
    span: int = 200,
):
    """Worm shape at ``frame`` next to the chosen cells' activity (T, k) around it."""
    import matplotlib.pyplot as plt

    angles = np.asarray(angles)
    activity = np.asarray(activity)
    if activity.ndim != 2 or activity.shape[0] != len(angles):
        raise ValueError(f"activity must be (T={len(angles)}, k), got {activity.shape}")
    if not 0 <= frame < len(angles):
        raise ValueError(f"frame {frame} outside 0..{len(angles) - 1}")
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(9, 3), gridspec_kw={"width_ratios": [1, 2.5]})
    plot_skeleton(a0, angles[frame], title=f"{label} frame {frame} ({frame / fps:.1f} s)")
    lo, hi = max(0, frame - span // 2), min(len(angles), frame + span // 2)
    t = np.arange(lo, hi) / fps
    for j, n in enumerate(names):
        a1.plot(t, activity[lo:hi, j], lw=1, label=n)
    a1.axvline(frame / fps, color="k", lw=1)
    a1.set_xlabel("time (s)")
    a1.set_ylabel("cell activity")
    if names:
        a1.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
