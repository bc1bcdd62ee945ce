"""A 2-D circular arena (an agar plate) with one stimulus field per modality (issue 18 item 3).

Positions are um in the plate frame (origin at the plate centre, x to the right); field
parameters are given in mm, the scale of a plate. Each modality has its own unit, checked:

==============  ======  =====================================================================
modality        unit    meaning
==============  ======  =====================================================================
``nacl``        mM      NaCl concentration in the agar (Bargmann & Horvitz 1991 used radial
                        gradients spotted into agar; Luo et al. 2014 used 25-75 mM ramps)
``odour``       uM      attractant concentration in model units of micromolar; point-source
                        odour gradients in the assay (1 ul of a 1:100 dilution, Bargmann et al.
                        1993) are in the gas phase and were never measured, so only the shape
                        (peak, decay) of this field is meaningful, not its absolute value
``temperature`` degC    agar surface temperature (Hedgecock & Russell 1975; Mori & Ohshima
                        1995 radial gradients of ~17-25 degC)
==============  ======  =====================================================================

A field is a sum of components (registry :data:`KINDS`): ``constant``, ``linear`` (a gradient),
``gaussian`` (a peak over a background), ``step`` (a half-plane); each may be switched on or off
in time (``t_on_s`` / ``t_off_s``) for step protocols. Concentrations can never be negative
anywhere on the plate and temperatures stay within 0-40 degC (both checked over the whole disk
at construction); a Gaussian peak must lie on the plate.

File format (YAML), see ``wormlab/loop/arenas/*.yml`` and docs/sensory.md "## Arena"::

    arena: {name: nacl_local, radius_mm: 5.0, description: "..."}
    fields:
      nacl:
        unit: mM
        components:
          - {kind: linear, value_at_centre: 50.0, slope_per_mm: 5.0, direction_deg: 0.0}
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

MODALITIES: dict[str, str] = {"nacl": "mM", "odour": "uM", "temperature": "degC"}
"""Modality -> the one unit it is given in."""

TEMPERATURE_RANGE_DEGC = (0.0, 40.0)  # agar stays liquid-free and worms alive well inside this
MAX_RADIUS_MM = 75.0  # a 15 cm plate; the 9 cm Bargmann plate is 45 mm
_CONCENTRATION = ("nacl", "odour")


class ArenaError(ValueError):
    """An arena definition or a sampled position is invalid (the message names which)."""


def _finite(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ArenaError(f"{where} must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ArenaError(f"{where} must be finite, got {v!r}")
    return v


def _point(v: Any, where: str) -> tuple[float, float]:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ArenaError(f"{where} must be a pair [x, y] in mm, got {v!r}")
    return (_finite(v[0], f"{where}[0]"), _finite(v[1], f"{where}[1]"))


@dataclass(frozen=True, kw_only=True)
class _Component:
    """Shared part of all field components: an optional on/off window in time."""

    t_on_s: float | None = None
    t_off_s: float | None = None
    kind: ClassVar[str] = ""
    nonneg: ClassVar[tuple[str, ...]] = ()  # parameters that may not be negative in a concentration

    def __post_init__(self):
        for f in dataclasses.fields(self):  # points given as lists become (hashable) tuples
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))

    def check(self, where: str, radius_mm: float, concentration: bool) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, tuple):
                _point(list(v), f"{where}.{f.name}")
            else:
                _finite(v, f"{where}.{f.name}")
            if concentration and f.name in self.nonneg and v < 0:
                raise ArenaError(f"{where}.{f.name}={v} is negative; a concentration cannot be")
        if self.t_on_s is not None and self.t_off_s is not None and self.t_off_s <= self.t_on_s:
            raise ArenaError(f"{where}: t_off_s={self.t_off_s} must be after t_on_s={self.t_on_s}")

    def active(self, t_s, xp):
        """1.0 where the component is on at ``t_s`` (scalar or (B,)), else 0.0."""
        on = 1.0
        if self.t_on_s is not None:
            on = on * (t_s >= self.t_on_s)
        if self.t_off_s is not None:
            on = on * (t_s < self.t_off_s)
        return on

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d


@dataclass(frozen=True, kw_only=True)
class Constant(_Component):
    """A uniform value."""

    value: float = 0.0
    kind: ClassVar[str] = "constant"
    nonneg: ClassVar[tuple[str, ...]] = ("value",)

    def __call__(self, x_mm, y_mm, xp):
        return x_mm * 0.0 + self.value


@dataclass(frozen=True, kw_only=True)
class Linear(_Component):
    """``value_at_centre + slope_per_mm * (distance along direction_deg)``; rises towards
    ``direction_deg`` (0 = +x, 90 = +y)."""

    value_at_centre: float = 0.0
    slope_per_mm: float = 0.0
    direction_deg: float = 0.0
    kind: ClassVar[str] = "linear"
    nonneg: ClassVar[tuple[str, ...]] = ("value_at_centre", "slope_per_mm")

    def __call__(self, x_mm, y_mm, xp):
        a = math.radians(self.direction_deg)
        return self.value_at_centre + self.slope_per_mm * (math.cos(a) * x_mm + math.sin(a) * y_mm)


@dataclass(frozen=True, kw_only=True)
class Gaussian(_Component):
    """``background + peak * exp(-r^2 / (2 sigma^2))`` around ``centre_mm``."""

    peak: float = 0.0
    centre_mm: tuple[float, float] = (0.0, 0.0)
    sigma_mm: float = 1.0
    background: float = 0.0
    kind: ClassVar[str] = "gaussian"
    nonneg: ClassVar[tuple[str, ...]] = ("peak", "background")

    def check(self, where, radius_mm, concentration):
        super().check(where, radius_mm, concentration)
        if self.sigma_mm <= 0:
            raise ArenaError(f"{where}.sigma_mm={self.sigma_mm} must be > 0")
        r = math.hypot(*self.centre_mm)
        if r > radius_mm:
            raise ArenaError(f"{where}.centre_mm={list(self.centre_mm)} is outside the arena "
                             f"({r:.3g} mm from the centre, radius {radius_mm} mm)")

    def __call__(self, x_mm, y_mm, xp):
        cx, cy = self.centre_mm
        r2 = (x_mm - cx) ** 2 + (y_mm - cy) ** 2
        return self.background + self.peak * xp.exp(-r2 / (2.0 * self.sigma_mm**2))


@dataclass(frozen=True, kw_only=True)
class Step(_Component):
    """A half-plane: ``high`` on the side ``direction_deg`` points to from the boundary line
    through ``at_mm``, ``low`` on the other; ``width_mm`` > 0 smooths the edge (logistic of
    that scale, so gradients through the field are non-zero), 0 is a sharp edge."""

    low: float = 0.0
    high: float = 0.0
    at_mm: tuple[float, float] = (0.0, 0.0)
    direction_deg: float = 0.0
    width_mm: float = 0.0
    kind: ClassVar[str] = "step"
    nonneg: ClassVar[tuple[str, ...]] = ("low", "high")

    def check(self, where, radius_mm, concentration):
        super().check(where, radius_mm, concentration)
        if self.width_mm < 0:
            raise ArenaError(f"{where}.width_mm={self.width_mm} must be >= 0")
        r = math.hypot(*self.at_mm)
        if r > radius_mm:
            raise ArenaError(f"{where}.at_mm={list(self.at_mm)} is outside the arena "
                             f"({r:.3g} mm from the centre, radius {radius_mm} mm)")

    def __call__(self, x_mm, y_mm, xp):
        a = math.radians(self.direction_deg)
        d = math.cos(a) * (x_mm - self.at_mm[0]) + math.sin(a) * (y_mm - self.at_mm[1])
        if self.width_mm > 0:
            s = 1.0 / (1.0 + xp.exp(-d / self.width_mm))
        else:
            s = (d >= 0) * 1.0
        return self.low + (self.high - self.low) * s


KINDS: dict[str, type[_Component]] = {c.kind: c for c in (Constant, Linear, Gaussian, Step)}
"""Field component registry: ``kind`` name -> class."""


@dataclass(frozen=True)
class Field:
    """One modality's field: a unit and a sum of components (:data:`KINDS`)."""

    modality: str
    unit: str
    components: tuple[_Component, ...]

    def value(self, x_mm, y_mm, t_s, xp):
        out = x_mm * 0.0
        for c in self.components:
            out = out + c.active(t_s, xp) * c(x_mm, y_mm, xp)
        return out


