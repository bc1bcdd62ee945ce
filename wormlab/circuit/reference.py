"""NEURON reference for the circuit: c302 generates the network, jNeuroML converts it to NEURON,
NEURON runs it (CVODE rtol = atol = 1e-7 by default, or fixed step), traces are cached.

Needs the optional extra ``neuron`` (``neuron``, ``c302``, ``pyneuroml``; Java for jNeuroML).
``NEURON_HOME`` must point at the environment holding NEURON (set by ``scripts/env.sh``); it is
set to ``sys.prefix`` here when missing. Outputs of c302/NEURON are SI (s, V): converted to ms/mV.
Column order comes from the LEMS ``<OutputFile>`` blocks (not the Display blocks).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wormlab.paths import cache_dir
from wormlab.runs import atomic_path

KINDS = ("Full", "IClamp")


class ReferenceError(RuntimeError):
    """c302, jNeuroML or NEURON failed; the message holds the tail of their output."""


@dataclass
class ReferenceTraces:
    """NEURON traces: ``t_ms`` (T,), ``v_mV`` (T, N) for ``names``; ``wall_s`` is NEURON's own
    simulation time (``Finished NEURON simulation in ...``), excluding setup and file output."""

    t_ms: np.ndarray
    v_mV: np.ndarray
    names: list[str]
    wall_s: float
    meta: dict
    nml_path: Path

    def covered(self, t_ms: np.ndarray) -> int:
        """Number of leading points of ``t_ms`` inside the recorded span (CVODE's last sample
        can fall just short of tstop; comparing beyond it would extrapolate)."""
        return int(np.searchsorted(t_ms, self.t_ms[-1] + 1e-9, side="right"))

    def on_grid(self, t_ms: np.ndarray) -> np.ndarray:
        """Traces linearly interpolated onto ``t_ms`` (CVODE steps are variable); points past
        the last recorded sample repeat it — use :meth:`covered` to exclude them."""
        return np.stack([np.interp(t_ms, self.t_ms, self.v_mV[:, k])
                         for k in range(self.v_mV.shape[1])], 1)


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("NEURON_HOME", sys.prefix)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    return env


def generate_c302(target: Path, parameter_set: str = "C1", duration_ms: float = 100.0,
                  dt_ms: float = 0.05, kind: str = "Full") -> tuple[Path, Path]:
    """Generate a c302 network (``kind`` Full: 302 neurons + 95 muscles with c302's default
    PLML/PLMR stimulus; IClamp: ADAL, PVCL, MDR01 with 1..6 pA steps) into ``target``.

    Returns ``(net.nml, LEMS xml)``. Runs c302 in a subprocess (it prints a lot, and keeps
    module state).
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; choose one of {KINDS}")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    mod = "c302.c302_Full" if kind == "Full" else "c302.c302_IClamp"
    code = (f"import {mod} as m; m.setup({parameter_set!r}, generate=True, "
            f"duration={float(duration_ms)!r}, dt={float(dt_ms)!r}, "
            f"target_directory={str(target)!r})")
    if kind == "IClamp":
        # c302_IClamp writes the LEMS file without the network-specific duration handling
        code += "; import c302"
    proc = subprocess.run([sys.executable, "-c", code], cwd=target, env=_env(),
                          capture_output=True, text=True)
    ref = f"c302_{parameter_set}_{kind}"
    nml, lems = target / f"{ref}.net.nml", target / f"LEMS_{ref}.xml"
    if proc.returncode or not nml.exists() or not lems.exists():
        raise ReferenceError(f"c302 generation failed (rc {proc.returncode}):\n"
                             f"{(proc.stdout + proc.stderr)[-3000:]}")
    return nml, lems


