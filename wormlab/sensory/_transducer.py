"""GRU transducers: stimulus time series -> input current (nA) into a modality's sensory neurons.

Trained so that the *circuit's* simulated sensory-neuron response (c302 C1, exp2 at 1 ms, the
crawl loop's solver) matches the reference curves of :mod:`wormlab.sensory._references`:

* the circuit is the sub-circuit of the modality's sensory neurons plus every cell with a
  chemical synapse or gap junction to or from them in c302 C1 Full (:func:`sensory_network`):
  the partners' synapses feed back onto the sensory cells (a 0.09 nS graded synapse at 10 mV
  driving force is ~1 pA, as large as the transducer's currents), cells two synapses away do so
  only through the partners; the whole 397-cell network would cost ~10x per step.
* the read-out is the sensory neuron's membrane potential V (mV), mapped to dF/F with one affine
  calibration per neuron ``dF/F = a (V - b)`` fitted by least squares on the training protocols
  only. V rather than [Ca]: in C1 the cells' [Ca] spans 1e-12..1e-9 mM between rest and
  +2 pA (probe in docs/sensory.md) and cannot go below rest, so OFF responses (decreases) are
  invisible in it, while V moves smoothly from -58 to -34 mV.
* the output current is bounded to [0, :data:`I_MAX_NA`]: the C1 cells have input resistances of
  tens of GOhm; -0.5 pA drives V to -176 mV and +8 pA makes them oscillate (measured,
  docs/sensory.md), so a bounded, non-negative current keeps the closed loop physiological.

Training (:func:`train`): stage A regresses the GRU on "teacher" currents (the reference mapped
to a target V with a nominal gain, inverted through the circuit's measured static I -> V curve);
stage B backpropagates through ``circuit.simulate`` (exp2, 1 ms, autograd through the compiled
step) on the training protocols. Checkpoint per modality and epoch; resumable.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wormlab.sensory._references import FRAME_DT_MS, MODALITIES, UNITS, Reference

I_MAX_NA = 0.004  # upper bound of the transducer current, nA (4 pA; see module docstring)
I_BASE_NA = 0.0006  # nominal baseline current of stage A's targets, nA (V ~ -45 mV in C1)
TARGET_SPAN_MV = 10.0  # stage A/B nominal gain: the modality's max |dF/F| maps to this many mV
CIRCUIT_DT_MS = 1.0
SOLVER = "exp2"
WARMUP_FRAMES = 50  # 2 s of the first stimulus value to adapt the GRU state
SKIP_S = 1.0  # frames before this are excluded from losses and metrics (circuit settling)
HIDDEN = 32
DATA = Path(__file__).parent / "data"

# normalisation of the stimulus inside the module: x = f(s) (stated constants)
NORMALISATION = {
    "temperature": ("(s - 20 degC) / 5 degC", lambda s: (s - 20.0) / 5.0),
    "nacl": ("log1p(s / 10 mM) / log1p(5)", lambda s: torch.log1p(s.clamp_min(0) / 10.0)
             / math.log1p(5.0)),
    "odour": ("log1p(s / 92 uM) / log1p(10)", lambda s: torch.log1p(s.clamp_min(0) / 92.0)
              / math.log1p(10.0)),
    "touch": ("s / 10 um (signed: > 0 anterior, < 0 posterior)", lambda s: s / 10.0),
    "noxious": ("s / 1 M", lambda s: s / 1.0),
}
BASELINE = {"temperature": 20.0, "nacl": 0.0, "odour": 0.0, "touch": 0.0, "noxious": 0.0}
DIFF_GAIN = 5.0  # the second input feature is DIFF_GAIN * (x_t - x_{t-1})


class TransducerError(ValueError):
    """Bad input to a transducer (names the modality and the problem)."""


def _check_modality(modality: str) -> str:
    if modality not in MODALITIES:
        raise TransducerError(f"unknown modality {modality!r}; choose from {MODALITIES}")
    return modality


class Transducer(nn.Module):
    """stimulus (T, B[, 1]) in ``units`` -> current (T, B, len(neurons)) nA, 40 ms frames.

    The state is one tensor (B, HIDDEN + 1): the GRU hidden state and the previous normalised
    stimulus (for the derivative feature).
    """

    frame_dt_ms = FRAME_DT_MS

    def __init__(self, modality: str, neurons: list[str], hidden: int = HIDDEN):
        super().__init__()
        from wormlab.connectome import NEURONS

        self.modality = _check_modality(modality)
        bad = [n for n in neurons if n not in set(NEURONS)]
        if bad or not neurons:
            raise TransducerError(f"transducer {modality!r}: unknown neurons {bad}" if bad
                                  else f"transducer {modality!r}: no neurons")
        self.neurons = list(neurons)
        self.units = UNITS[modality]
        self.normalisation = NORMALISATION[modality][0]
        self.hidden = hidden
        self.gru = nn.GRU(2, hidden)
        self.head = nn.Linear(hidden, len(neurons))
        # start at the nominal baseline current
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.fill_(math.log(I_BASE_NA / (I_MAX_NA - I_BASE_NA)))

    # ------------------------------------------------------------------ input checks
    def _as_series(self, stimulus) -> torch.Tensor:
        s = torch.as_tensor(stimulus)
        if s.dim() == 3:
            if s.shape[-1] != 1:
                raise TransducerError(f"transducer {self.modality!r}: stimulus must be (T, B) or "
                                      f"(T, B, 1), got shape {tuple(s.shape)}")
            s = s[..., 0]
        if s.dim() != 2 or s.shape[0] < 1 or s.shape[1] < 1:
            raise TransducerError(f"transducer {self.modality!r}: stimulus must be (T, B) or "
                                  f"(T, B, 1), got shape {tuple(s.shape)}")
        return self._finite(s.to(self.head.weight.dtype))

    def _finite(self, s: torch.Tensor) -> torch.Tensor:
        if not bool(torch.isfinite(s).all()):
            idx = tuple(int(i) for i in (~torch.isfinite(s)).nonzero()[0])
            raise TransducerError(f"transducer {self.modality!r}: stimulus has a non-finite "
                                  f"value {float(s[idx])} at index {idx} ({self.units})")
        return s

    def normalise(self, s: torch.Tensor) -> torch.Tensor:
        return NORMALISATION[self.modality][1](s)

    # ------------------------------------------------------------------ stepping
    def initial_state(self, batch: int, stimulus=None) -> torch.Tensor:
        """State (B, HIDDEN + 1) adapted to a constant ``stimulus`` (B,) or scalar (default: the
        modality's baseline, e.g. 20 degC, 0 mM) for :data:`WARMUP_FRAMES` frames."""
        dtype = self.head.weight.dtype
        if stimulus is None:
            stimulus = BASELINE[self.modality]
        s = torch.as_tensor(stimulus, dtype=dtype).reshape(-1)
        if s.numel() == 1:
            s = s.expand(batch)
        if s.shape != (batch,):
            raise TransducerError(f"transducer {self.modality!r}: initial stimulus must be a "
                                  f"scalar or ({batch},), got shape {tuple(s.shape)}")
        x = self.normalise(self._finite(s))
        feats = torch.stack([x, torch.zeros_like(x)], -1)[None].expand(WARMUP_FRAMES, -1, -1)
        _, h = self.gru(feats.contiguous())
        return torch.cat([h[0], x[:, None]], 1)

    def step(self, stimulus_b, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One 40 ms frame: stimulus (B,) in ``units`` -> (current (B, n_neurons) nA, state)."""
        s = torch.as_tensor(stimulus_b, dtype=self.head.weight.dtype)
        if s.dim() != 1 or s.shape[0] != state.shape[0]:
            raise TransducerError(f"transducer {self.modality!r}: step stimulus must be "
                                  f"({state.shape[0]},), got shape {tuple(s.shape)}")
        x = self.normalise(self._finite(s))
        feats = torch.stack([x, DIFF_GAIN * (x - state[:, -1])], -1)[None]
        out, h = self.gru(feats, state[None, :, :-1].contiguous())
        return self._current(out[0]), torch.cat([h[0], x[:, None]], 1)

    def _current(self, out: torch.Tensor) -> torch.Tensor:
        return I_MAX_NA * torch.sigmoid(self.head(out))

    def forward(self, stimulus) -> torch.Tensor:
        """Whole series (T, B) or (T, B, 1) -> (T, B, n_neurons) nA (the state starts adapted to
        the first frame's stimulus)."""
        s = self._as_series(stimulus)
        state = self.initial_state(s.shape[1], s[0])
        x = self.normalise(s)
        prev = torch.cat([state[None, :, -1], x[:-1]], 0)
        feats = torch.stack([x, DIFF_GAIN * (x - prev)], -1)
        out, _ = self.gru(feats, state[None, :, :-1].contiguous())
        return self._current(out)


# ---------------------------------------------------------------------------- the circuit side
_NETS: dict = {}


def sensory_cells(neurons: list[str]) -> list[str]:
    """The modality's neurons followed by their direct chemical/gap partners in c302 C1 Full."""
    from wormlab import circuit

    if "full" not in _NETS:
        _NETS["full"] = circuit.build_network().spec
    spec = _NETS["full"]
    idx = {spec.cells.index(n) for n in neurons}
    part = set()
    for a, b, _t, _w in list(spec.chem) + list(spec.gaps):
        if a in idx:
            part.add(b)
        if b in idx:
            part.add(a)
    return list(neurons) + [spec.cells[i] for i in sorted(part - idx)]


def sensory_network(neurons: list[str]):
    """The sub-circuit of :func:`sensory_cells` (cached per neuron set), float64."""
    from wormlab import circuit

    key = tuple(neurons)
    if key not in _NETS:
        _NETS[key] = circuit.build_network(cells=sensory_cells(list(neurons)))
    return _NETS[key]


def simulate_response(net, neurons: list[str], current_nA: torch.Tensor, *,
                      compile: bool = True, warmup_ms: float = 1000.0) -> torch.Tensor:
    """V (T, B, K) mV of ``neurons`` at the start of every 40 ms frame, for currents
    (T, B, K) nA held over each frame; the circuit first settles for ``warmup_ms`` under the
    first frame's current (no gradient through the warm-up)."""
    from wormlab import circuit

    T, B, _ = current_nA.shape
    fr = FRAME_DT_MS
    with torch.no_grad():
        n = int(round(warmup_ms / fr))
        wu = circuit.Stimulus.waveform(neurons, current_nA[:1].detach().expand(n, B, -1), fr)
        r = circuit.simulate(net, wu, n * fr, CIRCUIT_DT_MS, solver=SOLVER, record=[],
                             record_every=int(fr / CIRCUIT_DT_MS), batch=B,
                             dtype=torch.float64, compile=compile)
        y0 = r.y_final
    stim = circuit.Stimulus.waveform(neurons, current_nA, fr)
    r = circuit.simulate(net, stim, T * fr, CIRCUIT_DT_MS, solver=SOLVER,
                         record={"v": list(neurons)}, record_every=int(fr / CIRCUIT_DT_MS),
                         y0=y0, dtype=torch.float64, compile=compile)
    return r.states["v"][:-1]


def static_curve(net, neurons: list[str], currents_nA: np.ndarray, hold_ms: float = 1500.0,
                 compile: bool = False) -> np.ndarray:
    """Steady V (len(currents), K) mV of ``neurons`` when all of them receive each current."""
    from wormlab import circuit

    c = torch.as_tensor(currents_nA, dtype=torch.float64)
    B = c.numel()
    stim = circuit.Stimulus.waveform(neurons, c[None, :, None].expand(2, B, len(neurons)),
                                     hold_ms / 2)
    with torch.no_grad():
        r = circuit.simulate(net, stim, hold_ms, CIRCUIT_DT_MS, solver=SOLVER,
                             record={"v": list(neurons)}, record_every=int(hold_ms / 2),
                             batch=B, dtype=torch.float64, compile=compile)
    return r.states["v"][-1].numpy()


# ---------------------------------------------------------------------------- calibration/metrics
def _stack(ref: Reference, names: list[str]):
    """(T, B) stimulus and (T, B, K) reference of the protocols ``names`` (same length)."""
    s = np.stack([ref.protocols[p].stimulus for p in names], 1)
    r = np.stack([np.stack([ref.protocols[p].response[n] for n in ref.neurons], -1)
                  for p in names], 1)
    t = ref.protocols[names[0]].t_s
    return t, torch.as_tensor(s), torch.as_tensor(r)


def fit_calibration(v: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Least squares ``target ~ a * v + c`` per neuron over (T, B) frames where ``mask``;
    returns (K, 2) rows (a in dF/F per mV, c)."""
    out = []
    for k in range(v.shape[-1]):
        x, y = v[..., k][mask].ravel(), target[..., k][mask].ravel()
        A = np.stack([x, np.ones_like(x)], 1)
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        out.append(coef)
    return np.array(out)


def protocol_metrics(t_s: np.ndarray, sim: np.ndarray, ref: np.ndarray, neurons: list[str],
                     rel_threshold: float = 0.25, scale: float | None = None) -> dict:
    """Metrics of one protocol, sim/ref (T, K) dF/F: for each *responding* neuron (|ref| peak >=
    ``rel_threshold`` x the protocol's largest |ref| peak, and >= 0.1 x ``scale``, the
    modality's largest |ref|, when given) the peak amplitude error (%, signed, at the extreme in
    the reference's direction), the time-to-peak error (s); and the normalised RMSE over all
    neurons (RMSE / the protocol's largest |ref|; for a *silent* protocol, whose largest |ref|
    is < 0.1 x ``scale``, RMSE / ``scale``, and ``silent`` is True), frames after
    :data:`SKIP_S`."""
    keep = t_s >= SKIP_S
    t, s, r = t_s[keep], sim[keep], ref[keep]
    top = float(np.abs(r).max())
    silent = scale is not None and top < 0.1 * scale
    per = {}
    for k, n in enumerate(neurons):
        j = int(np.abs(r[:, k]).argmax())
        peak = float(r[j, k])
        if top == 0 or silent or abs(peak) < rel_threshold * top:
            continue
        sign = 1.0 if peak > 0 else -1.0
        js = int((sign * s[:, k]).argmax())
        # first crossing of half the peak: robust where the maximum is a flat plateau (ramps)
        jh = int(np.argmax(sign * r[:, k] >= 0.5 * abs(peak)))
        above = sign * s[:, k] >= 0.5 * abs(float(s[js, k]))
        jsh = int(np.argmax(above))
        per[n] = {"ref_peak": peak, "sim_peak": float(s[js, k]),
                  "peak_error_pct": 100.0 * (float(s[js, k]) - peak) / abs(peak),
                  "time_to_peak_error_s": float(t[js] - t[j]),
                  "time_to_half_peak_error_s": float(t[jsh] - t[jh])}
    rmse = float(np.sqrt(np.mean((s - r) ** 2)))
    denom = scale if silent else top
    return {"neurons": per, "nrmse": rmse / denom if denom else float("nan"), "silent": silent,
            "max_abs_sim": float(np.abs(s).max()),
            "max_abs_peak_error_pct": max((abs(v["peak_error_pct"]) for v in per.values()),
                                          default=float("nan"))}


def evaluate(transducer: Transducer, ref: Reference, *, calibration: np.ndarray | None = None,
             compile: bool = True) -> dict:
    """Simulate every protocol through the circuit; fit the calibration on the training
    protocols (unless given); metrics per protocol, split into train and held-out."""
    names = list(ref.protocols)
    lengths = {len(ref.protocols[p].t_s) for p in names}
    if len(lengths) != 1:
        raise ValueError(f"modality {ref.modality}: protocols differ in length {lengths}")
    t, s, r = _stack(ref, names)
    net = sensory_network(ref.neurons)
    with torch.no_grad():
        i = transducer(s)
        v = simulate_response(net, ref.neurons, i, compile=compile).numpy()
    rn = r.numpy()
    train_idx = [names.index(p) for p in ref.train]
    mask = np.zeros(v.shape[:2], dtype=bool)
    mask[np.ix_(t >= SKIP_S, train_idx)] = True
    cal = fit_calibration(v, rn, mask) if calibration is None else np.asarray(calibration)
    sim = v * cal[:, 0] + cal[:, 1]
    out = {"modality": ref.modality, "neurons": ref.neurons, "calibration": cal.tolist(),
           "protocols": {}}
    scale = float(np.abs(rn).max())
    for b, p in enumerate(names):
        m = protocol_metrics(t, sim[:, b], rn[:, b], ref.neurons, scale=scale)
        m["split"] = "heldout" if p in ref.heldout else "train"
        m["current_range_nA"] = [float(i[:, b].min()), float(i[:, b].max())]
        out["protocols"][p] = m
    held = [out["protocols"][p] for p in ref.heldout]
    worst = max((m["max_abs_peak_error_pct"] for m in held), default=float("nan"))
    out["heldout_max_abs_peak_error_pct"] = worst
    out["heldout_mean_nrmse"] = float(np.mean([m["nrmse"] for m in held]))
    out["heldout_max_abs_time_to_peak_error_s"] = max(
        (abs(x["time_to_peak_error_s"]) for m in held for x in m["neurons"].values()),
        default=float("nan"))
    out["goal_met"] = bool(worst <= 20.0)
    out["sim"] = {"t_s": t.tolist(), "protocols": names, "dff": sim.tolist(), "v_mV": v.tolist()}
    return out


# ---------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainConfig:
    """How one modality's transducer is trained (JSON-able)."""

    modality: str = "nacl"
    seed: int = 0
    hidden: int = HIDDEN
    stage_a_steps: int = 500
    stage_a_lr: float = 1e-2
    weight_decay: float = 0.0
    epochs: int = 8
    lr: float = 1e-4
    compile: bool = True
    max_minutes: float = 14.0


def _teacher_currents(net, ref: Reference, r: torch.Tensor, gain_mV: float) -> torch.Tensor:
    """Stage A targets (T, B, K) nA: reference -> target V (nominal gain, baseline at
    :data:`I_BASE_NA`) -> current through the circuit's static I -> V curve (per neuron)."""
    grid = np.concatenate([[0.0], np.geomspace(2e-5, I_MAX_NA * 0.95, 40)])
    vs = static_curve(net, ref.neurons, grid)
    out = np.zeros(r.shape)
    for k in range(len(ref.neurons)):
        curve = np.maximum.accumulate(vs[:, k])  # monotone for the inversion
        v_base = np.interp(I_BASE_NA, grid, curve)
        v_target = np.clip(v_base + gain_mV * r[..., k].numpy(), curve[0], curve[-1])
        out[..., k] = np.interp(v_target, curve, grid)
    return torch.as_tensor(out)


def checkpoint_path(modality: str, seed: int, config: dict | None = None) -> Path:
    """``data/cache/sensory/train/<modality>_seed<S>_<hash of the config>.pt``."""
    import hashlib

    from wormlab.paths import cache_dir

    tag = hashlib.sha256(json.dumps(config or {}, sort_keys=True).encode()).hexdigest()[:8]
    return cache_dir("sensory", "train") / f"{modality}_seed{seed}_{tag}.pt"


def _save_ckpt(path: Path, state: dict) -> None:
    from wormlab.runs import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train(config: TrainConfig, ref: Reference | None = None, *, log=print) -> tuple[
        Transducer, dict]:
    """Train one modality (resumes from its checkpoint). Returns (transducer, history)."""
    from wormlab.runs import progress, seed_everything
    from wormlab.sensory._references import load_references

    modality = _check_modality(config.modality)
    ref = ref or load_references()[modality]
    seed_everything(config.seed)
    model = Transducer(modality, ref.neurons, config.hidden).double()
    net = sensory_network(ref.neurons)
    t, s, r = _stack(ref, ref.train)
    gain = TARGET_SPAN_MV / float(max(
        np.abs(ref.protocols[p].response[n]).max() for p in ref.train for n in ref.neurons))
    keep = torch.as_tensor(t >= SKIP_S)
    # the checkpoint belongs to this config *and* these training curves (a regenerated
    # reference file must never resume weights trained on other data)
    data_id = {p: [ref.protocols[p].stimulus.tolist(),
                   {n: ref.protocols[p].response[n].tolist() for n in ref.neurons}]
               for p in ref.train}
    ck = checkpoint_path(modality, config.seed, {**config.__dict__, "data": data_id})
    hist = {"stage_a": [], "stage_b": [], "gain_mV_per_dff": gain}
    opt = torch.optim.AdamW(model.parameters(), lr=config.stage_a_lr,
                            weight_decay=config.weight_decay)
    best = None  # (train loss, weights): stage B keeps the weights of its lowest training loss
    start_a, start_b = 0, 0
    if ck.exists():
        st = torch.load(ck, weights_only=True)  # plain containers + tensors, no pickle
        if st["config"] != config.__dict__:
            raise ValueError(f"{ck}: checkpoint of another configuration {st['config']}; "
                             "delete it or use another seed")
        model.load_state_dict(st["model"])
        hist = st["history"]
        start_a, start_b = st["stage_a_done"], st["stage_b_done"]
        best = st.get("best")
        log(f"resumed {ck}: stage A {start_a}/{config.stage_a_steps}, stage B "
            f"{start_b}/{config.epochs}")
    t0 = time.perf_counter()
    if start_a < config.stage_a_steps:
        target = _teacher_currents(net, ref, r, gain) * 1e3  # pA
        for step in progress(range(start_a, config.stage_a_steps), desc=f"{modality} stage A"):
            opt.zero_grad()
            loss = ((model(s) * 1e3 - target) ** 2)[keep].mean()
            loss.backward()
            opt.step()
            if step % 50 == 0 or step == config.stage_a_steps - 1:
                hist["stage_a"].append([step, float(loss.detach())])
        start_a = config.stage_a_steps
        _save_ckpt(ck, {"config": config.__dict__, "model": model.state_dict(), "history": hist,
                        "stage_a_done": start_a, "stage_b_done": 0, "opt": None})
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if start_b and ck.exists():
        st = torch.load(ck, weights_only=True)  # plain containers + tensors, no pickle
        if st.get("opt"):
            opt.load_state_dict(st["opt"])
    rw = r.clone()
    scale = float(rw[keep].std())
    bar = progress(range(start_b, config.epochs), desc=f"{modality} stage B")
    for ep in bar:
        if (time.perf_counter() - t0) / 60.0 > config.max_minutes:
            log(f"{modality}: stopping at epoch {ep} (time budget {config.max_minutes} min)")
            break
        opt.zero_grad()
        v = simulate_response(net, ref.neurons, model(s), compile=config.compile)
        # nominal gain fixed, offset per neuron refit (differentiably) on the training frames
        pred = (v - v[keep].mean(0)) / gain
        tgt = r - r[keep].mean(0)
        loss = (((pred - tgt) / scale) ** 2)[keep].mean()
        loss.backward()
        lv = float(loss.detach())
        if best is None or lv < best[0]:
            best = (lv, {k: x.detach().clone() for k, x in model.state_dict().items()})
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        hist["stage_b"].append([ep, float(loss.detach())])
        bar.set_postfix(loss=f"{lv:.4f}")
        _save_ckpt(ck, {"config": config.__dict__, "model": model.state_dict(), "history": hist,
                        "stage_a_done": start_a, "stage_b_done": ep + 1,
                        "opt": opt.state_dict(), "best": best})
    hist["wall_s_this_run"] = time.perf_counter() - t0
    if best is not None:
        model.load_state_dict(best[1])
        hist["best_stage_b_loss"] = best[0]
    model.eval()
    return model, hist


# ---------------------------------------------------------------------------- shipping
def weights_path(modality: str, folder: str | Path | None = None) -> Path:
    return Path(folder or DATA) / f"transducer_{modality}.safetensors"


def save_transducer(model: Transducer, meta: dict, folder: str | Path | None = None) -> Path:
    """Weights (safetensors, float64) + ``transducer_<modality>.json`` metadata, atomically."""
    from safetensors.torch import save_file

    from wormlab.runs import atomic_path

    path = weights_path(model.modality, folder)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    header = {"modality": model.modality, "neurons": json.dumps(model.neurons),
              "hidden": str(model.hidden)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return path


def load_transducer(modality: str, folder: str | Path | None = None) -> Transducer:
    """The shipped transducer of ``modality`` (eval mode, float64)."""
    from wormlab.io import meta_json, read_safetensors

    _check_modality(modality)
    path = weights_path(modality, folder)
    if not path.exists():
        raise FileNotFoundError(f"no trained transducer for {modality!r} at {path} (train it: "
                                f"wormlab sensory train {modality})")
    tensors, meta = read_safetensors(path, f"{modality} transducer")
    if meta.get("modality") != modality:
        raise TransducerError(f"{path}: holds modality {meta.get('modality')!r}, not "
                              f"{modality!r}")
    neurons = meta_json(meta, "neurons", path, "transducer")
    model = Transducer(modality, neurons, int(meta.get("hidden", HIDDEN))).double()
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise TransducerError(f"{path}: weights do not fit the transducer ({exc})") from None
    return model.eval()


def transducer_metadata(modality: str, folder: str | Path | None = None) -> dict:
    path = weights_path(modality, folder).with_suffix(".json")
    return json.loads(path.read_text(encoding="utf-8"))
