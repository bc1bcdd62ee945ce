"""The "virtual worm": SYNTHETIC whole-brain calcium recordings with a known answer.

A circuit simulator is run under a stimulus protocol (current steps into sensory neurons stand
for chemical stimuli, plus a slow forward/reversal command drive), its activity is turned into a
GCaMP-like signal (rise/decay kernel, baseline, photobleaching, shot noise, bleach correction)
for ~189 observed neurons, and returned as a :class:`Recording` with ``synthetic=True`` and the
ground truth of which observed neurons respond to which stimulus.

The simulator is pluggable (``virtual_worm(config, simulator=...)``): any function
``simulate(inputs, n_steps, dt_s, seed) -> (activity (n_steps, M), names (M,))`` where
``inputs`` maps neuron names to ``(n_steps,)`` injected currents. The default is
:func:`rate_network`, a graded-rate network on the real Cook 2019 wiring — a clearly simpler
STAND-IN for the project's conductance-based circuit model. :func:`circuit_simulator`
plugs in ``wormlab.circuit`` (c302 C1), practical only for short protocols on CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from wormlab.io import config_from_dict, config_to_dict
from wormlab.recordings._model import Recording, Stimulus

#: ``simulate(inputs, n_steps, dt_s, seed) -> (activity (n_steps, M), names (M,))``
Simulator = Callable[[Mapping[str, np.ndarray], int, float, int], tuple[np.ndarray, tuple]]


@dataclass(frozen=True)
class StimulusSpec:
    """A chemical stimulus modelled as a current step into its sensory neurons.

    Sensory assignments follow the literature: CuSO4 is sensed by ASH/ADL (nociception,
    Hilliard et al. 2005), NaCl upsteps by ASEL (Suzuki et al. 2008), diacetyl by AWA
    (Bargmann et al. 1993).
    """

    name: str
    concentration: float | None
    unit: str = "mM"
    targets: tuple[str, ...] = ()
    amplitude: float = 2.0  # injected current, units of the simulator's input (stand-in: a.u.)

    @property
    def label(self) -> str:
        return Stimulus(self.name, (), self.concentration, self.unit).label


DEFAULT_STIMULI = (
    StimulusSpec("CuSO4", 10.0, "mM", ("ASHL", "ASHR", "ADLL", "ADLR")),
    StimulusSpec("NaCl", 50.0, "mM", ("ASEL",)),
    StimulusSpec("diacetyl", 1.0, "uM", ("AWAL", "AWAR")),
)


@dataclass(frozen=True)
class ProtocolConfig:
    """Stimulus timing: non-overlapping pulses at random times, one stimulus at a time."""

    duration_s: float = 1800.0
    pulse_s: float = 20.0
    min_gap_s: float = 20.0
    on_fraction: float = 0.10  # per stimulus, like the seed's n_on/(n_on+n_off) ~ 0.1
    motor_dwell_s: float = 25.0  # mean dwell of the forward/reversal command drive
    motor_amplitude: float = 1.0


@dataclass(frozen=True)
class RateNetworkConfig:
    """The stand-in simulator: dx/dt = (-x + W tanh(x) + G_gap(x) + I + noise) / tau."""

    dataset: str = "cook2019"
    tau_s: float = 0.3
    dt_s: float = 0.1
    spectral_radius: float = 1.3  # of the signed chemical weight matrix (>1: spontaneous activity)
    gap_gain: float = 0.05
    noise_sd: float = 0.6  # of the white-noise input, per sqrt(s)


@dataclass(frozen=True)
class IndicatorConfig:
    """GCaMP-like read-out. GCaMP6s-like kinetics (Chen et al. 2013): rise ~0.2 s, decay ~1 s."""

    rise_s: float = 0.2
    decay_s: float = 1.0
    gain: float = 1.0  # dF/F per unit of (activity - rest)
    bleach_tau_s: float = 1200.0
    bleach_depth: float = 0.3  # fraction of F0 lost with time constant bleach_tau_s
    noise_sd: float = 0.05  # shot/read noise, fraction of F0
    bleach_correct: bool = True


@dataclass(frozen=True)
class VirtualWormConfig:
    """Everything that defines one synthetic recording (JSON-able, nested)."""

    n_observed: int = 189
    fps: float = 2.905  # Kato et al. 2015 frame rate
    seed: int = 0
    response_threshold: float = 0.5  # ground truth: |mean causal effect| in SDs of activity
    stimuli: tuple[StimulusSpec, ...] = DEFAULT_STIMULI
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    network: RateNetworkConfig = field(default_factory=RateNetworkConfig)
    indicator: IndicatorConfig = field(default_factory=IndicatorConfig)

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> VirtualWormConfig:
        return config_from_dict(cls, dict(d))


# ---------------------------------------------------------------------------- stand-in network
_NET_CACHE: dict[tuple, tuple] = {}


def _network(cfg: RateNetworkConfig):
    key = (cfg.dataset, cfg.spectral_radius, cfg.gap_gain)
    if key not in _NET_CACHE:
        from wormlab import connectome

        c = connectome.load(cfg.dataset)
        sign = np.where(c.sign == 0, 1, c.sign).astype(float)  # modulatory-only: excitatory
        w = (np.log1p(c.chem) * sign[:, None]).T  # W[post, pre]
        rho = float(np.max(np.abs(np.linalg.eigvals(w))))
        w *= cfg.spectral_radius / rho
        g = np.log1p(c.gap) * cfg.gap_gain
        lap = g - np.diag(g.sum(axis=1))
        _NET_CACHE[key] = (w, lap, tuple(c.neurons))
    return _NET_CACHE[key]


def rate_network(
    inputs: Mapping[str, np.ndarray],
    n_steps: int,
    dt_s: float,
    seed: int,
    config: RateNetworkConfig | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Graded-rate network on the real connectome (the STAND-IN simulator).

    ``tau dx/dt = -x + W tanh(x) + L x + I(t) + noise`` with ``W[post, pre]`` = sign(pre) *
    log(1 + chemical synapse count) scaled to a spectral radius, ``L`` the gap-junction
    Laplacian, Euler-Maruyama with step ``dt_s``. Not a biophysical model: no conductances,
    no spikes, no neuromodulation.

    Args:
        inputs: neuron name -> injected current, ``(n_steps,)`` or batched ``(n_steps, B)``.
        seed: noise seed; every batch member gets the same noise realisation.

    Returns:
        Activity ``tanh(x)``, ``(n_steps, 302)`` or ``(n_steps, B, 302)`` (time first), and
        the neuron names.
    """
    cfg = config or RateNetworkConfig()
    w, lap, names = _network(cfg)
    n = len(names)
    idx = {nm: i for i, nm in enumerate(names)}
    shapes = {np.asarray(v).shape for v in inputs.values()}
    if len(shapes) > 1:
        raise ValueError(f"inputs have different shapes {shapes}")
    shape = shapes.pop() if shapes else (n_steps,)
    if shape[0] != n_steps or len(shape) > 2:
        raise ValueError(f"inputs must be ({n_steps},) or ({n_steps}, B), got {shape}")
    batch = shape[1] if len(shape) == 2 else 1
    drive = np.zeros((n_steps, n, batch))
    for nm, cur in inputs.items():
        if nm not in idx:
            raise KeyError(f"input neuron {nm!r} is not in the {cfg.dataset} connectome")
        drive[:, idx[nm], :] += np.asarray(cur, dtype=float).reshape(n_steps, -1)
    rng = np.random.default_rng(seed)
    x = np.zeros((n, batch))
    out = np.empty((n_steps, batch, n))
    a = dt_s / cfg.tau_s
    s = cfg.noise_sd * np.sqrt(dt_s) / cfg.tau_s
    for k in range(n_steps):
        r = np.tanh(x)
        out[k] = r.T
        x = x + a * (-x + w @ r + lap @ x + drive[k]) + s * rng.standard_normal((n, 1))
    return (out if len(shape) == 2 else out[:, 0, :]), names


