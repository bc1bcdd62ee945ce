"""``python -m wormlab.body.cli generate|train|report``: the full-size pipeline.

    python -m wormlab.body.cli generate --nominal 150 --group-scaled 128 --sinusoid 480 \\
        --single-muscle 64 --random 3000 --perturbed 500 --interleave
    python -m wormlab.body.cli train --epochs 40 --hidden 24 --modes 16
    python -m wormlab.body.cli report   # accuracy JSON: test, generalisation, error-head sets

Files default to ``data/cache/body/`` (``WORMLAB_CACHE``): ``synthetic_elegansbot.h5``,
``surrogate.safetensors``, ``report.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from wormlab.body._paths import default_cache_model, default_model, default_store
from wormlab.paths import cache_dir


def _generate(a) -> int:
    from wormlab.body._config import DataConfig
    from wormlab.body._families import sample_specs
    from wormlab.body._generate import finished_specs, generate

    data = DataConfig(duration_s=a.duration, seed=a.seed, n_per_family={
        "nominal": a.nominal, "group_scaled": a.group_scaled, "sinusoid": a.sinusoid,
        "single_muscle": a.single_muscle, "random": a.random, "perturbed": a.perturbed})
    specs = sample_specs(data.n_per_family, data.seed)
    if a.finished_only:  # consolidate what a stopped run finished, compute nothing
        specs = finished_specs(a.store, specs)
        print(f"consolidating {len(specs)} finished samples", flush=True)
    elif a.interleave:
        specs = interleave(specs)
    res = generate(a.store, data, specs=specs, scheduler=a.scheduler, n_workers=a.workers)
    print(json.dumps(res, indent=2))
    return 0 if res["complete"] else 1


def interleave(specs: list[dict]) -> list[dict]:
    """Submission order for a run that may be stopped early: the generalisation families
    (group-scaled, single-muscle) first, then the other families mixed in proportion, so the
    finished part of a stopped run is a balanced dataset."""
    first = [s for s in specs if s["family"] in ("group_scaled", "single_muscle")]
    rest = [s for s in specs if s["family"] not in ("group_scaled", "single_muscle")]
    by: dict[str, list] = {}
    for s in rest:
        by.setdefault(s["family"], []).append(s)
    keyed = [((i + 0.5) / len(v), s["id"], s) for v in by.values() for i, s in enumerate(v)]
    return first + [s for _, _, s in sorted(keyed, key=lambda k: (k[0], k[1]))]


def _heldout(path) -> dict | None:
    """Held-out ids from a JSON file with ``val`` and ``test`` lists, or from a checkpoint
    (``.safetensors``) that recorded them at training (None: no file)."""
    if path is None:
        return None
    if Path(path).suffix == ".safetensors":
        from wormlab.body._surrogate import load_surrogate

        ids = load_surrogate(path)[1].get("heldout_ids")
        if ids is None:
            raise ValueError(f"{path} did not record its held-out ids (trained before they "
                             "were recorded); give a JSON file of ids instead")
        return ids
    try:
        h = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read held-out ids from {path}: {e}") from e
    if not isinstance(h, dict) or not all(isinstance(h.get(k), list) for k in ("val", "test")):
        raise ValueError(f"{path}: expected a JSON object with 'val' and 'test' id lists")
    return {"val": h["val"], "test": h["test"]}


def _train(a) -> int:
    from wormlab.body._config import SurrogateConfig
    from wormlab.body._generate import load_stores
    from wormlab.body._surrogate import split_data, train_surrogate
    from wormlab.runs import atomic_path, configure_torch, seed_everything

    configure_torch()
    seed_everything(a.seed)
    d = load_stores(a.store)
    cfg = SurrogateConfig(hidden_channels=a.hidden, n_modes=a.modes, n_layers=a.layers,
                          n_ensemble=a.ensemble, epochs=a.epochs, batch_size=a.batch,
                          lr=a.lr, seed=a.seed, input_space=a.input_space,
                          representation=a.representation, error_head=not a.no_error_head,
                          position_loss_weight=a.position_weight,
                          speed_loss_weight=a.speed_weight,
                          speed_loss_floor_um_s=a.speed_floor,
                          domain_padding=a.padding,
                          train_families=tuple(a.train_families.split(",")),
                          errorhead_families=tuple(f for f in a.errorhead_families.split(",")
                                                   if f))
    splits = split_data(d, cfg, _heldout(a.heldout))
    print({k: len(v) for k, v in splits.items()}, flush=True)
    model, hist = train_surrogate(splits, cfg, d["frame_dt_s"], d["body_length_um"],
                                  checkpoint=a.out, time_budget_s=a.time_budget, init=a.init)
    with atomic_path(Path(a.out).with_suffix(".history.json")) as tmp:
        tmp.write_text(json.dumps(hist))
    print(json.dumps({k: v for k, v in hist.items() if not isinstance(v, list)}, indent=2))
    return 0


def default_circuit_store() -> Path:
    return cache_dir("body") / "synthetic_circuit_nominal.h5"


def _circuit(a) -> int:
    """Circuit-driven nominal samples: one batched c302-C1 run (AVB drive amplitudes), muscle
    calcium -> activation -> ElegansBot; shards + HDF5 store like the generator."""
    import dataclasses
    import time

    import numpy as np

    from wormlab.body._circuit import circuit_activations, travelling_wave_score
    from wormlab.body._config import DataConfig, MuscleConfig, PhysicsConfig
    from wormlab.body._generate import consolidate, finished_specs, package_versions
    from wormlab.body._physics import simulate
    from wormlab.runs import atomic_path

    physics, muscle = PhysicsConfig(), MuscleConfig()
    T = int(round(a.duration / physics.frame_dt_s)) + 1
    amps = [float(x) for x in a.avb.split(",")]
    specs = [{"id": f"circuit_nominal-{i:05d}", "family": "circuit_nominal",
              "params": {"avb_nA": amp, "plm_nA": a.plm, "warmup_ms": a.warmup,
                         "duration_s": a.duration}, "seed": 0} for i, amp in enumerate(amps)]
    parts = Path(a.store).with_name(Path(a.store).name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    if len(finished_specs(a.store, specs)) < len(specs):
        t0 = time.perf_counter()
        r = circuit_activations(T, physics.frame_dt_s, amps, a.plm, a.warmup, muscle)
        circuit_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        tr = simulate(r["activation"], physics, muscle)
        phys_wall = time.perf_counter() - t0
        versions = package_versions()
        for i, s in enumerate(specs):
            act = r["activation"][:, i].numpy()
            meta = dict(s, versions=versions, physics=dataclasses.asdict(physics),
                        muscle=dataclasses.asdict(muscle), circuit_wall_s=circuit_wall,
                        physics_wall_s=phys_wall, wave=travelling_wave_score(act),
                        ca_mM_max=float(r["ca_mM"][:, i].max()))
            with atomic_path(parts / f"{s['id']}.npz") as tmp, open(tmp, "wb") as fh:
                np.savez(fh, meta=np.array(json.dumps(meta, sort_keys=True)), activation=act,
                         com_um=tr.com_um[:, i].astype(np.float32),
                         tangent_rad=tr.tangent_rad[:, i].astype(np.float32),
                         ca_mM=r["ca_mM"][:, i].numpy())
    consolidate(Path(a.store), specs, parts, DataConfig(duration_s=a.duration), physics, muscle)
    print(json.dumps(circuit_summary(a.store), indent=2, default=float))
    return 0


def circuit_summary(store) -> dict:
    """Per circuit-driven sample: stimulus, muscle-pattern wave score, physics kinematics."""
    import numpy as np

    from wormlab.body._generate import load_store
    from wormlab.body._physics import Trajectory, kinematics

    d = load_store(store)
    tr = Trajectory(np.arange(d["com_um"].shape[1]) * d["frame_dt_s"],
                    d["com_um"].transpose(1, 0, 2).astype(np.float64),
                    d["tangent_rad"].transpose(1, 0, 2).astype(np.float64), d["body_length_um"])
    k = kinematics(tr)
    out = []
    for i, m in enumerate(d["meta"]):
        out.append({"id": m["id"], "avb_nA": m["params"]["avb_nA"],
                    "plm_nA": m["params"]["plm_nA"], "circuit_wall_s": m["circuit_wall_s"],
                    "ca_mM_max": m["ca_mM_max"], "muscle_wave": m["wave"],
                    "activation_max": float(d["activation"][i].max()),
                    "body_forward_speed_um_s": float(k["forward_speed_um_s"][i]),
                    "body_frequency_hz": float(k["frequency_hz"][i]),
                    "body_wavelength_bl": float(k["wavelength_bl"][i]),
                    "body_direction": float(k["direction"][i])})
    return {"samples": out}


def dt_check(dt_fine: float = 1e-5, seed: int = 99) -> dict:
    """ElegansBot at the default dt (1e-4 s) vs a finer step on seven 4 s samples of five
    families: is the physics reference converged? (Midline/COM RMSE in % body length.)"""
    import time

    import numpy as np
    import torch

    from wormlab.body._config import PhysicsConfig
    from wormlab.body._families import make_activation, sample_specs
    from wormlab.body._physics import kinematics, simulate
    from wormlab.body._surrogate import body_rmse_pct, com_rmse_pct

    specs = sample_specs({"nominal": 1, "group_scaled": 1, "sinusoid": 2, "single_muscle": 1,
                          "random": 2}, seed=seed)
    act = torch.from_numpy(np.stack([make_activation(s, 101, 0.04) for s in specs], 1))
    out = {}
    for dt in (PhysicsConfig().dt_s, dt_fine):
        t0 = time.perf_counter()
        out[dt] = (simulate(act, PhysicsConfig(dt_s=dt)), time.perf_counter() - t0)
    (a, wa), (b, wb) = out[PhysicsConfig().dt_s], out[dt_fine]
    ka, kb = kinematics(a), kinematics(b)
    return {"ids": [s["id"] for s in specs], "dt_s": [PhysicsConfig().dt_s, dt_fine],
            "body_rmse_pct": body_rmse_pct(a, b).round(3).tolist(),
            "com_rmse_pct": com_rmse_pct(a, b).round(3).tolist(),
            "final_com_diff_um": np.linalg.norm(a.com_um[-1] - b.com_um[-1],
                                                axis=-1).round(2).tolist(),
            "speed_um_s": ka["forward_speed_um_s"].round(2).tolist(),
            "speed_um_s_fine": kb["forward_speed_um_s"].round(2).tolist(),
            "wall_s": wa, "wall_s_fine": wb}


def _nanmedian(x) -> float:
    """Median of the finite values; nan (not a warning) when there are none."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else float("nan")


