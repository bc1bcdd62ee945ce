"""Fit bounded circuit parameters: the objective, Adam on exact gradients, CMA-ES on batched
populations (in-process or Dask), and the hybrid "evolve, then refine with gradients".

Parameters are optimised in an unconstrained space ``z`` mapped into each parameter's biological
bounds (``parameter_bounds.yml``, DD017 ranges; :class:`wormlab.fit.Bounded`'s transform: sigmoid
for closed bounds, log-sigmoid where they span >= 100x, softplus for ``[lo, inf)``; slopes keep
their sign). A fitted value can therefore never leave its bounds, whatever the optimiser does.

Runs are resumable: every epoch (Adam) or generation (CMA-ES) writes a checkpoint atomically
(safetensors + JSON, never a pickle); CMA-ES is restored by replaying its seeded ask/tell sequence
with the stored fitness values, which gives the identical state.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wormlab import circuit
from wormlab.circuit import CircuitBlowUpError, Network
from wormlab.circuit._simulate import V_DIVERGED_MV
from wormlab.fit._losses import clip_gradients, correlation_mse, trace_mse, windowed_run

OPTIMISERS = ("adam", "cma", "hybrid")
TARGETS = ("ground_truth", "correlation")
FAILED_LOSS = 1e10  # score of a population member whose simulation diverged


@dataclass(frozen=True)
class FitConfig:
    """One fit (JSON/YAML-able; ``wormlab fit run CONFIG``).

    Args:
        name: run name (checkpoint folder ``data/cache/fit/<name>`` unless ``out_dir``).
        network: :class:`wormlab.circuit.NetworkConfig` fields (e.g. ``{"cells": [...],
            "share": "type"}``).
        parameters: names of the parameter tensors to fit (every entry of each).
        target: ``{"kind": "ground_truth", "perturb": {name: factor}}`` (synthetic: the true
            parameters are the network's, the fit starts from them times the factors) or
            ``{"kind": "correlation", "recording": "kato2015" | "flavell2023:<id>" | path}``
            (real data: the Pearson correlation matrix of the identified neurons).
        stimulus: ``"c302"``, ``None`` or ``{cell: nA}`` constant currents.
        window_ms, n_windows: the loss windows (truncated multiple shooting).
        discard_windows: the first windows are simulated but left out of the loss (the
            transient from the initial state; real-data targets), ``< n_windows``.
        shooting: ``"target"`` (each window restarts from the true state: ground truth only) or
            ``"carry"`` (from the simulation's own state, gradient cut at window edges).
        dt_ms: time step (default :data:`wormlab.circuit.DEFAULT_DT_MS`).
        record: cells whose V enters the loss (default: every cell of the network).
        optimiser: ``"adam"``, ``"cma"`` or ``"hybrid"``.
        max_epochs: Adam steps; max_evals: CMA-ES evaluations (population members).
        learning_rate: Adam's step on z; lr_decay: its factor per epoch (exponential);
        clip_norm: gradient clipping (global norm).
        cma_sigma0, cma_popsize: CMA-ES initial step (in z) and population size.
        hybrid_cma_fraction: share of ``max_evals`` spent on CMA-ES before Adam refines.
        wall_s: optional wall-time budget (s) for the whole run.
        loss_threshold: stop early below this loss.
        seed: seeds CMA-ES and torch.
        scheduler: Dask scheduler for CMA-ES populations (None in-process, "local", address).
        out_dir: checkpoint folder.
        bounds: a ``parameter_bounds.yml`` (empty: the shipped
            ``wormlab/fit/data/parameter_bounds.yml``, DD017 ranges).
    """

    name: str = "fit"
    network: dict = field(default_factory=dict)
    parameters: tuple[str, ...] = ("g_ca",)
    target: dict = field(default_factory=lambda: {"kind": "ground_truth",
                                                  "perturb": {"g_ca": 1.2}})
    stimulus: str | dict | None = "c302"
    window_ms: float = 10.0
    n_windows: int = 2
    discard_windows: int = 0
    shooting: str = "target"
    dt_ms: float = circuit.DEFAULT_DT_MS
    record: tuple[str, ...] = ()
    optimiser: str = "adam"
    max_epochs: int = 50
    max_evals: int = 200
    learning_rate: float = 0.05
    lr_decay: float = 1.0
    clip_norm: float = 10.0
    cma_sigma0: float = 0.5
    cma_popsize: int = 8
    hybrid_cma_fraction: float = 0.5
    wall_s: float | None = None
    loss_threshold: float | None = None
    seed: int = 0
    scheduler: str | None = None
    out_dir: str = ""
    bounds: str = ""

    def __post_init__(self):
        if self.optimiser not in OPTIMISERS:
            raise ValueError(f"optimiser {self.optimiser!r}; choose from {OPTIMISERS}")
        kind = (self.target or {}).get("kind")
        if kind not in TARGETS:
            raise ValueError(f"target kind {kind!r}; choose from {TARGETS}")
        if self.shooting not in ("target", "carry"):
            raise ValueError(f"shooting {self.shooting!r}; choose 'target' or 'carry'")
        if self.shooting == "target" and kind != "ground_truth":
            raise ValueError("shooting='target' needs the true states: only for ground_truth "
                             "targets; use shooting='carry'")
        for k in ("window_ms", "learning_rate", "lr_decay", "clip_norm", "cma_sigma0",
                  "dt_ms"):
            v = getattr(self, k)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{k} must be a finite number > 0, got {v!r}")
        if self.n_windows < 1 or self.max_epochs < 0 or self.max_evals < 0:
            raise ValueError("n_windows >= 1, max_epochs >= 0 and max_evals >= 0 are required")
        if not 0 <= self.discard_windows < self.n_windows:
            raise ValueError(f"discard_windows must be in [0, n_windows={self.n_windows}), "
                             f"got {self.discard_windows!r}")
        if not self.parameters:
            raise ValueError("parameters is empty: name at least one parameter to fit")

    @classmethod
    def from_dict(cls, d: dict) -> FitConfig:
        """From a (JSON/YAML-loaded) dict; an unknown key is a ValueError listing the fields."""
        from wormlab.io import config_from_dict

        return config_from_dict(cls, d)

    @classmethod
    def load(cls, path: str | Path) -> FitConfig:
        """Read a JSON or YAML file (an ``ml: auto_fit:`` section is not required)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"fit config {path} does not exist")
        text = path.read_text()
        try:
            if path.suffix in (".yml", ".yaml"):
                import yaml

                d = yaml.safe_load(text)
            else:
                d = json.loads(text)
        except Exception as exc:  # noqa: BLE001 - any parser error is a bad file
            raise ValueError(f"fit config {path} is not valid {path.suffix[1:] or 'JSON'}: "
                             f"{exc}") from exc
        if not isinstance(d, dict):
            raise ValueError(f"fit config {path} must hold a mapping, got {type(d).__name__}")
        return cls.from_dict(d)


RECOVERY_CELLS = ("AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "DB1")
RECOVERY_STIMULUS = {"AVAL": 0.006, "AVBL": 0.006, "PVCL": 0.006}


def recovery_config(parameters=("g_ca", "e_leak"), factors=(1.25, 0.85), *,
                    optimiser: str = "adam", name: str = "recovery",
                    cells=RECOVERY_CELLS, **options) -> FitConfig:
    """The ground-truth recovery problem used by the tests, the benchmark, notebook 03 and its
    widget: c302 C1 ``cells`` (default a 6-neuron sub-circuit) with 6 pA steps into AVAL, AVBL,
    PVCL; the fit starts from the true ``parameters`` times ``factors`` (synthetic target: the
    circuit's own traces). ``options`` set any other :class:`FitConfig` field."""
    parameters = tuple(parameters)
    if len(factors) != len(parameters):
        raise ValueError(f"{len(parameters)} parameters but {len(factors)} factors")
    d = dict(name=name, network={"cells": list(cells)}, parameters=parameters,
             target={"kind": "ground_truth",
                     "perturb": {p: float(f) for p, f in zip(parameters, factors)}},
             stimulus={k: v for k, v in RECOVERY_STIMULUS.items() if k in cells},
             window_ms=3.0, n_windows=2, optimiser=optimiser, max_epochs=30,
             learning_rate=0.1, lr_decay=0.93)
    d.update(options)
    return FitConfig.from_dict(d)


# ---------------------------------------------------------------------------- bounded transform
def _bound(net: Network, name: str, table=None):
    from wormlab.fit._bounds import _as_table

    return _as_table(table).for_param(net, name)


def _sign(net: Network, name: str, b) -> torch.Tensor:
    x = net.params[name].detach()
    return torch.where(x < 0, -1.0, 1.0).to(x.dtype) if b.abs else torch.ones_like(x)


def to_unconstrained(net: Network, name: str, x: torch.Tensor, table=None) -> torch.Tensor:
    """z such that :func:`from_unconstrained` gives ``x``, with the bounds of
    ``parameter_bounds.yml`` (``table``: a :class:`~wormlab.fit.BoundsTable`, a path, or None
    for the shipped file); the transform is :class:`~wormlab.fit.Bounded`'s."""
    from wormlab.fit._bounds import Bounded

    b = _bound(net, name, table)
    a = (x * _sign(net, name, b).to(x)).double() if b.abs else x.double()
    return Bounded._inverse(b, a)


def from_unconstrained(net: Network, name: str, z: torch.Tensor, table=None) -> torch.Tensor:
    """The parameter value for unconstrained ``z``: always inside the parameter's bounds
    (slopes keep the sign the network's value has)."""
    from wormlab.fit._bounds import Bounded

    b = _bound(net, name, table)
    x = Bounded._forward(b, z)
    return x * _sign(net, name, b).to(x) if b.abs else x


# ---------------------------------------------------------------------------- the objective
def _shift(stim: circuit.Stimulus, offset_ms: float) -> circuit.Stimulus:
    """The stimulus as seen by a window that starts at ``offset_ms``."""
    if stim.waveforms:
        raise ValueError("fits support pulse/step stimuli only (no waveforms)")
    return circuit.Stimulus(pulses=[circuit.Pulse(p.target, p.delay_ms - offset_ms,
                                                  p.duration_ms, p.amplitude_nA)
                                    for p in stim.pulses])


class Objective:
    """Loss of a parameter set in z space; gradients by the circuit's discrete adjoint.

    ``loss(z)`` for a dict of tensors ``{name: z (shape of the parameter)}`` or a batch
    ``{name: z (P, shape)}`` (one loss per member).
    """

    def __init__(self, cfg: FitConfig, net: Network | None = None):
        self.cfg = cfg
        net = net if net is not None else circuit.build_network(**cfg.network)
        unknown = [p for p in cfg.parameters if p not in net.params]
        if unknown:
            import difflib

            raise KeyError(f"unknown parameters {unknown}; known: {sorted(net.params)}"
                           + "".join(f"; {u}: did you mean "
                                     f"{difflib.get_close_matches(u, list(net.params), 3)}?"
                                     for u in unknown))
        self.net = net
        self.names = list(cfg.parameters)
        self._population = False  # loss_np: diverged members are scored, not raised
        from wormlab.fit._bounds import load_bounds

        self.bounds = load_bounds(cfg.bounds or None)
        self.record = list(cfg.record) or list(net.names)
        net.indices(self.record)  # unknown cells: KeyError with suggestions
        stim = cfg.stimulus
        if isinstance(stim, dict):
            stim = {k: float(v) for k, v in stim.items()}
        self.stim = circuit.Stimulus.from_any(
            circuit.default_stimulus(net) if stim == "c302" else stim)
        self.window = cfg.window_ms
        self.true_params = {k: net.params[k].detach().clone() for k in self.names}
        kind = cfg.target["kind"]
        self.target_states: list[torch.Tensor] = []
        if kind == "ground_truth":
            perturb = cfg.target.get("perturb", {})
            bad = [k for k in perturb if k not in self.names]
            if bad:
                raise KeyError(f"perturb names {bad} are not among the fitted parameters "
                               f"{self.names}")
            # the synthetic target: the network's own parameters (labelled synthetic)
            self.target_traces, self.target_states = self._simulate_truth()
            self.start = {k: self.true_params[k] * float(perturb.get(k, 1.0))
                          for k in self.names}
            self.bounds.check(net, self.names, self.start)  # a start outside: clear error
            self.target_corr = None
            self.data_label = "synthetic (the circuit's own traces, ground truth)"
        else:
            self.target_corr, names, self.data_label = _correlation_target(
                cfg.target, net)
            self.record = names
            self.start = dict(self.true_params)
            self.target_traces = None

    # ---------------------------------------------------------------- simulation
    def _run_window(self, params: dict, y0, k: int, batch: int | None = None):
        return circuit.simulate(self.net, _shift(self.stim, k * self.window), self.window,
                                self.cfg.dt_ms, record=self.record, y0=y0, params=params,
                                batch=batch, check_every=0)

    def _simulate_truth(self):
        traces, states = [], []
        with torch.no_grad():
            y = self.net.initial_state(1)
            for k in range(self.cfg.n_windows):
                states.append(y)
                r = self._run_window(None, y, k)
                traces.append(r.v_mV)
                y = r.y_final
        return traces, states

    def x_from_z(self, z: dict) -> dict:
        return {k: from_unconstrained(self.net, k, v, self.bounds) for k, v in z.items()}

    def z_from_x(self, x: dict) -> dict:
        return {k: to_unconstrained(self.net, k, v, self.bounds) for k, v in x.items()}

    def loss(self, z: dict) -> torch.Tensor:
        """Loss (B,) of the parameter sets in ``z``; diverging members give NaN/Inf."""
        x = self.x_from_z(z)
        first = next(iter(x.values()))
        batched = first.dim() > self.net.params[self.names[0]].dim()
        B = first.shape[0] if batched else 1
        net = self.net.batched(B) if batched else self.net
        params = x

        vmax = torch.zeros(B, dtype=torch.float64)

        def sim(y0, k):
            nonlocal vmax
            r = circuit.simulate(net, _shift(self.stim, k * self.window), self.window,
                                 self.cfg.dt_ms, record=self.record, params=params,
                                 y0=(self.target_states[k].expand(B, -1, -1)
                                     if self.cfg.shooting == "target" else y0),
                                 batch=B, check_every=0)
            v = torch.cat([r.v_mV.detach().abs().amax((0, 2)),
                           r.y_final.detach()[:, 0].abs().amax(-1)]).reshape(2, B)
            vmax = torch.maximum(vmax, v.amax(0).double().nan_to_num(math.inf))
            return r

        def finite(v):
            # a diverged member's NaN/Inf trace would make the loss raise for the whole
            # population: it is zeroed here and scored FAILED_LOSS through ``last_diverged``
            # (populations only: Adam's single run must still fail loudly)
            if not self._population:
                return v
            ok = torch.isfinite(v).all(0, keepdim=True).all(-1, keepdim=True)
            return v if bool(ok.all()) else torch.where(ok, v, torch.zeros_like(v))

        if self.target_corr is not None:
            def lf(res, k):
                return correlation_mse(finite(res.v_mV), self.target_corr)
        else:
            def lf(res, k):
                return trace_mse(finite(res.v_mV), self.target_traces[k][:, 0])

        n_skip = self.cfg.discard_windows
        if n_skip:
            score = lf

            def lf(res, k):  # the transient windows are simulated, not scored
                out = score(res, k)
                return out * (0.0 if k < n_skip else self.cfg.n_windows / (self.cfg.n_windows
                                                                            - n_skip))
        y0 = net.initial_state(B).detach()
        total, _ = windowed_run(sim, y0, self.cfg.n_windows, lf)
        # members whose voltage left +-1 V diverged (an explicit step beyond its stability)
        self.last_diverged = vmax > V_DIVERGED_MV
        return total

    def loss_np(self, Z: np.ndarray) -> np.ndarray:
        """Losses of a population ``Z`` (P, D) of flat z vectors (no gradients); diverging
        members score :data:`FAILED_LOSS`."""
        z = self.unflatten(torch.as_tensor(Z, dtype=torch.float64))
        self._population = True
        try:
            with torch.no_grad():
                f = self.loss(z).numpy().astype(np.float64)
            f[self.last_diverged.numpy()] = np.nan
        except CircuitBlowUpError:
            f = np.full(Z.shape[0], np.nan)
        finally:
            self._population = False
        return np.where(np.isfinite(f), f, FAILED_LOSS)

    # ---------------------------------------------------------------- flat vectors
    @property
    def sizes(self) -> list[int]:
        return [self.net.params[k].numel() for k in self.names]

    def flatten(self, z: dict) -> torch.Tensor:
        return torch.cat([z[k].reshape(*z[k].shape[:z[k].dim() - self.net.params[k].dim()], -1)
                          for k in self.names], -1)

    def unflatten(self, v: torch.Tensor) -> dict:
        out, i = {}, 0
        lead = v.shape[:-1]
        for k, n in zip(self.names, self.sizes):
            out[k] = v[..., i:i + n].reshape(*lead, *self.net.params[k].shape)
            i += n
        return out


def _correlation_target(target: dict, net: Network):
    """(corr (K, K) tensor, neuron names, label) of a real recording's identified neurons."""
    from wormlab import recordings as R

    src = str(target.get("recording", "kato2015"))
    if src == "kato2015":
        rec = R.load_kato2015(int(target.get("worm", 0)))
    elif src.startswith("flavell2023:"):
        rec = R.load_flavell2023(src.split(":", 1)[1])
    else:
        rec = R.load(src)
    names = [n for n in rec.neuron_names if n is not None and n in net.index]
    max_n = int(target.get("max_neurons", 40))
    names = names[:max_n]
    if len(names) < 3:
        raise ValueError(f"recording {rec.worm_id}: only {len(names)} identified neurons are "
                         f"in the network ({names}); need >= 3")
    idx = [list(rec.neuron_names).index(n) for n in names]
    x = np.asarray(rec.traces, dtype=np.float64)[:, idx]
    if not np.isfinite(x).all():
        x = np.asarray(rec.fill_nan().traces, dtype=np.float64)[:, idx]
    c = np.corrcoef(x.T)
    if not np.isfinite(c).all():
        raise ValueError(f"recording {rec.worm_id}: a selected neuron has a constant trace")
    return torch.as_tensor(c), names, f"{rec.dataset} worm {rec.worm_id} ({len(names)} neurons)"


# ---------------------------------------------------------------------------- runs
@dataclass
class FitResult:
    """Best parameters (physical units), loss history and bookkeeping of a fit."""

    params: dict
    loss: float
    history: list = field(default_factory=list)  # dicts: phase, step, evals, wall_s, loss
    evals: int = 0
    wall_s: float = 0.0
    run_id: str = ""
    resumed_from: int = 0  # epochs (Adam) / generations (CMA-ES) restored from a checkpoint

    def to_network(self, net: Network, cfg: FitConfig, data: str = "") -> Network:
        """Copy of ``net`` with the fitted values, tagged ``fitted`` with loss, data, date and
        run id in its provenance."""
        import copy
        from datetime import UTC, datetime

        out = copy.deepcopy(net)
        with torch.no_grad():
            for k, v in self.params.items():
                out.params[k].copy_(torch.as_tensor(v, dtype=out.params[k].dtype))
        for k in self.params:
            out.set_provenance(k, "fitted", loss=float(self.loss), data=data,
                               date=datetime.now(UTC).isoformat(timespec="seconds"),
                               run_id=self.run_id, optimiser=cfg.optimiser)
        return out


def _out_dir(cfg: FitConfig) -> Path:
    from wormlab.paths import cache_dir

    return Path(cfg.out_dir) if cfg.out_dir else cache_dir("fit", cfg.name)


def _save_ckpt(out: Path, tensors: dict, meta: dict) -> None:
    """One file, written atomically: the tensors and the JSON bookkeeping (in the safetensors
    metadata), so a kill can never pair the tensors of one epoch with the record of another."""
    from safetensors.torch import save_file

    from wormlab.runs import atomic_path

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "state.safetensors") as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata={"meta": json.dumps(meta)})


