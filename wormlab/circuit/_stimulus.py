"""Current-clamp stimuli: steps/pulses and arbitrary waveforms per named cell (nA)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class Pulse:
    """A square current pulse (NeuroML ``pulseGenerator``): ``amplitude_nA`` on
    ``delay_ms <= t < delay_ms + duration_ms``. ``amplitude_nA`` may be a float or a
    tensor of shape (B,) for batched amplitudes."""

    target: str
    delay_ms: float
    duration_ms: float
    amplitude_nA: float | torch.Tensor


@dataclass
class Waveform:
    """Arbitrary currents (nA) into ``targets``: ``values`` (T, B, K) or (T, K), sampled every
    ``dt_ms`` from t = 0 and held constant between samples (zero after the last sample)."""

    targets: list[str]
    values: torch.Tensor
    dt_ms: float

    def __post_init__(self):
        v = self.values
        if not isinstance(v, torch.Tensor):
            v = torch.as_tensor(v)
        if v.dim() == 1:
            v = v.unsqueeze(-1)
        if v.dim() == 2:
            v = v.unsqueeze(1)
        if v.dim() != 3 or v.shape[-1] != len(self.targets):
            raise ValueError(f"waveform values must be (T, B, K) with K={len(self.targets)} "
                             f"targets, got shape {tuple(self.values.shape)}")
        if self.dt_ms <= 0:
            raise ValueError(f"waveform dt_ms must be > 0, got {self.dt_ms}")
        self.values = v


@dataclass
class Stimulus:
    """A set of pulses and waveforms; the injected current is their sum."""

    pulses: list[Pulse] = field(default_factory=list)
    waveforms: list[Waveform] = field(default_factory=list)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def step(cls, target: str | list[str], amplitude_nA, start_ms: float = 0.0,
             stop_ms: float = math.inf) -> Stimulus:
        """A current step into one or several cells."""
        targets = [target] if isinstance(target, str) else list(target)
        return cls(pulses=[Pulse(t, start_ms, stop_ms - start_ms, amplitude_nA)
                           for t in targets])

    @classmethod
    def waveform(cls, targets: list[str] | str, values, dt_ms: float) -> Stimulus:
        targets = [targets] if isinstance(targets, str) else list(targets)
        return cls(waveforms=[Waveform(targets, values, dt_ms)])

    @classmethod
    def from_any(cls, stim) -> Stimulus:
        """Accept None, a Stimulus, or a dict ``{cell: amplitude_nA | tensor (T,) / (T, B)}``
        (tensors need ``dt`` in a ``"dt_ms"`` key)."""
        if stim is None:
            return cls()
        if isinstance(stim, Stimulus):
            return stim
        if isinstance(stim, dict):
            dt = stim.get("dt_ms")
            out = cls()
            for k, v in stim.items():
                if k == "dt_ms":
                    continue
                if isinstance(v, int | float):
                    out.pulses.append(Pulse(k, 0.0, math.inf, float(v)))
                else:
                    if dt is None:
                        raise ValueError("a waveform in a stimulus dict needs a 'dt_ms' entry")
                    v = torch.as_tensor(v)
                    out.waveforms.append(Waveform([k], v.reshape(v.shape[0], -1, 1), dt))
            return out
        raise TypeError(f"cannot build a Stimulus from {type(stim).__name__}")

    def __add__(self, other: Stimulus) -> Stimulus:
        return Stimulus(self.pulses + other.pulses, self.waveforms + other.waveforms)

    # ---------------------------------------------------------------- evaluation
    def targets(self) -> list[str]:
        names = [p.target for p in self.pulses]
        for w in self.waveforms:
            names += w.targets
        return list(dict.fromkeys(names))

    def batch_size(self) -> int | None:
        sizes = {w.values.shape[1] for w in self.waveforms if w.values.shape[1] != 1}
        for p in self.pulses:
            if isinstance(p.amplitude_nA, torch.Tensor) and p.amplitude_nA.numel() > 1:
                sizes.add(p.amplitude_nA.numel())
        if len(sizes) > 1:
            raise ValueError(f"stimulus components disagree on the batch size: {sorted(sizes)}")
        return sizes.pop() if sizes else None

    def grid(self, net, n_steps: int, dt_ms: float, batch: int, dtype) -> tuple:
        """Currents on the fixed grid t_i = i dt: ``(values (T, B, K) nA, onehot (K, N))``,
        or ``(None, None)`` when empty. Pulses switch on at the first grid point >= delay."""
        names = self.targets()
        if not names:
            return None, None
        idx = net.indices(names)
        col = {n: k for k, n in enumerate(names)}
        vals = torch.zeros(n_steps, batch, len(names), dtype=dtype)
        t = torch.arange(n_steps, dtype=torch.float64) * dt_ms
        for p in self.pulses:
            on = ((t >= p.delay_ms - 1e-9) & (t < p.delay_ms + p.duration_ms - 1e-9)).to(dtype)
            amp = torch.as_tensor(p.amplitude_nA, dtype=dtype).reshape(-1)
            vals[:, :, col[p.target]] = vals[:, :, col[p.target]] + on[:, None] * amp[None, :]
        for w in self.waveforms:
            # sample the waveform at the simulation grid (sample-and-hold)
            k = torch.floor(t / w.dt_ms + 1e-9).long()
            ok = k < w.values.shape[0]
            wv = w.values.to(dtype)[k.clamp(max=w.values.shape[0] - 1)] * ok[:, None, None]
            for j, name in enumerate(w.targets):
                vals[:, :, col[name]] = vals[:, :, col[name]] + wv[:, :, j]
        onehot = torch.zeros(len(names), net.n_cells, dtype=dtype)
        onehot[torch.arange(len(names)), torch.tensor(idx)] = 1.0
        return vals, onehot

    def current_at(self, net, t: float, batch: int, dtype) -> torch.Tensor | None:
        """Injected current (B, N) nA at continuous time ``t`` (for adaptive solvers)."""
        names = self.targets()
        if not names:
            return None
        out = torch.zeros(batch, net.n_cells, dtype=dtype)
        for p in self.pulses:
            if p.delay_ms <= t < p.delay_ms + p.duration_ms:
                amp = torch.as_tensor(p.amplitude_nA, dtype=dtype).reshape(-1)
                out[:, net.index[p.target]] = out[:, net.index[p.target]] + amp
        for w in self.waveforms:
            k = int(math.floor(t / w.dt_ms + 1e-9))
            if 0 <= k < w.values.shape[0]:
                for j, name in enumerate(w.targets):
                    out[:, net.index[name]] = out[:, net.index[name]] + w.values[k, :, j].to(
                        dtype)
        return out

    def breakpoints(self) -> list[float]:
        """Times where the current jumps (pulse edges), for adaptive solvers."""
        pts = []
        for p in self.pulses:
            pts += [p.delay_ms, p.delay_ms + p.duration_ms]
        return sorted({x for x in pts if math.isfinite(x) and x > 0})