def accuracy_report(store, model_path, circuit_store=None, heldout: dict | None = None) -> dict:
    """Accuracy of a saved surrogate on its test split and the generalisation split.

    The validation and test samples are, in order of preference: ``heldout`` (ids, see
    :func:`~wormlab.body.split_data`), the ids the checkpoint recorded at training, or the
    seeded split redrawn from the store (checkpoints from before ids were recorded; only valid
    while the store is the one the model was trained on).
    """
    from wormlab.body._generate import load_store
    from wormlab.body._surrogate import evaluate, load_surrogate, split_data

    model, hist = load_surrogate(model_path)
    d = load_store(store)
    recorded = hist.get("heldout_ids")
    if heldout is not None and recorded is not None and any(
            list(heldout[k]) != recorded[k] for k in ("val", "test")):
        raise ValueError(f"the held-out ids given differ from those {model_path} was trained "
                         "with")
    source = ("given" if heldout is not None else "recorded in the checkpoint"
              if recorded is not None else "redrawn from the store (seeded)")
    splits = split_data(d, model.cfg, heldout if heldout is not None else recorded)
    out = {"model": dataclasses.asdict(model.cfg), "heldout": source,
           "n_parameters": sum(p.numel() for p in model.parameters()),
           "sizes": {k: len(v) for k, v in splits.items()},
           "best_epoch": hist.get("best_epoch"), "train_wall_s": hist.get("wall_s"),
           "calibration": hist.get("calibration"),
           "fine_tuned_from": {k: v for k, v in hist["init"].items() if k != "config"}
           if "init" in hist else None}
    for k in ("test", "general", "calib"):
        if len(splits[k]):
            r = evaluate(model, splits[k])
            ps = r.pop("per_sample")
            fams = sorted(set(ps["family"]))
            r["by_family_body_rmse_pct_mean"] = {
                f: float(ps["body_rmse_pct"][ps["family"] == f].mean()) for f in fams}
            r["by_family_com_rmse_pct_mean"] = {
                f: float(ps["com_rmse_pct"][ps["family"] == f].mean()) for f in fams}
            r["by_family_n"] = {f: int((ps["family"] == f).sum()) for f in fams}
            r["by_family_forward_speed_err_pct_median"] = {
                f: _nanmedian(ps["forward_speed_err_pct"][ps["family"] == f]) for f in fams}
            speed = np.abs(ps["forward_speed_true_um_s"])
            r["by_speed_forward_speed_err_pct_median"] = {
                f"{lo}-{hi} um/s": _nanmedian(ps["forward_speed_err_pct"][(speed >= lo)
                                                                         & (speed < hi)])
                for lo, hi in ((20, 50), (50, 100), (100, 200), (200, 10**6))}
            out[k] = r
    if circuit_store is not None and Path(circuit_store).exists():
        from wormlab.body._surrogate import Split

        c = load_store(circuit_store)
        sp = Split(c["activation"], c["com_um"], c["tangent_rad"], c["family"])
        r = evaluate(model, sp)
        ps = r.pop("per_sample")
        r["per_sample_body_rmse_pct"] = ps["body_rmse_pct"].tolist()
        r["per_sample_estimate_pct"] = ps["estimate_pct"].tolist()
        out["circuit_nominal"] = {**r, **circuit_summary(circuit_store)}
    return out