rate_network.batched = True  # accepts (n_steps, B) inputs: the generator runs one batch


def circuit_simulator(network=None, *, dt_ms: float | None = None, na_per_unit: float = 0.005,
                      solver: str = "rk4_fused") -> Simulator:
    """Adapter: the project's conductance-based c302 C1 model (``wormlab.circuit``) as a
    virtual-worm simulator. Returns membrane potentials in mV of the 302 neurons.

    Inputs (stand-in units) are scaled by ``na_per_unit`` to nA and held constant over each
    generator step (``dt_s``), which must be a multiple of ``dt_ms`` (default
    :data:`wormlab.circuit.DEFAULT_DT_MS`, the one circuit step of every component). It runs at
    ~10 s of wall time per simulated second and batch member on these CPUs, so only SHORT
    protocols (fractions of a second to seconds) are practical; pair it with a fast indicator
    (``IndicatorConfig(rise_s=0.005, decay_s=0.05, gain=0.02)``) and a high ``fps``.
    Needs ``wormlab.circuit`` (branch ``circuit``); imported lazily.
    """
    import torch

    from wormlab import circuit, connectome

    net = network if network is not None else circuit.build_network()
    neurons = [n for n in connectome.NEURONS if n in net.index]
    dt_ms = circuit.DEFAULT_DT_MS if dt_ms is None else dt_ms

    def simulate(inputs, n_steps, dt_s, seed):
        k = int(round(dt_s * 1000.0 / dt_ms))
        if k < 1 or abs(k * dt_ms - dt_s * 1000.0) > 1e-9 * max(1.0, k):
            raise ValueError(f"dt_s={dt_s} s is not a multiple of the circuit step {dt_ms} ms")
        stim = {n: torch.as_tensor(np.repeat(np.asarray(c, dtype=float), k, axis=0)
                                   * na_per_unit) for n, c in inputs.items()}
        stim["dt_ms"] = dt_ms
        with torch.no_grad():
            res = circuit.simulate(net, stim, duration_ms=n_steps * dt_s * 1000.0, dt_ms=dt_ms,
                                   record=neurons, record_every=k, solver=solver)
        v = res.v_mV[1:n_steps + 1].detach().cpu().numpy()  # drop t = 0 (initial state)
        batched = any(np.ndim(c) == 2 for c in inputs.values())
        return (v if batched else v[:, 0, :]), tuple(res.names)

    simulate.batched = True
    simulate.__name__ = "circuit_simulator"
    return simulate


