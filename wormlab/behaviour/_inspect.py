"""Looking inside a trained decoder over time: predictions and the inferred graph per window,
and plots shared by the notebook and the widget."""

from __future__ import annotations

import numpy as np
import torch

from wormlab.behaviour._config import BehaviourConfig
from wormlab.behaviour._data import WindowSet, leave_worms_out, split_windows
from wormlab.behaviour._train import Decoder


def leave_one_out_decoder(worms, test_worm: str, cfg: BehaviourConfig,
                          *, verbose: bool = False) -> tuple[Decoder, WindowSet]:
    """Train ``cfg.model.name`` on every worm but ``test_worm``; return it with the test
    worm's windows (all frames)."""
    splits = [s for s in leave_worms_out(worms, 1, cfg.data.window, cfg.train.val_frac)
              if s.test_worms == (test_worm,)]
    if not splits:
        raise KeyError(f"no worm {test_worm!r}; have {[w.worm_id for w in worms]}")
    tr, va, te, _ = split_windows(worms, splits[0], cfg.data)
    return Decoder(cfg, tr.names, tr.classes).fit(tr, va, verbose=verbose), te


def timeline(dec: Decoder, ws: WindowSet, worm: int = 0) -> dict:
    """Per window of one worm: end frame, true class, predicted class (and probabilities)."""
    sel = ws.subset(np.flatnonzero(ws.worm == worm))
    out = {"ends": sel.ends, "true": sel.y, "pred": dec.predict(sel)}
    if dec.is_torch:
        out["proba"] = dec.predict_proba(sel)
    return out


def edges_at(dec: Decoder, ws: WindowSet, i: int) -> np.ndarray | None:
    """Graph used for window ``i`` (receiver x sender): the last timestep's inferred w_ij for
    dynamic models, the worm's static or the connectome graph otherwise; ``None`` for
    models without edges."""
    if not dec.is_torch or dec.model.edges_mode == "none":
        return None
    x = torch.as_tensor(ws.X[i:i + 1])
    ctx = torch.as_tensor(ws.ctx[ws.worm[i]:ws.worm[i] + 1])
    with torch.no_grad():
        w = dec.model.edge_weights(x, ctx)[0]
    return (w[-1] if w.ndim == 3 else w).numpy()


# -- plots -------------------------------------------------------------------------------------

def plot_confusion(cm, classes, ax=None, title: str = ""):
    """Row-normalised confusion matrix with counts."""
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, dtype=float)
    ax = ax or plt.gca()
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    for (r, c), v in np.ndenumerate(cm):
        ax.text(c, r, f"{int(v)}", ha="center", va="center",
                color="white" if norm[r, c] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return ax


def plot_edges_vs_connectome(w, names, axes=None, title: str = "inferred w_ij"):
    """Inferred (receiver x sender) weights next to the Cook 2019 chemical synapse counts."""
    import matplotlib.pyplot as plt

    from wormlab.behaviour._edges import connectome_matrix

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    a = connectome_matrix(names)
    w = np.array(w, dtype=float)
    np.fill_diagonal(w, np.nan)  # no self-edges: keep the diagonal out of the colour scale
    for ax, m, t in ((axes[0], w, title), (axes[1], np.log1p(a), "connectome log(1+synapses)")):
        im = ax.imshow(m, cmap="viridis")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.set_xlabel("sender j")
        ax.set_ylabel("receiver i")
        ax.set_title(t, fontsize=9)
        plt.colorbar(im, ax=ax, fraction=0.046)
    return axes


def plot_timeline(tl: dict, classes, t_index: int | None = None, ax=None, fps: float = 1.0):
    """True vs predicted class over time (frames / fps = seconds), a marker at ``t_index``."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    t = np.asarray(tl["ends"]) / fps
    ax.step(t, tl["true"], where="post", label="true", lw=1.5)
    ax.step(t, np.asarray(tl["pred"]) + 0.08, where="post", label="predicted", lw=1, alpha=0.8)
    if t_index is not None and 0 <= t_index < len(t):
        ax.axvline(t[t_index], color="k", lw=1, ls="--")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper right", fontsize=8)
    return ax


def plot_moment(dec: Decoder, ws: WindowSet, tl: dict, i: int, fps: float = 1.0):
    """One frame of the widget: true vs predicted state over time with a marker at window
    ``i`` (left) and the graph the model used for that window (right). Returns the figure."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 4.2))
    ax = fig.add_axes([0.06, 0.15, 0.5, 0.75])
    plot_timeline(tl, dec.classes, i, ax=ax, fps=fps)
    ax.set_title(f"frame {tl['ends'][i]}: true {dec.classes[tl['true'][i]]}, "
                 f"predicted {dec.classes[tl['pred'][i]]}", fontsize=9)
    sel = np.flatnonzero(ws.worm == ws.worm[0]) if len(ws) else np.zeros(0, int)
    g = edges_at(dec, ws, int(sel[i])) if len(sel) else None
    ax2 = fig.add_axes([0.62, 0.15, 0.33, 0.75])
    if g is None:
        ax2.text(0.5, 0.5, "this model has no graph", ha="center", va="center")
        ax2.set_axis_off()
    else:
        g = np.array(g, dtype=float)
        np.fill_diagonal(g, np.nan)
        im = ax2.imshow(g, cmap="viridis")
        ax2.set_xticks(range(len(dec.names)), dec.names, rotation=90, fontsize=5)
        ax2.set_yticks(range(len(dec.names)), dec.names, fontsize=5)
        ax2.set_title("graph at this moment (receiver x sender)", fontsize=9)
        fig.colorbar(im, ax=ax2, fraction=0.046)
    return fig