def _write_json(obj, out) -> int:
    from wormlab.runs import emit_json

    emit_json(obj, out, indent=2, default=float)
    return 0


def _ship(a) -> int:
    """Ship a trained checkpoint as ``data/models/body_surrogate`` (issue 19): the file is the
    checkpoint itself (weights + its own metadata), the manifest records the store's data
    config, the held-out ids, the commands and the report's test metrics."""
    import dataclasses

    import h5py

    from wormlab import models
    from wormlab.body._paths import HEADLINE, HEADLINE_TOLERANCE, SHIPPED_KIND, SHIPPED_NAME
    from wormlab.body._surrogate import load_surrogate
    from wormlab.io import read_safetensors
    from wormlab.paths import project_root

    model, hist = load_surrogate(a.model)
    ids = hist.get("heldout_ids")
    if not ids:
        raise ValueError(f"{a.model} records no held-out ids; retrain it with this wormlab")
    with h5py.File(a.store, "r") as f:
        conf = json.loads(f.attrs["config_json"])
        n = len(f["id"])
        versions = json.loads(f["meta_json"][0])["versions"]
    rep = accuracy_report(a.store, a.model, None, None)
    t, g = rep["test"], rep.get("general", {})
    metrics = {HEADLINE: t["body_rmse_pct_mean"],
               "test_com_rmse_pct_mean": t["com_rmse_pct_mean"],
               "test_forward_speed_err_pct_median": t["forward_speed_err_pct_median"],
               "test_wavelength_err_pct_median": t["wavelength_err_pct_median"],
               "test_error_estimate_spearman": t.get("error_estimate_spearman", float("nan")),
               "general_body_rmse_pct_mean": g.get("body_rmse_pct_mean", float("nan"))}
    metrics = {k: v for k, v in metrics.items() if v == v}  # drop NaN (absent) entries
    tensors, meta = read_safetensors(a.model, "surrogate checkpoint")
    # the test samples' ElegansBot outputs ship beside the model, so that verify on a fresh
    # clone (no store) needs no re-simulation; written before the manifest that names them
    from wormlab.body._generate import load_store
    from wormlab.body._paths import write_heldout_file

    s = load_store(a.store)
    where_id = {str(i): k for k, i in enumerate(s["id"])}
    k = np.array([where_id[str(i)] for i in ids["test"]])
    heldout_files = {"test": write_heldout_file(SHIPPED_NAME, "test", ids["test"],
                                                s["com_um"][k], s["tangent_rad"][k])}
    try:
        where = str(Path(a.store).resolve().relative_to(project_root()))
    except ValueError:
        where = str(a.store)
    data = {"what": f"synthetic ElegansBot store, {n} samples, "
                    f"{conf['data']['duration_s']:g} s at {1 / conf['physics']['frame_dt_s']:g} Hz",
            "where": where, "generate_command": a.generate_command, "n_samples": n,
            "n_per_family": conf["data"]["n_per_family"], "data_seed": conf["data"]["seed"],
            "duration_s": conf["data"]["duration_s"], "physics": conf["physics"],
            "muscle": conf["muscle"], "versions": versions, "sizes": rep["sizes"],
            "heldout_ids": {"val": list(ids["val"]), "test": list(ids["test"])},
            "heldout_files": heldout_files,
            "report": {k: v for k, v in rep.items() if k in ("test", "general", "calib")},
            "train_wall_s": hist.get("wall_s"), "best_epoch": hist.get("best_epoch")}
    out = models.save(SHIPPED_NAME, tensors, kind=SHIPPED_KIND,
                      config=dataclasses.asdict(model.cfg), command=a.train_command, data=data,
                      metrics=metrics, tolerance={HEADLINE: HEADLINE_TOLERANCE}, metadata=meta,
                      code_version=models.current_code_version(("wormlab/body", "wormlab/models")))
    m = json.loads(out.read_text())
    print(json.dumps({"manifest": str(out), "bytes": m["bytes"], "metrics": m["metrics"]},
                     indent=2))
    return 0


