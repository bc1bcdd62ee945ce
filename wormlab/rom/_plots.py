"""Matplotlib figures for the notebook and the widgets (true vs predicted, saliency, hidden)."""

from __future__ import annotations

import numpy as np


def plot_true_vs_predicted(t_s, true, pred, output_names, *, title="", label_true="simulated",
                           fig=None):
    """One panel per output: ``true`` and ``pred`` traces ``(T, K)`` in mV against time."""
    import matplotlib.pyplot as plt

    k = true.shape[-1]
    fig = fig or plt.figure(figsize=(9, 1.8 * k))
    axes = fig.subplots(k, 1, sharex=True, squeeze=False)[:, 0]
    for i, ax in enumerate(axes):
        ax.plot(np.asarray(t_s) * 1e3, true[:, i], "k", lw=1, label=label_true)
        ax.plot(np.asarray(t_s) * 1e3, pred[:, i], "C1", lw=1, ls="--", label="ROM")
        ax.set_ylabel(f"{output_names[i]}\n(mV)")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (ms)")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig


def plot_comparison(result: dict, currents, input_names, *, fig=None):
    """Input currents (pA) on top, then simulation vs ROM for each output (first sequence)."""
    import matplotlib.pyplot as plt

    k = len(result["outputs"])
    fig = fig or plt.figure(figsize=(9, 1.6 * (k + 1)))
    axes = fig.subplots(k + 1, 1, sharex=True, squeeze=False)[:, 0]
    t = result["t_ms"]
    for j, name in enumerate(input_names):
        axes[0].plot(t, np.asarray(currents)[:, 0, j] * 1e3, lw=1, label=name)
    axes[0].set_ylabel("input (pA)")
    axes[0].legend(fontsize=7, ncol=len(input_names))
    for i, ax in enumerate(axes[1:]):
        ax.plot(t, result["simulated"][:, 0, i], "k", lw=1, label=result["backend"])
        ax.plot(t, result["predicted"][:, 0, i], "C1", lw=1, ls="--", label="ROM")
        ax.set_ylabel(f"{result['outputs'][i]}\n(mV)")
    axes[1].legend(fontsize=7, loc="upper right")
    axes[0].set_title(f"ROM vs {result['backend']}: RMSE {result['rmse_mV']:.3g} mV")
    axes[-1].set_xlabel("time (ms)")
    fig.tight_layout()
    return fig


def plot_matrix(matrix, row_names, col_names, *, title="", cmap="viridis", fig=None):
    """Heat map of a (rows, cols) matrix with its values written in the cells."""
    import matplotlib.pyplot as plt

    m = np.asarray(matrix)
    fig = fig or plt.figure(figsize=(1 + 0.9 * m.shape[1], 1 + 0.35 * m.shape[0]))
    ax = fig.add_subplot(111)
    im = ax.imshow(m, cmap=cmap, aspect="auto")
    ax.set_xticks(range(m.shape[1]), col_names, rotation=90 if m.shape[1] > 8 else 0)
    ax.set_yticks(range(m.shape[0]), row_names)
    if m.size <= 64:
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_hidden(t_s, hidden, outputs, output_names, *, fig=None):
    """Hidden-unit activity ``(T, H)`` as a raster above the true outputs ``(T, K)``."""
    import matplotlib.pyplot as plt

    fig = fig or plt.figure(figsize=(9, 4.5))
    a1, a2 = fig.subplots(2, 1, sharex=True)
    t_ms = np.asarray(t_s) * 1e3
    a1.imshow(hidden.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1,
              extent=[t_ms[0], t_ms[-1], hidden.shape[1] - 0.5, -0.5])
    a1.set_ylabel("hidden unit")
    for i, n in enumerate(output_names):
        a2.plot(t_ms, outputs[:, i], lw=1, label=n)
    a2.set_ylabel("output (mV)")
    a2.set_xlabel("time (ms)")
    a2.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return fig


def plot_table(table: dict, *, fig=None):
    """Test RMSE (mean ± sd over runs, data unit) of every row of an experiment table, with the
    train RMSE beside it and the constant-mean / mean-trace baselines as vertical lines."""
    import matplotlib.pyplot as plt

    from ._experiments import BASELINE_LABELS, _sorted_rows

    rows = _sorted_rows(table)
    if not rows:
        raise ValueError(f"table {table.get('name', '?')!r} has no rows to plot")
    unit = table.get("unit", "mV")
    labels = [label for label, _ in rows]
    y = np.arange(len(rows))
    fig = fig or plt.figure(figsize=(8.5, 1.2 + 0.45 * len(rows)))
    ax = fig.add_subplot(111)
    for key, dy, colour in (("train", 0.18, "0.6"), ("test", -0.18, "C0")):
        mean = [r[f"{key}_rmse"] for _, r in rows]
        sd = [r[f"{key}_rmse_sd"] for _, r in rows]
        ax.errorbar(mean, y + dy, xerr=sd, fmt="o", color=colour, capsize=3, label=key)
    for name, style in (("constant_mean", "--"), ("mean_trace", ":")):
        b = table.get("baselines", {}).get(name)
        if b is not None:
            ax.axvline(b["test_rmse"], color="k", ls=style, lw=1,
                       label=f"{BASELINE_LABELS[name]} (test)")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"RMSE ({unit}), mean ± sd over {table.get('runs', '?')} runs")
    ax.set_title(f"{table.get('name', '')}: {table.get('runs', '?')} runs × "
                 f"{table.get('epochs', '?')} epochs (synthetic data)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