def _disk_grid(radius_mm: float, n: int = 81) -> tuple[np.ndarray, np.ndarray]:
    """Points covering the disk: a square grid inside it plus 360 points on the rim."""
    g = np.linspace(-radius_mm, radius_mm, n)
    X, Y = np.meshgrid(g, g)
    keep = X**2 + Y**2 <= radius_mm**2
    a = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    return (np.concatenate([X[keep], radius_mm * np.cos(a), [0.0]]),
            np.concatenate([Y[keep], radius_mm * np.sin(a), [0.0]]))


@dataclass(frozen=True)
class Arena:
    """A circular plate of ``radius_mm`` centred at the origin, with fields per modality.

    Build it from a file (:func:`load_arena`), a dict (:meth:`from_dict`) or directly::

        Arena(radius_mm=5.0, fields=(Field("nacl", "mM", (Linear(value_at_centre=50,
              slope_per_mm=5),)),))

    Every parameter is checked at construction (:class:`ArenaError` names the field, component
    and value).
    """

    radius_mm: float
    fields: tuple[Field, ...] = ()
    name: str = "arena"
    description: str = ""
    switch_times_s: tuple[float, ...] = field(init=False, default=())

    def __post_init__(self):
        r = _finite(self.radius_mm, "arena.radius_mm")
        if not 0 < r <= MAX_RADIUS_MM:
            raise ArenaError(f"arena.radius_mm={self.radius_mm} must be in (0, {MAX_RADIUS_MM}]")
        if isinstance(self.fields, dict):  # accept {modality: Field} for convenience
            object.__setattr__(self, "fields", tuple(self.fields.values()))
        object.__setattr__(self, "fields", tuple(self.fields))
        seen = set()
        times = set()
        for f in self.fields:
            if not isinstance(f, Field):
                raise ArenaError(f"arena.fields must hold Field objects, got {type(f).__name__}")
            where = f"fields.{f.modality}"
            if f.modality not in MODALITIES:
                raise ArenaError(f"unknown modality {f.modality!r}; valid: {list(MODALITIES)}")
            if f.modality in seen:
                raise ArenaError(f"{where} is defined twice")
            seen.add(f.modality)
            if f.unit != MODALITIES[f.modality]:
                raise ArenaError(f"{where}.unit={f.unit!r} is not the unit of {f.modality}; "
                                 f"give it in {MODALITIES[f.modality]!r}")
            if not f.components:
                raise ArenaError(f"{where}.components is empty")
            for i, c in enumerate(f.components):
                if not isinstance(c, _Component):
                    raise ArenaError(f"{where}.components[{i}] is not a field component")
                c.check(f"{where}.components[{i}]", r, f.modality in _CONCENTRATION)
                times.update(t for t in (c.t_on_s, c.t_off_s) if t is not None)
        object.__setattr__(self, "switch_times_s", tuple(sorted(times)))
        self._check_range()

    def _check_range(self) -> None:
        """Values over the whole disk, at every distinct time window, within the physical range."""
        x, y = _disk_grid(self.radius_mm)
        ts = [0.0, *self.switch_times_s, *(t - 1e-9 for t in self.switch_times_s)]
        for f in self.fields:
            # the extremes of a ramp lie on the rim along its direction, of a peak at its centre:
            # add those points exactly so no grid spacing can miss them
            ex, ey = [x], [y]
            for c in f.components:
                if isinstance(c, Linear):
                    a = math.radians(c.direction_deg)
                    ex.append(self.radius_mm * np.array([math.cos(a), -math.cos(a)]))
                    ey.append(self.radius_mm * np.array([math.sin(a), -math.sin(a)]))
                elif isinstance(c, Gaussian):
                    ex.append(np.array([c.centre_mm[0]]))
                    ey.append(np.array([c.centre_mm[1]]))
            x, y = np.concatenate(ex), np.concatenate(ey)
            for t in ts:
                v = f.value(x, y, t, np)
                i = int(np.argmin(v))
                j = int(np.argmax(v))
                at = f"at ({x[i]:.3g}, {y[i]:.3g}) mm, t={t:g} s"
                if f.modality in _CONCENTRATION and v[i] < -1e-9:
                    raise ArenaError(f"fields.{f.modality} is negative ({v[i]:.4g} {f.unit}) "
                                     f"{at}; a concentration cannot be")
                if f.modality == "temperature":
                    lo, hi = TEMPERATURE_RANGE_DEGC
                    if v[i] < lo or v[j] > hi:
                        bad = v[i] if v[i] < lo else v[j]
                        k = i if v[i] < lo else j
                        raise ArenaError(
                            f"fields.temperature reaches {bad:.4g} degC at ({x[k]:.3g}, "
                            f"{y[k]:.3g}) mm, outside {lo}-{hi} degC (is it in degC?)")

    # ---- the public surface -------------------------------------------------------------
    @property
    def radius_um(self) -> float:
        return self.radius_mm * 1000.0

    @property
    def units(self) -> dict[str, str]:
        """``{modality: unit}`` of the fields present."""
        return {f.modality: f.unit for f in self.fields}

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(f.modality for f in self.fields)

    def get_field(self, modality: str) -> Field:
        for f in self.fields:
            if f.modality == modality:
                return f
        raise KeyError(f"arena {self.name!r} has no {modality!r} field; it has "
                       f"{list(self.modalities)}")

    def inside(self, xy_um) -> np.ndarray:
        """(B,) bool: the positions (B, 2) um that lie on the plate (rim included)."""
        xy = _as_xy(xy_um, "inside")
        xy = xy.detach().cpu().numpy() if hasattr(xy, "detach") else xy
        return (xy**2).sum(-1) <= self.radius_um**2 * (1 + 1e-12)

    def sample(self, xy_um, t_s=0.0, *, clip: bool = False) -> dict:
        """Field values at positions ``xy_um`` (B, 2) um and time ``t_s`` (scalar or (B,)).

        NumPy in, NumPy out; torch in, torch out (differentiable in the positions).

        Returns:
            ``{modality: (B,)}`` in each modality's unit (:attr:`units`).

        Raises:
            ArenaError: a position outside the plate (naming the first such member) unless
                ``clip`` (then outside points are moved radially onto the rim), or non-finite.
        """
        xy = _as_xy(xy_um, "sample")
        is_t = hasattr(xy, "detach")
        if is_t:
            import torch as xp
        else:
            xp = np
        r2 = (xy**2).sum(-1)
        out_ = r2 > self.radius_um**2 * (1 + 1e-12)
        if bool(out_.any()):
            if not clip:
                b = int(np.flatnonzero(out_.detach().cpu().numpy() if is_t else out_)[0])
                p = xy[b].tolist()
                raise ArenaError(
                    f"sample: member {b} at ({p[0]:.1f}, {p[1]:.1f}) um is outside arena "
                    f"{self.name!r} (radius {self.radius_um:.0f} um; "
                    f"{int(out_.sum())} of {len(xy)} outside); pass clip=True to project onto "
                    "the rim")
            scale = xp.sqrt(xp.clip(r2, self.radius_um**2, None)) / self.radius_um
            xy = xy / scale[:, None]
        if is_t and not isinstance(t_s, (int, float)):
            t = xp.as_tensor(t_s, dtype=xy.dtype)
        else:
            t = t_s if isinstance(t_s, (int, float)) else np.asarray(t_s, dtype=float)
        if not isinstance(t, (int, float)):
            if t.ndim not in (0, 1) or (t.ndim == 1 and t.shape[0] != xy.shape[0]):
                raise ArenaError(f"sample: t_s has shape {tuple(t.shape)}; expected a scalar or "
                                 f"({xy.shape[0]},)")
        x_mm, y_mm = xy[:, 0] / 1000.0, xy[:, 1] / 1000.0
        return {f.modality: f.value(x_mm, y_mm, t, xp) for f in self.fields}

    def peak_um(self, modality: str, t_s: float = 0.0) -> np.ndarray:
        """(2,) um: where ``modality`` is highest on the plate at ``t_s`` (a Gaussian centre
        exactly, else the best of a 201 x 201 grid and the rim)."""
        f = self.get_field(modality)
        x, y = _disk_grid(self.radius_mm, 201)
        cand = [c.centre_mm for c in f.components if isinstance(c, Gaussian)]
        if cand:
            x = np.concatenate([x, [c[0] for c in cand]])
            y = np.concatenate([y, [c[1] for c in cand]])
        v = f.value(x, y, t_s, np)
        i = int(np.argmax(v))
        return np.array([x[i], y[i]]) * 1000.0

    def to_dict(self) -> dict:
        """The file format as a dict (:func:`arena_from_dict` reads it back)."""
        return {"arena": {"name": self.name, "radius_mm": self.radius_mm,
                          "description": self.description},
                "fields": {f.modality: {"unit": f.unit,
                                        "components": [c.to_dict() for c in f.components]}
                           for f in self.fields}}


