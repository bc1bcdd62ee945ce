"""Bounds for fitting: read from an editable YAML file, enforced by reparameterisation.

``load_bounds(path)`` reads ``parameter_bounds.yml`` (the shipped default:
``wormlab/fit/data/parameter_bounds.yml``: per parameter kind, with per-name overrides, units
and sources, OpenWorm DD017 where it states ranges). :class:`Bounded` holds one unconstrained
tensor ``z`` per fitted parameter and maps it into its bounds:

* finite ``[lo, hi]``: ``x = lo + (hi - lo) sigmoid(z)``; when ``lo > 0`` and ``hi / lo >= 100``
  (time constants 0.01..10,000 ms, rates) the same in log space, ``log x = log lo +
  (log hi - log lo) sigmoid(z)``, so a unit step of ``z`` is a relative change at any scale;
* half-open ``lo < x`` (concentrations): ``x = lo + softplus(z)``;
* ``abs`` kinds (gate slopes, the h-gate slope): the map applies to ``|x|`` and the sign of the
  starting value is kept.

Any optimiser step on ``z`` therefore gives a value inside the bounds. :func:`project` is the
alternative for optimisers that work on ``net.params`` directly: clamp into the bounds in place.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

DEFAULT_BOUNDS_PATH = Path(__file__).parent / "data" / "parameter_bounds.yml"
_FIELDS = {"lower", "upper", "open_lower", "abs", "unit", "source"}
# a value on an open bound, or exactly on a closed one, starts this close inside (fraction)
_EDGE = 1e-12


class BoundsError(ValueError):
    """A bounds file or a value that violates it; the message names the file, parameter and
    value."""


@dataclass(frozen=True)
class Bound:
    """Bounds of one parameter (or kind) in ``unit``; ``abs``: they apply to ``|x|``."""

    lower: float
    upper: float
    unit: str
    source: str = ""
    open_lower: bool = False
    abs: bool = False

    def contains(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise: is ``x`` inside (open lower bound where ``open_lower``)?"""
        a = x.abs() if self.abs else x
        low = a > self.lower if self.open_lower else a >= self.lower
        return low & (a <= self.upper)

    @property
    def transform(self) -> str:
        if math.isinf(self.upper):
            return "softplus"
        if self.lower > 0 and self.upper / self.lower >= 100:
            return "log-sigmoid"
        return "sigmoid"


@dataclass(frozen=True)
class BoundsTable:
    """Bounds by kind and by parameter name, as read by :func:`load_bounds`."""

    kinds: dict[str, Bound]
    parameters: dict[str, Bound]
    path: str = ""

    def for_param(self, net, name: str) -> Bound:
        """The bound of parameter ``name`` of ``net`` (override, else its kind's); checks the
        unit against the network's."""
        if name not in net.param_info:
            near = difflib.get_close_matches(name, list(net.param_info), n=3)
            raise BoundsError(f"unknown parameter {name!r}" +
                              (f"; did you mean {', '.join(near)}?" if near else ""))
        info = net.param_info[name]
        if name in self.parameters:
            b, where = self.parameters[name], f"parameters.{name}"
        elif info.kind in self.kinds:
            b, where = self.kinds[info.kind], f"kinds.{info.kind}"
        else:
            raise BoundsError(f"{self.path}: no bounds for parameter {name!r} (kind "
                              f"{info.kind!r}): add kinds.{info.kind} or parameters.{name}")
        if b.unit != info.unit:
            raise BoundsError(f"{self.path}: {where} is in {b.unit!r}, parameter {name!r} is in "
                              f"{info.unit!r}")
        return b

    def check(self, net, names=None, values: dict | None = None) -> None:
        """Raise :class:`BoundsError` naming the first parameter value outside its bounds."""
        for name in (names if names is not None else list(net.params)):
            b = self.for_param(net, name)
            x = (values or {}).get(name, net.params[name]).detach()
            bad = ~b.contains(x)
            if bool(bad.any()):
                i = int(torch.nonzero(bad.reshape(-1))[0])
                v = float(x.reshape(-1)[i])
                op = "<" if b.open_lower else "<="
                what = "|x|" if b.abs else "x"
                raise BoundsError(f"parameter {name!r}: value {v} at index {i} is outside its "
                                  f"bounds {b.lower} {op} {what} <= {b.upper} {b.unit} "
                                  f"({int(bad.sum())} values outside; {b.source})")


