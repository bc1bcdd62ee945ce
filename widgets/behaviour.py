"""Behaviour decoding browser: pick a held-out worm, a model and a window length, then scrub
through time to see the predicted vs true state and the graph the model used at that moment.

Callbacks only call tested library functions (``wormlab.behaviour``); decoders are trained
leave-that-worm-out on first use and cached.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display

from wormlab import behaviour as bh


def behaviour_panel(worms=None, models=("gnn", "gnn_static", "gnn_connectome", "mlp"),
                    epochs: int = 5, seed: int = 0, task: str = "fwd_rev",
                    window: int = 8) -> W.Widget:
    """ipywidgets panel; ``worms`` default: the 5 identified Flavell-lab worms (real data)."""
    worms = list(worms) if worms is not None else bh.flavell_worms()
    ids = [w.worm_id for w in worms]
    cache: dict = {}

    worm_dd = W.Dropdown(options=ids, value=ids[-1], description="test worm")
    model_dd = W.Dropdown(options=list(models), value=models[0], description="model")
    win = W.IntSlider(value=window, min=2, max=16, description="window T")
    time_sl = W.IntSlider(value=0, min=0, max=1, description="window #", continuous_update=False)
    status = W.HTML()
    out = W.Output()

    def current():
        key = (worm_dd.value, model_dd.value, win.value)
        if key not in cache:
            status.value = f"training {model_dd.value} without {worm_dd.value} ..."
            cfg = bh.BehaviourConfig().replace(
                data={"task": task, "window": win.value}, model={"name": model_dd.value},
                train={"epochs": epochs, "seed": seed})
            dec, te = bh.leave_one_out_decoder(worms, worm_dd.value, cfg)
            cache[key] = (dec, te, bh.timeline(dec, te, 0))
        return cache[key]

    def draw(*_):
        dec, te, tl = current()
        n = len(tl["ends"])
        if time_sl.max != n - 1:
            time_sl.max = max(n - 1, 1)
        i = min(time_sl.value, n - 1)
        m = bh.metrics(tl["true"], tl["pred"], len(dec.classes))
        status.value = (f"<b>{dec.cfg.model.name}</b> on unseen {worm_dd.value}: accuracy "
                        f"{m['accuracy']:.3f}, balanced {m['balanced_accuracy']:.3f}; "
                        f"{len(dec.names)} shared neurons")
        fps = next(w.fps for w in worms if w.worm_id == worm_dd.value)
        with out:
            out.clear_output(wait=True)
            fig = bh.plot_moment(dec, te, tl, int(i), fps=fps)
            display(fig)
            plt.close(fig)

    for w in (worm_dd, model_dd, win, time_sl):
        w.observe(draw, names="value")
    draw()
    return W.VBox([W.HBox([worm_dd, model_dd, win]), time_sl, status, out])