def _as_xy(xy_um, what: str):
    if hasattr(xy_um, "detach"):
        xy = xy_um if xy_um.is_floating_point() else xy_um.double()
        finite = bool(xy.isfinite().all()) if xy.numel() else True
    else:
        try:
            xy = np.asarray(xy_um, dtype=float)
        except (TypeError, ValueError):
            raise ArenaError(f"{what}: positions are not numeric") from None
        finite = bool(np.isfinite(xy).all())
    if xy.ndim != 2 or xy.shape[-1] != 2:
        raise ArenaError(f"{what}: positions must have shape (B, 2) in um, got "
                         f"{tuple(xy.shape)}")
    if not finite:
        raise ArenaError(f"{what}: positions contain NaN or inf")
    return xy


# ---- dict / file format -------------------------------------------------------------------
_TOP = ("arena", "fields")
_POINTS = ("centre_mm", "at_mm")
_ARENA = ("name", "radius_mm", "description")
_FIELD = ("unit", "components")


def _keys(d: Any, valid, where: str) -> dict:
    if not isinstance(d, dict):
        raise ArenaError(f"{where} must be a mapping, got {type(d).__name__}")
    bad = sorted(map(str, set(d) - set(valid)))
    if bad:
        raise ArenaError(f"unknown key(s) {bad} in {where}; valid: {list(valid)}")
    return d


