"""Figures for fits (matplotlib): loss against wall time per optimiser, fitted values against
their bounds."""

from __future__ import annotations

import math


def plot_history(results: dict, ax=None, x: str = "wall_s"):
    """Best loss so far against ``x`` (``"wall_s"`` or ``"evals"``) for ``{label: FitResult}``
    (or a single FitResult); log scale. Returns the Figure."""
    import matplotlib.pyplot as plt

    if not isinstance(results, dict):
        results = {"fit": results}
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
    else:
        fig = ax.figure
    for label, res in results.items():
        h = res.history
        if not h:
            continue
        ax.plot([r[x] for r in h], [r["best"] for r in h], marker=".", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("wall time (s)" if x == "wall_s" else "evaluations")
    ax.set_ylabel("best loss")
    ax.legend(fontsize=8)
    ax.set_title("fit progress")
    fig.tight_layout()
    return fig


def plot_params_vs_bounds(net, fitted: dict, start: dict | None = None, truth: dict | None = None,
                          ax=None, bounds=None):
    """Each fitted parameter's position inside its bounds (0 = lower, 1 = upper; log-scaled
    where the bounds span >= 100x, like the fit's transform): fitted (dot), start (cross) and
    the truth (ring) where known. Returns the Figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    from wormlab.fit._bounds import _as_table

    table = _as_table(bounds)

    def pos(name, v):
        b = table.for_param(net, name)
        a = np.abs(np.asarray(v, dtype=float).reshape(-1)) if b.abs else \
            np.asarray(v, dtype=float).reshape(-1)
        hi = b.upper if math.isfinite(b.upper) else max(float(a.max()) * 10, b.lower + 1)
        if b.lower > 0 and hi / b.lower >= 100:
            return (np.log(a) - math.log(b.lower)) / (math.log(hi) - math.log(b.lower))
        return (a - b.lower) / (hi - b.lower)

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 0.5 + 0.45 * len(fitted)))
    else:
        fig = ax.figure
    for i, (name, v) in enumerate(fitted.items()):
        p = pos(name, v)
        ax.plot(p, [i] * len(p), "o", color="C0", label="fitted" if i == 0 else None)
        if start is not None and name in start:
            ax.plot(pos(name, start[name]), [i] * len(p), "x", color="C3",
                    label="start" if i == 0 else None)
        if truth is not None and name in truth:
            ax.plot(pos(name, truth[name]), [i] * len(p), "o", mfc="none", color="k", ms=10,
                    label="truth" if i == 0 else None)
    ax.set_yticks(range(len(fitted)), list(fitted))
    ax.set_xlim(-0.05, 1.05)
    ax.axvline(0, color="grey", lw=0.5)
    ax.axvline(1, color="grey", lw=0.5)
    ax.set_xlabel("position inside the bounds (0 = lower, 1 = upper)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig
