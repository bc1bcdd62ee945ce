"""The one NEURON/c302 adapter: every component that needs c302 or NEURON goes through here.

* :func:`reference`: c302 generates a network, jNeuroML converts it to NEURON, NEURON runs it
  (CVODE rtol = atol = 1e-7 by default, or fixed step) in a subprocess; traces are cached.
* :func:`neuron_network`: the c302 neurons (no muscles, no built-in stimulus) loaded into this
  process's NEURON with programmable current clamps (the rom data generator).
* :func:`neuron_missing` / :func:`require_neuron`: one availability check for all of them.

Needs the optional extra ``neuron`` (``neuron``, ``c302``, ``pyneuroml``), Java for jNeuroML
and a C++ compiler + make for ``nrnivmodl``; ``scripts/setup.sh`` installs them or stops.
``NEURON_HOME`` must point at the environment holding NEURON (set by ``scripts/env.sh``); it is
set to ``sys.prefix`` here when missing. Outputs of c302/NEURON are SI (s, V): converted to ms/mV.
Column order comes from the LEMS ``<OutputFile>`` blocks (not the Display blocks).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
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


class NeuronStackMissing(ReferenceError):
    """A piece of the NEURON/c302 stack is not installed; the message names it and the fix."""


FIX = ("run scripts/setup.sh (it installs the extra 'neuron' and Java), or "
       "pip install -e '.[neuron]' plus a Java 11+ runtime")
_PACKAGES = ("c302", "neuron", "pyneuroml")


def in_ci() -> bool:
    """True under CI (env ``CI`` = true/1/yes), where a missing NEURON stack is an error."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@functools.cache
def neuron_missing() -> str | None:
    """What of the NEURON/c302 stack is missing here (``None`` when everything is there).

    Checks the Python packages (``c302``, ``neuron``, ``pyneuroml``: installed and
    importable), ``java`` (jNeuroML), ``nrnivmodl`` and the C++ compiler + ``make`` it calls.
    Cached per process (``neuron_missing.cache_clear()`` after installing something).
    """
    problems = []
    for mod in _PACKAGES:
        if importlib.util.find_spec(mod) is None:
            problems.append(f"Python package {mod!r} is not installed in {sys.prefix}")
            continue
        try:  # c302 prints at import; keep stdout clean for --json callers
            with contextlib.redirect_stdout(io.StringIO()):
                importlib.import_module(mod)
        except Exception as exc:  # a broken install is as missing as an absent one
            problems.append(f"import {mod} failed: {type(exc).__name__}: {exc}")
    path = _env()["PATH"]
    if shutil.which("java", path=path) is None:
        problems.append("'java' is not on PATH (jNeuroML needs Java 11+; Debian: "
                        "apt-get install -y openjdk-17-jre-headless)")
    if shutil.which("nrnivmodl", path=path) is None:
        problems.append(f"'nrnivmodl' (from the 'neuron' package) is not in {path}")
    if not any(shutil.which(c, path=path) for c in ("c++", "g++", "clang++")) or \
            shutil.which("make", path=path) is None:
        problems.append("nrnivmodl needs a C++ compiler and make (Debian: apt-get install -y "
                        "g++ make)")
    return "; ".join(problems) or None


def neuron_available() -> bool:
    """True when c302, pyNeuroML, NEURON, java, nrnivmodl and a compiler are all usable."""
    return neuron_missing() is None


def require_neuron(what: str = "the NEURON reference") -> None:
    """Raise :class:`NeuronStackMissing` naming what is missing and how to install it."""
    reason = neuron_missing()
    if reason is not None:
        raise NeuronStackMissing(f"{what} needs the NEURON/c302 stack: {reason}. Fix: {FIX}")


