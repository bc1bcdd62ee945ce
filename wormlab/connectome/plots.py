"""HoloViews figures of a :class:`~wormlab.connectome.Connectome` (bokeh or matplotlib backend)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from wormlab.connectome._connectome import Connectome

_TYPE_ORDER = {"sensory": 0, "inter": 1, "motor": 2, "other": 3}


def class_order(c: Connectome) -> list[str]:
    """Neuron classes ordered sensory -> inter -> motor, then alphabetically."""
    table = c.neuron_table()[["class", "type"]].drop_duplicates("class")
    table = table.assign(rank=table["type"].map(_TYPE_ORDER))
    return list(table.sort_values(["rank", "class"])["class"])


def class_heatmap(c: Connectome, kind: str = "chem", log: bool = True):
    """Heatmap of synapse counts between neuron classes (rows presynaptic)."""
    import holoviews as hv

    order = class_order(c)
    mat = c.class_adjacency(kind).reindex(index=order, columns=order, fill_value=0)
    long = mat.stack().rename("count").reset_index()
    long.columns = ["pre", "post", "count"]
    long = long[long["count"] > 0]
    long["log10_count"] = np.log10(long["count"])
    vdim = "log10_count" if log else "count"
    title = f"{c.dataset}: {kind} synapses between classes (sensory -> inter -> motor)"
    heat = hv.HeatMap(long, kdims=["post", "pre"], vdims=[vdim, "count"])
    if hv.Store.current_backend == "bokeh":
        return heat.opts(title=title, xrotation=90, width=900, height=850, tools=["hover"],
                         colorbar=True, cmap="viridis", invert_yaxis=True,
                         fontsize={"xticks": 5, "yticks": 5})
    return heat.opts(title=title, xrotation=90, colorbar=True, cmap="viridis", fig_size=300)


def degree_table(c: Connectome) -> pd.DataFrame:
    """In/out chemical degree and gap-junction degree per neuron with its type."""
    t = c.neuron_table()
    return t[["type", "chem_in", "chem_out", "gap_degree"]].reset_index()


def degree_distributions(c: Connectome):
    """Histograms of chemical in/out degree and gap-junction degree (number of partners)."""
    import holoviews as hv

    t = degree_table(c)
    plots = []
    for col, label in (("chem_out", "chemical out-degree"), ("chem_in", "chemical in-degree"),
                       ("gap_degree", "gap-junction degree")):
        freq, edges = np.histogram(t[col], bins=20)
        plots.append(hv.Histogram((edges, freq), kdims=[label], vdims=["neurons"]).opts(
            title=label))
    return hv.Layout(plots).cols(3)


def partner_bars(c: Connectome, neuron: str, top_k: int = 20):
    """Bar chart of a neuron's strongest partners (synapse counts), by kind and direction."""
    import holoviews as hv

    df = c.partners(neuron).head(top_k).copy()
    df["link"] = df["kind"] + " " + df["direction"]
    return hv.Bars(df, kdims=["partner", "link"], vdims=["count"]).opts(
        title=f"{c.dataset}: top {len(df)} partners of {neuron}", xrotation=90,
        stacked=True, legend_position="right",
    )


def neuron_summary(c: Connectome, neuron: str) -> str:
    """One line describing a neuron: class, type, transmitter and partner counts."""
    i = c.index(neuron)
    t = c.neuron_table().iloc[i]
    nm = int((c.neuron_muscle[i] > 0).sum())
    absent = "" if c.present[i] else " [not reconstructed in this dataset]"
    return (f"{neuron} ({c.dataset}){absent}: class {t['class']}, {t['type']} neuron, "
            f"transmitter {t['transmitter'] or 'unknown'}; "
            f"{int(t['chem_out'])} chemical targets, {int(t['chem_in'])} chemical inputs, "
            f"{int(t['gap_degree'])} gap-junction partners, {nm} muscles")


def partner_figure(c: Connectome, neuron: str, top_k: int = 20):
    """Matplotlib bar chart of a neuron's strongest partners (for widgets: plain PNG output)."""
    import matplotlib.pyplot as plt

    df = c.partners(neuron).head(top_k)
    fig, ax = plt.subplots(figsize=(9, 3.2), layout="constrained")
    colours = {"chem": "tab:blue", "gap": "tab:orange", "neuron_muscle": "tab:green"}
    labels = [f"{p} ({d})" if k == "chem" else p
              for p, d, k in zip(df["partner"], df["direction"], df["kind"])]
    ax.bar(range(len(df)), df["count"], color=[colours[k] for k in df["kind"]])
    ax.set_xticks(range(len(df)), labels, rotation=70, fontsize=7)
    ax.set_ylabel("synapse count")
    ax.set_title(f"{c.dataset}: top {len(df)} partners of {neuron} "
                 "(blue chemical, orange gap junction, green muscle)", fontsize=9)
    plt.close(fig)
    return fig
