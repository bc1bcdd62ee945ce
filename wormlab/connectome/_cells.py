"""Cell names and classes: the 302 hermaphrodite neurons and the 95 body-wall muscles."""

from __future__ import annotations

import re

from cect import Cells

NEURONS: tuple[str, ...] = tuple(Cells.PREFERRED_HERM_NEURON_NAMES)  # 302, alphabetical
MUSCLES: tuple[str, ...] = tuple(Cells.BODY_WALL_MUSCLE_NAMES)  # 95: MDL/MDR/MVL 01-24, MVR 01-24 minus MVL24
assert len(NEURONS) == 302 and len(MUSCLES) == 95

# Classes whose members differ by a dorsal/ventral letter before the L/R letter (WormAtlas).
_DV_CLASSES = {"CEP", "IL1", "IL2", "OLQ", "RMD", "RME", "SAA", "SAB", "SIA", "SIB", "SMB",
               "SMD", "URA", "URY"}
_VNC = re.compile(r"^(AS|DA|DB|DD|VA|VB|VC|VD)\d{1,2}$")
_SIM = {"Sensory": "sensory", "Interneuron": "inter", "Motorneuron": "motor"}
_NAMES = set(NEURONS)


def neuron_class(name: str) -> str:
    """Class of a neuron: AVAL/AVAR -> AVA, SMDDL -> SMD, DB1 -> DB, RMEV -> RME."""
    m = _VNC.match(name)
    if m:
        return m.group(1)
    stem = name
    if stem[-1] in "LR" and (stem[:-1] + ("R" if stem[-1] == "L" else "L")) in _NAMES:
        stem = stem[:-1]
    if stem[-1] in "DV" and stem[:-1] in _DV_CLASSES:
        stem = stem[:-1]
    return stem


def neuron_type(name: str) -> str:
    """'sensory', 'inter', 'motor' or 'other' (cect's provisional S/I/M class; CAN is 'other')."""
    return _SIM.get(Cells.get_SIM_class(name), "other")


def muscle_info(name: str) -> tuple[str, str, int]:
    """(side 'dorsal'|'ventral', 'left'|'right', row 1..24) of a body-wall muscle, e.g. MDL07."""
    m = re.fullmatch(r"M([DV])([LR])(\d{2})", name)
    if not m:
        raise ValueError(f"{name!r} is not a body-wall muscle name (expected e.g. MDL07)")
    return ("dorsal" if m.group(1) == "D" else "ventral",
            "left" if m.group(2) == "L" else "right", int(m.group(3)))
