"""Sparse autoencoder: ReLU + L1 (the seed) and TopK with an auxiliary dead-unit loss.

    a = act(W_enc^T (x_n - b_dec) + b_enc),   x̂_n = W_dec^T a + b_dec,   x_n = (x - mu) / s

Decoder rows (one per unit) are kept at unit norm. TopK and the auxiliary loss follow
Gao et al. 2024 ("Scaling and evaluating sparse autoencoders"); ReLU + L1 with dead-unit
resampling follows Bricken et al. 2023 ("Towards monosemanticity", Anthropic).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

ACTIVATIONS = ("relu", "topk")
NORMALISATIONS = ("zscore", "scalar", "none")


@dataclass(frozen=True)
class SAEConfig:
    """Architecture and loss of one SAE.

    Args:
        n_inputs: input dimension (neurons, or hidden units of another model).
        expansion: units / inputs (1.0 = the seed's 1x).
        activation: ``"relu"`` (+ L1 penalty, the seed) or ``"topk"``.
        l1_coeff: L1 weight on ``a * ||W_dec row||`` (relu).
        k: active units per frame (topk).
        aux_k: dead units used by the auxiliary loss (topk); 0 disables it.
        aux_coeff: weight of the auxiliary loss (Gao et al. 2024 use 1/32).
        dead_after_frames: a unit that has not fired for this many training frames is dead.
        normalise: ``"zscore"`` (per input), ``"scalar"`` (one scale: mean squared norm =
            n_inputs), or ``"none"``; statistics come from training data only.
    """

    n_inputs: int
    expansion: float = 1.0
    activation: str = "relu"
    l1_coeff: float = 3e-3
    k: int = 8
    aux_k: int = 32
    aux_coeff: float = 1 / 32
    dead_after_frames: int = 20_000
    normalise: str = "zscore"

    def __post_init__(self):
        if self.n_inputs < 1:
            raise ValueError(f"n_inputs must be >= 1, got {self.n_inputs}")
        if self.expansion <= 0:
            raise ValueError(f"expansion must be > 0, got {self.expansion}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {self.normalise!r}")
        if self.activation == "topk" and not 1 <= self.k <= self.n_units:
            raise ValueError(f"k must lie in 1..{self.n_units}, got {self.k}")
        if self.l1_coeff < 0 or self.aux_coeff < 0 or self.aux_k < 0:
            raise ValueError("l1_coeff, aux_coeff and aux_k must be >= 0")

    @property
    def n_units(self) -> int:
        return max(1, int(round(self.expansion * self.n_inputs)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class SparseAutoencoder(nn.Module):
    """The SAE. Inputs ``(..., n_inputs)`` in data units; :meth:`forward` normalises them."""

    def __init__(self, config: SAEConfig, seed: int = 0):
        super().__init__()
        self.config = config
        d, m = config.n_inputs, config.n_units
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(m, d, generator=g)
        w = w / w.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w.clone())  # (units, inputs), unit-norm rows
        self.W_enc = nn.Parameter(w.t().clone())  # (inputs, units), tied at init
        self.b_enc = nn.Parameter(torch.zeros(m))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.register_buffer("in_mean", torch.zeros(d))
        self.register_buffer("in_scale", torch.ones(d))
        self.register_buffer("normaliser_fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("frames_since_fired", torch.zeros(m, dtype=torch.long))

    # -------------------------------------------------------------- normalisation
    @torch.no_grad()
    def fit_normaliser(self, x: torch.Tensor) -> None:
        """Set the input statistics from training frames ``x`` ``(T, n_inputs)``."""
        x = x.reshape(-1, self.config.n_inputs).to(self.in_mean)
        mode = self.config.normalise
        if mode == "none":
            self.in_mean.zero_()
            self.in_scale.fill_(1.0)
        elif mode == "zscore":
            self.in_mean.copy_(x.mean(0))
            self.in_scale.copy_(x.std(0).clamp_min(1e-6))
        else:  # scalar: centre, then one scale so that E||x_n||^2 = n_inputs
            self.in_mean.copy_(x.mean(0))
            ms = (x - self.in_mean).pow(2).sum(1).mean() / self.config.n_inputs
            self.in_scale.fill_(float(ms.clamp_min(1e-12).sqrt()))
        self.b_dec.data.zero_()
        self.normaliser_fitted.fill_(True)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.in_mean) / self.in_scale

    def denormalise(self, xn: torch.Tensor) -> torch.Tensor:
        return xn * self.in_scale + self.in_mean

    # -------------------------------------------------------------- forward
    def pre_activation(self, xn: torch.Tensor) -> torch.Tensor:
        return (xn - self.b_dec) @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        if self.config.activation == "relu":
            return torch.relu(pre)
        vals, idx = torch.topk(pre, self.config.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unit activations ``(..., n_units)`` for inputs in data units."""
        return self.activate(self.pre_activation(self.normalise(x)))

    def decode(self, a: torch.Tensor) -> torch.Tensor:
        """Reconstruction in data units."""
        return self.denormalise(a @ self.W_dec + self.b_dec)

    def forward(self, x: torch.Tensor):
        """Returns ``(x̂_n, a, pre, x_n)``: normalised reconstruction, activations,
        pre-activations and the normalised input."""
        xn = self.normalise(x)
        pre = self.pre_activation(xn)
        a = self.activate(pre)
        return a @ self.W_dec + self.b_dec, a, pre, xn

    # -------------------------------------------------------------- losses
    def loss(self, x: torch.Tensor, l1_scale: float = 1.0) -> tuple[torch.Tensor, dict]:
        """Training loss on a batch ``(B, n_inputs)``; also returns its parts (floats)."""
        cfg = self.config
        xh, a, pre, xn = self(x)
        err = xn - xh
        mse = err.pow(2).mean()
        parts = {"mse": float(mse.detach())}
        total = mse
        if cfg.activation == "relu":
            l1 = (a * self.W_dec.norm(dim=1)).sum(-1).mean()
            total = total + cfg.l1_coeff * l1_scale * l1
            parts["l1"] = float(l1.detach())
        elif cfg.aux_k > 0 and cfg.aux_coeff > 0:
            dead = self.dead_mask()
            if dead.any():
                kk = min(cfg.aux_k, int(dead.sum()))
                masked = pre.masked_fill(~dead, float("-inf"))
                vals, idx = torch.topk(masked, kk, dim=-1)
                a_aux = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
                e = err.detach()
                aux = (e - a_aux @ self.W_dec).pow(2).sum(-1).mean() / e.pow(2).sum(-1).mean(
                ).clamp_min(1e-12)
                total = total + cfg.aux_coeff * aux
                parts["aux"] = float(aux.detach())
        parts["l0"] = float((a.detach() > 0).float().sum(-1).mean())
        with torch.no_grad():
            fired = (a > 0).any(0)
            self.frames_since_fired += x.shape[0]
            self.frames_since_fired[fired] = 0
        return total, parts

    def dead_mask(self) -> torch.Tensor:
        return self.frames_since_fired >= self.config.dead_after_frames

    # -------------------------------------------------------------- constraints
    @torch.no_grad()
    def remove_parallel_decoder_grad(self) -> None:
        """Project out the gradient component that would change decoder row norms."""
        if self.W_dec.grad is not None:
            w = self.W_dec
            self.W_dec.grad -= (self.W_dec.grad * w).sum(1, keepdim=True) * w

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.W_dec.data /= self.W_dec.data.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def resample_dead(self, x: torch.Tensor, optimizer=None, generator=None) -> int:
        """Re-initialise dead units towards inputs the SAE reconstructs worst (Bricken et al.
        2023): pick frames with probability ∝ squared error, set the decoder row to the
        normalised frame direction and the encoder column to it scaled to 0.2 x the mean alive
        encoder norm; reset their Adam state. Returns the number of resampled units."""
        dead = torch.nonzero(self.dead_mask()).flatten()
        if dead.numel() == 0:
            return 0
        xh, _, _, xn = self(x)
        loss = (xn - xh).pow(2).sum(-1)
        if float(loss.sum()) <= 0:
            return 0
        pick = torch.multinomial(loss.pow(2) / loss.pow(2).sum(), dead.numel(),
                                 replacement=True, generator=generator)
        v = xn[pick] - self.b_dec
        v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
        alive = ~self.dead_mask()
        enc_norm = self.W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
        self.W_dec.data[dead] = v
        self.W_enc.data[:, dead] = (v * 0.2 * enc_norm).t()
        self.b_enc.data[dead] = 0.0
        self.frames_since_fired[dead] = 0
        if optimizer is not None:
            for p, sl in ((self.W_dec, (dead,)), (self.W_enc, (slice(None), dead)),
                          (self.b_enc, (dead,))):
                st = optimizer.state.get(p, {})
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in st:
                        st[key][sl] = 0.0
        return int(dead.numel())
