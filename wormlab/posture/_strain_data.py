"""The strain-classification data of notebook 07: real UCR Worms, else a labelled SYNTHETIC
stand-in, optionally cut down for smoke runs."""

from __future__ import annotations

import numpy as np


def synthetic_strains(n_per_class: int = 30, length: int = 300, seed: int = 0,
                      freqs: tuple[float, ...] = (0.1, 0.2)) -> tuple[np.ndarray, np.ndarray]:
    """SYNTHETIC two-or-more-class series: noisy sinusoids of one frequency (rad/sample) per
    class, random phase; labels 1, 2, ... like UCR's. Only a stand-in when UCR Worms is absent."""
    if n_per_class < 1 or length < 2 or not freqs:
        raise ValueError(f"synthetic_strains: need n_per_class >= 1, length >= 2 and at least one "
                         f"frequency, got {n_per_class}, {length}, {freqs}")
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    X = np.concatenate([np.sin(t * f + rng.uniform(0, 2 * np.pi, (n_per_class, 1)))
                        + 0.5 * rng.standard_normal((n_per_class, length)) for f in freqs])
    return X, np.repeat(np.arange(1, len(freqs) + 1), n_per_class)


def strain_dataset(*, smoke: bool = False, seed: int = 0, per_class: int = 12,
                   length: int = 300) -> tuple[np.ndarray, np.ndarray, str]:
    """``(X, y, label)`` for the strain benchmark: the UCR Worms training split when the shared
    data folder has it (label ``"real UCR Worms"``), else :func:`synthetic_strains`
    (``"SYNTHETIC sinusoids"``). With ``smoke`` only the first ``per_class`` series of each
    class and their first ``length`` samples are kept."""
    from wormlab.posture._data import load_ucr_worms

    try:
        X, y = load_ucr_worms()
        label = "real UCR Worms"
    except FileNotFoundError:
        X, y = synthetic_strains(seed=seed)
        label = "SYNTHETIC sinusoids"
    if smoke:
        keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])
        X, y = X[keep][:, :length], y[keep]
    return X, y, label