def _bound(entry, where: str, path: str) -> Bound:
    if not isinstance(entry, dict):
        raise BoundsError(f"{path}: {where} must be a mapping with lower/upper/unit, got "
                          f"{entry!r}")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise BoundsError(f"{path}: {where} has unknown fields {sorted(unknown)}; allowed: "
                          f"{sorted(_FIELDS)}")
    for k in ("lower", "upper", "unit"):
        if k not in entry:
            raise BoundsError(f"{path}: {where} lacks {k!r}")
    try:
        lo, hi = float(entry["lower"]), float(entry["upper"])
    except (TypeError, ValueError):
        raise BoundsError(f"{path}: {where}: lower/upper must be numbers, got "
                          f"{entry['lower']!r}, {entry['upper']!r}") from None
    if math.isnan(lo) or math.isnan(hi) or math.isinf(lo) or not lo < hi:
        raise BoundsError(f"{path}: {where}: need finite lower < upper, got {lo}, {hi}")
    b = Bound(lo, hi, str(entry["unit"]), str(entry.get("source", "")),
              bool(entry.get("open_lower", False)), bool(entry.get("abs", False)))
    if b.abs and lo < 0:
        raise BoundsError(f"{path}: {where}: abs bounds need lower >= 0, got {lo}")
    return b


