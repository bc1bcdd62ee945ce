"""holoviews figures for circuit results (traces, raster heatmap, errors, gradients)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from wormlab.circuit._simulate import Result


def _hv():
    import holoviews as hv

    if not hv.Store.renderers:  # outside a notebook: register bokeh so .opts() works
        import holoviews.plotting.bokeh  # noqa: F401
    return hv


STATE_UNITS = {"v": "V (mV)", "ca": "[Ca] (mM)"}


def traces(res: Result, names=None, batch: int = 0, ref=None, title: str = "",
           state: str = "v"):
    """Overlay of recorded traces vs time (ms) of one state (default V in mV; ``"ca"`` for
    [Ca] in mM, a gate name, ``"s"``); with ``ref`` the NEURON voltage traces are dashed."""
    hv = _hv()
    names = list(names or res.state_cells.get(state, res.names)[:6])
    t = res.t_ms.numpy()
    ylab = STATE_UNITS.get(state, f"{state} (1)")
    curves = []
    for n in names:
        curves.append(hv.Curve((t, res.trace(n, state)[:, batch].detach().numpy()), "t (ms)",
                               ylab, label=f"{n} wormlab"))
        if ref is not None and n in ref.names:
            k = ref.names.index(n)
            curves.append(hv.Curve((ref.t_ms, ref.v_mV[:, k]), "t (ms)", "V (mV)",
                                   label=f"{n} NEURON").opts(line_dash="dashed"))
    return hv.Overlay(curves).opts(title=title, width=800, height=320, legend_position="right")


def raster(res: Result, batch: int = 0, max_points: int = 1000, title: str = "", order=None):
    """Raster-style heatmap: every recorded cell (rows) vs time (columns), colour = V (mV)."""
    hv = _hv()
    v = res.v_mV[:, batch].detach().numpy()
    step = max(1, v.shape[0] // max_points)
    v, t = v[::step], res.t_ms.numpy()[::step]
    names = list(res.names)
    if order is not None:
        idx = [names.index(n) for n in order if n in names]
        v, names = v[:, idx], [names[i] for i in idx]
    img = hv.Image((t, np.arange(len(names)), v.T), kdims=["t (ms)", "cell"], vdims=["V (mV)"])
    return img.opts(cmap="viridis", colorbar=True, width=800, height=500, title=title,
                    tools=["hover"])


def error_bars(table: pd.DataFrame, column: str = "rel_err", top: int = 40, title: str = ""):
    """Sorted bars of a per-cell error column (e.g. from :func:`analysis.error_table`)."""
    hv = _hv()
    d = table[column].sort_values(ascending=False).head(top)
    bars = hv.Bars((list(d.index), d.values), "cell", column)
    return bars.opts(width=800, height=300, xrotation=90, title=title)


def gradient_bars(df: pd.DataFrame, column: str = "grad_x_value", top: int = 30,
                  title: str = ""):
    """Sorted bar chart of d loss / d parameter (from :func:`analysis.gradient_table`)."""
    hv = _hv()
    d = df[column].head(top)
    bars = hv.Bars((list(d.index), d.values), "group", column)
    return bars.opts(width=800, height=320, xrotation=90,
                     title=title or df.attrs.get("loss", ""), tools=["hover"])
