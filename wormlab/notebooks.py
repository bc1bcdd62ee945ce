"""Run the workbench notebooks headless with papermill and keep their reports.

Each run writes ``reports/<notebook>/<run-id>.ipynb`` and ``.html``, plus
``<run-id>.results.json`` (mode, run time, parameters and the headline results the notebook
recorded with :func:`wormlab.runs.record_result`) and ``<run-id>.png`` / ``.svg`` (the first
figure it drew, the thumbnail of the index). The ``latest.*`` copies are replaced only after a
successful run, so a failing run never hides the last good report (the failed run is kept as
``<run-id>.failed.ipynb`` for debugging).
"""

from __future__ import annotations

import ast
import base64
import datetime as _dt
import json
import math
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wormlab.paths import notebooks_dir, project_root, reports_dir
from wormlab.runs import RESULTS_ENV, atomic_path

_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
_CHOICES = re.compile(r"choices?\s*:\s*(.+)$", re.IGNORECASE)


class NotebookError(RuntimeError):
    """A notebook could not be found, parameterised or executed."""


@dataclass(frozen=True)
class Parameter:
    """One declared notebook parameter (from the cell tagged ``parameters``)."""

    name: str
    type_name: str  # int | float | bool | str | None (papermill's inferred type)
    default: str  # the default as source text
    help: str = ""
    choices: tuple[str, ...] = ()


@dataclass
class RunResult:
    notebook: str
    run_id: str
    ok: bool
    ipynb: Path
    html: Path | None
    parameters: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: headline results recorded by the notebook: ``{name: {"value", "goal", "unit"}}``
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_time_s: float | None = None
    results_json: Path | None = None


def list_notebooks() -> list[str]:
    """Names (file stems) of the notebooks in ``notebooks/``, sorted."""
    return sorted(p.stem for p in notebooks_dir().glob("*.ipynb") if not p.name.startswith("."))


def notebook_path(name: str) -> Path:
    name = name[:-6] if name.endswith(".ipynb") else name
    path = notebooks_dir() / f"{name}.ipynb"
    if not path.exists():
        raise NotebookError(
            f"unknown notebook {name!r}; available: {', '.join(list_notebooks()) or '(none)'}"
        )
    return path


def notebook_parameters(name: str) -> dict[str, Parameter]:
    """Declared parameters of a notebook, in cell order."""
    import papermill as pm

    path = notebook_path(name)
    try:
        raw = pm.inspect_notebook(str(path))
    except Exception as exc:  # papermill raises plain exceptions for a missing tag
        raise NotebookError(f"{path.name}: cannot read its parameters cell ({exc})") from exc
    if not raw:
        raise NotebookError(f"{path.name} has no code cell tagged 'parameters'")
    out = {}
    for pname, info in raw.items():
        help_text = (info.get("help") or "").strip()
        m = _CHOICES.search(help_text)
        choices = tuple(c.strip() for c in m.group(1).split(",") if c.strip()) if m else ()
        type_name = info.get("inferred_type_name") or "None"
        if type_name == "None":  # no annotation: infer from the literal default
            try:
                type_name = type(ast.literal_eval(str(info.get("default")))).__name__
            except (ValueError, SyntaxError):
                type_name = "None"
        out[pname] = Parameter(
            name=pname,
            type_name=type_name,
            default=str(info.get("default")),
            help=help_text,
            choices=choices,
        )
    return out


def _coerce(param: Parameter, value: Any, notebook: str) -> Any:
    kind = _TYPES.get(param.type_name)
    if kind is None or not isinstance(value, str):
        coerced = value
    elif kind is bool:
        low = value.strip().lower()
        if low not in {"true", "false", "1", "0", "yes", "no"}:
            raise NotebookError(f"{notebook}: parameter {param.name!r} expects a bool, got {value!r}")
        coerced = low in {"true", "1", "yes"}
    else:
        try:
            coerced = kind(value)
        except ValueError:
            raise NotebookError(
                f"{notebook}: parameter {param.name!r} expects {param.type_name}, got {value!r}"
            ) from None
    if kind is not None and (not isinstance(coerced, kind)
                             or (kind is not bool and isinstance(coerced, bool))):
        # ints are acceptable floats; anything else (a bool for an int, too) is a type error
        if not (kind is float and isinstance(coerced, int) and not isinstance(coerced, bool)):
            raise NotebookError(
                f"{notebook}: parameter {param.name!r} expects {param.type_name}, "
                f"got {type(coerced).__name__} {coerced!r}"
            )
        coerced = float(coerced)
    if kind is float and not math.isfinite(coerced):
        # every float parameter is a size, rate or time: nan/inf would only fail deep inside
        raise NotebookError(
            f"{notebook}: parameter {param.name!r} expects a finite float, got {coerced!r}"
        )
    if param.choices and str(coerced) not in param.choices:
        raise NotebookError(
            f"{notebook}: parameter {param.name}={coerced!r} is not one of: "
            f"{', '.join(param.choices)}"
        )
    return coerced