# ---------------------------------------------------------------------------- protocol
def _pulses(rng, cfg: ProtocolConfig, n_stim: int) -> list[list[tuple[float, float]]]:
    """Random non-overlapping pulses; each stimulus gets ~on_fraction of the time."""
    per = max(1, int(round(cfg.on_fraction * cfg.duration_s / cfg.pulse_s)))
    order = rng.permutation(np.repeat(np.arange(n_stim), per))
    slot = cfg.pulse_s + cfg.min_gap_s
    free = cfg.duration_s - cfg.min_gap_s - len(order) * slot
    if free < 0:
        raise ValueError(
            f"protocol does not fit: {len(order)} pulses of {cfg.pulse_s} s + gaps "
            f"{cfg.min_gap_s} s in {cfg.duration_s} s; shorten on_fraction or pulses"
        )
    extra = np.diff(np.concatenate([[0], np.sort(rng.uniform(0, free, len(order)))]))
    out: list[list[tuple[float, float]]] = [[] for _ in range(n_stim)]
    t = cfg.min_gap_s
    for s, e in zip(order, extra):
        t += e
        out[s].append((t, t + cfg.pulse_s))
        t += slot
    return out


def _telegraph(rng, n_steps: int, dt_s: float, dwell_s: float) -> np.ndarray:
    """Random two-state process (0 = forward, 1 = reversal); reversals are 3x shorter."""
    st = np.zeros(n_steps, dtype=np.int64)
    k, cur = 0, 0
    while k < n_steps:
        mean = dwell_s if cur == 0 else dwell_s / 3
        d = max(1, int(rng.exponential(mean) / dt_s))
        st[k:k + d] = cur
        k += d
        cur = 1 - cur
    return st


def _indicator(act: np.ndarray, dt_s: float, cfg: IndicatorConfig, rng) -> tuple:
    """Activity (n_steps, M) -> calcium-like signal via a difference-of-exponentials kernel."""
    t = np.arange(0, 8 * cfg.decay_s, dt_s)
    ker = np.exp(-t / cfg.decay_s) - np.exp(-t / cfg.rise_s)
    ker /= ker.sum()
    from scipy.signal import fftconvolve

    base = act - np.median(act, axis=0, keepdims=True)
    ca = fftconvolve(base, ker[:, None], mode="full", axes=0)[: act.shape[0]]
    return ca * cfg.gain


