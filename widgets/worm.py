"""ipywidgets panel for the integrated worm: set the drive and direction, ablate cells of the
motor circuit, run the closed loop (circuit -> muscles -> ElegansBot) and watch the
kymographs and the kinematics. Callbacks call tested functions of :mod:`wormlab.worm`."""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import HTML, display

from wormlab import worm
from wormlab.worm import _plots


def crawl_panel(params: dict | None = None, duration_s: float = 3.0,
                run_now: bool = False) -> W.Widget:
    """Panel: drive (nA), direction, ablation, duration, motor-neuron adaptation on/off; "run"
    simulates one member and shows kymographs, the kinematics, the speed per window and
    (optionally) the midline animation.

    Args:
        params: crawl parameters (e.g. :func:`wormlab.worm.read_crawl_params` of the shipped
            fit); missing names take :data:`wormlab.worm.PARAMS` defaults.
        run_now: run once when the panel is built (used headless).
    """
    params = dict(params or {})
    d0, lo, hi, *_ = worm.PARAMS["drive_nA"]
    drive_w = W.FloatSlider(value=float(params.get("drive_nA", d0)) * 1e3, min=lo * 1e3,
                            max=hi * 1e3, step=0.25, description="drive pA")
    dir_w = W.ToggleButtons(options=["forward", "backward"], value="forward",
                            description="direction")
    cells = [c for c in worm.build_motor_network().names if not c.startswith(("MD", "MV"))]
    abl_w = W.SelectMultiple(options=cells, rows=6, description="ablate")
    dur_w = W.FloatSlider(value=duration_s, min=1.0, max=20.0, step=0.5, description="s")
    adapt_w = W.Checkbox(value=True, description="motor-neuron adaptation",
                         tooltip="off: adapt_a_nS = adapt_b_nS = 0 (the crawl stalls after ~6 s)")
    anim_w = W.Checkbox(value=False, description="animation")
    run_b = W.Button(description="run the worm", button_style="primary")
    out = W.Output()

    def _run(_=None):
        with out:
            out.clear_output(wait=True)
            p = {**params, "drive_nA": drive_w.value * 1e-3}
            if not adapt_w.value:
                p.update(adapt_a_nS=0.0, adapt_b_nS=0.0)
            cfg = worm.LoopConfig(duration_s=dur_w.value, direction=dir_w.value,
                                  ablate=tuple(abl_w.value))
            try:
                res = worm.run_loop(p, cfg, progress=True)
            except (ValueError, KeyError, RuntimeError) as exc:
                print(f"run failed: {exc}")
                return
            m = worm.crawl_metrics(res)
            print(", ".join(f"{k} {float(v[0]):.3g}" for k, v in m.items()))
            if dur_w.value >= 3.0:
                win = min(5.0, (dur_w.value - 1.0) / 2)
                edges, v = worm.speed_windows(res, win)
                print("speed per window (um/s): " + ", ".join(
                    f"{a:g}-{b:g} s {x:+.0f}" for a, b, x in zip(edges[:-1], edges[1:], v[:, 0])))
            _plots.plot_kymographs(res, title=f"{dir_w.value}, ablated: "
                                   f"{', '.join(abl_w.value) or 'none'}")
            plt.show()
            if anim_w.value:
                display(HTML(_plots.midline_animation(res, every=2).to_jshtml()))

    run_b.on_click(_run)
    if run_now:
        _run()
    return W.VBox([W.HBox([drive_w, dir_w]), W.HBox([abl_w, W.VBox([dur_w, adapt_w, anim_w, run_b])]),
                   out])
