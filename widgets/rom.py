"""ipywidgets panel for the reduced-order models: shape input currents and compare the ROM's
prediction with the full simulation; inspect hidden units. Callbacks call tested functions of
:mod:`wormlab.rom`; nothing here is needed headless."""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from wormlab import rom
from wormlab.rom import _plots


def _input_row(name: str, kind: str = "step", amp_pA: float = 5.0):
    kind_w = W.Dropdown(options=sorted(rom.PRIMITIVES), value=kind, description=name,
                        layout=W.Layout(width="220px"))
    amp_w = W.FloatSlider(value=amp_pA, min=-4.0, max=10.0, step=0.5, description="pA",
                          layout=W.Layout(width="260px"))
    win_w = W.FloatRangeSlider(value=(50.0, 400.0), min=0.0, max=500.0, step=5.0,
                               description="ms", layout=W.Layout(width="320px"))
    return kind_w, amp_w, win_w


def specs_from_rows(rows: dict, duration_ms: float) -> dict:
    """Widget values -> ``currents_from_specs`` specs (start/stop for windowed shapes)."""
    out = {}
    for name, (kind_w, amp_w, win_w) in rows.items():
        if amp_w.value == 0:
            continue
        start, stop = win_w.value
        spec = {"kind": kind_w.value, "amplitude_nA": amp_w.value * 1e-3}
        if kind_w.value == "gaussian":
            spec.update(center_ms=0.5 * (start + stop), width_ms=max(1.0, (stop - start) / 4))
        else:
            spec.update(start_ms=start, stop_ms=min(stop, duration_ms))
        out[name] = spec
    return out


def rom_panel(model: rom.RomModel, data: rom.SequenceSet | None = None, *,
              backend: str = "auto", duration_ms: float = 500.0, dt_ms: float = 0.5,
              run_now: bool = False, hidden_sae: rom.HiddenSAE | None = None) -> W.Widget:
    """Panel with tabs: currents -> ROM vs simulation; hidden units of ``data``; and, when
    ``hidden_sae`` (:func:`wormlab.rom.fit_hidden_sae`) is given, its SAE units.

    Args:
        model: a trained :class:`wormlab.rom.RomModel` (its metadata names the neurons).
        data: sequences for the hidden-unit tab (optional).
        run_now: run the comparison once when the panel is built (used headless).
    """
    inputs = model.meta.get("input_names", [f"in_{i}" for i in range(model.n_inputs)])
    rows = {n: _input_row(n, "step" if i % 2 == 0 else "sine", 5.0)
            for i, n in enumerate(inputs)}
    dur_w = W.FloatSlider(value=duration_ms, min=20.0, max=500.0, step=10.0,
                          description="duration ms")
    run_b = W.Button(description="simulate + predict", button_style="primary")
    out1 = W.Output()

    def _run(_=None):
        with out1:
            out1.clear_output(wait=True)
            t_ms = np.arange(0, dur_w.value + 1e-9, dt_ms)
            cur = rom.currents_from_specs(specs_from_rows(rows, dur_w.value), t_ms, inputs)
            try:
                res = rom.predict_vs_simulation(model, cur, dt_ms, backend=backend)
            except (RuntimeError, rom.SimulationBlowUp) as exc:
                print(f"simulation failed: {exc}")
                return
            fig = _plots.plot_comparison(res, cur, inputs)
            display(fig)
            plt.close(fig)

    run_b.on_click(_run)
    tab1 = W.VBox([W.HBox(list(r)) for r in rows.values()] + [W.HBox([dur_w, run_b]), out1])
    children, titles = [tab1], ["currents → ROM vs simulation"]

    if data is not None:
        seq_w = W.Dropdown(options=[(n, i) for i, n in enumerate(data.names)],
                           description="sequence")
        out2 = W.Output()

        def _hidden(_=None):
            with out2:
                out2.clear_output(wait=True)
                b = seq_w.value
                h = rom.hidden_states(model, data.inputs[:, b : b + 1])[:, 0]
                fig = _plots.plot_hidden(data.time_s, h, data.outputs[:, b], data.output_names)
                display(fig)
                plt.close(fig)
                c = rom.hidden_output_correlation(model, data)
                fig = _plots.plot_matrix(c, [f"h{i}" for i in range(model.n_hidden)],
                                         data.output_names, title="corr(hidden, output)",
                                         cmap="RdBu_r")
                display(fig)
                plt.close(fig)

        seq_w.observe(_hidden, names="value")
        children.append(W.VBox([seq_w, out2]))
        titles.append("hidden units")
        _hidden()
    if hidden_sae is not None:
        hs = hidden_sae
        n_units = hs.unit_output_corr.shape[0]
        unit_w = W.Dropdown(options=list(range(n_units)), description="SAE unit")
        seq2_w = W.Dropdown(options=list(range(hs.activations.shape[1])),
                            description="held-out seq")
        out3 = W.Output()

        def _sae(_=None):
            with out3:
                out3.clear_output(wait=True)
                print("SAE on hidden states, held-out frames: "
                      + ", ".join(f"{k} {v:.3g}" for k, v in hs.metrics.items()))
                fig, ax = plt.subplots(figsize=(8, 2.2))
                ax.plot(hs.activations[:, seq2_w.value, unit_w.value])
                ax.set_xlabel("step")
                ax.set_ylabel(f"unit {unit_w.value}")
                fig.tight_layout()
                display(fig)
                plt.close(fig)
                fig = _plots.plot_matrix(hs.unit_output_corr, [f"u{i}" for i in range(n_units)],
                                         hs.output_names, title="corr(SAE unit, output)",
                                         cmap="RdBu_r")
                display(fig)
                plt.close(fig)

        unit_w.observe(_sae, names="value")
        seq2_w.observe(_sae, names="value")
        children.append(W.VBox([W.HBox([unit_w, seq2_w]), out3]))
        titles.append("SAE on hidden states")
        _sae()
    tabs = W.Tab(children=children)
    for i, t in enumerate(titles):
        tabs.set_title(i, t)
    if run_now:
        _run()
    return tabs
