"""Figures: reference curves (labelled as reconstructed) and the circuit's calibrated response."""

from __future__ import annotations

import numpy as np


def plot_responses(ref, evaluation: dict | None = None, protocols=None):
    """One panel per protocol: stimulus (top strip) and each neuron's reference curve (solid);
    with ``evaluation`` (:func:`wormlab.sensory.evaluate`) the circuit's calibrated response
    (dashed). Every figure is titled with the reference kind. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    names = list(protocols or ref.protocols)
    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 4.2), squeeze=False,
                             sharex="col", gridspec_kw={"height_ratios": [1, 3]})
    sim = None
    if evaluation is not None:
        sim = np.asarray(evaluation["sim"]["dff"])
        order = evaluation["sim"]["protocols"]
    for c, p in enumerate(names):
        pr = ref.protocols[p]
        axes[0, c].plot(pr.t_s, pr.stimulus, color="k", lw=1)
        axes[0, c].set_title(f"{p}{' (held out)' if p in ref.heldout else ''}", fontsize=8)
        axes[0, c].set_ylabel(ref.units if c == 0 else "")
        for k, n in enumerate(ref.neurons):
            line, = axes[1, c].plot(pr.t_s, pr.response[n], lw=1.2, label=f"{n} reference")
            if sim is not None:
                axes[1, c].plot(pr.t_s, sim[:, order.index(p), k], ls="--", lw=1,
                                color=line.get_color(), label=f"{n} circuit")
        axes[1, c].set_xlabel("t (s)")
    axes[1, 0].set_ylabel(ref.measure, fontsize=7)
    axes[1, -1].legend(fontsize=6)
    fig.suptitle(f"{ref.modality}: references {ref.kind}", fontsize=9)
    fig.tight_layout()
    return fig