def output_columns(lems: Path) -> dict[str, list[str]]:
    """``{file name: [cell names]}`` for every LEMS ``<OutputFile>`` recording ``.../v``."""
    text = Path(lems).read_text()
    out = {}
    for m in re.finditer(r'<OutputFile id="[^"]*" fileName="([^"]+)">(.*?)</OutputFile>', text,
                         re.S):
        qs = re.findall(r'quantity="([^"]+)"', m.group(2))
        if qs and all(q.endswith("/v") for q in qs):
            out[m.group(1)] = [q.split("/")[0] for q in qs]
    return out


def _compile(d: Path, lems: Path) -> None:
    """jNeuroML writes the NEURON script and mod files; the mod files are compiled once per
    distinct set (keyed by their contents, shared by every reference that uses the same
    mechanisms) and linked into ``d/x86_64``."""
    if (d / "x86_64").exists() and (d / f"{lems.stem}_nrn.py").exists():
        return
    from pyneuroml import pynml

    jar = Path(pynml.__file__).parent / "lib"
    jars = sorted(jar.glob("jNeuroML-*-jar-with-dependencies.jar"))
    if not jars:
        raise ReferenceError(f"no jNeuroML jar in {jar}")
    cmd = ["java", "-Xmx800M", "-Djava.awt.headless=true", "-jar", str(jars[-1]), lems.name,
           "-neuron", "-nogui"]
    proc = subprocess.run(cmd, cwd=d, env=_env(), capture_output=True, text=True)
    if proc.returncode:
        raise ReferenceError(f"jNeuroML -neuron failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    mods = sorted(d.glob("*.mod"))
    h = hashlib.sha1()
    for m in mods:
        h.update(m.name.encode() + m.read_bytes())
    shared = cache_dir("circuit", "nrnmech", h.hexdigest()[:12])
    if not (shared / "x86_64" / ".libs").exists() and not (shared / "x86_64").exists():
        import shutil
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=shared))
        for m in mods:
            shutil.copy(m, tmp / m.name)
        nrnivmodl = shutil.which("nrnivmodl", path=_env()["PATH"])
        if nrnivmodl is None:
            raise ReferenceError("nrnivmodl not found (is NEURON installed in this environment?)")
        proc = subprocess.run([nrnivmodl], cwd=tmp, env=_env(), capture_output=True, text=True)
        if proc.returncode or not (tmp / "x86_64").exists():
            raise ReferenceError(f"nrnivmodl failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
        try:
            (tmp / "x86_64").rename(shared / "x86_64")
        except OSError:  # a concurrent build won; use it
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    link = d / "x86_64"
    if link.is_symlink() or link.exists():
        import shutil

        if link.is_symlink():
            link.unlink()
        else:
            shutil.rmtree(link)
    link.symlink_to(shared / "x86_64", target_is_directory=True)


def run_neuron(d: Path, lems: Path, tstop_ms: float, dt_ms: float, method: str = "cvode",
               tol: float = 1e-7, timeout_s: float = 3600) -> tuple[dict, float]:
    """Run the jNeuroML-generated NEURON script in ``d``; returns (files, NEURON wall s)."""
    _compile(d, lems)
    script = lems.stem + "_nrn"
    tol_args = f"abs_tol={tol!r}, rel_tol={tol!r}" if method == "cvode" else \
        "abs_tol=None, rel_tol=None"
    if method not in ("cvode", "fixed"):
        raise ValueError(f"method={method!r}; choose 'cvode' or 'fixed'")
    code = ("import sys; sys.path.insert(0, '.'); "
            f"from {script} import NeuronSimulation; "
            f"ns = NeuronSimulation(tstop={float(tstop_ms)!r}, dt={float(dt_ms)!r}, {tol_args}); "
            "ns.run()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=d, env=_env(), capture_output=True,
                          text=True, timeout=timeout_s)
    out = proc.stdout + proc.stderr
    m = re.search(r"Finished NEURON simulation in ([0-9.eE+-]+) seconds", out)
    if proc.returncode or not m:
        raise ReferenceError(f"NEURON run failed (rc {proc.returncode}):\n{out[-3000:]}")
    return output_columns(lems), float(m.group(1))


def _meta_key(kind, duration_ms, dt_ms, method, tol, parameter_set) -> tuple[dict, str]:
    meta = {"kind": kind, "duration_ms": float(duration_ms), "dt_ms": float(dt_ms),
            "method": method, "tol": float(tol) if method == "cvode" else None,
            "parameter_set": parameter_set, "c302": _version("c302"),
            "neuron": _version("neuron")}
    return meta, f"{parameter_set}_{kind}_{int(duration_ms)}ms_{method}_{_key(**meta)}"


def _key(**kw) -> str:
    s = json.dumps(kw, sort_keys=True)
    return hashlib.sha1(s.encode()).hexdigest()[:10]


def reference(kind: str = "Full", duration_ms: float = 100.0, dt_ms: float = 0.05,
              method: str = "cvode", tol: float = 1e-7, parameter_set: str = "C1",
              refresh: bool = False) -> ReferenceTraces:
    """NEURON traces of a c302 network, cached under ``data/cache/circuit/reference/<key>``.

    Args:
        kind: ``"Full"`` (302 + 95 cells, c302 default stimulus) or ``"IClamp"``.
        duration_ms, dt_ms: simulated time; ``dt_ms`` is the fixed step (``method="fixed"``)
            and c302's recording step.
        method: ``"cvode"`` (rtol = atol = ``tol``) or ``"fixed"``.
    """
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # c302 prints at import (keep --json clean)
        import c302  # noqa: F401  (fail early with ImportError when the extra is missing)

    meta, key = _meta_key(kind, duration_ms, dt_ms, method, tol, parameter_set)
    d = cache_dir("circuit", "reference", key)
    npz = d / "traces.npz"
    if npz.exists() and not refresh:
        z = np.load(npz, allow_pickle=False)
        info = json.loads((d / "meta.json").read_text())
        return ReferenceTraces(z["t_ms"], z["v_mV"], list(z["names"]), info["wall_s"], info,
                               d / info["nml"])
    nml, lems = generate_c302(d, parameter_set, duration_ms, dt_ms, kind)
    t0 = time.perf_counter()
    files, wall = run_neuron(d, lems, duration_ms, dt_ms, method, tol)
    names, cols, t = [], [], None
    for fname, cells in files.items():
        arr = np.loadtxt(d / fname, ndmin=2)
        if arr.shape[1] != len(cells) + 1:
            raise ReferenceError(f"{fname}: {arr.shape[1]} columns, LEMS lists {len(cells)}+1")
        t = arr[:, 0] * 1e3 if t is None else t
        names += cells
        cols.append(arr[:, 1:] * 1e3)
    v = np.concatenate(cols, 1)
    meta.update(wall_s=wall, total_s=time.perf_counter() - t0, nml=nml.name,
                n_samples=int(len(t)))
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, t_ms=t, v_mV=v, names=np.array(names))
    with atomic_path(d / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    for f in d.glob("*.dat"):  # large text files, now duplicated in traces.npz
        f.unlink()
    return ReferenceTraces(t, v, names, wall, meta, nml)


def cached(kind: str = "Full", duration_ms: float = 100.0, dt_ms: float = 0.05,
           method: str = "cvode", tol: float = 1e-7, parameter_set: str = "C1"
           ) -> ReferenceTraces | None:
    """The cached reference if it was generated before, else None (never runs NEURON)."""
    _, key = _meta_key(kind, duration_ms, dt_ms, method, tol, parameter_set)
    if not (cache_dir("circuit", "reference", key, create=False) / "traces.npz").exists():
        return None
    return reference(kind, duration_ms, dt_ms, method, tol, parameter_set)


def _version(mod: str) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "unknown"


def neuron_available() -> bool:
    """True when c302, pyNeuroML, NEURON and java are importable/runnable."""
    import contextlib
    import io
    import shutil

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import c302  # noqa: F401
        import neuron  # noqa: F401
        import pyneuroml  # noqa: F401
    except Exception:
        return False
    return shutil.which("java") is not None
