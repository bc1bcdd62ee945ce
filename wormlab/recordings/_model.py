"""The recording data model: one worm's calcium traces with names, time, stimuli and states."""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Relative tolerance between ``1/fps`` and the median frame interval of ``time_s``.
FPS_RTOL = 0.05


class RecordingError(ValueError):
    """A recording, or a file that should hold one, is malformed (the message names the problem)."""


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Stimulus:
    """One stimulus channel: a name, an optional concentration and its on/off intervals.

    Args:
        name: what was delivered, e.g. ``"CuSO4"``, ``"O2"``, ``"food"``.
        intervals_s: ``((on, off), ...)`` in seconds on the recording's clock (``time_s``);
            a frame at time ``t`` is "on" when ``on <= t < off`` for some interval.
        concentration: amount in ``unit`` (``None`` when not applicable).
        unit: unit of ``concentration`` (default ``"mM"``).
    """

    name: str
    intervals_s: tuple[tuple[float, float], ...] = ()
    concentration: float | None = None
    unit: str = "mM"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise RecordingError(f"stimulus name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "name", self.name.strip())
        try:
            ivs = tuple((float(a), float(b)) for a, b in self.intervals_s)
        except (TypeError, ValueError) as exc:
            raise RecordingError(
                f"stimulus {self.name!r}: intervals_s must be (on, off) pairs of seconds ({exc})"
            ) from exc
        for on, off in ivs:
            if not (math.isfinite(on) and math.isfinite(off)) or off <= on:
                raise RecordingError(
                    f"stimulus {self.name!r}: interval ({on}, {off}) s must be finite with off > on"
                )
        ivs = tuple(sorted(ivs))
        for (_, off0), (on1, _) in zip(ivs, ivs[1:]):
            if on1 < off0:
                raise RecordingError(f"stimulus {self.name!r}: intervals overlap near {on1} s")
        object.__setattr__(self, "intervals_s", ivs)
        if self.concentration is not None:
            c = float(self.concentration)
            if not math.isfinite(c) or c < 0:
                raise RecordingError(f"stimulus {self.name!r}: concentration {c} is not >= 0")
            object.__setattr__(self, "concentration", c)

    @property
    def label(self) -> str:
        """Display name, e.g. ``"10mM CuSO4"`` (the seed's format) or just the name."""
        if self.concentration is None:
            return self.name
        return f"{self.concentration:g}{self.unit} {self.name}"

    def mask(self, time_s: np.ndarray) -> np.ndarray:
        """Per-frame on/off: ``(T,)`` bool for frame times ``time_s`` (seconds)."""
        t = np.asarray(time_s, dtype=float)
        out = np.zeros(t.shape, dtype=bool)
        for on, off in self.intervals_s:
            out |= (t >= on) & (t < off)
        return out

    @classmethod
    def from_mask(
        cls,
        name: str,
        mask: np.ndarray,
        time_s: np.ndarray,
        concentration: float | None = None,
        unit: str = "mM",
    ) -> Stimulus:
        """Build a stimulus from a per-frame boolean mask (intervals end at the next frame time)."""
        m = np.asarray(mask, dtype=bool)
        t = np.asarray(time_s, dtype=float)
        if m.shape != t.shape:
            raise RecordingError(f"stimulus {name!r}: mask shape {m.shape} != time shape {t.shape}")
        dt_last = float(t[-1] - t[-2]) if t.size > 1 else 1.0
        edges = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
        starts = np.flatnonzero(edges == 1)
        stops = np.flatnonzero(edges == -1)
        t_ext = np.concatenate([t, [t[-1] + dt_last]])
        ivs = tuple((float(t_ext[a]), float(t_ext[b])) for a, b in zip(starts, stops))
        return cls(name, ivs, concentration, unit)


@dataclass(frozen=True, eq=False)
class Recording:
    """One worm's whole-brain calcium recording (immutable; arrays are read-only copies).

    Args:
        traces: ``(T, N)`` activity, float32 (ΔF/F or whatever ``signal`` says). Partial NaN
            gaps are allowed (see :meth:`fill_nan`); an all-NaN neuron or any inf is rejected.
        neuron_names: ``N`` identities (cect/NeuroPAL names such as ``"AVAL"``) or ``None``
            for unidentified ROIs; identified names are unique.
        time_s: ``(T,)`` frame times in seconds, strictly increasing.
        fps: nominal frame rate (Hz); must agree with the median frame interval of ``time_s``
            within :data:`FPS_RTOL`.
        roi_labels: ``N`` original ROI labels (default: the name, else the column number).
        stimuli: stimulus channels (see :class:`Stimulus`), unique labels.
        states: ``(T,)`` integer behaviour-state index into ``state_names``, ``-1`` = unlabelled.
        state_names: names of the behaviour states (e.g. Kato 2015: ``fwd``, ``rev1``, ...).
        behaviour: per-frame behaviour measurements, name -> ``(T,)`` or ``(T, k)`` array
            (e.g. Flavell 2023 ``velocity``; units in ``meta["behaviour_units"]``).
        dataset, worm_id, strain: identifiers (e.g. ``"kato2015"``, ``"0"``, ``"N2"``).
        signal: what ``traces`` holds (e.g. ``"dF/F bleach-corrected"``).
        provenance: where the numbers came from (file, pipeline, generator + seed).
        citation: paper to cite whenever this recording is used.
        synthetic: ``True`` for generated data (never for real recordings).
        ground_truth: for synthetic data, stimulus label -> names of neurons that respond to it.
        meta: further JSON-able facts.
    """

    traces: np.ndarray
    neuron_names: tuple[str | None, ...]
    time_s: np.ndarray
    fps: float
    roi_labels: tuple[str, ...] = ()
    stimuli: tuple[Stimulus, ...] = ()
    states: np.ndarray | None = None
    state_names: tuple[str, ...] = ()
    behaviour: Mapping[str, np.ndarray] = field(default_factory=dict)
    dataset: str = ""
    worm_id: str = ""
    strain: str = ""
    signal: str = ""
    provenance: str = ""
    citation: str = ""
    synthetic: bool = False
    ground_truth: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            x = np.asarray(self.traces)
        except Exception as exc:  # ragged lists and the like
            raise RecordingError(f"traces are not a numeric (T, N) array ({exc})") from exc
        if x.ndim != 2:
            raise RecordingError(f"traces must be 2-D (T frames, N neurons), got shape {x.shape}")
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.iscomplexobj(x):
            raise RecordingError(f"traces must be real numbers, got dtype {x.dtype}")
        T, N = x.shape
        if T < 2 or N < 1:
            raise RecordingError(f"traces need >= 2 frames and >= 1 neuron, got shape {x.shape}")
        x = x.astype(np.float32)
        if np.isinf(x).any():
            cols = sorted(set(np.nonzero(np.isinf(x))[1].tolist()))
            raise RecordingError(f"traces contain inf in neuron column(s) {cols[:10]}")
        all_nan = np.isnan(x).all(axis=0)

        names = tuple(self.neuron_names)
        if len(names) != N:
            raise RecordingError(f"{len(names)} neuron names for {N} trace columns")
        clean: list[str | None] = []
        for i, n in enumerate(names):
            if n is None:
                clean.append(None)
                continue
            if not isinstance(n, str):
                raise RecordingError(f"neuron name at column {i} must be str or None, got {n!r}")
            n = n.strip()
            clean.append(n or None)
        seen: dict[str, int] = {}
        dups = []
        for i, n in enumerate(clean):
            if n is None:
                continue
            if n in seen:
                dups.append(n)
            seen.setdefault(n, i)
        if dups:
            raise RecordingError(f"duplicate neuron names: {sorted(set(dups))}")
        labels = tuple(self.roi_labels) or tuple(
            n if n is not None else str(i) for i, n in enumerate(clean)
        )
        if len(labels) != N:
            raise RecordingError(f"{len(labels)} ROI labels for {N} trace columns")
        labels = tuple(str(s) for s in labels)
        if all_nan.any():
            bad = [labels[i] for i in np.flatnonzero(all_nan)[:10]]
            raise RecordingError(f"neuron(s) with only NaN values: {bad}")

        t = np.asarray(self.time_s, dtype=float).reshape(-1) if self.time_s is not None else None
        if t is None or t.shape != (T,):
            raise RecordingError(
                f"time_s must have one entry per frame ({T}), got "
                f"{None if t is None else np.asarray(self.time_s).shape}"
            )
        if not np.isfinite(t).all():
            raise RecordingError("time_s contains NaN or inf")
        dt = np.diff(t)
        if (dt <= 0).any():
            k = int(np.flatnonzero(dt <= 0)[0])
            raise RecordingError(f"time_s must increase strictly (frame {k + 1}: {t[k + 1]} s)")
        try:
            fps = float(self.fps)
        except (TypeError, ValueError) as exc:
            raise RecordingError(f"fps must be a number, got {self.fps!r}") from exc
        if not math.isfinite(fps) or fps <= 0:
            raise RecordingError(f"fps must be a positive finite number, got {fps}")
        med = float(np.median(dt))
        if abs(med * fps - 1.0) > FPS_RTOL:
            raise RecordingError(
                f"frame-rate/time mismatch: fps={fps:g} Hz but time_s has a median frame "
                f"interval of {med:g} s ({1 / med:g} Hz)"
            )

        stims = tuple(self.stimuli)
        for s in stims:
            if not isinstance(s, Stimulus):
                raise RecordingError(f"stimuli must be Stimulus objects, got {type(s).__name__}")
        slabels = [s.label for s in stims]
        if len(set(slabels)) != len(slabels):
            raise RecordingError(f"duplicate stimulus labels: {slabels}")

        snames = tuple(str(s) for s in self.state_names)
        states = None
        if self.states is not None:
            st = np.asarray(self.states)
            if st.shape != (T,):
                raise RecordingError(f"states must have shape ({T},), got {st.shape}")
            if st.size and not np.issubdtype(st.dtype, np.integer):
                if np.issubdtype(st.dtype, np.floating) and np.all(st == np.round(st)):
                    st = st.astype(np.int64)
                else:
                    raise RecordingError(f"states must be integer indices, got dtype {st.dtype}")
            if not snames:
                raise RecordingError("states given without state_names")
            if st.min() < -1 or st.max() >= len(snames):
                raise RecordingError(
                    f"state indices must lie in [-1, {len(snames) - 1}], got "
                    f"[{st.min()}, {st.max()}]"
                )
            states = _readonly(st.astype(np.int16))
        if len(set(snames)) != len(snames) or any(not s for s in snames):
            raise RecordingError(f"state names must be unique and non-empty: {snames}")

        beh = {}
        for k, v in dict(self.behaviour).items():
            a = np.asarray(v)
            if a.ndim < 1 or a.shape[0] != T:
                raise RecordingError(f"behaviour {k!r} must have {T} frames first, got {a.shape}")
            beh[str(k)] = _readonly(a)
        gt = {str(k): tuple(str(n) for n in v) for k, v in dict(self.ground_truth).items()}

        set_(self, "traces", _readonly(x))
        set_(self, "neuron_names", tuple(clean))
        set_(self, "roi_labels", labels)
        set_(self, "time_s", _readonly(t))
        set_(self, "fps", fps)
        set_(self, "stimuli", stims)
        set_(self, "states", states)
        set_(self, "state_names", snames)
        set_(self, "behaviour", beh)
        set_(self, "ground_truth", gt)
        set_(self, "meta", dict(self.meta))
        set_(self, "synthetic", bool(self.synthetic))
        for attr in ("dataset", "worm_id", "strain", "signal", "provenance", "citation"):
            set_(self, attr, str(getattr(self, attr)))

    # ------------------------------------------------------------------ basic facts
    @property
    def n_frames(self) -> int:
        return int(self.traces.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.traces.shape[1])

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1] - self.time_s[0] + 1.0 / self.fps)

    @property
    def identified(self) -> list[int]:
        """Column indices of identified neurons (name is not ``None``)."""
        return [i for i, n in enumerate(self.neuron_names) if n is not None]

    @property
    def name(self) -> str:
        """Short display name; always says SYNTHETIC for generated data."""
        base = "/".join(p for p in (self.dataset, self.worm_id) if p) or "recording"
        return f"{base} (SYNTHETIC)" if self.synthetic else base

    def summary(self) -> str:
        """One paragraph describing the recording (for notebooks and reports)."""
        lines = [
            f"{self.name}: {self.n_frames} frames x {self.n_neurons} neurons "
            f"({len(self.identified)} identified) at {self.fps:.3g} Hz, {self.duration_s:.4g} s"
            + (f", strain {self.strain}" if self.strain else ""),
        ]
        if self.signal:
            lines.append(f"  signal: {self.signal}")
        if self.stimuli:
            lines.append("  stimuli: " + ", ".join(s.label for s in self.stimuli))
        if self.states is not None:
            counts = np.bincount(self.states[self.states >= 0], minlength=len(self.state_names))
            lines.append(
                "  states: " + ", ".join(f"{n}={c}" for n, c in zip(self.state_names, counts))
            )
        if self.behaviour:
            lines.append("  behaviour: " + ", ".join(self.behaviour))
        if self.synthetic:
            lines.append("  SYNTHETIC data" + (f": {self.provenance}" if self.provenance else ""))
        elif self.provenance:
            lines.append(f"  source: {self.provenance}")
        if self.citation:
            lines.append(f"  cite: {self.citation}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Recording({self.name!r}, T={self.n_frames}, N={self.n_neurons}, "
            f"fps={self.fps:.4g}, stimuli={len(self.stimuli)}, states={len(self.state_names)}, "
            f"synthetic={self.synthetic})"
        )

    def index(self, name: str) -> int:
        """Column of a neuron by identity (or ROI label); a clear error with suggestions."""
        for i, n in enumerate(self.neuron_names):
            if n == name:
                return i
        for i, n in enumerate(self.roi_labels):
            if n == name:
                return i
        known = [n for n in self.neuron_names if n is not None]
        close = difflib.get_close_matches(str(name), known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"neuron {name!r} is not in {self.name}{hint}")

    # ------------------------------------------------------------------ conditions
    def stimulus(self, label: str) -> Stimulus:
        for s in self.stimuli:
            if label in (s.label, s.name):
                return s
        raise KeyError(
            f"no stimulus {label!r} in {self.name}; have {[s.label for s in self.stimuli]}"
        )

    def stimulus_mask(self, label: str) -> np.ndarray:
        """``(T,)`` bool: frames during which stimulus ``label`` (label or name) is on."""
        return self.stimulus(label).mask(self.time_s)

    def state_mask(self, name: str) -> np.ndarray:
        """``(T,)`` bool: frames labelled with behaviour state ``name``."""
        if self.states is None:
            raise KeyError(f"{self.name} has no behaviour states")
        if name not in self.state_names:
            raise KeyError(f"no state {name!r} in {self.name}; have {list(self.state_names)}")
        return self.states == self.state_names.index(name)

    @property
    def state_labels(self) -> np.ndarray:
        """``(T,)`` state name per frame (``""`` where unlabelled)."""
        if self.states is None:
            return np.full(self.n_frames, "", dtype=object)
        names = np.array([*self.state_names, ""], dtype=object)
        return names[np.where(self.states >= 0, self.states, len(self.state_names))]

    def conditions(self, kind: str = "auto") -> dict[str, np.ndarray]:
        """Named per-frame conditions for selectivity analysis: label -> ``(T,)`` bool.

        ``kind``: ``"stimulus"``, ``"state"``, or ``"auto"`` (stimuli if any, else states).
        States that never occur are left out.
        """
        if kind not in ("auto", "stimulus", "state"):
            raise ValueError(f"kind must be auto, stimulus or state, got {kind!r}")
        if kind == "stimulus" or (kind == "auto" and self.stimuli):
            return {s.label: s.mask(self.time_s) for s in self.stimuli}
        if self.states is None:
            return {}
        out = {n: self.states == i for i, n in enumerate(self.state_names)}
        return {k: v for k, v in out.items() if v.any()}

    # ------------------------------------------------------------------ derived recordings
    def replace(self, **changes: Any) -> Recording:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def select(self, neurons: Iterable[int | str] | None = None, *, identified_only: bool = False):
        """A recording with a subset of neuron columns (by index, name or ROI label)."""
        if neurons is None:
            cols = self.identified if identified_only else list(range(self.n_neurons))
        else:
            cols = [n if isinstance(n, int | np.integer) else self.index(n) for n in neurons]
            if identified_only:
                cols = [c for c in cols if self.neuron_names[c] is not None]
        if not cols:
            raise RecordingError(f"selection from {self.name} is empty")
        keep = {self.neuron_names[c] for c in cols if self.neuron_names[c] is not None}
        gt = {k: tuple(n for n in v if n in keep) for k, v in self.ground_truth.items()}
        return self.replace(
            traces=self.traces[:, cols],
            neuron_names=tuple(self.neuron_names[c] for c in cols),
            roi_labels=tuple(self.roi_labels[c] for c in cols),
            ground_truth=gt,
        )

    def slice_frames(self, start: int | None = None, stop: int | None = None) -> Recording:
        """Frames ``start:stop`` (stimulus intervals keep their absolute times)."""
        sl = slice(start, stop)
        return self.replace(
            traces=self.traces[sl],
            time_s=self.time_s[sl],
            states=None if self.states is None else self.states[sl],
            behaviour={k: v[sl] for k, v in self.behaviour.items()},
        )

    def fill_nan(self) -> Recording:
        """Linearly interpolate partial NaN gaps per neuron (edges take the nearest value)."""
        x = np.array(self.traces, dtype=np.float32, copy=True)
        if not np.isnan(x).any():
            return self
        idx = np.arange(self.n_frames)
        for j in range(self.n_neurons):
            bad = np.isnan(x[:, j])
            if bad.any():
                x[bad, j] = np.interp(idx[bad], idx[~bad], x[~bad, j])
        return self.replace(traces=x, meta={**self.meta, "nan_filled": True})

    def to_tensor(self, dtype=None):
        """``(T, N)`` torch tensor of the traces (float32 by default)."""
        import torch

        return torch.as_tensor(np.array(self.traces), dtype=dtype or torch.float32)


def block_ids(mask: np.ndarray) -> np.ndarray:
    """Number the contiguous runs of equal values in a ``(T,)`` array: ``[0,0,1,1,1,2,...]``."""
    m = np.asarray(mask)
    if m.ndim != 1:
        raise ValueError(f"mask must be 1-D, got shape {m.shape}")
    if m.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.concatenate([[False], m[1:] != m[:-1]])
    return np.cumsum(change).astype(np.int64)


def require_names(rec: Recording, names: Sequence[str]) -> list[int]:
    """Column indices of ``names`` (each must be present)."""
    return [rec.index(n) for n in names]
