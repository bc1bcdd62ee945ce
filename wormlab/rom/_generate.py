"""Data set generation from a high-fidelity simulator: parallel (dask), resumable, with progress.

Each sequence is simulated once at the finest sampling step and written as one text file per
sampling step (``dt0.1ms/``, ``dt0.5ms/`` ...) in the published format, with a ``columns.json``
sidecar per folder. A sequence whose files all exist is skipped, so a killed job resumes where
it stopped. Simulated data are labelled ``synthetic`` in their file names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from wormlab.rom._format import SIDECAR, write_sequence
from wormlab.rom._shapes import DEFAULT_AMPLITUDE_NA, shape_library
from wormlab.runs import atomic_path, progress

FORWARD_INPUTS = ("PLML", "PLMR", "AVBL", "AVBR")
FORWARD_OUTPUTS = ("DB1", "LUAL", "PVR", "VB1")
# Nictation: IL2 neurons are required for nictation (Lee et al. 2012, Nat. Neurosci. 15:107);
# outputs are head/neck motor and interneurons downstream of IL2 in the c302 (Cook/White)
# wiring: RMD, SMD, RME, URA, RIP and OLQ classes (our choice; Mestre et al. 2021 used 10 inputs
# and 28 outputs for the two-scenario model without listing them in the text we follow).
NICTATION_INPUTS = ("IL2DL", "IL2DR", "IL2VL", "IL2VR", "IL2L", "IL2R")
NICTATION_OUTPUTS = (
    "RMDDL", "RMDDR", "RMDVL", "RMDVR", "RMDL", "RMDR", "SMDDL", "SMDDR", "SMDVL", "SMDVR",
    "RMEL", "RMER", "RMED", "RMEV", "URADL", "URADR", "URAVL", "URAVR", "RIPL", "RIPR",
    "OLQDL", "OLQDR", "OLQVL", "OLQVR",
)
MAX_ABS_MV = 150.0  # anything beyond this is a numerical blow-up, not a neuron


class SimulationBlowUp(RuntimeError):
    """The simulator produced non-finite or absurd voltages for a stimulus."""


@dataclass(frozen=True)
class GenerateConfig:
    """What to simulate.

    Attributes:
        backend: ``"neuron"`` (c302 in NEURON) or ``"circuit"`` (wormlab.circuit, when
            available); ``"auto"`` prefers the circuit.
        inputs / outputs: neuron names (defaults: the paper's forward-crawling scenario).
        n_sequences: number of stimuli (recipes of :func:`shape_library`).
        duration_ms: 500 ms as in the paper.
        sample_dt_ms: sampling steps to write; the finest one is simulated and recorded.
        amplitude_nA: peak current (see ``_shapes``).
        sim_dt_ms: fixed integration step of the simulator (c302 default 0.05 ms).
        parameter_set: c302 parameter set.
        seed: stimulus seed.
        scenario_groups: optional list of input-name groups; with it, sequence ``i`` drives
            only group ``i mod len(groups)`` (the two-scenario experiment).
        prefix: file-name prefix (``synthetic``).
    """

    backend: str = "auto"
    inputs: tuple[str, ...] = FORWARD_INPUTS
    outputs: tuple[str, ...] = FORWARD_OUTPUTS
    n_sequences: int = 40
    duration_ms: float = 500.0
    sample_dt_ms: tuple[float, ...] = (0.5, 0.1)
    amplitude_nA: float = DEFAULT_AMPLITUDE_NA
    sim_dt_ms: float = 0.05
    parameter_set: str = "C1"
    seed: int = 0
    scenario_groups: tuple[tuple[str, ...], ...] = field(default_factory=tuple)
    prefix: str = "synthetic"

    def __post_init__(self):
        if not self.inputs or not self.outputs:
            raise ValueError("inputs and outputs must name at least one neuron each")
        fine = min(self.sample_dt_ms)
        for d in self.sample_dt_ms:
            r = d / fine
            if abs(r - round(r)) > 1e-9:
                raise ValueError(f"sample_dt_ms {self.sample_dt_ms}: each must be a multiple "
                                 f"of the finest ({fine})")
        if self.duration_ms <= 0 or self.n_sequences < 1:
            raise ValueError("duration_ms and n_sequences must be positive")
        for g in self.scenario_groups:
            bad = [x for x in g if x not in self.inputs]
            if bad:
                raise ValueError(f"scenario group names {bad} that are not inputs")


def stimuli(cfg: GenerateConfig):
    """The stimulus library of ``cfg``: ``(names, t_ms (T,), currents (T, B, M) nA)``."""
    fine = min(cfg.sample_dt_ms)
    n_t = int(round(cfg.duration_ms / fine)) + 1
    t_ms = np.arange(n_t) * fine
    if cfg.scenario_groups:
        names, cur = [], np.zeros((n_t, cfg.n_sequences, len(cfg.inputs)))
        for s, group in enumerate(cfg.scenario_groups):
            idx = list(range(s, cfg.n_sequences, len(cfg.scenario_groups)))
            cols = [cfg.inputs.index(x) for x in group]
            nm, c = shape_library(len(idx), len(cols), t_ms, amplitude_nA=cfg.amplitude_nA,
                                  seed=cfg.seed + 7919 * s)
            for k, i in enumerate(idx):
                cur[:, i, cols] = c[:, k]
                names.append((i, f"s{s}_{nm[k]}"))
        names = [f"{cfg.prefix}_{i:03d}_{n.split('_', 2)[0]}_{n.split('_', 2)[2]}"
                 for i, n in sorted(names)]
        return names, t_ms, cur
    nm, cur = shape_library(cfg.n_sequences, len(cfg.inputs), t_ms,
                            amplitude_nA=cfg.amplitude_nA, seed=cfg.seed)
    return [f"{cfg.prefix}_{n}" for n in nm], t_ms, cur


def simulate(cfg: GenerateConfig, t_ms, currents_nA) -> np.ndarray:
    """Simulate a batch with ``cfg.backend``; returns voltages (T, B, K) in mV at ``t_ms``.

    Args:
        t_ms: (T,) evenly spaced times starting at 0, ms.
        currents_nA: (T, B, M) currents into ``cfg.inputs``.
    Raises:
        SimulationBlowUp: when a trace is non-finite or beyond +-150 mV.
    """
    currents_nA = np.asarray(currents_nA, dtype=float)
    if currents_nA.ndim != 3 or currents_nA.shape[0] != len(t_ms) or currents_nA.shape[2] != len(
        cfg.inputs
    ):
        raise ValueError(
            f"currents must be (T={len(t_ms)}, B, M={len(cfg.inputs)}); got {currents_nA.shape}"
        )
    backend = resolve_backend(cfg.backend)
    rec_dt = float(t_ms[1] - t_ms[0])
    if backend == "neuron":
        from wormlab.circuit.reference import neuron_network

        net = neuron_network(cfg.parameter_set, cfg.sim_dt_ms)
        out = np.stack(
            [net.simulate(t_ms, currents_nA[:, b], list(cfg.inputs), list(cfg.outputs), rec_dt)
             for b in range(currents_nA.shape[1])], axis=1)
    else:
        out = _circuit_simulate(cfg, t_ms, currents_nA)
    bad = ~np.isfinite(out) | (np.abs(out) > MAX_ABS_MV)
    if bad.any():
        b = int(np.argwhere(bad.any(axis=(0, 2)))[0, 0])
        raise SimulationBlowUp(
            f"{backend}: sequence {b} produced non-finite or |V| > {MAX_ABS_MV} mV; lower the "
            f"amplitude (peak input {np.abs(currents_nA[:, b]).max():.4g} nA)"
        )
    return out


_CIRCUIT: dict = {}


def circuit_network(parameter_set: str = "C1"):
    """The wormlab.circuit network used as generator (cached per process).

    It is read from the same c302 ``<set>`` network file (302 neurons, no muscles, no
    stimuli) that the NEURON generator runs, so both generators simulate one model; without
    c302 installed it falls back to C1 cells on the cect Cook 2019 wiring.
    """
    if parameter_set not in _CIRCUIT:
        from wormlab import circuit
        from wormlab.circuit.reference import neuron_available, neurons_network_dir

        if neuron_available():
            nml = neurons_network_dir(parameter_set) / f"c302_{parameter_set}_rom.net.nml"
            _CIRCUIT[parameter_set] = circuit.build_network(str(nml))
        else:
            _CIRCUIT[parameter_set] = circuit.build_network(source="connectome")
    return _CIRCUIT[parameter_set]


def _circuit_simulate(cfg, t_ms, currents_nA):
    """Batched run of the differentiable circuit (exp-Euler at ``cfg.sim_dt_ms``).

    The waveform is given at the recording step and held between samples by the circuit.
    """
    import torch

    from wormlab import circuit

    rec_dt = float(t_ms[1] - t_ms[0])
    every = int(round(rec_dt / cfg.sim_dt_ms))
    if abs(every * cfg.sim_dt_ms - rec_dt) > 1e-9:
        raise ValueError(f"sampling step {rec_dt} ms is not a multiple of sim_dt_ms "
                         f"{cfg.sim_dt_ms}")
    stim = circuit.Stimulus.waveform(list(cfg.inputs), torch.as_tensor(currents_nA), rec_dt)
    try:
        with torch.no_grad():  # no autograd graph: 10^4 steps x batch would fill the memory
            res = circuit.simulate(circuit_network(cfg.parameter_set), stim, duration_ms=float(t_ms[-1]),
                                   dt_ms=cfg.sim_dt_ms, record=list(cfg.outputs),
                                   batch=currents_nA.shape[1], record_every=every)
    except circuit.CircuitBlowUpError as exc:
        raise SimulationBlowUp(f"circuit: {exc}") from exc
    v = res.v_mV.detach().cpu().numpy().astype(np.float64)
    if v.shape[0] != len(t_ms):
        raise RuntimeError(f"circuit returned {v.shape[0]} samples, expected {len(t_ms)}")
    return v


def circuit_available() -> bool:
    try:
        import wormlab.circuit as c
    except Exception:
        return False
    return hasattr(c, "simulate") and hasattr(c, "Stimulus")


def resolve_backend(name: str) -> str:
    if name == "auto":
        if circuit_available():
            return "circuit"
        from wormlab.circuit.reference import neuron_missing

        reason = neuron_missing()
        if reason is None:
            return "neuron"
        raise RuntimeError("no generator available: wormlab.circuit is not importable and the "
                           f"NEURON/c302 stack is incomplete ({reason})")
    if name not in ("neuron", "circuit"):
        raise ValueError(f"unknown backend {name!r}; choose 'neuron', 'circuit' or 'auto'")
    if name == "neuron":
        from wormlab.circuit.reference import require_neuron

        require_neuron("backend 'neuron'")
    if name == "circuit" and not circuit_available():
        raise RuntimeError("backend 'circuit' requested but wormlab.circuit's simulate API is "
                           "not available")
    return name


def _dirs(out_dir: Path, cfg: GenerateConfig) -> dict[float, Path]:
    return {d: out_dir / f"dt{d:g}ms" for d in cfg.sample_dt_ms}


def _pending(cfg: GenerateConfig, out_dir: Path, names: list[str]) -> list[int]:
    dirs = _dirs(out_dir, cfg)
    return [i for i, n in enumerate(names)
            if not all((d / f"{n}.dat").exists() for d in dirs.values())]


def _write_one(cfg, out_dir, name, t_ms, cur, volt):
    fine = min(cfg.sample_dt_ms)
    for d, folder in _dirs(out_dir, cfg).items():
        every = int(round(d / fine))
        write_sequence(folder / f"{name}.dat", t_ms[::every] / 1000.0, volt[::every],
                       cur[::every])


def _run_chunk(cfg_json: str, out_dir: str, idx: list[int]) -> list[int]:
    """Worker task: simulate and write sequences ``idx`` (runs in a dask worker process)."""
    from wormlab.runs import configure_torch

    configure_torch(1)
    cfg = config_from_json(cfg_json)
    names, t_ms, cur = stimuli(cfg)
    for i in idx:
        volt = simulate(cfg, t_ms, cur[:, i : i + 1])[:, 0]
        _write_one(cfg, Path(out_dir), names[i], t_ms, cur[:, i], volt)
    return idx


def config_from_json(text: str) -> GenerateConfig:
    d = json.loads(text)
    for k in ("inputs", "outputs", "sample_dt_ms"):
        d[k] = tuple(d[k])
    d["scenario_groups"] = tuple(tuple(g) for g in d.get("scenario_groups", ()))
    return GenerateConfig(**d)


def generate_dataset(
    cfg: GenerateConfig,
    out_dir,
    *,
    workers: int = 1,
    chunk: int = 4,
    batch: int = 40,
    on_done: Callable[[int], None] | None = None,
) -> dict[float, Path]:
    """Simulate the stimulus library of ``cfg`` into ``out_dir``; resumable.

    Args:
        workers: dask worker processes (1: in this process, no cluster).
        chunk: sequences per dask task (each worker loads the network once per process).
        batch: sequences simulated together by the batched circuit backend (one process).
    Returns:
        ``{sample_dt_ms: folder}`` with the text files and ``columns.json`` sidecars.
    """
    out_dir = Path(out_dir)
    names, t_ms, cur = stimuli(cfg)
    dirs = _dirs(out_dir, cfg)
    for d, folder in dirs.items():
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"outputs": list(cfg.outputs), "inputs": list(cfg.inputs), "output_unit": "mV",
                "input_unit": "nA", "dt_s": d / 1000.0, "generator": asdict(cfg)}
        with atomic_path(folder / SIDECAR) as tmp:
            tmp.write_text(json.dumps(meta, indent=1) + "\n")
    todo = _pending(cfg, out_dir, names)
    bar = progress(total=len(names), initial=len(names) - len(todo), desc="simulate",
                   unit="seq")
    try:
        if workers <= 1 and todo and resolve_backend(cfg.backend) == "circuit":
            for k in range(0, len(todo), batch):  # the circuit simulates a batch at once
                idx = todo[k : k + batch]
                volt = simulate(cfg, t_ms, cur[:, idx])
                for b, i in enumerate(idx):
                    _write_one(cfg, out_dir, names[i], t_ms, cur[:, i], volt[:, b])
                    if on_done:
                        on_done(i)
                bar.update(len(idx))
        elif workers <= 1:
            for i in todo:
                _run_chunk(json.dumps(asdict(cfg)), str(out_dir), [i])
                bar.update(1)
                if on_done:
                    on_done(i)
        else:
            from dask.distributed import Client, LocalCluster, as_completed

            chunks = [todo[k : k + chunk] for k in range(0, len(todo), chunk)]
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                futs = [client.submit(_run_chunk, json.dumps(asdict(cfg)), str(out_dir), c,
                                      pure=False) for c in chunks]
                for fut in as_completed(futs):
                    done = fut.result()
                    bar.update(len(done))
                    if on_done:
                        for i in done:
                            on_done(i)
    finally:
        bar.close()
    return dirs
