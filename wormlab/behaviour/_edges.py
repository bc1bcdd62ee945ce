"""Do inferred edges resemble the wiring? Rank correlation and AUROC against the connectome,
with a node-label permutation null (Wang et al. 2021 report no such resemblance)."""

from __future__ import annotations

import re

import numpy as np
from scipy.stats import rankdata, spearmanr


def _auroc(score: np.ndarray, positive: np.ndarray) -> float:
    pos = positive.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def connectome_names(names) -> list[str]:
    """Recording names -> cect names: imaging pipelines zero-pad motor neurons (``VB02``,
    ``DB01``) where the connectome writes ``VB2``, ``DB1``."""
    return [re.sub(r"^([A-Z]+?)0+(\d+)$", r"\1\2", str(n)) for n in names]


def connectome_matrix(names, kind: str = "chem") -> np.ndarray:
    """(N, N) synapse counts, [receiver i, sender j] (the orientation of inferred w_ij)."""
    from wormlab import connectome

    return connectome.load().adjacency(kind, names=connectome_names(names)).numpy().T


def compare_edges(w: np.ndarray, names, kind: str = "chem", n_perm: int = 1000,
                  seed: int = 0) -> dict:
    """Compare an (N, N) receiver x sender edge-weight matrix with the real wiring.

    Returns Spearman rho (weights vs synapse counts over off-diagonal pairs), AUROC of the
    weights for "a synapse exists", and permutation p-values (relabelling the connectome's
    neurons ``n_perm`` times; one-sided, larger = more similar).
    """
    w = np.asarray(w, dtype=float)
    n = len(names)
    if w.shape != (n, n):
        raise ValueError(f"edge matrix {w.shape} does not match {n} neuron names")
    a = connectome_matrix(names, kind)
    off = ~np.eye(n, dtype=bool)
    ws, cs = w[off], a[off]

    def stats(counts):
        rho = spearmanr(ws, counts).statistic if np.ptp(counts) > 0 and np.ptp(ws) > 0 else 0.0
        return float(np.nan_to_num(rho)), _auroc(ws, counts > 0)

    rho, auc = stats(cs)
    rng = np.random.default_rng(seed)
    null_rho, null_auc = np.empty(n_perm), np.empty(n_perm)
    for k in range(n_perm):
        p = rng.permutation(n)
        null_rho[k], null_auc[k] = stats(a[np.ix_(p, p)][off])
    return {
        "kind": kind, "n_pairs": int(off.sum()), "n_connected": int((cs > 0).sum()),
        "spearman": rho, "auroc": auc,
        "p_spearman": float((1 + (null_rho >= rho).sum()) / (n_perm + 1)),
        "p_auroc": float((1 + (np.nan_to_num(null_auc) >= auc).sum()) / (n_perm + 1)),
    }


def correlation_edges(worm, names) -> np.ndarray:
    """Baseline "edges": |Pearson correlation| of two neurons' traces over the whole worm
    (diagonal zeroed), to tell what an activity-derived graph gets without any learning."""
    x = np.stack([worm.traces[:, worm.column(n)] for n in names], axis=1)
    c = np.abs(np.nan_to_num(np.corrcoef(x, rowvar=False)))
    np.fill_diagonal(c, 0.0)
    return c
