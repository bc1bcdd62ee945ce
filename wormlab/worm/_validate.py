"""Physics vs surrogate on the circuit's own muscle activations (issue 17 item 5).

The closed loop ran ElegansBot (the ground truth) on the activations the circuit produced;
here the same activation sequence goes through the body surrogate (open loop) and the
kinematics are compared: relative speed and wavelength differences, and whether the
surrogate's own error estimate would have triggered the fallback to physics.
"""

from __future__ import annotations

import numpy as np
import torch


def default_surrogate():
    """The body surrogate the crawl is checked with: the shipped crawl-tuned one
    (``body_surrogate_crawl``, :mod:`wormlab.worm._ship`) when present, else the body
    component's default (:func:`wormlab.body.load_default`)."""
    from wormlab import body, models
    from wormlab.worm._ship import NAME, load_crawl_surrogate

    if models.exists(NAME):
        return load_crawl_surrogate(NAME)[0]
    return body.load_default()[0]


def surrogate_vs_physics(res, model=None, skip_s: float = 1.0,
                         threshold_pct: float | None = None, replay: bool = True,
                         window_s: float | None = None) -> list[dict]:
    """One row per member of ``res`` (a :class:`~wormlab.worm.LoopResult`): speed (um/s) and
    wavelength (body lengths) from the loop's ElegansBot trajectory and from the surrogate
    fed the same activation, their relative difference, the surrogate's estimated midline
    error (% body length) and whether it exceeds the fallback threshold.

    ``replay``: also run the same activation through ElegansBot open loop from a straight body
    (``*_replay`` fields: what the surrogate is trained to predict, issue 17 item 5's "the
    circuit's muscle activations run through ElegansBot"); the ``*_rel_diff_replay`` fields
    compare the surrogate with it. The loop's body starts from a seeded small bend, the
    surrogate and the replay start straight, so the first ``skip_s`` are left out of all.
    ``window_s``: compare only the run's first ``window_s`` seconds (e.g. 4 s, the window the
    crawl-tuned surrogate was trained on)."""
    from wormlab.body._physics import Trajectory, forward_speed, simulate, wave_kinematics

    if model is None:
        model = default_surrogate()
    thr = model.cfg.fallback_threshold_pct if threshold_pct is None else threshold_pct
    dt = float(res.t_s[1] - res.t_s[0])
    if abs(dt - model.frame_dt_s) > 1e-9:
        raise ValueError(f"loop frame {dt} s differs from the surrogate's {model.frame_dt_s} s")
    activation, phys = res.activation, res.trajectory
    if window_s is not None:
        n = int(round(window_s / dt)) + 1
        if n < 2 or n > len(res.t_s):
            raise ValueError(f"window_s {window_s} s: need 2..{len(res.t_s)} frames of the run, "
                             f"got {n}")
        activation = activation[:n]
        phys = Trajectory(phys.t_s[:n], phys.com_um[:n], phys.tangent_rad[:n],
                          phys.body_length_um, source=phys.source)
    act = torch.as_tensor(activation, dtype=torch.float32)
    with torch.no_grad():
        pred, est = model.predict(act)
    pred = pred.numpy()
    sur = Trajectory(phys.t_s, np.asarray(pred.com_um, dtype=np.float64),
                     np.asarray(pred.tangent_rad, dtype=np.float64), phys.body_length_um,
                     source="surrogate")
    v_p = np.asarray(forward_speed(phys, skip_s=skip_s))
    v_s = np.asarray(forward_speed(sur, skip_s=skip_s))
    w_p = wave_kinematics(phys, skip_s=skip_s)["wavelength_bl"]
    w_s = wave_kinematics(sur, skip_s=skip_s)["wavelength_bl"]
    est = est.numpy()
    if replay:
        import dataclasses

        from wormlab.body._config import MuscleConfig, PhysicsConfig

        lc = res.config  # the loop's body settings, so that only the start differs
        rp = simulate(torch.as_tensor(activation, dtype=torch.float64),
                      dataclasses.replace(PhysicsConfig(), dt_s=lc.physics_dt_s,
                                          frame_dt_s=lc.frame_dt_s,
                                          scale_friction=lc.scale_friction),
                      dataclasses.replace(MuscleConfig(), joint_gain_rad=lc.joint_gain_rad))
        v_r = np.asarray(forward_speed(rp, skip_s=skip_s))
        w_r = wave_kinematics(rp, skip_s=skip_s)["wavelength_bl"]
    rows = []
    for b in range(len(v_p)):
        rel = lambda a, r: float(abs(a - r) / abs(r)) if abs(r) > 1e-9 else float("nan")  # noqa: E731
        rows.append({"member": b, "speed_physics_um_s": float(v_p[b]),
                     "speed_surrogate_um_s": float(v_s[b]),
                     "speed_rel_diff": rel(v_s[b], v_p[b]),
                     "wavelength_physics_bl": float(w_p[b]),
                     "wavelength_surrogate_bl": float(w_s[b]),
                     "wavelength_rel_diff": rel(w_s[b], w_p[b]),
                     "surrogate_error_estimate_pct_bl": float(est[b]),
                     "fallback_triggered": bool(est[b] > thr)})
        if replay:
            rows[-1].update({"speed_replay_um_s": float(v_r[b]),
                             "wavelength_replay_bl": float(w_r[b]),
                             "speed_rel_diff_replay": rel(v_s[b], v_r[b]),
                             "wavelength_rel_diff_replay": rel(w_s[b], w_r[b])})
    return rows
