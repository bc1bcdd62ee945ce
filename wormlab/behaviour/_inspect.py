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
        _, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    a = connectome_matrix(names)
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
