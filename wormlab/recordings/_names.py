"""Neuron names in recordings, checked against the connectome's 302 hermaphrodite neurons.

A misspelled identity (``AVAK``, ``aval``, ``RIM``) must not pass as a neuron that matches no
connectome row, and must not be silently renamed or dropped either: by default it is an error
that names the file, the column and close matches (difflib). ``unknown_names="unidentified"``
keeps the column as an unidentified ROI instead, with the text in ``roi_labels`` and the list in
``meta["unknown_names"]``. Unidentified ROIs (``None``) are never touched.
"""

from __future__ import annotations

import difflib
import re

from wormlab.recordings._model import Recording, RecordingError

#: Choices for the ``unknown_names`` option of every loader.
UNKNOWN_NAMES = ("error", "unidentified")

# Imaging pipelines zero-pad ventral-cord motor neurons (Kato 2015 ``VB02``, ``DB01``) where the
# connectome writes ``VB2``/``DB1``; wormlab.connectome.Connectome.index accepts both.
_PADDED = re.compile(r"^(AS|DA|DB|DD|VA|VB|VC|VD)0(\d)$")


def _neurons() -> frozenset[str]:
    from wormlab.connectome import NEURONS

    return frozenset(NEURONS)


def is_neuron(name: str) -> bool:
    """``True`` for one of the 302 connectome neurons (zero-padded ``VB02`` accepted)."""
    known = _neurons()
    if name in known:
        return True
    m = _PADDED.match(name)
    return bool(m) and (m.group(1) + m.group(2)) in known


def suggest(name: str, n: int = 3) -> list[str]:
    """Connectome neuron names close to ``name`` (case-insensitive difflib matches)."""
    known = sorted(_neurons())
    upper = {k.upper(): k for k in known}
    close = difflib.get_close_matches(str(name).upper(), list(upper), n=n, cutoff=0.6)
    return [upper[c] for c in close]


def check_names(rec: Recording, unknown_names: str = "error", where: str = "") -> Recording:
    """Validate ``rec.neuron_names`` against the connectome.

    Args:
        rec: a recording just read from a file.
        unknown_names: ``"error"`` (default): raise :class:`RecordingError` listing every
            unknown name with its column and suggestions; ``"unidentified"``: make those columns
            unidentified (``None``), keep the text in ``roi_labels`` and list the names in
            ``meta["unknown_names"]``.
        where: prefix for the message (the file).

    Returns:
        ``rec`` unchanged when every name is known, else the recording with those columns
        unidentified (``"unidentified"`` policy).
    """
    if unknown_names not in UNKNOWN_NAMES:
        raise ValueError(f"unknown_names must be one of {UNKNOWN_NAMES}, got {unknown_names!r}")
    bad = [(i, n) for i, n in enumerate(rec.neuron_names) if n is not None and not is_neuron(n)]
    if not bad:
        return rec
    if unknown_names == "error":
        parts = []
        for i, n in bad[:10]:
            close = suggest(n)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            parts.append(f"{n!r} in column {i}{hint}")
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        prefix = f"{where}: " if where else ""
        raise RecordingError(
            f"{prefix}{len(bad)} neuron name(s) are not C. elegans neurons of the connectome "
            f"(wormlab.connectome.NEURONS): {'; '.join(parts)}{more}. Fix the names, or pass "
            "unknown_names='unidentified' to keep those columns as unidentified ROIs"
        )
    cols = {i for i, _ in bad}
    names = tuple(None if i in cols else n for i, n in enumerate(rec.neuron_names))
    meta = {**rec.meta, "unknown_names": [n for _, n in bad]}
    return rec.replace(neuron_names=names, meta=meta)
