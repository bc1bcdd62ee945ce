"""Where worms come from: the shared recordings (Kato 2015 worm 0, Flavell-lab 2023) or files.

Reading goes through :mod:`wormlab.behaviour._io` until ``wormlab.recordings`` lands; only this
module and ``_io`` change then.
"""

from __future__ import annotations

from wormlab.behaviour import _io
from wormlab.behaviour._data import Worm
from wormlab.paths import require_shared_data

# SWF415 recordings carry no NeuroPAL identities (shared/data/README.md)
FLAVELL_UNIDENTIFIED = ("2022-01-16-01", "2022-05-02-01")


def kato_worms() -> list[Worm]:
    """Kato et al. 2015 WT_NoStim worm 0 (the only Kato worm with traces here; AVA removed)."""
    return [_io.load_kato_npz(require_shared_data("kato2015", "kato2015_WT_NoStim_worm0.npz"))]


def flavell_worms(identified_only: bool = True) -> list[Worm]:
    """Flavell-lab freely moving worms (Dag et al. 2023); by default only the 5 with NeuroPAL
    identities, since windows are built over identified neurons shared across worms."""
    folder = require_shared_data("flavell2023", "recordings")
    out = []
    for p in sorted(folder.glob("*-data.h5")):
        if identified_only and p.name.replace("-data.h5", "") in FLAVELL_UNIDENTIFIED:
            continue
        out.append(_io.load_flavell_h5(p))
    return out


def load_worms(paths) -> list[Worm]:
    """Worms from files in the shared formats (Kato NPZ, Flavell HDF5)."""
    return [_io.load_file(p) for p in paths]