def _require_c302(what: str) -> None:
    """c302 alone (network generation) does not need NEURON or Java."""
    if importlib.util.find_spec("c302") is None:
        raise NeuronStackMissing(f"{what} needs the Python package 'c302' (not installed in "
                                 f"{sys.prefix}). Fix: {FIX}")


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
    _require_c302(f"generating the c302 {parameter_set} {kind} network")
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
    meta, key = _meta_key(kind, duration_ms, dt_ms, method, tol, parameter_set)
    d = cache_dir("circuit", "reference", key)
    npz = d / "traces.npz"
    if npz.exists() and not refresh:  # a cached reference needs no NEURON
        z = np.load(npz, allow_pickle=False)
        info = json.loads((d / "meta.json").read_text())
        return ReferenceTraces(z["t_ms"], z["v_mV"], list(z["names"]), info["wall_s"], info,
                               d / info["nml"])
    require_neuron(f"reference({kind!r}, {duration_ms} ms)")
    ref_name = f"c302_{parameter_set}_{kind}"
    nml, lems = d / f"{ref_name}.net.nml", d / f"LEMS_{ref_name}.xml"
    if not (nml.exists() and lems.exists() and (d / f"{lems.stem}_nrn.py").exists()):
        # generated once per key; refresh=True only re-runs NEURON (for timing in benchmarks)
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


# ---- the c302 neurons in this process's NEURON (programmable clamps; the rom generator)

_SIM: dict[str, NeuronNetwork] = {}


def _locked(path: Path):
    """An exclusive lock file: dask workers building the same network wait for each other."""
    from wormlab.runs import file_lock

    return file_lock(path)


def neurons_network_dir(parameter_set: str = "C1") -> Path:
    """c302 ``<set>`` with its 302 neurons only (no muscles, no built-in stimulus), exported to
    NEURON by jNeuroML and compiled, generated once into ``data/cache/circuit/c302/<set>_neurons``.

    Returns the folder holding ``c302_<set>_rom.net.nml`` (also read by ``wormlab.circuit``,
    so both simulators run one model) and ``LEMS_c302_<set>_rom_nrn.py``. The first call takes
    about a minute (c302, jNeuroML, ``nrnivmodl``; compiled mechanisms are shared with
    :func:`reference`); later calls return at once.
    """
    d = cache_dir("circuit", "c302", f"{parameter_set}_neurons")
    ref = f"c302_{parameter_set}_rom"
    lems = d / f"LEMS_{ref}.xml"
    done = d / ".built"
    if done.exists():
        return d
    require_neuron(f"the c302 {parameter_set} neuron network")
    with _locked(d / ".lock"):
        if done.exists():  # another process built it while we waited
            return d
        # duration/dt only set the LEMS run length (unused: NeuronNetwork sets tstop per trial)
        code = ("import importlib, c302; "
                f"p = importlib.import_module('c302.parameters_{parameter_set}')"
                ".ParameterisedModel(); "
                f"c302.generate({ref!r}, p, cells=None, cells_to_plot=[], cells_to_stimulate=[], "
                "muscles_to_include=[], duration=500, dt=0.05, target_directory='.', "
                "verbose=False)")
        proc = subprocess.run([sys.executable, "-c", code], cwd=d, env=_env(),
                              capture_output=True, text=True)
        if proc.returncode or not lems.exists() or not (d / f"{ref}.net.nml").exists():
            raise ReferenceError(f"c302 generation of {ref} failed (rc {proc.returncode}):\n"
                                 f"{(proc.stdout + proc.stderr)[-3000:]}")
        _compile(d, lems)
        with atomic_path(done) as tmp:
            tmp.write_text("ok\n")
    return d


