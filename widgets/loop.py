"""ipywidgets panel for the sensory closed loop: place the worm (start and heading), change
the field (value at the centre, gradient, direction), ablate neurons, run, and see the track
on the arena with the stimulus at the head and the transducer's current. Callbacks call
tested functions of :mod:`wormlab.loop`."""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from wormlab import loop


def loop_panel(arena=None, params: dict | None = None, modality: str = "nacl",
               duration_s: float = 5.0, run_now: bool = False,
               pathway: dict | None = None) -> W.Widget:
    """Panel over one closed-loop trial.

    Args:
        arena: the starting :class:`wormlab.loop.Arena` (default: the shipped local NaCl ramp);
            with "own field" unticked the field sliders rebuild a linear field of ``modality``
            from it (:func:`wormlab.loop.linear_arena`).
        params: crawl parameters (default: the shipped fit).
        pathway: sensory-pathway parameters (:func:`wormlab.loop.pathway_and_params`;
            default: c302's synapses).
        run_now: run once when the panel is built (used headless).
    """
    from wormlab.paths import package_data

    arena = arena or loop.load_arena(package_data("loop", "arenas", "nacl_local.yml"))
    r_mm = arena.radius_mm
    x_w = W.FloatSlider(value=0.0, min=-0.8 * r_mm, max=0.8 * r_mm, step=0.1,
                        description="start x mm")
    y_w = W.FloatSlider(value=0.0, min=-0.8 * r_mm, max=0.8 * r_mm, step=0.1,
                        description="start y mm")
    h_w = W.FloatSlider(value=90.0, min=-180.0, max=180.0, step=5.0, description="heading °")
    centre = float(arena.sample(np.zeros((1, 2)))[modality][0])
    c_w = W.FloatText(value=centre, description=f"centre {arena.units[modality]}")
    s_w = W.FloatSlider(value=5.0, min=0.0, max=20.0, step=0.5,
                        description=f"{arena.units[modality]}/mm")
    d_w = W.FloatSlider(value=0.0, min=-180.0, max=180.0, step=15.0, description="gradient °")
    own_w = W.Checkbox(value=True, description="own field (untick: the linear field)")
    abl_w = W.SelectMultiple(options=["ASEL", "ASER", "AWCL", "AWCR", "AFDL", "AFDR", "AIYL",
                                      "AIYR", "AIZL", "AIZR", "RIAL", "RIAR"],
                             rows=6, description="ablate")
    dur_w = W.FloatSlider(value=duration_s, min=1.0, max=30.0, step=1.0, description="s")
    run_b = W.Button(description="run the trial", button_style="primary")
    out = W.Output()

    def _run(_=None):
        with out:
            out.clear_output(wait=True)
            try:
                a = arena if own_w.value else loop.linear_arena(
                    arena, modality, c_w.value, s_w.value, d_w.value)
                res = loop.run_closed_loop(
                    a, [[x_w.value * 1000.0, y_w.value * 1000.0]], [np.deg2rad(h_w.value)],
                    params=params, config=loop.ClosedLoopConfig(
                        modality=modality, duration_s=dur_w.value,
                        ablate=tuple(abl_w.value)), progress=True, pathway=pathway)
            except (ValueError, KeyError, RuntimeError) as exc:
                print(f"run failed: {exc}")
                return
            fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
            loop.plot_arena(a, tracks_um=res.head_um, ax=ax[0], modality=modality)
            ax[1].plot(res.t_s, res.stimulus[:, 0])
            ax[1].set(xlabel="time (s)", ylabel=f"{modality} at the head ({res.units})")
            for k, n in enumerate(res.sensory_neurons):
                ax[2].plot(res.t_s, 1e3 * res.current_nA[:, 0, k], label=n)
            ax[2].set(xlabel="time (s)", ylabel="transducer current (pA)")
            ax[2].legend(fontsize=8)
            fig.suptitle(f"closed loop, ablated: {', '.join(abl_w.value) or 'none'} "
                         "(simulated worm)")
            fig.tight_layout()
            plt.show()
            d = res.com_um[-1, 0] - res.com_um[0, 0]
            print(f"net displacement {np.hypot(*d):.0f} um; stimulus "
                  f"{res.stimulus[0, 0]:.3g} -> {res.stimulus[-1, 0]:.3g} {res.units}")

    run_b.on_click(_run)
    if run_now:
        _run()
    return W.VBox([W.HBox([x_w, y_w, h_w]), W.HBox([own_w, c_w, s_w, d_w]),
                   W.HBox([abl_w, W.VBox([dur_w, run_b])]), out])
