"""Ship a frame decoder through the model registry (``wormlab.models``), kind ``behaviour.frames``.

:func:`ship_frame_decoder` trains a (logistic-regression) frame decoder on all Flavell worms
but one -- ``model="best"`` chooses it by leave-one-worm-out CV on those training worms only --
scores the held-out worm, and writes ``data/models/<name>/`` (weights, cut-off, neurons,
feature spec; the manifest names the training and held-out worms and the inner CV scores).
The verifier recomputes the held-out balanced accuracy from the shipped tensors and the shared
recording (skipped where ``../shared/data`` is absent); :func:`load_frame_decoder` gives a
ready :class:`~wormlab.behaviour._frames.FrameDecoder`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

SHIPPED_KIND = "behaviour.frames"


def _spec_from(config: dict):
    from wormlab.behaviour._frames import FrameSpec

    s = dict(config["spec"])
    s["lags"], s["scales"] = tuple(s["lags"]), tuple(s["scales"])
    return FrameSpec(**s)


def _decoder(tensors: dict, config: dict):
    """A fitted FrameDecoder rebuilt from shipped tensors (no training)."""
    from sklearn.linear_model import LogisticRegression

    from wormlab.behaviour._config import DataConfig
    from wormlab.behaviour._frames import FrameDecoder

    spec = _spec_from(config)
    cfg = DataConfig(task=config["task"], window=int(config["first_frame"]) + 1)
    dec = FrameDecoder(spec, config["names"], cfg, first_frame=int(config["first_frame"]))
    clf = LogisticRegression()
    clf.coef_ = tensors["coef"].double().numpy()
    clf.intercept_ = tensors["intercept"].double().numpy()
    clf.classes_ = np.arange(len(config["classes"]))
    n_feat = clf.coef_.shape[1]
    clf.n_features_in_ = n_feat
    dec.clf = clf
    thr = float(tensors["threshold"].item())
    dec.threshold = thr if thr >= 0 else None
    return dec


def load_frame_decoder(name: str):
    """The shipped frame decoder ``name`` as a fitted ``FrameDecoder`` (checks by the registry:
    hash, size, kind)."""
    from wormlab import models

    tensors, m = models.load(name, kind=SHIPPED_KIND)
    return _decoder(tensors, m["config"])


def _heldout_worm(worm_id: str):
    from wormlab.behaviour._sources import worm_from_recording
    from wormlab.models import VerifySkipped
    from wormlab.paths import shared_data_dir

    if shared_data_dir() is None:
        raise VerifySkipped("the shared recordings folder (../shared/data) is absent")
    from wormlab import recordings

    short = worm_id.split("/", 1)[-1]
    return worm_from_recording(recordings.load_flavell2023(short))


def verify_shipped(name: str, tensors: dict, manifest: dict) -> dict:
    dec = _decoder(tensors, manifest["config"])
    res = dec.evaluate([_heldout_worm(manifest["data"]["heldout"])])
    return {"heldout_balanced_accuracy": res["balanced_accuracy"],
            "heldout_accuracy": res["accuracy"], "n_heldout": float(res["n"])}


def ship_frame_decoder(name: str, heldout: str = "2022-07-27-45", model: str = "best", *,
                       command: str, seed: int = 0, tolerance: float = 1e-6) -> Path:
    """Train ``model`` on the identified Flavell worms except ``heldout``, score ``heldout``,
    and ship it as ``name``. Returns the manifest path.

    Only logistic-regression decoders have a tensor form here; ``hgb`` is refused.
    """
    import torch

    from wormlab import models
    from wormlab.behaviour._config import DataConfig
    from wormlab.behaviour._data import shared_names
    from wormlab.behaviour._frames import (
        BEST_CANDIDATES,
        FRAME_MODELS,
        FrameDecoder,
        select_frame_model,
    )
    from wormlab.behaviour._sources import flavell_worms

    cfg = DataConfig()
    worms = flavell_worms()
    ids = [w.worm_id.split("/", 1)[-1] for w in worms]
    if heldout not in ids:
        raise ValueError(f"held-out worm {heldout!r} is not one of the identified Flavell "
                         f"worms: {', '.join(ids)}")
    test = worms[ids.index(heldout)]
    train = [w for w in worms if w is not test]
    names = shared_names(worms, cfg)
    sel = None
    chosen = model
    if model == "best":
        sel = select_frame_model(train, names, cfg, BEST_CANDIDATES, seed=seed)
        chosen = sel["chosen"]
    if chosen not in FRAME_MODELS:
        raise ValueError(f"unknown frame decoder {chosen!r}")
    spec = FRAME_MODELS[chosen]
    if spec.kind != "logreg":
        raise ValueError(f"frame decoder {chosen!r} ({spec.kind}) has no tensor form to ship; "
                         "ship a logreg decoder")
    dec = FrameDecoder(chosen, names, cfg, seed=seed).fit(train)
    res = dec.evaluate([test])
    tensors = {"coef": torch.from_numpy(np.ascontiguousarray(dec.clf.coef_)),
               "intercept": torch.from_numpy(np.ascontiguousarray(dec.clf.intercept_)),
               "threshold": torch.tensor([-1.0 if dec.threshold is None else dec.threshold],
                                         dtype=torch.float64)}
    config = {"spec": asdict(spec), "names": list(dec.names), "task": cfg.task,
              "classes": list(dec.classes), "first_frame": dec.first_frame,
              "features": "per-worm z-scored traces, derivatives and differences "
                          "(wormlab.behaviour._frames.frame_features)"}
    data = {"dataset": "flavell2023 (Dag et al. 2023, Cell 186:2574), ../shared/data",
            "train": [w.worm_id for w in train], "heldout": test.worm_id,
            "model": model, "chosen": chosen, "seed": seed,
            "selection": None if sel is None else {"inner_mean": sel["inner_mean"],
                                                    "inner": sel["inner"]}}
    return models.save(name, tensors, kind=SHIPPED_KIND, config=config, command=command,
                       data=data,
                       metrics={"heldout_balanced_accuracy": res["balanced_accuracy"],
                                "heldout_accuracy": res["accuracy"],
                                "n_heldout": float(res["n"])},
                       tolerance={"heldout_balanced_accuracy": tolerance,
                                  "heldout_accuracy": tolerance, "n_heldout": 0.0})


def _register() -> None:
    from wormlab.models import register_verifier

    register_verifier(SHIPPED_KIND, verify_shipped)


_register()