class NeuronNetwork:
    """The c302 neurons loaded into this process's NEURON, with programmable current clamps.

    Arbitrary waveforms are injected with an ``IClamp`` whose amplitude follows a
    ``Vector.play`` (linear interpolation between samples); the fixed step is ``dt_ms``
    (c302's 0.05 ms). Units: nA, mV, ms. One network per process (NEURON cannot load two
    copies of the same hoc templates): use :func:`neuron_network`.
    """

    def __init__(self, parameter_set: str = "C1", dt_ms: float = 0.05):
        d = neurons_network_dir(parameter_set)
        import neuron
        from neuron import h

        if not getattr(neuron, "_wormlab_mech_loaded", False):
            neuron.load_mechanisms(str(d))
            neuron._wormlab_mech_loaded = True
        ref = f"c302_{parameter_set}_rom"
        spec = importlib.util.spec_from_file_location(f"_wormlab_{ref}_nrn",
                                                      d / f"LEMS_{ref}_nrn.py")
        mod = importlib.util.module_from_spec(spec)
        cwd = os.getcwd()
        try:
            os.chdir(d)  # the export loads GenericNeuronCell.hoc relative to the cwd
            with contextlib.redirect_stdout(io.StringIO()):
                spec.loader.exec_module(mod)
                self._sim = mod.NeuronSimulation(tstop=500.0, dt=dt_ms)
        finally:
            os.chdir(cwd)
        self.h = h
        self.dt_ms = dt_ms
        self.parameter_set = parameter_set
        self._clamps: dict[str, tuple] = {}

    def section(self, name: str):
        try:
            return getattr(self.h, f"a_{name}")[0].soma
        except (AttributeError, LookupError):
            raise KeyError(f"neuron {name!r} is not in the c302 network") from None

    def _clamp(self, name: str):
        if name not in self._clamps:
            ic = self.h.IClamp(self.section(name)(0.5))
            ic.delay = 0.0
            ic.dur = 1e9
            ic.amp = 0.0
            self._clamps[name] = (ic, self.h.Vector(), self.h.Vector())
        return self._clamps[name]

    def simulate(self, t_ms: np.ndarray, currents_nA: np.ndarray, inputs: list[str],
                 outputs: list[str], record_dt_ms: float, method: str = "fixed",
                 tol: float = 1e-7) -> np.ndarray:
        """Run one trial; returns voltages (n_rec, K) in mV sampled every ``record_dt_ms``.

        Args:
            t_ms: (T,) sample times of the input waveforms, ms, starting at 0.
            currents_nA: (T, M) currents injected into ``inputs``, nA.
            method: ``"fixed"`` (step ``dt_ms``: the rom data sets) or ``"cvode"``
                (rtol = atol = ``tol``: the accurate reference, slower).
        """
        if method not in ("fixed", "cvode"):
            raise ValueError(f"method={method!r}; choose 'fixed' or 'cvode'")
        h = self.h
        tstop = float(t_ms[-1])
        active = set(inputs)
        for name, (ic, _, av) in self._clamps.items():  # silence clamps of a previous scenario
            if name not in active:
                av.play_remove()
                ic.amp = 0.0
        for j, name in enumerate(inputs):
            ic, tv, av = self._clamp(name)
            av.play_remove()
            tv.from_python(np.asarray(t_ms, dtype=float))
            av.from_python(np.asarray(currents_nA[:, j], dtype=float))
            av.play(ic._ref_amp, tv, 1)
        recs = []
        for name in outputs:
            v = h.Vector()
            v.record(self.section(name)(0.5)._ref_v, record_dt_ms)
            recs.append(v)
        cvode = h.CVode()
        cvode.active(1 if method == "cvode" else 0)
        if method == "cvode":
            cvode.atol(tol)
            cvode.rtol(tol)
        h.dt = self.dt_ms
        h.tstop = tstop + 0.5 * record_dt_ms  # so that the sample at tstop is recorded
        h.finitialize()
        h.continuerun(h.tstop)
        n = int(round(tstop / record_dt_ms)) + 1
        out = np.stack([np.asarray(v.as_numpy()[:n]) for v in recs], axis=1)
        if out.shape[0] != n:
            raise ReferenceError(f"NEURON recorded {out.shape[0]} samples, expected {n}")
        for v in recs:
            v.play_remove()
        return out


def neuron_network(parameter_set: str = "C1", dt_ms: float = 0.05) -> NeuronNetwork:
    """The per-process NEURON network of :func:`neurons_network_dir` (loaded on first use)."""
    key = f"{parameter_set}@{dt_ms}"
    if key not in _SIM:
        if _SIM:
            raise ReferenceError(
                f"NEURON already holds another c302 network in this process ({next(iter(_SIM))});"
                " use one parameter set and dt per process")
        _SIM[key] = NeuronNetwork(parameter_set, dt_ms)
    return _SIM[key]
