"""Circuit panels: live parameter tweaks re-running a short simulation, and gradient inspection.

Callbacks call :func:`wormlab.circuit.analysis.tweak_and_run`,
:func:`wormlab.circuit.analysis.gradient_table` and :mod:`wormlab.circuit.plots` — the same
tested functions the notebook runs headless.
"""

from __future__ import annotations

import ipywidgets as w
from IPython.display import display

from wormlab import circuit
from wormlab.circuit import analysis, plots


def _net(net):
    return net if net is not None else circuit.build_network(share="class")


def circuit_panel(net: circuit.Network | None = None, target: str = "PLML",
                  record=("PLML", "AVAL", "AVBL", "DB1", "VB1", "MVL10"),
                  duration_ms: float = 40.0) -> w.Widget:
    """Sliders for synaptic / gap conductance, channel densities (x c302 value) and the
    stimulus (amplitude in pA, target cell); each change re-runs ``duration_ms`` of the network
    and redraws the traces and the raster heatmap."""
    net = _net(net)
    sliders = {k: w.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05,
                                   description=f"{k} x", continuous_update=False)
               for k in analysis.TWEAKS}
    amp = w.FloatSlider(value=5.0, min=0.0, max=20.0, step=0.5, description="I (pA)",
                        continuous_update=False)
    tgt = w.Dropdown(options=sorted(net.names), value=target, description="target")
    status = w.HTML()
    out = w.Output()

    def refresh(*_):
        res = analysis.tweak_and_run(net, tgt.value, amp.value, duration_ms,
                                     **{k: s.value for k, s in sliders.items()})
        rec = [n for n in dict.fromkeys((tgt.value, *record)) if n in net.names]
        status.value = (f"<b>{duration_ms:.0f} ms of {net.n_cells} cells in "
                        f"{res.info['wall_s']:.2f} s</b>")
        out.clear_output(wait=True)
        with out:
            # stacked: two 800 px plots side by side overflow a notebook column
            display((plots.traces(res, rec, title="V (mV)") +
                     plots.raster(res, title="all cells")).cols(1))

    for s in (*sliders.values(), amp, tgt):
        s.observe(refresh, names="value")
    refresh()
    return w.VBox([w.HBox([tgt, amp]), w.HBox(list(sliders.values())[:3]),
                   w.HBox(list(sliders.values())[3:]), status, out])


def gradient_panel(net: circuit.Network | None = None, loss_class: str = "AVA",
                   param: str = "g_ca", duration_ms: float = 20.0, top: int = 25,
                   compile: bool = False) -> w.Widget:
    """Choose a loss (mean voltage of a neuron class) and a parameter; shows d loss / d
    parameter per group (class / cell / connection) as a sorted bar chart. Gradients by the
    discrete adjoint (``compile=True``: the step and its VJP under torch.compile, for 100 ms
    windows at interactive speed after the first call)."""
    net = _net(net)
    cls = w.Dropdown(options=sorted({c for c, k in zip(net.classes, net.kinds)
                                     if k == "neuron"}), value=loss_class, description="loss")
    par = w.Dropdown(options=sorted(net.params), value=param, description="d/d")
    col = w.ToggleButtons(options=["grad_x_value", "grad"], value="grad_x_value")
    status = w.HTML()
    out = w.Output()

    def refresh(*_):
        df = analysis.gradient_table(net, cls.value, par.value, duration_ms, compile=compile)
        status.value = (f"<b>{df.attrs['loss']}: {df.attrs['loss_value_mV']:.3f} mV</b> "
                        f"(forward+backward {df.attrs['wall_s']:.2f} s)")
        out.clear_output(wait=True)
        with out:
            display(plots.gradient_bars(df, col.value, top))

    for s in (cls, par, col):
        s.observe(refresh, names="value")
    refresh()
    return w.VBox([w.HBox([cls, par, col]), status, out])
