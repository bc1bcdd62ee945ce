"""Connectome explorer panel: pick a dataset and a neuron, see its partners."""

from __future__ import annotations

import ipywidgets as w
from IPython.display import display

from widgets._display import as_png
from wormlab import connectome
from wormlab.connectome import plots


def connectome_panel(dataset: str = connectome.DEFAULT_DATASET, neuron: str = "AVAL",
                     top_k: int = 20) -> w.Widget:
    """A panel with dataset / neuron pickers, a one-line summary and a partner bar chart.

    Callbacks call :func:`wormlab.connectome.load`, :func:`plots.neuron_summary` and
    :func:`plots.partner_figure` — the same functions the notebook runs headless.
    """
    ds_pick = w.Dropdown(options=list(connectome.DATASETS), value=connectome.resolve_dataset(dataset),
                         description="dataset")
    nrn_pick = w.Dropdown(options=list(connectome.NEURONS), value=neuron, description="neuron")
    summary = w.HTML(layout=w.Layout(min_height="2em"))
    summary.add_class("wormlab-connectome-summary")
    out = w.Output()

    def refresh(*_):
        c = connectome.load(ds_pick.value)
        summary.value = f"<b>{plots.neuron_summary(c, nrn_pick.value)}</b>"
        out.clear_output(wait=True)
        with out:
            if (c.partners(nrn_pick.value)).empty:
                print(f"{nrn_pick.value} has no connections in {c.dataset}")
            else:
                display(as_png(plots.partner_figure(c, nrn_pick.value, top_k)))

    ds_pick.observe(refresh, names="value")
    nrn_pick.observe(refresh, names="value")
    refresh()
    return w.VBox([w.HBox([ds_pick, nrn_pick]), summary, out])
