"""Plots of the sensory component: the circuit's calibrated response to each protocol beside
the reference (reconstructed from published descriptions, labelled so on the figure)."""

from __future__ import annotations

import numpy as np


def plot_evaluation(ev: dict, ref, axes=None, max_protocols: int = 8):
    """One panel per protocol: stimulus (top, grey, right axis) and, per neuron, the reference
    (dashed) and the circuit's simulated response after the calibration (solid), from
    :func:`wormlab.sensory.evaluate`'s output ``ev``; held-out protocols are titled so."""
    import matplotlib.pyplot as plt

    sim = ev["sim"]
    t = np.asarray(sim["t_s"])
    names = list(sim["protocols"])[:max_protocols]
    dff = np.asarray(sim["dff"])  # (T, P, K)
    n = len(names)
    if axes is None:
        cols = min(4, n)
        rows = int(np.ceil(n / cols))
        _, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    axes = np.asarray(axes).ravel()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, p in enumerate(names):
        ax = axes[i]
        proto = ref.protocols[p]
        for k, neuron in enumerate(ref.neurons):
            c = colors[k % len(colors)]
            ax.plot(proto.t_s, proto.response[neuron], "--", color=c, lw=1.2,
                    label=f"{neuron} reference")
            ax.plot(t, dff[:, sim["protocols"].index(p), k], "-", color=c, lw=1.5,
                    label=f"{neuron} circuit")
        tw = ax.twinx()
        tw.plot(proto.t_s, proto.stimulus, color="grey", lw=0.8, alpha=0.6)
        tw.set_ylabel(ref.units, fontsize=7, color="grey")
        tw.tick_params(labelsize=7, colors="grey")
        split = ev["protocols"][p]["split"]
        err = ev["protocols"][p]["max_abs_peak_error_pct"]
        ax.set_title(f"{p} ({split}; peak err {err:.0f} %)", fontsize=8)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel(ref.measure.split(",")[-1].strip(), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=6, loc="best")
    axes[0].figure.suptitle(f"{ref.modality}: circuit response vs reference "
                            f"({ref.kind})", fontsize=9)
    axes[0].figure.tight_layout()
    return axes
