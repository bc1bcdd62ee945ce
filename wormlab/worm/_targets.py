"""Real-data ranges of crawling kinematics: the shared Flavell-lab recordings (Dag et al.
2023, freely moving on agar, ~1.7 Hz behaviour frames), in the data's own units converted
to the loop's (um/s, rad per joint of a 25-rod body)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def flavell_crawl_ranges(root: str | Path | None = None, max_worms: int | None = None) -> dict:
    """Quartiles over the recorded frames of every Flavell worm with body angles.

    Returns ``{"forward_speed_um_s": (q25, q50, q75), "backward_speed_um_s": (...),
    "joint_amplitude_rad": (...), "worms": n, "frames": n, "source": ...}``. Speed is the
    recorded signed stage velocity (mm/s in the file) split by the recorded reversal state;
    joint amplitude is the per-frame RMS of the joint angles (differences of the 30 tangent
    angles), rescaled to the loop's 24 joints of a 25-rod body (x 30/25, same curvature)."""
    from wormlab.posture._data import load_flavell

    recs = load_flavell(Path(root) if root else None, max_worms=max_worms)
    if not recs:
        raise FileNotFoundError("no Flavell 2023 recording with body angles found")
    fwd, bwd, amp = [], [], []
    for r in recs:
        if r.velocity is None or r.reversal is None:
            continue
        v = r.velocity * 1000.0  # mm/s -> um/s
        rev = r.reversal > 0.5
        ok = np.isfinite(v)
        fwd.append(v[ok & ~rev])
        bwd.append(v[ok & rev])
        k = np.diff(np.unwrap(r.angles, axis=1), axis=1) * (r.angles.shape[1] / 25.0)
        amp.append(np.sqrt((k**2).mean(1)))
    q = lambda x: tuple(float(v) for v in np.percentile(np.concatenate(x), [25, 50, 75]))  # noqa: E731
    return {"forward_speed_um_s": q(fwd), "backward_speed_um_s": q(bwd),
            "joint_amplitude_rad": q(amp), "worms": len(recs),
            "frames": int(sum(len(a) for a in amp)),
            "source": "Flavell lab, Dag et al. 2023 Cell (behavior/velocity, reversal_vec, "
                      "body_angle)"}
