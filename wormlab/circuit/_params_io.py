"""Validation of circuit parameter files (written by :func:`wormlab.circuit.save_parameters`).

Kept apart from ``_network.py`` so :func:`load_parameters` needs one call:
``state = read_parameter_file(net, path)``. Every problem raises an error naming the file and
the parameter: not safetensors (a pickle is refused unread), truncated, written for another
network (``share`` / ``n_cells`` metadata), an unknown name (with the closest known names), a
wrong shape, NaN/inf, or a non-positive capacitance, time constant or synaptic rate/slope
(each of which the ODE divides by).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch

# parameters the right-hand side divides by (c_m: dV/dt; tau_*: gates; syn_k, syn_delta: the
# graded synapse, see wormlab.circuit._mechanisms); zero or negative values are never physical
_POSITIVE_PREFIXES = ("c_m", "tau_", "syn_k", "syn_delta")


def read_parameter_file(net, path: str | Path) -> dict[str, torch.Tensor]:
    """Read and validate a parameter file for ``net``; returns ``{name: tensor}`` in
    ``net``'s dtype (a subset of ``net.params`` is allowed: missing names keep their values).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: (:class:`wormlab.io.CheckpointError`) naming the file and the problem.
    """
    from wormlab.io import CheckpointError, read_safetensors

    path = Path(path)
    what = "circuit parameter file"
    state, meta = read_safetensors(path, what, finite=False)  # NaN named per parameter below
    share = meta.get("share")
    if share is not None and share != net.share:
        raise CheckpointError(f"{path}: {what} was written for share={share!r}, the network "
                              f"uses share={net.share!r}")
    n_cells = meta.get("n_cells")
    if n_cells is not None and n_cells != str(net.n_cells):
        raise CheckpointError(f"{path}: {what} was written for {n_cells} cells, the network "
                              f"has {net.n_cells}")
    out = {}
    for k, v in state.items():
        if k not in net.params:
            near = difflib.get_close_matches(k, list(net.params), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise CheckpointError(f"{path}: unknown parameter {k!r}{hint}")
        want = net.params[k]
        if tuple(v.shape) != tuple(want.shape):
            raise CheckpointError(f"{path}: {k} has shape {tuple(v.shape)}, network expects "
                                  f"{tuple(want.shape)}")
        if not v.is_floating_point():
            raise CheckpointError(f"{path}: {k} has dtype {v.dtype}, expected floating point")
        bad = ~torch.isfinite(v)
        if bool(bad.any()):
            i = int(torch.nonzero(bad.reshape(-1))[0])
            raise CheckpointError(f"{path}: {k} holds {float(v.reshape(-1)[i])} at index {i} "
                                  f"({int(bad.sum())} non-finite values)")
        if k.startswith(_POSITIVE_PREFIXES) and bool((v <= 0).any()):
            i = int(torch.nonzero((v <= 0).reshape(-1))[0])
            raise CheckpointError(f"{path}: {k} must be > 0, got {float(v.reshape(-1)[i])} at "
                                  f"index {i}")
        out[k] = v.to(dtype=want.dtype)
    return out