def _load_ckpt(out: Path, cfg: FitConfig) -> tuple[dict, dict] | None:
    st = out / "state.safetensors"
    if not st.exists():
        return None
    from wormlab.io import read_safetensors
    from wormlab.runs import remove_orphan_tmp

    remove_orphan_tmp(out)  # temporaries of a writer killed mid-write
    tensors, md = read_safetensors(st, "fit checkpoint")
    try:
        meta = json.loads(md["meta"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"fit checkpoint {st} has no valid bookkeeping ({exc}); delete the "
                         "folder to start over") from exc
    if meta.get("config") != _cfg_key(cfg):
        raise ValueError(f"checkpoint in {out} belongs to another configuration; use another "
                         "name/out_dir or delete it")
    return tensors, meta


def _cfg_key(cfg: FitConfig) -> dict:
    d = dataclasses.asdict(cfg)
    for k in ("max_epochs", "max_evals", "wall_s", "out_dir", "scheduler", "loss_threshold"):
        d.pop(k)  # a resumed run may extend its budget or move
    if not d.get("discard_windows"):
        d.pop("discard_windows", None)  # checkpoints written before the field existed
    return json.loads(json.dumps(d, default=str))


def _budget_spent(cfg: FitConfig, best: float, t_start: float) -> bool:
    """Stop early: the loss threshold is reached or the wall-time budget is spent."""
    if cfg.loss_threshold is not None and best <= cfg.loss_threshold:
        return True
    return cfg.wall_s is not None and time.perf_counter() - t_start > cfg.wall_s


def fit_adam(obj: Objective, cfg: FitConfig, z0: dict | None = None, out: Path | None = None,
             history: list | None = None, evals0: int = 0, t_start: float | None = None,
             max_epochs: int | None = None, show_progress: bool = True) -> FitResult:
    """Adam on z with exact gradients (discrete adjoint), gradient clipping, checkpoint per
    epoch (resumable) and a tqdm bar."""
    from wormlab.runs import progress

    out = out or _out_dir(cfg)
    max_epochs = cfg.max_epochs if max_epochs is None else max_epochs
    t_start = time.perf_counter() if t_start is None else t_start
    history = list(history or [])
    z = {k: v.detach().clone().requires_grad_(True)
         for k, v in (z0 or obj.z_from_x(obj.start)).items()}
    opt = torch.optim.Adam(list(z.values()), lr=cfg.learning_rate)
    epoch0, best, best_z = 0, math.inf, {k: v.detach().clone() for k, v in z.items()}
    ck = _load_ckpt(out / "adam", cfg)
    if ck is not None:
        tensors, meta = ck
        with torch.no_grad():
            for k in z:
                z[k].copy_(tensors[f"z/{k}"])
        st = opt.state_dict()
        for i, k in enumerate(obj.names):
            st["state"][i] = {"step": tensors[f"step/{k}"], "exp_avg": tensors[f"m/{k}"],
                              "exp_avg_sq": tensors[f"v/{k}"]}
        opt.load_state_dict(st)
        epoch0, best = meta["epoch"], meta["best"]
        best_z = {k: tensors[f"best/{k}"] for k in z}
        history = meta["history"]
        evals0 = meta["evals"]
    bar = progress(total=max_epochs, initial=epoch0, desc=f"fit {cfg.name} (adam)",
                   disable=not show_progress)
    evals = evals0
    for epoch in range(epoch0, max_epochs):
        for group in opt.param_groups:  # a closed form, so a resumed run steps identically
            group["lr"] = cfg.learning_rate * cfg.lr_decay ** epoch
        opt.zero_grad()
        loss = obj.loss(z).sum()
        if not bool(torch.isfinite(loss)):
            raise CircuitBlowUpError(f"fit {cfg.name}: loss is {float(loss)} at Adam epoch "
                                     f"{epoch}; the last good checkpoint is kept in {out}")
        loss.backward()
        gnorm = clip_gradients(z.values(), cfg.clip_norm)
        lv = float(loss.detach())
        if lv < best:
            best, best_z = lv, {k: v.detach().clone() for k, v in z.items()}
        opt.step()
        evals += 1
        history.append({"phase": "adam", "step": epoch + 1, "evals": evals,
                        "wall_s": time.perf_counter() - t_start, "loss": lv, "best": best,
                        "grad_norm": gnorm})
        st = opt.state_dict()["state"]
        tensors = {**{f"z/{k}": v for k, v in z.items()},
                   **{f"best/{k}": v for k, v in best_z.items()}}
        for i, k in enumerate(obj.names):
            s = st.get(i, {})
            tensors[f"step/{k}"] = torch.as_tensor(s.get("step", 0.0), dtype=torch.float32)
            tensors[f"m/{k}"] = s.get("exp_avg", torch.zeros_like(z[k]))
            tensors[f"v/{k}"] = s.get("exp_avg_sq", torch.zeros_like(z[k]))
        _save_ckpt(out / "adam", tensors, {"config": _cfg_key(cfg), "epoch": epoch + 1,
                                           "best": best, "history": history, "evals": evals})
        bar.update(1)
        bar.set_postfix(loss=f"{lv:.4g}")
        if _budget_spent(cfg, best, t_start):
            break
    bar.close()
    # the best z seen is evaluated, its loss is the one reported
    with torch.no_grad():
        final = float(obj.loss(best_z).sum()) if math.isfinite(best) else math.inf
    return FitResult(params={k: v.detach() for k, v in obj.x_from_z(best_z).items()},
                     loss=final, history=history, evals=evals,
                     wall_s=time.perf_counter() - t_start, resumed_from=epoch0)


def fit_cma(obj: Objective, cfg: FitConfig, out: Path | None = None,
            max_evals: int | None = None, show_progress: bool = True,
            t_start: float | None = None) -> FitResult:
    """CMA-ES (``cma``) in z space; each generation's population is evaluated as one batch
    (in-process) or in chunks across Dask workers (``cfg.scheduler``); diverging members score
    :data:`FAILED_LOSS`. Resumed exactly by replaying the seeded ask/tell with stored fitness."""
    import cma

    from wormlab.runs import progress

    out = out or _out_dir(cfg)
    max_evals = cfg.max_evals if max_evals is None else max_evals
    t_start = time.perf_counter() if t_start is None else t_start
    x0 = obj.flatten(obj.z_from_x(obj.start)).numpy()
    es = cma.CMAEvolutionStrategy(x0, cfg.cma_sigma0, {
        "seed": cfg.seed + 1, "popsize": cfg.cma_popsize, "verbose": -9,
        "CMA_diagonal": False})
    done: list = []
    history: list = []
    ck = _load_ckpt(out / "cma", cfg)
    if ck is not None:
        _, meta = ck
        done, history = meta["fitness"], meta["history"]
        for f in done:  # replay: the same seed asks the same populations
            X = es.ask()
            es.tell(X, f)
    evals = sum(len(f) for f in done)
    n_done0 = len(done)
    best, best_x = math.inf, x0
    if ck is not None and "best_x" in meta:
        best, best_x = meta["best"], np.asarray(meta["best_x"])
    bar = progress(total=max_evals, initial=evals, desc=f"fit {cfg.name} (cma)",
                   disable=not show_progress)
    while evals + cfg.cma_popsize <= max_evals:
        X = es.ask()
        F = _evaluate(obj, np.asarray(X), cfg)
        es.tell(X, F.tolist())
        done.append(F.tolist())
        evals += len(F)
        i = int(np.argmin(F))
        if F[i] < best:
            best, best_x = float(F[i]), np.asarray(X[i])
        history.append({"phase": "cma", "step": len(done), "evals": evals,
                        "wall_s": time.perf_counter() - t_start, "loss": float(np.min(F)),
                        "best": best, "failed": int((F >= FAILED_LOSS).sum())})
        _save_ckpt(out / "cma", {"best_x": torch.as_tensor(best_x)},
                   {"config": _cfg_key(cfg), "fitness": done, "history": history,
                    "best": best, "best_x": list(map(float, best_x))})
        bar.update(len(F))
        bar.set_postfix(best=f"{best:.4g}")
        if _budget_spent(cfg, best, t_start):
            break
    bar.close()
    z = obj.unflatten(torch.as_tensor(best_x, dtype=torch.float64))
    return FitResult(params={k: v.detach() for k, v in obj.x_from_z(z).items()}, loss=best,
                     history=history, evals=evals, wall_s=time.perf_counter() - t_start,
                     resumed_from=n_done0)


def _evaluate(obj: Objective, Z: np.ndarray, cfg: FitConfig) -> np.ndarray:
    if cfg.scheduler is None:
        return obj.loss_np(Z)
    from dask.distributed import Client, LocalCluster

    cluster = None
    if cfg.scheduler == "local":
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(cfg.scheduler)
    try:
        chunks = np.array_split(Z, min(len(Z), 2 * len(client.scheduler_info()["workers"])))
        o = client.scatter(obj, broadcast=True)
        futs = [client.submit(_loss_np, o, c, pure=False) for c in chunks if len(c)]
        return np.concatenate(client.gather(futs))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _loss_np(obj: Objective, Z: np.ndarray) -> np.ndarray:
    from wormlab.runs import configure_torch

    configure_torch()
    return obj.loss_np(Z)


def run_fit(config, net: Network | None = None, show_progress: bool = True
            ) -> tuple[FitResult, Network]:
    """Run a fit from a :class:`FitConfig`, a dict or a JSON/YAML file (resumable: a killed run
    continues from its last checkpoint). Returns the result and the fitted network (its fitted
    parameters tagged ``fitted`` in the provenance); writes ``result.json`` (loss history,
    recovered vs true values for ground truth) and ``params.json`` (the registry file,
    :func:`wormlab.fit.save_params`) to the run folder."""
    import hashlib

    from wormlab.runs import atomic_path

    if isinstance(config, str | Path):
        cfg = FitConfig.load(config)
    elif isinstance(config, dict):
        cfg = FitConfig.from_dict(config)
    else:
        cfg = config
    torch.manual_seed(cfg.seed)
    obj = Objective(cfg, net)
    out = _out_dir(cfg)
    run_id = hashlib.sha1(json.dumps(_cfg_key(cfg), sort_keys=True).encode()).hexdigest()[:10]
    t0 = time.perf_counter()
    if cfg.optimiser == "adam":
        res = fit_adam(obj, cfg, out=out, show_progress=show_progress, t_start=t0)
    elif cfg.optimiser == "cma":
        res = fit_cma(obj, cfg, out=out, show_progress=show_progress, t_start=t0)
    else:
        n_cma = int(cfg.max_evals * cfg.hybrid_cma_fraction)
        r1 = fit_cma(obj, cfg, out=out, max_evals=n_cma, show_progress=show_progress,
                     t_start=t0)
        r2 = fit_adam(obj, cfg, z0=obj.z_from_x(r1.params), out=out, history=r1.history,
                      evals0=r1.evals, t_start=t0, show_progress=show_progress)
        res = r2 if r2.loss <= r1.loss else dataclasses.replace(r1, history=r2.history,
                                                                 evals=r2.evals)
    res.run_id = run_id
    res.wall_s = time.perf_counter() - t0
    fitted = res.to_network(obj.net, cfg, obj.data_label)
    summary = {"name": cfg.name, "run_id": run_id, "optimiser": cfg.optimiser,
               "loss": res.loss, "evals": res.evals, "wall_s": res.wall_s,
               "resumed_from": res.resumed_from,
               "data": obj.data_label,
               "params": {k: v.tolist() for k, v in res.params.items()},
               "history": res.history}
    if cfg.target["kind"] == "ground_truth":
        summary["true_params"] = {k: v.tolist() for k, v in obj.true_params.items()}
        summary["rel_err"] = {k: float(((res.params[k] - obj.true_params[k]).abs()
                                        / obj.true_params[k].abs().clamp_min(1e-12)).max())
                              for k in obj.names}
    out.mkdir(parents=True, exist_ok=True)
    from wormlab.fit._registry import save_params

    summary["params_file"] = str(save_params(fitted, out / "params.json"))
    with atomic_path(out / "result.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    return res, fitted
