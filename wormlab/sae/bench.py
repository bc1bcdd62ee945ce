"""``wormlab bench sae``: SAE training throughput and time to a target variance explained.

Dataset: a SYNTHETIC virtual worm, 189 observed neurons x 5229 frames (1800 s at 2.905 fps),
time-block split. Anchor measured in the same run: PCA (scikit-learn) on the same training
frames — its fit time and the components it needs for the same validation variance explained.
"""

from __future__ import annotations

import time

import numpy as np


def run(quick: bool = False) -> dict:
    from wormlab import recordings as R
    from wormlab import sae
    from wormlab.sae._pipeline import pca_features

    t0 = time.perf_counter()
    rec = R.virtual_worm(R.VirtualWormConfig(seed=0))
    t_data = time.perf_counter() - t0
    target = 0.6
    steps = 400 if quick else 3000
    cfg = sae.ExperimentConfig(train=sae.TrainConfig(n_steps=steps, eval_every=50,
                                                     checkpoint_every=0,
                                                     target_variance_explained=target))
    exp = sae.fit_recording(rec, cfg, show_progress=False)
    res = exp.result

    x = np.asarray(rec.traces, dtype=np.float64)
    tr, va = exp.split.train, exp.split.val
    t1 = time.perf_counter()
    _, pca = pca_features(x[tr], x[:2], x.shape[1])
    t_pca = time.perf_counter() - t1
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    zv = (x[va] - mu) / sd
    sst = ((zv - zv.mean(0)) ** 2).sum()
    proj = (zv - pca.mean_) @ pca.components_.T
    n_needed = None
    for k in range(1, pca.n_components_ + 1):
        recon = proj[:, :k] @ pca.components_[:k] + pca.mean_
        if 1 - ((zv - recon) ** 2).sum() / sst >= exp.val_metrics.variance_explained:
            n_needed = k
            break
    return {
        "dataset": f"virtual_worm seed 0 (SYNTHETIC), {rec.n_neurons} neurons x "
                   f"{rec.n_frames} frames, {len(tr)} train / {len(va)} val (time blocks)",
        "sae": f"{cfg.activation}, expansion {cfg.expansion}, l1 {cfg.l1_coeff}, batch "
               f"{cfg.train.batch_size}, {res.steps} steps, 1 torch thread",
        "frames_per_s": round(res.frames_per_s, 1),
        "seconds_to_target": None if res.seconds_to_target is None
        else round(res.seconds_to_target, 3),
        "target_variance_explained": target,
        "train_seconds": round(res.seconds, 3),
        "val_variance_explained": round(exp.val_metrics.variance_explained, 4),
        "val_l0": round(exp.val_metrics.l0, 2),
        "val_dead_units": exp.val_metrics.n_dead,
        "dataset_seconds": round(t_data, 2),
        "anchor_pca_fit_seconds": round(t_pca, 3),
        "anchor_pca_components_for_same_val_ve": n_needed,
        "quick": quick,
    }
