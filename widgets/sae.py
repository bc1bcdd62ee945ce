"""Unit-interpretation browser for the SAE notebook (04_sae).

``sae_panel(exp, interp)`` -> an ipywidgets panel: pick a unit, or a condition (stimulus /
behaviour state) to jump to its most selective unit, and see the unit's activity with the
condition shaded, its selectivity statistics, the neurons its decoder reads and its nearest
units. Every callback calls tested library functions (``wormlab.sae.unit_summary``,
``format_unit_summary``, ``plot_unit``).
"""

from __future__ import annotations

import html

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display

from wormlab import sae


def sae_panel(exp, interp, unit: int | None = None, condition: str | None = None) -> W.Widget:
    table = interp.tables["unit"]
    conds = list(table.counts)
    condition = condition or (conds[0] if conds else None)
    if unit is None:
        unit = table.ranked(condition)[0].feature if condition else 0
    n_units = exp.sae.config.n_units
    unit_w = W.BoundedIntText(value=unit, min=0, max=n_units - 1, description="unit")
    cond_w = W.Dropdown(options=conds, value=condition, description=table.heading.lower())
    best_w = W.Button(description="most selective unit")
    text = W.HTML()
    plot = W.Output()

    def render(*_):
        s = sae.unit_summary(exp, interp, unit_w.value)
        text.value = f"<pre>{html.escape(sae.format_unit_summary(s))}</pre>"
        plot.clear_output(wait=True)
        with plot:
            fig = sae.plot_unit(exp, interp, unit_w.value, cond_w.value)
            display(fig)
            plt.close(fig)

    def jump(*_):
        unit_w.value = table.ranked(cond_w.value)[0].feature  # triggers render

    unit_w.observe(render, names="value")
    cond_w.observe(render, names="value")
    best_w.on_click(jump)
    render()
    return W.VBox([W.HBox([unit_w, cond_w, best_w]), text, plot])
