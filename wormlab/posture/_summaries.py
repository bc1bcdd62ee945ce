"""Per-worm and per-setting summary tables of notebook 07 (plain lists of dicts, so the notebook
only turns them into DataFrames)."""

from __future__ import annotations

import numpy as np


def kinematics_table(data, config=None) -> tuple[list[dict], list]:
    """RFT kinematics of every worm of ``data`` (a :func:`prepare` result) and one summary row
    per worm: mean |speed| (mm/s), reversal rate (/min), turn fraction, and where the recording
    has a stage velocity, its mean |velocity|, the correlation with the RFT speed and the
    fraction of frames whose reversal state agrees. Returns ``(rows, kinematics)``."""
    from wormlab.posture._kinematics import kinematics

    if len(data.recordings) != len(data.angles):
        raise ValueError(f"data has {len(data.recordings)} recordings but {len(data.angles)} "
                         "angle series")
    rows, kins = [], []
    for rec, ang in zip(data.recordings, data.angles):
        k = kinematics(ang, rec.fps, config)
        kins.append(k)
        row = {"worm": rec.name, "RFT |speed| mm/s": float(np.abs(k.speed).mean()),
               "reversal rate /min (RFT)": k.reversal_rate_per_min,
               "turn fraction": float(k.turn.mean())}
        if rec.velocity is not None:
            row["recorded |velocity| mm/s"] = float(np.abs(rec.velocity).mean())
            row["r(RFT speed, recorded)"] = float(np.corrcoef(k.speed, rec.velocity)[0, 1])
            row["reversal agreement"] = float(((k.reversal > 0) == (rec.reversal > 0)).mean())
        rows.append(row)
    return rows, kins


def realism_table(results: dict[str, dict]) -> dict[str, dict]:
    """One row per generation setting from :func:`realism` results: classifier two-sample test
    accuracies (generated vs real, and the real-vs-real control), KS distances of speed and
    curvature, reversal rates of real and generated data."""
    out = {}
    for name, r in results.items():
        try:
            d = r["distributions"]
            out[name] = {
                "C2ST acc gen vs real": r["c2st_generated_vs_real"]["accuracy"],
                "C2ST acc real vs real": r["c2st_real_vs_real"]["accuracy"],
                "KS speed": d["compare"]["speed_mm_s"]["ks"],
                "KS curvature": d["compare"]["curvature_rad_per_L"]["ks"],
                "rev/min real": d["real"]["reversal_rate_per_min"],
                "rev/min generated": d["generated"]["reversal_rate_per_min"]}
        except (KeyError, TypeError) as exc:
            raise ValueError(f"realism result {name!r} lacks {exc}") from None
    return out
