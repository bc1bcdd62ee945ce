"""The parameter registry: one versioned JSON file with every parameter's values, unit and
provenance, which the circuit loads (issue 16 item 8).

Format (``"format": "wormlab.fit.params"``, ``"version": 1``)::

    {"format": "wormlab.fit.params", "version": 1,
     "network": {NetworkConfig fields: source, nml_path, share, cells, mechanisms, ...},
     "parameters": {
        "g_ca": {"values": [3.0, 0.7], "shape": [2], "unit": "mS/cm^2",
                 "provenance": "fitted", "source": "c302 C1 (NeuroML)",
                 "fitted": {"loss": 0.12, "data": "kato2015 worm 1", "date": "2026-12-07",
                            "run_id": "adam-01"}},
        "e_leak": {"values": [-50.0, -50.0], "shape": [2], "unit": "mV",
                   "provenance": "c302-default", "source": "c302 C1 (NeuroML)"}, ...}}

Provenance tags: ``c302-default`` | ``measured`` | ``mechanistic-default`` | ``fitted`` (needs
``loss``, ``data``, ``date``, ``run_id``) | ``ml`` (a learned component).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from pathlib import Path

import torch

FORMAT = "wormlab.fit.params"
VERSION = 1
FITTED_FIELDS = ("loss", "data", "date", "run_id")


class ParamsFileError(ValueError):
    """A parameter file that cannot be loaded; the message names the file and the parameter."""


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, str | int | float | bool) or x is None:
        return x
    return str(x)


def _network_section(net) -> dict:
    from wormlab.circuit import NetworkConfig

    cfg = getattr(net, "config", None)
    if cfg is None:
        cfg = NetworkConfig(share=net.share, cells=tuple(net.names))
    d = dataclasses.asdict(cfg)
    d["cells"] = list(d["cells"])
    d["mechanisms"] = list(d["mechanisms"])
    return d


def save_params(net, path: str | Path) -> Path:
    """Write every parameter of ``net`` (values, shape, unit, provenance; ``fitted`` details)
    and the network's build config to ``path`` as JSON, atomically."""
    from wormlab.runs import atomic_path

    params = {}
    for k, p in net.params.items():
        info = net.param_info[k]
        prov = dict(net.provenance.get(k, {"provenance": info.provenance,
                                           "source": info.source}))
        entry = {"values": p.detach().double().cpu().tolist(), "shape": list(p.shape),
                 "unit": info.unit, "provenance": prov.pop("provenance"),
                 "source": prov.pop("source", info.source)}
        if entry["provenance"] == "fitted":
            entry["fitted"] = {f: _jsonable(prov.pop(f, None)) for f in FITTED_FIELDS}
        if prov:
            entry["info"] = _jsonable(prov)
        params[k] = entry
    doc = {"format": FORMAT, "version": VERSION, "network": _network_section(net),
           "parameters": params}
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, allow_nan=False))
    return path


def read_params_file(path: str | Path) -> dict:
    """The parsed document (format and version checked)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"parameter file not found: {path}")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParamsFileError(f"{path}: not a readable JSON parameter file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ParamsFileError(f"{path}: not a wormlab parameter file (expected "
                              f"\"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise ParamsFileError(f"{path}: version {doc.get('version')!r}, this wormlab reads "
                              f"version {VERSION}")
    if not isinstance(doc.get("parameters"), dict):
        raise ParamsFileError(f"{path}: 'parameters' must be a mapping of name -> entry")
    return doc


def _network_config(doc: dict, path: Path) -> dict | None:
    from wormlab import circuit

    section = doc.get("network")
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ParamsFileError(f"{path}: 'network' must be a mapping of NetworkConfig fields")
    fields = {f.name for f in dataclasses.fields(circuit.NetworkConfig)}
    unknown = set(section) - fields
    if unknown:
        raise ParamsFileError(f"{path}: network section has unknown fields {sorted(unknown)}; "
                              f"NetworkConfig fields: {sorted(fields)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}


def _check_net(cfg: dict | None, net, path: Path) -> None:
    """The file's network section must describe ``net`` (share, cells)."""
    if cfg is None:
        return
    if cfg.get("share", net.share) != net.share:
        raise ParamsFileError(f"{path}: written for share={cfg['share']!r}, the network uses "
                              f"share={net.share!r}")
    cells = cfg.get("cells") or ()
    if cells and list(cells) != list(net.names):
        raise ParamsFileError(f"{path}: written for {len(cells)} cells {list(cells)[:5]}..., "
                              f"the network has {net.n_cells} cells {net.names[:5]}...")


def _build(doc: dict, path: Path):
    from wormlab import circuit

    cfg = _network_config(doc, path)
    if cfg is None:
        raise ParamsFileError(f"{path}: no 'network' section (NetworkConfig fields); pass "
                              "net= to load into an existing network")
    try:
        return circuit.build_network(circuit.NetworkConfig(**cfg))
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise ParamsFileError(f"{path}: cannot build the network of its 'network' section: "
                              f"{exc}") from exc