def load_bounds(path: str | Path | None = None) -> BoundsTable:
    """Read a ``parameter_bounds.yml`` (default: the shipped one).

    Raises:
        FileNotFoundError: no file at ``path``.
        BoundsError: unreadable YAML, wrong version, an unknown kind or field, lower >= upper.
            (Unknown parameter names and unit mismatches are checked against a network by
            :meth:`BoundsTable.for_param`.)
    """
    import yaml

    from wormlab.circuit._mechanisms import BOUNDS

    path = Path(path) if path is not None else DEFAULT_BOUNDS_PATH
    if not path.exists():
        raise FileNotFoundError(f"bounds file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BoundsError(f"{path}: not readable YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise BoundsError(f"{path}: expected a mapping with 'version', 'kinds', 'parameters'")
    if doc.get("version") != 1:
        raise BoundsError(f"{path}: version {doc.get('version')!r}, expected 1")
    kinds_in = doc.get("kinds") or {}
    params_in = doc.get("parameters") or {}
    if not isinstance(kinds_in, dict) or not isinstance(params_in, dict):
        raise BoundsError(f"{path}: 'kinds' and 'parameters' must be mappings")
    kinds = {}
    for k, e in kinds_in.items():
        if k not in BOUNDS:
            near = difflib.get_close_matches(str(k), list(BOUNDS), n=3)
            raise BoundsError(f"{path}: unknown kind {k!r}" +
                              (f"; did you mean {', '.join(near)}?" if near else
                               f"; kinds: {sorted(BOUNDS)}"))
        kinds[k] = _bound(e, f"kinds.{k}", str(path))
    params = {str(k): _bound(e, f"parameters.{k}", str(path)) for k, e in params_in.items()}
    return BoundsTable(kinds, params, str(path))


def _as_table(bounds) -> BoundsTable:
    if isinstance(bounds, BoundsTable):
        return bounds
    return load_bounds(bounds)


def _logit(u: torch.Tensor) -> torch.Tensor:
    u = u.clamp(_EDGE, 1.0 - _EDGE)
    return torch.log(u) - torch.log1p(-u)


class Bounded(nn.Module):
    """Unconstrained parameters ``z`` for ``names`` of ``net``, mapped into their bounds.

    >>> b = Bounded(net, ["g_ca", "e_leak", "tau_n"])
    >>> opt = torch.optim.Adam(b.parameters(), lr=0.05)
    >>> res = circuit.simulate(net, stim, 60.0, params=b())   # b() -> {name: value}
    >>> b.write(net)                                          # copy the values into net

    Args:
        net: the :class:`wormlab.circuit.Network` whose current values start the fit (they must
            lie inside the bounds; a value exactly on a bound starts 1e-12 of the range inside).
        names: parameters to fit.
        bounds: a :class:`BoundsTable`, a path to a bounds YAML, or None (the shipped file).

    Raises:
        BoundsError: an unknown name, a unit mismatch, or a starting value outside its bounds.
    """

    def __init__(self, net, names, bounds=None):
        super().__init__()
        self.table = _as_table(bounds)
        names = list(names)
        if not names:
            raise BoundsError("Bounded: no parameter names given")
        self.names = names
        self.bound: dict[str, Bound] = {n: self.table.for_param(net, n) for n in names}
        self.table.check(net, names)
        self.sign: dict[str, torch.Tensor] = {}
        z = {}
        for n in names:
            x = net.params[n].detach().clone()
            b = self.bound[n]
            if b.abs:
                s = torch.where(x < 0, -1.0, 1.0).to(x.dtype)
                self.sign[n] = s
                x = x.abs()
            z[n] = nn.Parameter(self._inverse(b, x))
        self.z = nn.ParameterDict(z)

    @staticmethod
    def _forward(b: Bound, z: torch.Tensor) -> torch.Tensor:
        if b.transform == "softplus":
            return b.lower + torch.nn.functional.softplus(z)
        if b.transform == "log-sigmoid":
            a, c = math.log(b.lower), math.log(b.upper)
            return torch.exp(a + (c - a) * torch.sigmoid(z)).clamp(b.lower, b.upper)
        return b.lower + (b.upper - b.lower) * torch.sigmoid(z)

    @staticmethod
    def _inverse(b: Bound, x: torch.Tensor) -> torch.Tensor:
        if b.transform == "softplus":
            y = (x - b.lower).clamp_min(_EDGE)
            return y + torch.log(-torch.expm1(-y))
        if b.transform == "log-sigmoid":
            a, c = math.log(b.lower), math.log(b.upper)
            return _logit((torch.log(x) - a) / (c - a))
        return _logit((x - b.lower) / (b.upper - b.lower))

    def value(self, name: str) -> torch.Tensor:
        """The bounded physical value of ``name`` (differentiable in ``z``)."""
        x = self._forward(self.bound[name], self.z[name])
        return x * self.sign[name] if name in self.sign else x

    def forward(self) -> dict[str, torch.Tensor]:
        """``{name: value}`` for ``circuit.simulate(..., params=...)``."""
        return {n: self.value(n) for n in self.names}

    @torch.no_grad()
    def write(self, net) -> None:
        """Copy the current bounded values into ``net.params``."""
        for n in self.names:
            net.params[n].copy_(self.value(n).to(net.params[n].dtype))


@torch.no_grad()
def project(net, names=None, bounds=None) -> dict[str, int]:
    """Clamp ``names`` (default: every parameter) of ``net`` into their bounds, in place.

    Open lower bounds clamp to just above the bound (lower + 1e-12 of the range, or 1e-12 for a
    half-open one); ``abs`` kinds clamp ``|x|`` and keep the sign. Returns ``{name: number of
    values changed}``.
    """
    table = _as_table(bounds)
    out = {}
    for n in (names if names is not None else list(net.params)):
        b = table.for_param(net, n)
        p = net.params[n]
        lo = b.lower
        if b.open_lower:
            span = 1.0 if math.isinf(b.upper) else b.upper - b.lower
            lo = b.lower + _EDGE * span
        if b.abs:
            s = torch.where(p < 0, -1.0, 1.0).to(p.dtype)
            new = s * p.abs().clamp(lo, b.upper)
        else:
            new = p.clamp(lo, b.upper)
        out[n] = int((new != p).sum())
        p.copy_(new)
    return out