def arena_from_dict(doc: Any, where: str = "arena") -> Arena:
    """Build and validate an :class:`Arena` from the file format (a dict).

    Raises :class:`ArenaError` whose message starts with ``where`` (the file path when read
    from a file) and names the key and value at fault.
    """
    try:
        return _from_dict(doc)
    except ArenaError as exc:
        raise ArenaError(f"{where}: {exc}") from None


def _from_dict(doc: Any) -> Arena:
    doc = _keys(doc, _TOP, "the top level")
    for k in _TOP:
        if k not in doc:
            raise ArenaError(f"missing top-level key {k!r}")
    a = _keys(doc["arena"], _ARENA, "arena")
    if "radius_mm" not in a:
        raise ArenaError("arena.radius_mm is missing")
    fields_doc = doc["fields"]
    if not isinstance(fields_doc, dict) or not fields_doc:
        raise ArenaError("fields must be a non-empty mapping {modality: {unit, components}}")
    fields = []
    for mod, fd in fields_doc.items():
        if mod not in MODALITIES:
            raise ArenaError(f"unknown modality fields.{mod}; valid: {list(MODALITIES)}")
        fd = _keys(fd, _FIELD, f"fields.{mod}")
        if "unit" not in fd:
            raise ArenaError(f"fields.{mod}.unit is missing (give {MODALITIES[mod]!r})")
        comps_doc = fd.get("components")
        if not isinstance(comps_doc, list) or not comps_doc:
            raise ArenaError(f"fields.{mod}.components must be a non-empty list")
        comps = []
        for i, cd in enumerate(comps_doc):
            where = f"fields.{mod}.components[{i}]"
            if not isinstance(cd, dict) or "kind" not in cd:
                raise ArenaError(f"{where} must be a mapping with a 'kind' "
                                 f"({list(KINDS)})")
            kind = cd["kind"]
            if kind not in KINDS:
                raise ArenaError(f"{where}.kind={kind!r}; valid: {list(KINDS)}")
            cls = KINDS[kind]
            names = [f.name for f in dataclasses.fields(cls)]
            _keys(cd, ["kind", *names], where)
            kw = {}
            for f in dataclasses.fields(cls):
                if f.name not in cd:
                    continue
                v = cd[f.name]
                if f.name in _POINTS:
                    kw[f.name] = _point(v, f"{where}.{f.name}")
                elif f.name in ("t_on_s", "t_off_s") and v is None:
                    kw[f.name] = None
                else:
                    kw[f.name] = _finite(v, f"{where}.{f.name}")
            comps.append(cls(**kw))
        unit = fd["unit"]
        if not isinstance(unit, str):
            raise ArenaError(f"fields.{mod}.unit={unit!r} must be a string")
        fields.append(Field(mod, unit, tuple(comps)))
    name = a.get("name", "arena")
    desc = a.get("description", "") or ""
    if not isinstance(name, str) or not isinstance(desc, str):
        raise ArenaError("arena.name and arena.description must be strings")
    return Arena(radius_mm=_finite(a["radius_mm"], "arena.radius_mm"), fields=tuple(fields),
                 name=name, description=desc)