def load_params(path: str | Path, net=None, bounds=None, check_bounds: bool = True):
    """Load a parameter file into ``net`` (or into a network built from its ``network``
    section) and set each parameter's provenance; returns the network.

    Every entry is validated before anything is written: known name (with suggestions),
    shape, unit, finite values, provenance tag (``fitted`` needs loss/data/date/run_id) and,
    with ``check_bounds``, the bounds of ``bounds`` (a bounds YAML path or table; default the
    shipped ``parameter_bounds.yml``). Parameters missing from the file keep their values.

    Raises:
        FileNotFoundError: no file.
        ParamsFileError: (a ValueError) naming the file, the parameter and the problem.
    """
    from wormlab.circuit._mechanisms import PROVENANCE
    from wormlab.fit._bounds import BoundsError, _as_table

    path = Path(path)
    doc = read_params_file(path)
    if net is None:
        net = _build(doc, path)
    else:
        _check_net(_network_config(doc, path), net, path)
    table = _as_table(bounds) if check_bounds else None
    values, provs = {}, {}
    for k, e in doc["parameters"].items():
        if k not in net.params:
            near = difflib.get_close_matches(k, list(net.params), n=3)
            raise ParamsFileError(f"{path}: unknown parameter {k!r}" +
                                  (f"; did you mean {', '.join(near)}?" if near else ""))
        if not isinstance(e, dict) or "values" not in e:
            raise ParamsFileError(f"{path}: parameter {k!r}: entry needs 'values'")
        info = net.param_info[k]
        unit = e.get("unit", info.unit)
        if unit != info.unit:
            raise ParamsFileError(f"{path}: parameter {k!r} is in {unit!r}, the network's "
                                  f"unit is {info.unit!r}")
        try:
            x = torch.tensor(e["values"], dtype=torch.float64)
        except (TypeError, ValueError) as exc:
            raise ParamsFileError(f"{path}: parameter {k!r}: values are not numbers ({exc})"
                                  ) from None
        want = tuple(net.params[k].shape)
        if tuple(x.shape) != want or ("shape" in e and tuple(e["shape"]) != want):
            raise ParamsFileError(f"{path}: parameter {k!r} has shape {tuple(x.shape)}, the "
                                  f"network expects {want}")
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            i = int(torch.nonzero(bad.reshape(-1))[0])
            raise ParamsFileError(f"{path}: parameter {k!r} holds {float(x.reshape(-1)[i])} "
                                  f"at index {i}")
        if table is not None:
            try:
                table.check(net, [k], {k: x})
            except BoundsError as exc:
                raise ParamsFileError(f"{path}: {exc}") from None
        tag = e.get("provenance", info.provenance)
        if tag not in PROVENANCE:
            raise ParamsFileError(f"{path}: parameter {k!r}: provenance {tag!r}; choose from "
                                  f"{PROVENANCE}")
        extra = dict(e.get("info") or {})
        if tag == "fitted":
            fit = e.get("fitted")
            if not isinstance(fit, dict) or any(f not in fit for f in FITTED_FIELDS):
                raise ParamsFileError(f"{path}: parameter {k!r} is 'fitted' but lacks "
                                      f"{list(FITTED_FIELDS)} under 'fitted'")
            extra.update({f: fit[f] for f in FITTED_FIELDS})
        values[k] = x
        provs[k] = (tag, {"source": e.get("source", info.source), **extra})
    with torch.no_grad():
        for k, x in values.items():
            net.params[k].copy_(x.to(net.params[k].dtype))
    for k, (tag, extra) in provs.items():
        net.provenance[k] = {"provenance": tag, "source": extra.pop("source")}
        net.set_provenance(k, tag, **extra)
    return net


def registry_table(net):
    """One row per parameter: mechanism, unit, number of values, provenance, source and, for
    fitted ones, loss, data, date, run id. A pandas DataFrame indexed by parameter."""
    import pandas as pd

    rows = []
    for k, p in net.params.items():
        prov = net.provenance.get(k, {})
        rows.append({"parameter": k, "mechanism": net.param_mechanism[k],
                     "unit": net.param_info[k].unit, "n_values": int(p.numel()),
                     "provenance": prov.get("provenance", net.param_info[k].provenance),
                     "source": prov.get("source", net.param_info[k].source),
                     **{f: prov.get(f) for f in FITTED_FIELDS}})
    return pd.DataFrame(rows).set_index("parameter")


PROVENANCE_COLOURS = {"c302-default": "#bbbbbb", "measured": "#1b9e77",
                      "mechanistic-default": "#7570b3", "fitted": "#d95f02", "ml": "#e7298a"}


def plot_registry(net, ax=None, count: str = "parameters"):
    """Horizontal stacked bars, one per mechanism, coloured by provenance. ``count``:
    ``"parameters"`` (parameter tensors) or ``"values"`` (their elements). Returns the
    matplotlib Figure."""
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
    else:
        fig = ax.figure
    if count not in ("parameters", "values"):
        raise ValueError(f"count={count!r}; choose 'parameters' or 'values'")
    t = registry_table(net)
    t["n"] = 1 if count == "parameters" else t["n_values"]
    pivot = t.pivot_table(index="mechanism", columns="provenance", values="n", aggfunc="sum",
                          fill_value=0)
    left = [0] * len(pivot)
    for tag, colour in PROVENANCE_COLOURS.items():
        if tag not in pivot:
            continue
        ax.barh(pivot.index, pivot[tag], left=left, color=colour, label=tag)
        left = [a + b for a, b in zip(left, pivot[tag])]
    ax.set_xlabel(f"number of {count}")
    ax.set_title("Parameter provenance by mechanism")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