# ---------------------------------------------------------------------------- main entry
def virtual_worm(
    config: VirtualWormConfig | None = None,
    simulator: Simulator | None = None,
    *,
    simulator_name: str | None = None,
) -> Recording:
    """Generate a SYNTHETIC recording with ground truth (see module docstring).

    Args:
        config: :class:`VirtualWormConfig` (default: 189 observed neurons, 1800 s at
            2.905 fps = 5229 frames, CuSO4/NaCl/diacetyl pulses, seed 0).
        simulator: ``simulate(inputs, n_steps, dt_s, seed) -> (activity, names)``;
            default :func:`rate_network` (stand-in, see module docstring).

    Returns:
        :class:`Recording` with ``synthetic=True``, ``dataset="virtual_worm"``, stimuli,
        states ``fwd``/``rev`` (the command drive), ``ground_truth`` {stimulus label: observed
        responders, strongest first} and ``meta`` holding the config, the per-neuron causal
        effects and the directly stimulated neurons.
    """
    cfg = config or VirtualWormConfig()
    if simulator is None:
        net = cfg.network

        def simulator(inputs, n_steps, dt_s, seed):
            return rate_network(inputs, n_steps, dt_s, seed, net)

        simulator_name = simulator_name or "rate_network stand-in (graded-rate, Cook 2019)"
    simulator_name = simulator_name or getattr(simulator, "__name__", "custom simulator")
    rng = np.random.default_rng(cfg.seed)
    dt = cfg.network.dt_s
    n_steps = int(round(cfg.protocol.duration_s / dt))
    t_sim = np.arange(n_steps) * dt
    pulses = _pulses(rng, cfg.protocol, len(cfg.stimuli))
    motor = _telegraph(rng, n_steps, dt, cfg.protocol.motor_dwell_s)
    amp = cfg.protocol.motor_amplitude
    base_inputs: dict[str, np.ndarray] = {}
    for nm in ("AVBL", "AVBR", "PVCL", "PVCR"):
        base_inputs[nm] = amp * (motor == 0)
    for nm in ("AVAL", "AVAR", "AVDL", "AVDR", "AVEL", "AVER"):
        base_inputs[nm] = amp * (motor == 1)
    stim_masks = []
    stim_inputs: list[dict[str, np.ndarray]] = []
    for spec, ivs in zip(cfg.stimuli, pulses):
        m = np.zeros(n_steps, dtype=bool)
        for on, off in ivs:
            m |= (t_sim >= on) & (t_sim < off)
        stim_masks.append(m)
        stim_inputs.append({nm: spec.amplitude * m for nm in spec.targets})

    def merged(skip: int | None) -> dict[str, np.ndarray]:
        d = {k: v.astype(float).copy() for k, v in base_inputs.items()}
        for i, inp in enumerate(stim_inputs):
            if i == skip:
                continue
            for k, v in inp.items():
                d[k] = d.get(k, 0.0) + v
        return d

    sim_seed = int(rng.integers(2**31))
    # run 0 has every stimulus; run i+1 lacks stimulus i (same noise) -> causal ground truth
    runs = [merged(None)] + [merged(i) for i in range(len(cfg.stimuli))]
    keys = sorted({k for r in runs for k in r})
    runs = [{k: r.get(k, np.zeros(n_steps)) for k in keys} for r in runs]  # same names each run
    if getattr(simulator, "batched", False):
        batch = {k: np.stack([r[k] for r in runs], axis=1) for k in keys}
        res, names = simulator(batch, n_steps, dt, sim_seed)
        res = np.asarray(res, dtype=float)
        outs = [res[:, b, :] for b in range(len(runs))]
    else:
        outs, names = [], None
        for r in runs:
            o, names = simulator(r, n_steps, dt, sim_seed)
            outs.append(np.asarray(o, dtype=float))
    names = tuple(names)
    act = outs[0]
    for o in outs:
        if o.shape != (n_steps, len(names)):
            raise ValueError(f"simulator returned {o.shape}, expected ({n_steps}, {len(names)})")

    # observed neurons: all stimulated sensory neurons, the rest at random
    targets = sorted({t for s in cfg.stimuli for t in s.targets})
    if cfg.n_observed > len(names):
        raise ValueError(f"n_observed {cfg.n_observed} > {len(names)} simulated neurons")
    others = [i for i, nm in enumerate(names) if nm not in targets]
    pick = rng.choice(others, size=cfg.n_observed - len(targets), replace=False)
    obs = np.sort(np.concatenate([[names.index(t) for t in targets], pick]).astype(int))

    # ground truth: causal effect of each stimulus = activity with it minus activity without
    # it, same noise realisation, averaged over its on-periods, in SDs of the activity
    gt: dict[str, tuple[str, ...]] = {}
    effects: dict[str, dict[str, float]] = {}
    sd = act[:, obs].std(axis=0) + 1e-9
    for i, (spec, m) in enumerate(zip(cfg.stimuli, stim_masks)):
        diff = (act[:, obs] - outs[i + 1][:, obs])[m].mean(axis=0) / sd
        order = np.argsort(-np.abs(diff))
        resp = [int(j) for j in order if abs(diff[j]) >= cfg.response_threshold]
        gt[spec.label] = tuple(names[obs[j]] for j in resp)
        effects[spec.label] = {names[obs[j]]: round(float(diff[j]), 4) for j in resp}

    # indicator, sampling at the frame rate, bleaching, noise, bleach correction
    ca = _indicator(act[:, obs], dt, cfg.indicator, rng)
    n_frames = int(np.floor(cfg.protocol.duration_s * cfg.fps))
    t_frames = np.arange(n_frames) / cfg.fps
    kf = np.minimum((t_frames / dt).round().astype(int), n_steps - 1)
    ind = cfg.indicator
    f0 = rng.lognormal(0.0, 0.3, size=len(obs))
    bleach = 1.0 - ind.bleach_depth * (1.0 - np.exp(-t_frames / ind.bleach_tau_s))
    f = f0 * (1.0 + ca[kf]) * bleach[:, None]
    f = f + ind.noise_sd * f0 * np.sqrt(np.clip(f / f0, 1e-3, None)) * rng.standard_normal(f.shape)
    if ind.bleach_correct:
        trend = _fit_bleach(t_frames, f)
        dff = f / trend - 1.0
        signal = "synthetic dF/F (GCaMP-like kernel, bleach-corrected by exponential fit)"
    else:
        dff = f / f0 - 1.0
        signal = "synthetic dF/F (GCaMP-like kernel, photobleaching not corrected)"
    states = motor[kf]
    stimuli = tuple(
        Stimulus(s.name, tuple(ivs), s.concentration, s.unit) for s, ivs in zip(cfg.stimuli, pulses)
    )
    return Recording(
        traces=dff.astype(np.float32),
        neuron_names=tuple(names[i] for i in obs),
        time_s=t_frames,
        fps=cfg.fps,
        stimuli=stimuli,
        states=states,
        state_names=("fwd", "rev"),
        dataset="virtual_worm",
        worm_id=f"seed{cfg.seed}",
        strain="synthetic",
        signal=signal,
        provenance=f"SYNTHETIC: wormlab virtual worm, simulator {simulator_name}, "
        f"seed {cfg.seed}",
        citation="wiring: Cook SJ et al. (2019) Nature 571:63-71 (via cect)",
        synthetic=True,
        ground_truth=gt,
        meta={
            "config": cfg.to_dict(),
            "simulator": simulator_name,
            "ground_truth_effect_sd": effects,
            "stimulated_neurons": {s.label: list(s.targets) for s in cfg.stimuli},
        },
    )


def _fit_bleach(t: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per-neuron exponential-plus-offset trend, fitted by least squares on log F (robust
    enough for a monotone bleach); the same kind of correction Kato 2015 traces went through."""
    logf = np.log(np.clip(f, 1e-6, None))
    ts = t / max(float(t[-1]), 1e-9)
    a = np.stack([np.ones_like(ts), ts, ts**2], axis=1)
    coef, *_ = np.linalg.lstsq(a, logf, rcond=None)
    return np.exp(a @ coef)
