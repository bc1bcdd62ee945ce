"""Per-unit summaries and plots (used by the notebook and the unit-browser widget)."""

from __future__ import annotations

import numpy as np

from wormlab.sae._interpret import nearest_units, top_neurons
from wormlab.sae._pipeline import Experiment, Interpretation


def unit_summary(exp: Experiment, interp: Interpretation, unit: int, k: int = 8) -> dict:
    """Everything known about one SAE unit: selectivity per condition (d, on, off, p, q,
    verdict), the ``k`` neurons its decoder reads most, its ``k`` nearest units (decoder
    cosine), activation frequency and mean activation."""
    n = exp.sae.config.n_units
    if not 0 <= unit < n:
        raise ValueError(f"unit must lie in 0..{n - 1}, got {unit}")
    w = exp.decoder()
    acts = interp.activations[:, unit]
    table = interp.tables["unit"]
    sel = [s for s in table.stats if s.feature == unit]
    return {
        "unit": unit,
        "fires_fraction": float((acts > 0).mean()),
        "mean_activation": float(acts.mean()),
        "selectivity": sel,
        "top_neurons": top_neurons(w, exp.input_names, unit, k),
        "nearest_units": nearest_units(w, unit, k),
    }


def format_unit_summary(s: dict) -> str:
    lines = [f"unit {s['unit']}: fires on {100 * s['fires_fraction']:.1f}% of frames, "
             f"mean activation {s['mean_activation']:.3f}"]
    for st in sorted(s["selectivity"], key=lambda t: -t.d):
        verdict = "significant" if st.significant else "n.s."
        lines.append(f"  {st.condition:>14}: d={st.d:+.3f} on={st.on:.3f} off={st.off:.3f} "
                     f"q={st.q:.3g} {verdict}")
    lines.append("  decoder reads: " + ", ".join(f"{n} {w:+.2f}" for n, w in s["top_neurons"]))
    lines.append("  nearest units: " + ", ".join(f"{u} ({c:.2f})" for u, c in
                                                 s["nearest_units"]))
    return "\n".join(lines)


def top_units(interp: Interpretation, n_per_condition: int = 1) -> list[tuple[str, int]]:
    """``[(condition, unit), ...]``: the most selective unit(s) of each condition."""
    t = interp.tables["unit"]
    return [(c, s.feature) for c in t.counts for s in t.ranked(c)[:n_per_condition]]


def plot_unit(exp: Experiment, interp: Interpretation, unit: int, condition: str | None = None,
              axes=None, k: int = 12):
    """Unit activation over time with the condition's periods shaded, and its decoder weights
    over the named neurons it reads most. Returns the figure."""
    import matplotlib.pyplot as plt

    rec = exp.recording
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(13, 3), gridspec_kw={"width_ratios": [3, 1]})
    else:
        fig = axes[0].figure
    ax, bx = axes
    t = rec.time_s
    ax.plot(t, interp.activations[:, unit], lw=0.7, color="k")
    conds = rec.conditions(exp.config.interpret.conditions)
    if condition is not None:
        m = conds[condition]
        edges = np.diff(np.concatenate([[0], m.astype(int), [0]]))
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            ax.axvspan(t[a], t[min(b, len(t) - 1)], color="tab:orange", alpha=0.25, lw=0)
    tag = " [SYNTHETIC]" if rec.synthetic else ""
    ax.set(xlabel="time (s)", ylabel="activation",
           title=f"{rec.name}: unit {unit}" + (f", shaded: {condition}" if condition else "")
           + tag)
    top = top_neurons(exp.decoder(), exp.input_names, unit, k)
    names = [n for n, _ in top][::-1]
    vals = [v for _, v in top][::-1]
    bx.barh(names, vals, color=["tab:red" if v > 0 else "tab:blue" for v in vals])
    bx.set(xlabel="decoder weight", title=f"unit {unit} reads")
    fig.tight_layout()
    return fig


def plot_history(exp: Experiment, ax=None):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    h = exp.result.history
    steps = [e["step"] for e in h]
    ax.plot(steps, [e["loss"] for e in h], label="train loss")
    if h and "val_variance_explained" in h[0]:
        ax2 = ax.twinx()
        ax2.plot(steps, [e["val_variance_explained"] for e in h], color="tab:green",
                 label="val variance explained")
        ax2.set_ylabel("val variance explained")
        ax2.legend(loc="center right")
    ax.set(xlabel="step", ylabel="loss", title="SAE training")
    ax.legend(loc="upper right")
    return ax.figure
