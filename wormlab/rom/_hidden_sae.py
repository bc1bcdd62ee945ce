"""Optional: a sparse autoencoder (``wormlab.sae``) on a ROM's hidden states (issue item 7).

The recurrent layer's hidden states over all time steps and sequences are the frames; the SAE
(ReLU + L1 by default, ``expansion`` x hidden units) is trained on the frames of the training
sequences and evaluated on held-out ones. Each SAE unit is then described by the Pearson
correlation of its activation with every true output and every input over the held-out frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wormlab.rom._compare import hidden_states
from wormlab.rom._format import SequenceSet
from wormlab.rom._models import RomModel


@dataclass
class HiddenSAE:
    sae: object  # wormlab.sae.SparseAutoencoder
    metrics: dict  # held-out reconstruction / sparsity (wormlab.sae.Metrics.as_dict)
    unit_output_corr: np.ndarray  # (units, K)
    unit_input_corr: np.ndarray  # (units, M)
    activations: np.ndarray  # (T, B, units) on the held-out sequences
    output_names: list[str]
    input_names: list[str]


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = (a - a.mean(0)) / (a.std(0) + 1e-12)
    b = (b - b.mean(0)) / (b.std(0) + 1e-12)
    return a.T @ b / len(a)


def fit_hidden_sae(model: RomModel, train: SequenceSet, held_out: SequenceSet, *,
                   expansion: float = 2.0, l1_coeff: float = 3e-3, n_steps: int = 1000,
                   batch_size: int = 256, seed: int = 0, show_progress: bool = False
                   ) -> HiddenSAE:
    """Train an SAE on ``model``'s hidden states over ``train``; describe it on ``held_out``.

    Raises:
        ValueError: when the data's columns do not match the model.
    """
    from wormlab import sae

    for d in (train, held_out):
        if d.inputs.shape[-1] != model.n_inputs or d.outputs.shape[-1] != model.n_outputs:
            raise ValueError(f"data have {d.inputs.shape[-1]} inputs / {d.outputs.shape[-1]} "
                             f"outputs; the model expects {model.n_inputs} / {model.n_outputs}")
    h_tr = hidden_states(model, train.inputs).reshape(-1, model.n_hidden)
    h_te = hidden_states(model, held_out.inputs)
    cfg = sae.SAEConfig(n_inputs=model.n_hidden, expansion=expansion, l1_coeff=l1_coeff)
    net = sae.SparseAutoencoder(cfg, seed=seed)
    net.fit_normaliser(torch.as_tensor(h_tr))
    gen = np.random.default_rng(seed)
    frames = torch.as_tensor(h_tr)

    def batches():
        for _ in range(n_steps):
            yield frames[torch.as_tensor(gen.integers(0, len(frames), batch_size))]

    sae.train(net, batches(), sae.TrainConfig(n_steps=n_steps, batch_size=batch_size,
                                              eval_every=0, checkpoint_every=0,
                                              resample_every=max(n_steps // 3, 1),
                                              l1_warmup_steps=min(300, n_steps // 3),
                                              seed=seed),
              show_progress=show_progress)
    flat = h_te.reshape(-1, model.n_hidden)
    m = sae.evaluate(net, flat)
    with torch.no_grad():
        act = net.encode(torch.as_tensor(flat)).numpy()
    return HiddenSAE(
        sae=net, metrics=m.as_dict(),
        unit_output_corr=_corr(act, held_out.outputs.reshape(-1, model.n_outputs)),
        unit_input_corr=_corr(act, held_out.inputs.reshape(-1, model.n_inputs)),
        activations=act.reshape(*h_te.shape[:2], -1),
        output_names=list(held_out.output_names), input_names=list(held_out.input_names))
