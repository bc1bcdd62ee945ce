"""Decoders of behaviour from windows of neural activity, one interface chosen by name.

After Wang et al. 2021, "Generalizable machine learning in neuroscience using graph neural
networks", Front. Artif. Intell. 4:618372:

* ``mlp``: a per-node encoder (shared over neurons and timesteps), node features concatenated
  in a fixed neuron order, an MLP readout (the paper's MLP that aggregates node features).
* ``gnn``: the same plus message passing on an **inferred** graph, dynamic per timestep: an
  edge encoder maps each (receiver i, sender j) pair of node embeddings to a logit, a softmax
  over senders gives w_ij (each row a distribution), messages H = A X, and concatenation
  aggregation [x_i, sum_j w_ij x_j] before the node update.
* ``gnn_static``: edges inferred once per worm from that worm's pairwise activity statistics
  (correlations, lag-1 cross-correlations, per-neuron mean/std over its frames).
* ``gnn_connectome``: fixed edges from Cook 2019 chemical synapses (``wormlab.connectome``)
  restricted to the used neurons, normalised per receiver.
* ``gnn_lstm``: dynamic GNN per timestep, then an LSTM over time before the readout.
* ``svm``: scikit-learn SVC on flattened windows.

Torch models take x (B, T, N, F) and a per-sample pair-feature tensor ctx (B, N, N, 8) and
return class logits (B, C); ``nodes(x, ctx)`` gives node states (B, T, N, H) for forecasting.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from wormlab.behaviour._config import ModelConfig

N_PAIR = 8  # pair features per (i, j), see _data.pair_features


def _mlp(i: int, h: int, o: int, dropout: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Dropout(dropout), nn.Linear(h, o))


def connectome_weights(names, kind: str = "chem") -> torch.Tensor:
    """(N, N) receiver-by-sender weights from the real wiring, rows normalised to sum 1.

    Entry [i, j] is the synapse count from j onto i (Cook 2019 via cect); receivers without any
    synapse from the used neurons get an all-zero row (no messages).
    """
    from wormlab.behaviour._edges import connectome_matrix

    a = torch.as_tensor(connectome_matrix(names, kind), dtype=torch.float32).clone()
    a.fill_diagonal_(0.0)
    s = a.sum(1, keepdim=True)
    return torch.where(s > 0, a / s.clamp_min(1e-12), torch.zeros_like(a))


class GraphDecoder(nn.Module):
    """Node encoder -> (optional) message passing -> readout; see the module docstring.

    Args:
        n_nodes, n_feat, window, n_out: N, F, T and the number of classes.
        edges: ``none`` (MLP), ``dynamic``, ``static``, ``fixed`` (give ``fixed_w``).
        lstm: LSTM over time before the readout.
    """

    def __init__(self, n_nodes: int, n_feat: int, window: int, n_out: int, cfg: ModelConfig,
                 edges: str = "dynamic", lstm: bool = False, fixed_w: torch.Tensor | None = None):
        super().__init__()
        if edges not in ("none", "dynamic", "static", "fixed"):
            raise ValueError(f"unknown edge mode {edges!r}")
        h = cfg.hidden
        self.n, self.f, self.t, self.edges_mode, self.use_lstm = n_nodes, n_feat, window, edges, lstm
        self.encode = _mlp(n_feat, h, h)
        if edges == "dynamic":
            # MLP on the concatenated pair [h_i, h_j]; its first layer is split into the
            # receiver and sender halves so the (B, T, N, N, 2H) concatenation is never built
            self.edge_in = nn.Linear(2 * h, cfg.edge_hidden)
            self.edge_out = nn.Linear(cfg.edge_hidden, 1)
        elif edges == "static":
            self.edge_enc = _mlp(N_PAIR, cfg.edge_hidden, 1)
        if edges == "fixed":
            if fixed_w is None or fixed_w.shape != (n_nodes, n_nodes):
                raise ValueError(f"fixed edges need an ({n_nodes}, {n_nodes}) weight matrix")
            self.register_buffer("fixed_w", fixed_w.float())
        self.update = _mlp(2 * h if edges != "none" else h, h, h)
        if lstm:
            self.lstm = nn.LSTM(n_nodes * h, cfg.readout_hidden, batch_first=True)
            self.readout = _mlp(cfg.readout_hidden, cfg.readout_hidden, n_out, cfg.dropout)
        else:
            self.readout = _mlp(window * n_nodes * h, cfg.readout_hidden, n_out, cfg.dropout)
        self.forecast_head = nn.Linear(h, n_feat)
        if lstm:
            self._add_lstm_forecast_head(cfg.readout_hidden)

    def _add_lstm_forecast_head(self, width: int) -> None:
        """Forecasting through the LSTM: its last output -> the change of every neuron.

        Initialised from a forked RNG, so the global stream (and with it the dropout masks of
        classification training) is exactly what it was before this head existed.
        """
        with torch.random.fork_rng(devices=[]):
            self.forecast_head_lstm = nn.Linear(width, self.n * self.f)

    # -- edges ---------------------------------------------------------------------------
    def edge_weights(self, x: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
        """w_ij, softmax over senders j (diagonal excluded): (B, T, N, N) dynamic, (B, N, N)
        static/fixed."""
        b = x.shape[0]
        eye = torch.eye(self.n, dtype=torch.bool, device=x.device)
        if self.edges_mode == "dynamic":
            h = self.encode(x)  # (B, T, N, H)
            hdim = h.shape[-1]
            wi, wj = self.edge_in.weight[:, :hdim], self.edge_in.weight[:, hdim:]
            a = h @ wi.T + self.edge_in.bias  # receiver part (B, T, N, E)
            s = h @ wj.T  # sender part
            pair = torch.relu(a.unsqueeze(3) + s.unsqueeze(2))  # (B, T, N, N, E)
            logits = self.edge_out(pair).squeeze(-1)
        elif self.edges_mode == "static":
            if ctx is None:
                raise ValueError("gnn_static needs per-worm pair features (ctx)")
            logits = self.edge_enc(ctx).squeeze(-1)  # (B, N, N)
        elif self.edges_mode == "fixed":
            return self.fixed_w.expand(b, -1, -1)
        else:
            raise ValueError("this model has no edges")
        if self.n == 1:
            return torch.zeros_like(logits)
        return torch.softmax(logits.masked_fill(eye, float("-inf")), dim=-1)

    def nodes(self, x: torch.Tensor, ctx: torch.Tensor | None = None,
              w: torch.Tensor | None = None) -> torch.Tensor:
        """Node states (B, T, N, H) after (optional) one round of message passing.

        ``w``: per-worm edge weights (B, N, N) already computed by :meth:`static_weights`
        (static/fixed edges only), so a rollout does not recompute them at every step.
        """
        if x.ndim != 4 or x.shape[2] != self.n or x.shape[3] != self.f:
            raise ValueError(f"expected x (B, T, {self.n}, {self.f}), got {tuple(x.shape)}")
        h = self.encode(x)
        if self.edges_mode == "none":
            return self.update(h)
        if w is None or self.edges_mode == "dynamic":
            w = self.edge_weights(x, ctx)
        m = w @ h if w.ndim == 4 else torch.einsum("bij,btjh->btih", w, h)  # H = A X
        return self.update(torch.cat([h, m], -1))  # concatenation aggregation

    def forward(self, x: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
        z = self.nodes(x, ctx)
        b, t = z.shape[:2]
        if self.use_lstm:
            out, _ = self.lstm(z.reshape(b, t, -1))
            return self.readout(out[:, -1])
        if t != self.t:
            raise ValueError(f"model built for windows of {self.t} steps, got {t}")
        return self.readout(z.reshape(b, -1))

    def static_weights(self, x: torch.Tensor, ctx: torch.Tensor | None = None):
        """The edge weights when they do not depend on the window (static, fixed), else None."""
        if self.edges_mode in ("static", "fixed"):
            return self.edge_weights(x, ctx)
        return None

    def step(self, x: torch.Tensor, ctx: torch.Tensor | None = None,
             w: torch.Tensor | None = None) -> torch.Tensor:
        """Markovian forecast: x (B, T, N, F) -> next frame x_t + f(x) (B, N, F).

        Without an LSTM f is a per-neuron linear head on the last node states; with one
        (``gnn_lstm``) the node states of the window run through the LSTM (from a zero state,
        so f depends on the window only) and a linear head maps its last output to the
        change of every neuron.
        """
        z = self.nodes(x, ctx, w)
        if self.use_lstm:
            b, t = z.shape[:2]
            out, _ = self.lstm(z.reshape(b, t, -1))
            return x[:, -1] + self.forecast_head_lstm(out[:, -1]).reshape(b, self.n, self.f)
        return x[:, -1] + self.forecast_head(z[:, -1])


TORCH_MODELS = {
    "mlp": {"edges": "none"},
    "gnn": {"edges": "dynamic"},
    "gnn_static": {"edges": "static"},
    "gnn_connectome": {"edges": "fixed"},
    "gnn_lstm": {"edges": "dynamic", "lstm": True},
}
MODELS = ("svm", *TORCH_MODELS)


def build_model(cfg: ModelConfig, n_nodes: int, n_feat: int, window: int, n_out: int,
                names=None) -> nn.Module:
    """A torch decoder by registry name (``svm`` is built by :class:`SVMDecoder`)."""
    if cfg.name not in TORCH_MODELS:
        raise ValueError(f"unknown torch model {cfg.name!r}; choose one of: "
                         f"{', '.join(TORCH_MODELS)} (or 'svm')")
    kw = dict(TORCH_MODELS[cfg.name])
    if kw["edges"] == "fixed":
        if names is None:
            raise ValueError("gnn_connectome needs the neuron names to look up the wiring")
        kw["fixed_w"] = connectome_weights(names)
    return GraphDecoder(n_nodes, n_feat, window, n_out, cfg, **kw)


class SVMDecoder:
    """scikit-learn SVC on flattened windows (the paper's SVM baseline)."""

    def __init__(self, cfg: ModelConfig, seed: int = 0):
        from sklearn.svm import SVC

        self.clf = SVC(C=cfg.svm_c, kernel=cfg.svm_kernel, random_state=seed)

    def fit(self, X: np.ndarray, y: np.ndarray) -> SVMDecoder:
        if len(np.unique(y)) < 2:
            raise ValueError("SVM training data holds a single class")
        self.clf.fit(X.reshape(len(X), -1), y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.clf.predict(X.reshape(len(X), -1))