def validate_parameters(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """Check names, types and choices against the notebook's declared parameters.

    String values (from the command line) are converted to the declared type. Raises
    :class:`NotebookError` with a one-line message before any kernel starts.
    """
    declared = notebook_parameters(name)
    out = {}
    for key, value in values.items():
        if key not in declared:
            raise NotebookError(
                f"{name}: unknown parameter {key!r}; valid parameters: {', '.join(declared)}"
            )
        out[key] = _coerce(declared[key], value, name)
    return out


def _error_summary(exc: Exception) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    cell = getattr(exc, "exec_count", None)
    where = f" in cell [{cell}]" if cell is not None else ""
    return f"{ename}{where}: {evalue}"


def _to_html(ipynb: Path, html: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    with atomic_path(html) as tmp:
        tmp.write_text(body, encoding="utf-8")


def run_notebook(
    name: str,
    parameters: dict[str, Any] | None = None,
    *,
    smoke: bool = False,
    timeout_s: int | None = None,
    out_dir: Path | None = None,
    progress_bar: bool = False,
) -> RunResult:
    """Execute ``notebooks/<name>.ipynb`` with papermill.

    Args:
        name: notebook stem, e.g. ``"00_connectome"``.
        parameters: values for the ``parameters`` cell (validated first).
        smoke: also pass ``smoke=True`` (small, fast settings for CI).
        timeout_s: per-cell execution timeout in seconds (default 600 smoke / 3600 full);
            a hung widget cell must not stall CI forever.
        out_dir: reports root (default :func:`wormlab.paths.reports_dir`).

    Returns:
        A :class:`RunResult`; ``ok`` is False when a cell raised, with ``error`` naming it.
    """
    import papermill as pm

    src = notebook_path(name)
    name = src.stem
    params = validate_parameters(name, dict(parameters or {}))
    if smoke:
        declared = notebook_parameters(name)
        if "smoke" not in declared:
            raise NotebookError(f"{name} declares no 'smoke' parameter; cannot run in smoke mode")
        params["smoke"] = True
    run_id = _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    folder = (out_dir or reports_dir()) / name
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{run_id}.partial.ipynb"
    timeout = timeout_s if timeout_s is not None else (600 if smoke else 3600)
    # the kernel inherits this, so notebooks resolve data/ and reports/ from the same root
    os.environ.setdefault("WORMLAB_ROOT", str(project_root()))
    # record_result() in the kernel appends its lines here; collected after the run
    lines = folder / f".{run_id}.results.jsonl"
    saved_results = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(lines)
    # A kernel started with MPLBACKEND=Agg skips the inline backend and drops every figure.
    saved_backend = os.environ.pop("MPLBACKEND", None)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(src),
            str(partial),
            parameters=params,
            cwd=str(src.parent),
            kernel_name="python3",
            progress_bar=progress_bar,
            execution_timeout=timeout,
            report_mode=False,
        )
    except Exception as exc:  # PapermillExecutionError, kernel death, timeouts
        failed = folder / f"{run_id}.failed.ipynb"
        if partial.exists():
            os.replace(partial, failed)
        return RunResult(name, run_id, False, failed, None, params, _error_summary(exc),
                         run_time_s=time.perf_counter() - t0)
    finally:
        if saved_backend is not None:
            os.environ["MPLBACKEND"] = saved_backend
        if saved_results is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = saved_results
        try:
            recorded = read_recorded(lines)
        finally:
            lines.unlink(missing_ok=True)
    run_time_s = time.perf_counter() - t0
    ipynb = folder / f"{run_id}.ipynb"
    os.replace(partial, ipynb)
    html = folder / f"{run_id}.html"
    _to_html(ipynb, html)
    thumb = write_thumbnail(ipynb, folder / run_id)
    summary = {
        "notebook": name, "run_id": run_id, "mode": "smoke" if params.get("smoke") else "full",
        "run_time_s": round(run_time_s, 2),
        "finished": _dt.datetime.now().isoformat(timespec="seconds"),
        "parameters": params, "results": recorded,
        "thumbnail": thumb.name if thumb is not None else None,
    }
    results_json = folder / f"{run_id}.results.json"
    with atomic_path(results_json) as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    copies = [(ipynb, folder / "latest.ipynb"), (html, folder / "latest.html"),
              (results_json, folder / "latest.results.json")]
    if thumb is not None:
        copies.append((thumb, folder / f"latest.thumb{thumb.suffix}"))
    from wormlab.runs import file_lock

    # two runs of the same notebook finishing together: the lock keeps every latest.* file
    # from the same run (each copy is atomic, the set of copies is not)
    with file_lock(latest_lock(folder)):
        for stale in folder.glob("latest.thumb.*"):  # a new run may draw an svg after a png
            if thumb is None or stale.suffix != thumb.suffix:
                stale.unlink(missing_ok=True)
        for src_file, latest in copies:
            with atomic_path(latest) as tmp:
                shutil.copyfile(src_file, tmp)
    return RunResult(name, run_id, True, ipynb, html, params, results=recorded,
                     run_time_s=run_time_s, results_json=results_json)


def latest_lock(folder: Path) -> Path:
    """The lock file guarding a report folder's ``latest.*`` copies (beside the folder, so the
    folder holds only reports)."""
    return folder.parent / f".{folder.name}.latest.lock"


def read_recorded(path: Path) -> dict[str, dict[str, Any]]:
    """The results a kernel recorded (one JSON line each; see :func:`wormlab.runs.record_result`)
    as ``{name: {"value", "goal", "unit"}}``; a name recorded twice keeps its last value.

    An unreadable line raises :class:`NotebookError` naming the file and the line number.
    """
    out: dict[str, dict[str, Any]] = {}
    if not Path(path).exists():
        return out
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            out[entry["name"]] = {k: entry.get(k) for k in ("value", "goal", "unit")}
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise NotebookError(f"{path}: line {i} is not a recorded result ({exc})") from None
    return out


def write_thumbnail(ipynb: Path, stem: Path) -> Path | None:
    """Write the first PNG (else SVG) figure output of an executed notebook to
    ``<stem>.thumb.png`` / ``.svg`` (atomically); ``None`` when it drew no figure."""
    import nbformat

    nb = nbformat.read(str(ipynb), as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                raw, suffix = base64.b64decode(data["image/png"]), ".png"
            elif "image/svg+xml" in data:
                svg = data["image/svg+xml"]
                raw, suffix = ("".join(svg) if isinstance(svg, list) else svg).encode(), ".svg"
            else:
                continue
            path = stem.with_name(stem.name + ".thumb" + suffix)
            with atomic_path(path) as tmp:
                tmp.write_bytes(raw)
            return path
    return None


def _format_value(value: Any, unit: str | None) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit else text


def write_index(out_dir: Path | None = None) -> Path:
    """Write ``reports/index.html``: per notebook its last good report, mode (smoke/full), run
    time, recorded headline results next to their goals, and a thumbnail of its first figure."""
    import html

    root = out_dir or reports_dir()
    rows = []
    for name in list_notebooks():
        folder = root / name
        latest = folder / "latest.html"
        mode = runtime = results = thumb = ""
        if latest.exists():
            when = _dt.datetime.fromtimestamp(latest.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
            cell = f'<a href="{name}/latest.html">{html.escape(name)}</a>'
            summary_path = folder / "latest.results.json"
            if summary_path.exists():
                try:
                    summary = json.loads(summary_path.read_text(encoding="utf-8"))
                    mode = html.escape(str(summary.get("mode", "")))
                    if summary.get("run_time_s") is not None:
                        runtime = f"{float(summary['run_time_s']):.0f} s"
                    items = []
                    for key, r in (summary.get("results") or {}).items():
                        goal = f" <i>(goal {html.escape(str(r['goal']))})</i>" if r.get("goal") else ""
                        items.append(f"<li>{html.escape(key)}: "
                                     f"<b>{html.escape(_format_value(r.get('value'), r.get('unit')))}"
                                     f"</b>{goal}</li>")
                    results = f"<ul>{''.join(items)}</ul>" if items else "(none recorded)"
                except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                    results = f"unreadable {html.escape(str(summary_path.name))}"
            for suffix in (".png", ".svg"):
                if (folder / f"latest.thumb{suffix}").exists():
                    thumb = (f'<a href="{name}/latest.html"><img src="{name}/latest.thumb{suffix}" '
                             'width="240" alt="first figure"></a>')
                    break
        else:
            when, cell = "never run", html.escape(name)
        rows.append(f"<tr><td>{cell}</td><td>{when}</td><td>{mode}</td><td>{runtime}</td>"
                    f"<td>{results}</td><td>{thumb}</td></tr>")
    page = ("<!doctype html><meta charset='utf-8'><title>wormlab reports</title>"
            "<h1>wormlab reports</h1><p>Last successful run of each notebook "
            "(produced by <code>wormlab run</code>). Smoke runs use tiny settings: their "
            "numbers check the pipeline, not the science.</p><table border=1 cellpadding=4>"
            "<tr><th>notebook</th><th>last good run</th><th>mode</th><th>run time</th>"
            "<th>headline results (goal)</th><th>key figure</th></tr>"
            + "".join(rows) + "</table>")
    from wormlab.models import verify_table_html  # the main job's `wormlab models verify`

    page += verify_table_html(root)
    path = root / "index.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