def load_arena(path: str | Path) -> Arena:
    """Read and validate an arena YAML file (format: module docstring, docs/sensory.md)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"arena file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ArenaError(f"{path}: not a readable YAML file ({exc})") from None
    return arena_from_dict(doc, where=str(path))


def save_arena(arena: Arena, path: str | Path) -> Path:
    """Write ``arena`` as YAML (atomically); :func:`load_arena` reads back an equal arena."""
    import yaml

    from wormlab.runs import atomic_path

    path = Path(path)
    text = yaml.safe_dump(arena.to_dict(), sort_keys=False, default_flow_style=None)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def plot_arena(arena: Arena, tracks_um=None, ax=None, *, modality: str | None = None,
               t_s: float = 0.0, n: int = 201, title: str | None = None):
    """Image of one field (default: the first) over the plate, with tracks (T, B, 2) um.

    Tracks are drawn in mm with a dot at the start and a cross at the end. Returns the axes.
    Label synthetic tracks as such through ``title``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    mod = modality or arena.modalities[0]
    f = arena.get_field(mod)
    R = arena.radius_mm
    g = np.linspace(-R, R, n)
    X, Y = np.meshgrid(g, g)
    V = f.value(X, Y, t_s, np)
    V = np.where(X**2 + Y**2 <= R**2, V, np.nan)
    im = ax.imshow(V, extent=(-R, R, -R, R), origin="lower", cmap="viridis")
    plt.colorbar(im, ax=ax, label=f"{mod} ({f.unit})", fraction=0.046)
    a = np.linspace(0, 2 * np.pi, 200)
    ax.plot(R * np.cos(a), R * np.sin(a), "k-", lw=1)
    if tracks_um is not None:
        tr = np.asarray(tracks_um.detach().cpu() if hasattr(tracks_um, "detach") else tracks_um,
                        dtype=float)
        if tr.ndim == 2:
            tr = tr[:, None]
        if tr.ndim != 3 or tr.shape[-1] != 2:
            raise ArenaError(f"plot_arena: tracks must be (T, B, 2) um, got {tr.shape}")
        tr = tr / 1000.0
        for b in range(tr.shape[1]):
            ax.plot(tr[:, b, 0], tr[:, b, 1], "w-", lw=0.8, alpha=0.8)
            ax.plot(tr[0, b, 0], tr[0, b, 1], "wo", ms=3)
            ax.plot(tr[-1, b, 0], tr[-1, b, 1], "rx", ms=4)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_aspect("equal")
    ax.set_title(title or f"{arena.name}: {mod} at t = {t_s:g} s")
    return ax