def _report(a) -> int:
    rep = accuracy_report(a.store, a.model, a.circuit_store, _heldout(a.heldout))
    return _write_json(rep, a.out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wormlab.body.cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="simulate training data with ElegansBot (resumable)")
    g.add_argument("--store", type=Path, default=default_store())
    g.add_argument("--duration", type=float, default=4.0, help="seconds per sample")
    g.add_argument("--nominal", type=int, default=48)
    g.add_argument("--group-scaled", type=int, default=96)
    g.add_argument("--sinusoid", type=int, default=480)
    g.add_argument("--single-muscle", type=int, default=64)
    g.add_argument("--random", type=int, default=0, help="generic random-wave family")
    g.add_argument("--perturbed", type=int, default=0,
                   help="out-of-range inputs for the error head only")
    g.add_argument("--interleave", action="store_true",
                   help="submit generalisation families first, the rest mixed")
    g.add_argument("--finished-only", action="store_true",
                   help="consolidate the samples a stopped run finished; compute nothing")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--scheduler", default=None, help="dask scheduler address (default: local)")
    g.add_argument("--workers", type=int, default=2)
    g.set_defaults(func=_generate)
    t = sub.add_parser("train", help="train the FNO ensemble")
    t.add_argument("--store", type=Path, nargs="+", default=[default_store()],
                   help="one or more stores (e.g. the generator's and the crawl store of "
                        "`wormlab worm body-data`), merged")
    t.add_argument("--out", type=Path, default=default_cache_model())
    t.add_argument("--hidden", type=int, default=32)
    t.add_argument("--modes", type=int, default=16)
    t.add_argument("--layers", type=int, default=4)
    t.add_argument("--ensemble", type=int, default=1)
    t.add_argument("--input-space", choices=("joints", "muscles"), default="joints")
    t.add_argument("--representation", choices=("body_frame", "lab_delta"),
                   default="body_frame")
    t.add_argument("--no-error-head", action="store_true",
                   help="estimate = ensemble spread (needs --ensemble >= 2)")
    t.add_argument("--position-weight", type=float, default=1.0,
                   help="weight of the integrated midline loss")
    t.add_argument("--speed-weight", type=float, default=0.0,
                   help="weight of the relative forward-speed loss (0: off)")
    t.add_argument("--speed-floor", type=float, default=20.0,
                   help="speeds below this (um/s) count as this in the relative speed loss")
    t.add_argument("--heldout", type=Path, default=None,
                   help="JSON {val: [ids], test: [ids]} or a checkpoint that recorded them: fixed "
                        "validation/test samples (e.g. an earlier model's, so that a grown store "
                        "keeps its test set)")
    t.add_argument("--init", type=Path, default=None,
                   help="checkpoint to fine-tune from (same architecture; not ramped in)")
    t.add_argument("--padding", type=float, default=0.25, help="time-axis padding fraction")
    t.add_argument("--train-families", default="nominal,sinusoid,random")
    t.add_argument("--errorhead-families", default="perturbed")
    t.add_argument("--epochs", type=int, default=60)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--time-budget", type=float, default=None, help="stop after N seconds")
    t.set_defaults(func=_train)
    r = sub.add_parser("report", help="accuracy on test and generalisation splits")
    r.add_argument("--store", type=Path, default=default_store())
    r.add_argument("--model", type=Path, default=default_model())
    r.add_argument("--out", type=Path, default=cache_dir("body") / "report.json")
    r.add_argument("--circuit-store", type=Path, default=default_circuit_store())
    r.add_argument("--heldout", type=Path, default=None,
                   help="JSON {val: [ids], test: [ids]} or a checkpoint that recorded them: "
                        "evaluate on these samples")
    sh = sub.add_parser("ship", help="commit a trained checkpoint as the shipped model "
                        "data/models/body_surrogate (docs/models.md)")
    sh.add_argument("--store", type=Path, default=default_store())
    sh.add_argument("--model", type=Path, default=default_cache_model())
    sh.add_argument("--generate-command", required=True, help="the exact generate command")
    sh.add_argument("--train-command", required=True, help="the exact train command")
    sh.set_defaults(func=_ship)
    d = sub.add_parser("dtcheck", help="physics step 1e-4 vs 1e-5 s on seven 4 s samples")
    d.add_argument("--out", type=Path, default=cache_dir("body") / "dt_check.json")
    d.set_defaults(func=lambda a: _write_json(dt_check(), a.out))
    c = sub.add_parser("circuit", help="circuit-driven nominal samples (c302 C1 muscle calcium)")
    c.add_argument("--store", type=Path, default=default_circuit_store())
    c.add_argument("--duration", type=float, default=4.0)
    c.add_argument("--avb", default="0.002,0.003,0.005", help="AVBL/AVBR step amplitudes, nA")
    c.add_argument("--plm", type=float, default=0.005, help="PLML/PLMR step amplitude, nA")
    c.add_argument("--warmup", type=float, default=200.0, help="discarded transient, ms")
    c.set_defaults(func=_circuit)
    r.set_defaults(func=_report)
    a = p.parse_args(argv)
    return int(a.func(a) or 0)


if __name__ == "__main__":
    sys.exit(main())
