"""Where worms come from: :mod:`wormlab.recordings` (shared data layer) -> :class:`Worm`.

The behaviour component reads every recording through ``wormlab.recordings`` and keeps only
what decoding needs (traces, names, fps, per-frame states or kinematics).
"""

from __future__ import annotations

import numpy as np

from wormlab.behaviour._data import Worm
from wormlab.behaviour._labels import KATO_STATES

# SWF415 recordings carry no NeuroPAL identities (shared/data/README.md)
FLAVELL_UNIDENTIFIED = ("2022-01-16-01", "2022-05-02-01")

_KINEMATICS = {"reversal_vec": "reversal", "worm_curvature": "curvature",
               "velocity": "velocity", "angular_velocity": "angular_velocity"}


def worm_from_recording(rec) -> Worm:
    """Adapt a :class:`wormlab.recordings.Recording` (Kato-style state names, or Flavell-style
    ``reversal_vec``/``worm_curvature`` kinematics) to the behaviour component's view."""
    beh = {dst: np.asarray(rec.behaviour[src]) for src, dst in _KINEMATICS.items()
           if src in rec.behaviour and np.ndim(rec.behaviour[src]) == 1}
    states = None
    if "reversal" not in beh and rec.states is not None:
        names = tuple(rec.state_names)
        unknown = sorted(set(names) - set(KATO_STATES))
        if unknown:
            raise ValueError(f"{rec.dataset}/{rec.worm_id}: state names {unknown} have no "
                             f"behaviour mapping (known: {', '.join(KATO_STATES)})")
        lookup = np.array([*names, "nostate"])  # index -1 (unlabelled) -> nostate
        idx = np.asarray(rec.states, dtype=np.int64)
        states = lookup[np.where(idx < 0, len(names), idx)]
    wid = f"{rec.dataset or 'recording'}/{rec.worm_id or 'worm'}"
    return Worm(wid, rec.dataset, np.asarray(rec.traces, dtype=np.float64),
                tuple(rec.neuron_names), float(rec.fps), states=states, behaviour=beh)


def kato_worms() -> list[Worm]:
    """Kato et al. 2015 WT_NoStim worm 0 (the only Kato worm with traces here; AVA removed)."""
    from wormlab import recordings

    return [worm_from_recording(recordings.load_kato2015(0))]


def flavell_worms(identified_only: bool = True) -> list[Worm]:
    """Flavell-lab freely moving worms (Dag et al. 2023); by default only the 5 with NeuroPAL
    identities, since windows are built over identified neurons shared across worms."""
    from wormlab import recordings

    ids = recordings.list_flavell2023()
    if identified_only:
        ids = [i for i in ids if i not in FLAVELL_UNIDENTIFIED]
    return [worm_from_recording(recordings.load_flavell2023(i)) for i in ids]


def load_worms(paths) -> list[Worm]:
    """Worms from files in any format ``wormlab.recordings.load`` reads (Kato NPZ/.mat,
    Flavell-lab ``*-data.h5``, NWB, NPZ/CSV)."""
    from wormlab import recordings

    return [worm_from_recording(recordings.load(p)) for p in paths]
