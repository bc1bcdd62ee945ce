"""``wormlab bench scaling``: wall time and peak memory at 1x, 4x and 16x the default size.

Each (component, scale) point runs in its own subprocess, so its peak resident set size
(``ru_maxrss``) is its own. Components and what "1x" is:

* ``circuit``: ``circuit.simulate`` of the c302 C1 network (float32, no gradient) on a batch of
  4 perturbed parameter sets (lognormal 5 %), 20 ms; 4x = batch 16, 16x = batch 64.
* ``sae``: 20 training steps of the default SAE (ReLU, expansion 1) on 189 inputs (the virtual
  worm's neuron count) with batch 256 frames; 4x / 16x = batch 1024 / 4096 frames.
* ``behaviour``: 1 epoch of the default decoder (GNN) and of the MLP on the training windows
  of Kato worm 0, fold 0 (real recording, ``WORMLAB_SHARED_DATA``); 4x / 16x = the training
  windows repeated 4 / 16 times (same windows, more of them: the cost per window is what grows).
* ``surrogate``: forward pass of the default (untrained) body surrogate FNO on a batch of 32
  activations of 4 s (101 frames); 4x / 16x = batch 128 / 512. Median of 5 calls.

Figures: ``wall_s`` (the timed work only, after a warm-up where there is one),
``peak_rss_mb`` (the whole subprocess, imports included) and ``setup_rss_mb`` (resident size
just before the timed work), so the growth of cost with size is visible. No anchor: this
benchmark compares the project's code with itself at three sizes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

COMPONENTS = ("circuit", "sae", "behaviour", "surrogate")
SCALES = (1, 4, 16)


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _circuit(scale: int) -> dict:
    import torch

    from wormlab import circuit

    net = circuit.build_network().to(torch.float32)
    batch = 4 * scale
    pert = net.perturbed(batch, rel_std=0.05, seed=1)
    with torch.no_grad():
        circuit.simulate(pert, "c302", 1.0)  # warm-up
        rss = _rss_mb()
        t0 = time.perf_counter()
        res = circuit.simulate(pert, "c302", 20.0)
        wall = time.perf_counter() - t0
    return {"size": f"batch {batch} x 20 ms", "wall_s": wall, "setup_rss_mb": rss,
            "finite": bool(torch.isfinite(res.v_mV).all())}


def _sae(scale: int) -> dict:
    import torch

    from wormlab import sae

    batch, steps, n_in = 256 * scale, 20, 189
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(batch, n_in, generator=gen) for _ in range(steps)]
    model = sae.SparseAutoencoder(sae.SAEConfig(n_inputs=n_in))
    cfg = sae.TrainConfig(n_steps=steps, batch_size=batch, resample_every=0, eval_every=0,
                          checkpoint_every=0)
    rss = _rss_mb()
    t0 = time.perf_counter()
    sae.train(model, batches, cfg, show_progress=False)
    wall = time.perf_counter() - t0
    return {"size": f"{steps} steps x batch {batch} x {n_in} inputs", "wall_s": wall,
            "setup_rss_mb": rss}


def _behaviour(scale: int) -> dict:
    import numpy as np

    from wormlab.behaviour._config import BehaviourConfig
    from wormlab.behaviour._data import kfold_within_worm, split_windows
    from wormlab.behaviour._sources import kato_worms
    from wormlab.behaviour._train import Decoder

    cfg = BehaviourConfig()
    worms = kato_worms()
    split = kfold_within_worm(worms[0], 5, cfg.data.window, cfg.train.val_frac)[0]
    tr, va, _, _ = split_windows(worms, split, cfg.data)
    tr = tr.subset(np.tile(np.arange(len(tr)), scale))
    out = {"size": f"{len(tr)} training windows, 1 epoch", "setup_rss_mb": _rss_mb()}
    for model in ("gnn", "mlp"):
        mcfg = cfg.replace(model={"name": model}, train={"epochs": 1})
        t0 = time.perf_counter()
        Decoder(mcfg, tr.names, tr.classes).fit(tr, va)
        out[f"wall_s_{model}"] = time.perf_counter() - t0
    out["wall_s"] = out["wall_s_gnn"] + out["wall_s_mlp"]
    return out


def _surrogate(scale: int) -> dict:
    import torch

    from wormlab.body._surrogate import Surrogate

    batch = 32 * scale
    model = Surrogate().eval()
    act = torch.rand(101, batch, 95, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(act)  # warm-up
        rss = _rss_mb()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            model(act)
            times.append(time.perf_counter() - t0)
    return {"size": f"batch {batch} x 101 frames", "wall_s": statistics.median(times),
            "setup_rss_mb": rss}


POINTS = {"circuit": _circuit, "sae": _sae, "behaviour": _behaviour, "surrogate": _surrogate}


def point(component: str, scale: int) -> dict:
    """Measure one point in this process (called in a fresh subprocess by :func:`run`)."""
    from wormlab.runs import configure_torch

    if component not in POINTS:
        raise KeyError(f"unknown component {component!r}; available: {sorted(POINTS)}")
    configure_torch()
    out = POINTS[component](scale)
    out["peak_rss_mb"] = _rss_mb()
    out["pid"] = os.getpid()
    return out


def run(quick: bool = False, components=COMPONENTS, scales=SCALES,
        timeout_s: float = 600) -> dict:
    """Every (component, scale) point, each in a subprocess; ``quick``: 1x and 4x only."""
    scales = tuple(s for s in scales if not quick or s <= 4)
    load0 = os.getloadavg()
    rows = []
    t0 = time.perf_counter()
    for comp in components:
        for s in scales:
            proc = subprocess.run([sys.executable, "-m", "wormlab.bench_scaling", comp, str(s)],
                                  capture_output=True, text=True, timeout=timeout_s,
                                  env=dict(os.environ, WORMLAB_PROGRESS="0"))
            if proc.returncode != 0:
                raise RuntimeError(f"bench scaling {comp} {s}x failed:\n{proc.stderr[-2000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append({"component": comp, "scale": s, **row})
    return {"points": rows, "threads": int(os.environ.get("WORMLAB_THREADS", "1")),
            "load_average_start": [round(x, 2) for x in load0],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "total_s": round(time.perf_counter() - t0, 1), "quick": quick}


def markdown(result: dict) -> str:
    """The points as a Markdown table (time and memory relative to 1x alongside)."""
    lines = ["| component | scale | size | wall (s) | x 1x | peak RSS (MB) | setup RSS (MB) |",
             "|---|---|---|---|---|---|---|"]
    base = {r["component"]: r for r in result["points"] if r["scale"] == 1}
    for r in result["points"]:
        b = base.get(r["component"])
        rel = f"{r['wall_s'] / b['wall_s']:.1f}" if b and b["wall_s"] > 0 else ""
        lines.append(f"| {r['component']} | {r['scale']}x | {r['size']} | {r['wall_s']:.3g} "
                     f"| {rel} | {r['peak_rss_mb']:.0f} | {r['setup_rss_mb']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(point(sys.argv[1], int(sys.argv[2]))))
