"""ROM prediction next to the full simulation, and hidden-unit inspection (notebook/widgets)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from wormlab.rom._format import CURRENT_UNITS, VOLTAGE_UNITS, SequenceSet
from wormlab.rom._generate import GenerateConfig, simulate
from wormlab.rom._models import RomModel
from wormlab.rom._shapes import make_current


def currents_from_specs(specs: dict[str, dict], t_ms, inputs: list[str]) -> np.ndarray:
    """Currents ``(T, 1, M)`` nA from per-input shape specs.

    Args:
        specs: ``{input_name: {"kind": "step", "amplitude_nA": 0.005, **shape params}}``;
            inputs without a spec get zero current.
    """
    t_ms = np.asarray(t_ms, dtype=float)
    unknown = set(specs) - set(inputs)
    if unknown:
        raise KeyError(f"no input neuron(s) {sorted(unknown)}; inputs are {inputs}")
    cur = np.zeros((len(t_ms), 1, len(inputs)))
    for j, name in enumerate(inputs):
        if name in specs:
            spec = dict(specs[name])
            kind = spec.pop("kind")
            amp = spec.pop("amplitude_nA")
            cur[:, 0, j] = make_current(kind, t_ms, amp, **spec)
    return cur


def predict_vs_simulation(model: RomModel, currents_nA, dt_ms: float, *,
                          backend: str = "auto", inputs=None, outputs=None,
                          parameter_set: str = "C1") -> dict:
    """Run the ROM and the full simulation on the same currents.

    The simulators take nA and return mV; a model trained on other units (``meta``
    ``input_unit`` / ``output_unit``, e.g. A and V from c302 files) gets its inputs converted
    and its prediction converted back to mV, so both traces are in mV.

    Args:
        currents_nA: (T, B, M) currents, sampled every ``dt_ms`` from t = 0.
        inputs / outputs: neuron names (default: the model's training columns).
    Returns:
        ``{"t_ms": (T,), "simulated": (T, B, K) mV, "predicted": (T, B, K) mV,
        "rmse_mV": float, "outputs": [...], "backend": str}``.
    """
    in_unit = model.meta.get("input_unit", "nA")
    out_unit = model.meta.get("output_unit", "mV")
    if in_unit not in CURRENT_UNITS or out_unit not in VOLTAGE_UNITS:
        raise ValueError(f"model units {in_unit!r} -> {out_unit!r} are not a current and a "
                         f"voltage ({sorted(CURRENT_UNITS)} -> {sorted(VOLTAGE_UNITS)})")
    inputs = list(inputs or model.meta.get("input_names", []))
    outputs = list(outputs or model.meta.get("output_names", []))
    if len(inputs) != model.n_inputs or len(outputs) != model.n_outputs:
        raise ValueError(f"model expects {model.n_inputs} inputs / {model.n_outputs} outputs; "
                         f"got names {inputs} / {outputs}")
    cur = np.asarray(currents_nA, dtype=float)
    t_ms = np.arange(cur.shape[0]) * dt_ms
    cfg = GenerateConfig(backend=backend, inputs=tuple(inputs), outputs=tuple(outputs),
                         parameter_set=parameter_set)
    from wormlab.rom._generate import resolve_backend

    cfg = replace(cfg, backend=resolve_backend(backend))
    sim = simulate(cfg, t_ms, cur)
    to_model = CURRENT_UNITS["nA"] / CURRENT_UNITS[in_unit]
    to_mV = VOLTAGE_UNITS[out_unit] / VOLTAGE_UNITS["mV"]
    pred = model.predict(cur * to_model).numpy().astype(np.float64) * to_mV
    return {"t_ms": t_ms, "simulated": sim, "predicted": pred, "outputs": outputs,
            "rmse_mV": float(np.sqrt(np.mean((pred - sim) ** 2))), "backend": cfg.backend}


def hidden_states(model: RomModel, inputs) -> np.ndarray:
    """Hidden-unit activity ``(T, B, H)`` of the recurrent layer for inputs ``(T, B, M)``."""
    with torch.no_grad():
        _, h = model(torch.as_tensor(np.asarray(inputs), dtype=torch.float32),
                     return_hidden=True)
    return h.numpy()


def hidden_output_correlation(model: RomModel, data: SequenceSet) -> np.ndarray:
    """Pearson correlation ``(H, K)`` between each hidden unit and each true output over all
    time steps and sequences of ``data``."""
    h = hidden_states(model, data.inputs).reshape(-1, model.n_hidden)
    y = data.outputs.reshape(-1, data.outputs.shape[-1])
    h = (h - h.mean(0)) / (h.std(0) + 1e-12)
    y = (y - y.mean(0)) / (y.std(0) + 1e-12)
    return h.T @ y / len(h)
