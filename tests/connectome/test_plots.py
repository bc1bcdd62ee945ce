import holoviews as hv

from wormlab import connectome
from wormlab.connectome import plots

hv.extension("bokeh")


def test_plots_build_and_render():
    c = connectome.load()
    order = plots.class_order(c)
    assert len(order) == 118 and order.index("ASH") < order.index("AVA") < order.index("VB")
    for fig in (plots.class_heatmap(c), plots.degree_distributions(c),
                plots.partner_bars(c, "AVAL", 10)):
        hv.render(fig, backend="bokeh")
    fig = plots.partner_figure(c, "AVAL", 7)
    assert len(fig.axes[0].patches) == 7
    line = plots.neuron_summary(c, "AVAL")
    assert "class AVA" in line and "Acetylcholine" in line


def test_panel_reacts_to_a_change():
    from widgets.connectome import connectome_panel

    panel = connectome_panel("cook2019", "AVAL", 5)
    pickers, summary, _ = panel.children
    assert "AVAL" in summary.value
    pickers.children[1].value = "PLML"
    assert "PLML" in summary.value and "AVAL" not in summary.value
    pickers.children[0].value = "witvliet_8"
    assert "witvliet_8" in summary.value
