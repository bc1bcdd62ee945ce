"""The 95 body-wall muscles: calcium -> activation -> force -> ElegansBot joint commands.

Tensors are time-first ``(T, B, 95)`` in the order of :data:`wormlab.connectome.MUSCLES`.
Everything here is plain torch and differentiable.
"""

from __future__ import annotations

import numpy as np
import torch

from wormlab import connectome
from wormlab.body._config import MuscleConfig

DEFAULT_MUSCLECONFIG = MuscleConfig()

N_MUSCLES = 95
N_ROWS = 24  # muscle rows 1..24 (head -> tail) = ElegansBot joints 0..23
MUSCLES: tuple[str, ...] = tuple(connectome.MUSCLES)

# Named groups for per-group scaling: quadrants, sides and body thirds.
GROUPS: tuple[str, ...] = ("dorsal", "ventral", "left", "right", "MDL", "MDR", "MVL", "MVR",
                           "head", "midbody", "tail")


def muscle_table() -> dict[str, np.ndarray]:
    """Per muscle: ``name``, ``dorsal`` (bool), ``left`` (bool), ``row`` (1..24)."""
    info = [connectome.muscle_info(m) for m in MUSCLES]
    return {
        "name": np.array(MUSCLES),
        "dorsal": np.array([s == "dorsal" for s, _, _ in info]),
        "left": np.array([lr == "left" for _, lr, _ in info]),
        "row": np.array([r for _, _, r in info]),
    }


def group_mask(group: str) -> np.ndarray:
    """Boolean mask (95,) of the muscles in a named group (see :data:`GROUPS`)."""
    tab = muscle_table()
    names, row = tab["name"], tab["row"]
    masks = {
        "dorsal": tab["dorsal"], "ventral": ~tab["dorsal"],
        "left": tab["left"], "right": ~tab["left"],
        "head": row <= 8, "midbody": (row > 8) & (row <= 16), "tail": row > 16,
    }
    for q in ("MDL", "MDR", "MVL", "MVR"):
        masks[q] = np.array([n.startswith(q) for n in names])
    if group not in masks:
        raise ValueError(f"unknown muscle group {group!r}; choose from {', '.join(GROUPS)}")
    return masks[group]


def joint_matrix() -> torch.Tensor:
    """(95, 24) float64 matrix W with ``joint = activation @ W``: per row, mean dorsal minus
    mean ventral activation (row 24 has no MVL24, so its ventral mean is MVR24 alone)."""
    tab = muscle_table()
    w = np.zeros((N_MUSCLES, N_ROWS))
    for r in range(1, N_ROWS + 1):
        d = np.flatnonzero(tab["dorsal"] & (tab["row"] == r))
        v = np.flatnonzero(~tab["dorsal"] & (tab["row"] == r))
        w[d, r - 1] = 1.0 / len(d)
        w[v, r - 1] = -1.0 / len(v)
    return torch.from_numpy(w)


def _check(x: torch.Tensor, what: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 3 or x.shape[-1] != N_MUSCLES:
        raise ValueError(f"{what} must be (T, B, 95) in connectome.MUSCLES order, got "
                         f"{tuple(x.shape)}")
    return x


def check_activation(act, what: str = "activation") -> torch.Tensor:
    """``act`` as a tensor (T, B, 95), after checking it holds finite values >= 0.

    Raises ``ValueError`` naming the first bad entry: its kind (NaN, inf, negative), the time
    index, the sample and the muscle (name and index), so a bad frame of a long circuit run can
    be found. Activations above 1 are allowed (scaled-gain experiments).
    """
    a = _check(act, what)
    x = a.detach()
    if not x.is_floating_point():
        return a
    bad = ~torch.isfinite(x) | (x < 0)
    if bool(bad.any()):
        t, b, m = (int(i) for i in torch.nonzero(bad)[0])
        v = float(x[t, b, m])
        kind = "NaN" if v != v else ("inf" if abs(v) == float("inf") else "negative")
        raise ValueError(f"{what} has {kind} value {v} at time index {t}, sample {b}, muscle "
                         f"{MUSCLES[m]} (index {m}); {int(bad.sum())} bad entries in all "
                         "(activations must be finite and >= 0)")
    return a


def calcium_to_activation(ca_mM: torch.Tensor, cfg: MuscleConfig = DEFAULT_MUSCLECONFIG) -> torch.Tensor:
    """Muscle calcium (T, B, 95) in mM (c302 ``caConc``) -> activation in [0, 1].

    ``hard``: ``min(1, ca / max_ca)`` exactly as Sibernetic's c302 coupling (gradient 0 once
    saturated); ``soft``: ``tanh(ca / max_ca)``, smooth everywhere. Negative calcium is an error.
    """
    ca = _check(ca_mM, "muscle calcium")
    if torch.any(ca < 0):
        raise ValueError("muscle calcium must be >= 0 mM")
    x = ca / cfg.max_ca_mM
    if cfg.saturation == "hard":
        return torch.clamp(x, max=1.0)
    if cfg.saturation == "soft":
        return torch.tanh(x)
    raise ValueError(f"saturation must be 'hard' or 'soft', got {cfg.saturation!r}")


def calcium_from_activation(act: torch.Tensor, dt_s: float,
                            cfg: MuscleConfig = DEFAULT_MUSCLECONFIG) -> torch.Tensor:
    """A calcium trace (mM) whose first-order pool (c302 muscle decay ``ca_decay_ms``) is driven
    towards ``act * max_ca``: a synthetic stand-in for circuit calcium, used in tests/demos."""
    a = _check(act, "activation")
    k = dt_s * 1000.0 / cfg.ca_decay_ms
    out, c = [], torch.zeros_like(a[0])
    for t in range(a.shape[0]):
        c = c + k * (a[t] * cfg.max_ca_mM - c)
        out.append(c)
    return torch.stack(out)


def activation_to_force(act: torch.Tensor, cfg: MuscleConfig = DEFAULT_MUSCLECONFIG) -> torch.Tensor:
    """Relative muscle force = ``max_force_coeff * activation`` (Sibernetic convention)."""
    return cfg.max_force_coeff * _check(act, "activation")


def joint_commands(act: torch.Tensor, cfg: MuscleConfig = DEFAULT_MUSCLECONFIG) -> torch.Tensor:
    """Activation (T, B, 95) -> ElegansBot target joint angles (T, B, 24) in rad.

    ``joint_r = joint_gain_rad * max_force_coeff * (mean dorsal - mean ventral activation of
    row r+1)``. Positive = dorsal bend (ElegansBot with ``polarity_clockwise=False``: the body
    becomes concave on its dorsal side; tested in ``tests/body/test_muscles.py``).
    """
    f = activation_to_force(check_activation(act), cfg)
    w = joint_matrix().to(dtype=f.dtype if f.is_floating_point() else torch.float64,
                          device=f.device)
    return cfg.joint_gain_rad * (f.to(w.dtype) @ w)
