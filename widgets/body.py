"""Physics vs surrogate, side by side: wave or muscle-group controls -> both bodies + error."""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display

from wormlab import body


def render(model, mode="sinusoid", freq_hz=0.6, wavelength_bl=0.75, amplitude=0.8,
           direction=1, group="dorsal", scale=1.0, duration_s=4.0):
    """One comparison figure (also what the notebook shows headless). Returns (fig, result)."""
    T = int(round(duration_s / model.frame_dt_s)) + 1
    act = body.control_activation(T, model.frame_dt_s, mode, freq_hz, wavelength_bl, amplitude,
                                  direction, group, scale)
    res = body.compare(model, act)
    fig = plt.figure(figsize=(11, 3.6))
    gs = fig.add_gridspec(2, 5)
    axes = [fig.add_subplot(gs[0, i]) for i in range(3)] + [fig.add_subplot(gs[1, i])
                                                            for i in range(3)]
    body.plot_shapes({"physics": res["physics"], "surrogate": res["surrogate"]}, 0, 6,
                     axes=axes)
    ax = fig.add_subplot(gs[:, 3:])
    body.plot_tracks({"physics": res["physics"], "surrogate": res["surrogate"]}, ax=ax)
    kp, ks = res["kin_physics"], res["kin_surrogate"]
    ax.set_title(
        f"estimate {res['estimate_pct'][0]:.1f}% | measured {res['body_rmse_pct'][0]:.1f}% BL"
        f"\nspeed phys {kp['forward_speed_um_s'][0]:.0f} / sur "
        f"{ks['forward_speed_um_s'][0]:.0f} um/s", fontsize=9)
    fig.tight_layout()
    return fig, res


def body_panel(model) -> W.Widget:
    """Sliders for wave frequency / wavelength / amplitude / direction or a muscle-group scale;
    each change runs ElegansBot and the surrogate on the same activation."""
    mode = W.ToggleButtons(options=["sinusoid", "group_scaled"], value="sinusoid")
    freq = W.FloatSlider(value=0.6, min=0.3, max=1.2, step=0.05, description="freq (Hz)")
    wl = W.FloatSlider(value=0.75, min=0.5, max=1.5, step=0.05, description="λ (BL)")
    amp = W.FloatSlider(value=0.8, min=0.2, max=1.0, step=0.05, description="amplitude")
    direction = W.Dropdown(options=[("forward", 1), ("backward", -1)], value=1,
                           description="direction")
    group = W.Dropdown(options=list(body.GROUPS), value="dorsal", description="group")
    scale = W.FloatSlider(value=1.0, min=0.5, max=2.0, step=0.1, description="scale")
    out = W.Output()

    def update(*_):
        with out:
            out.clear_output(wait=True)
            fig, _ = render(model, mode.value, freq.value, wl.value, amp.value, direction.value,
                            group.value, scale.value)
            display(fig)
            plt.close(fig)

    for w in (mode, freq, wl, amp, direction, group, scale):
        w.observe(update, names="value")
    update()
    return W.VBox([mode, W.HBox([W.VBox([freq, wl, amp, direction]), W.VBox([group, scale])]),
                   out])
