"""High-fidelity generator: c302 (parameter set C1, 302 neurons, no muscles) run in NEURON.

The network is generated once with c302 (Gleeson et al. 2018, OpenWorm) and exported to NEURON
by jNeuroML; the compiled network is cached under ``data/cache/rom/c302_<set>/``. Arbitrary
current waveforms are injected into named neurons with an ``IClamp`` whose amplitude follows a
``Vector.play`` (linear interpolation between samples), and the somatic voltage of named neurons
is recorded at the requested sampling step. One NEURON network lives per process (NEURON cannot
load two copies of the same hoc templates), so the simulator object is a per-process singleton.

Units: currents in nA (NEURON ``IClamp.amp``), voltages in mV, time in ms internally; the
fixed integration step defaults to c302's 0.05 ms.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from pathlib import Path

import numpy as np

from wormlab.paths import cache_dir

_SIM: dict[str, _NeuronNetwork] = {}


def neuron_available() -> bool:
    """True when NEURON, c302 and pyneuroml import (the optional high-fidelity extra)."""
    try:  # c302 prints to stdout on import; keep stdout clean for `--json` callers
        with contextlib.redirect_stdout(io.StringIO()):
            import c302  # noqa: F401
            import neuron  # noqa: F401
            import pyneuroml  # noqa: F401
    except Exception:
        return False
    return True


def _network_dir(parameter_set: str) -> Path:
    return cache_dir("rom", f"c302_{parameter_set}")


def build_network(parameter_set: str = "C1", *, quiet: bool = True) -> Path:
    """Generate (once) the c302 network without stimuli or muscles and compile it for NEURON.

    Returns the folder holding ``LEMS_c302_<set>_rom_nrn.py`` and the compiled mechanisms.
    The first call takes about a minute (jNeuroML export + ``nrnivmodl``); later calls return
    immediately. ``NEURON_HOME`` must point at the environment (``scripts/env.sh`` does it).
    """
    d = _network_dir(parameter_set)
    ref = f"c302_{parameter_set}_rom"
    script = d / f"LEMS_{ref}_nrn.py"
    done = d / ".built"
    if done.exists() and script.exists():
        return d
    if not neuron_available():
        raise RuntimeError(
            "the NEURON generator needs the optional extra: pip install neuron c302 pyneuroml"
        )
    os.environ.setdefault("NEURON_HOME", sys.prefix)
    import importlib as _il

    import c302
    from pyneuroml import pynml

    params = _il.import_module(f"c302.parameters_{parameter_set}").ParameterisedModel()
    cwd = os.getcwd()
    sink = io.StringIO()
    try:
        os.chdir(d)
        with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
            c302.generate(
                ref, params, cells=None, cells_to_plot=[], cells_to_stimulate=[],
                muscles_to_include=[], duration=500, dt=0.05, target_directory=".",
                verbose=False,
            )
            ok = pynml.run_lems_with_jneuroml_neuron(
                f"LEMS_{ref}.xml", nogui=True, only_generate_scripts=True, compile_mods=True,
                exec_in_dir=".", verbose=False, exit_on_fail=False,
            )
    finally:
        os.chdir(cwd)
    if not ok or not script.exists():
        raise RuntimeError(f"jNeuroML could not export the c302 network to NEURON in {d}")
    done.write_text("ok\n")
    return d


class _NeuronNetwork:
    """The c302 network loaded into this process's NEURON, with programmable current clamps."""

    def __init__(self, parameter_set: str = "C1", dt_ms: float = 0.05):
        d = build_network(parameter_set)
        import neuron
        from neuron import h

        if not getattr(neuron, "_wormlab_mech_loaded", False):
            neuron.load_mechanisms(str(d))
            neuron._wormlab_mech_loaded = True
        ref = f"c302_{parameter_set}_rom"
        spec = importlib.util.spec_from_file_location(f"_wormlab_{ref}_nrn", d / f"LEMS_{ref}_nrn.py")
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
            sec = self.section(name)
            ic = self.h.IClamp(sec(0.5))
            ic.delay = 0.0
            ic.dur = 1e9
            ic.amp = 0.0
            self._clamps[name] = (ic, self.h.Vector(), self.h.Vector())
        return self._clamps[name]

    def simulate(self, t_ms: np.ndarray, currents_nA: np.ndarray, inputs: list[str],
                 outputs: list[str], record_dt_ms: float) -> np.ndarray:
        """Run one trial; returns voltages (n_rec, K) in mV sampled every ``record_dt_ms``.

        Args:
            t_ms: (T,) sample times of the input waveforms, ms, starting at 0.
            currents_nA: (T, M) currents injected into ``inputs``, nA.
        """
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
        h.dt = self.dt_ms
        h.tstop = tstop + 0.5 * record_dt_ms  # so that the sample at tstop is recorded
        h.finitialize()
        h.continuerun(h.tstop)
        n = int(round(tstop / record_dt_ms)) + 1
        out = np.stack([np.asarray(v.as_numpy()[:n]) for v in recs], axis=1)
        if out.shape[0] != n:
            raise RuntimeError(f"NEURON recorded {out.shape[0]} samples, expected {n}")
        for v in recs:
            v.play_remove()
        return out


def neuron_network(parameter_set: str = "C1", dt_ms: float = 0.05) -> _NeuronNetwork:
    """The per-process NEURON network (built and loaded on first use)."""
    key = f"{parameter_set}@{dt_ms}"
    if key not in _SIM:
        if _SIM:
            raise RuntimeError(
                "NEURON already holds another c302 network in this process; use one "
                "parameter set and dt per process"
            )
        _SIM[key] = _NeuronNetwork(parameter_set, dt_ms)
    return _SIM[key]
