"""``wormlab posture ...``: strain classification on UCR files, LSTM training and evaluation.

wormlab posture classify --train FILE --test FILE [--method minirocket|quant|ensemble|best|...] [--json]
wormlab posture train --out DIR [--layers 4 --hidden 260 --epochs 30 --dataset flavell]
wormlab posture evaluate --out DIR [--frames 9000 --shuffles 200] [--json]
wormlab posture sae --out DIR [--steps 1000 --expansion 1 --state h]   (SAE on hidden states)
wormlab posture heldout --model mdn|mse|var [--settings mdn:0.5,mdn:1] [--out FILE.json]
                        (realism on held-out worms: cross-fitted two-sample test + diagnosis)
wormlab posture shapes [--json]      (variance explained per basis; RFT speed vs recorded)
wormlab posture strains [--ucr FILE] [--out FILE.json] [--methods minirocket,quant,...] [--repeats 5]
wormlab posture ship --out DIR [--lstm-name posture_lstm_4x260] [--sae-name posture_sae_4x260]
                     (the run's best LSTM + its SAE -> data/models, float16, with manifests)
wormlab posture ship-strains --table FILE.json [--name posture_strains_ucr]
                     (a `strains --out` table -> data/models; verify recomputes features, nn)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wormlab posture",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("classify", help="train on a UCR file, report accuracy on another")
    c.add_argument("--train", required=True, help="UCR-format training file (label first)")
    c.add_argument("--test", required=True, help="UCR-format test file")
    c.add_argument(
        "--method",
        default="minirocket",
        help="classifier (default minirocket): minirocket, multirocket, hydra, multirocket-hydra, "
        "quant (aeon); ensemble (vote of minirocket, hydra, quant); rocket (ROCKET); "
        "features (hand-made features + random forest); lstm (the paper's protocol); nn (1-NN "
        "Euclidean); best (picks minirocket or quant by 5-fold CV on --train only)",
    )
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", action="store_true", help="print one JSON object")
    t = sub.add_parser("train", help="train the generative LSTM (resumable)")
    t.add_argument("--out", required=True, help="run folder (checkpoint, basis, config)")
    t.add_argument("--dataset", default="flavell", choices=["flavell", "synthetic"])
    t.add_argument("--basis", default="ica", choices=["pca", "ica", "leifer"])
    t.add_argument("--wrap-heading", action="store_true",
                   help="wrap the heading increment into [-pi, pi) (removes 2 pi jumps)")
    t.add_argument("--layers", type=int, default=4)
    t.add_argument("--hidden", type=int, default=260)
    t.add_argument("--dropout", type=float, default=0.2)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument(
        "--patience",
        type=int,
        default=0,
        help="early stopping: stop after this many epochs without a better validation MSE "
        "(0 = run all epochs); the best-validation weights are always kept",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--head", default="mse", choices=["mse", "mdn"],
                   help="read-out: mse (point prediction, the paper's) or mdn (mixture density)")
    t.add_argument("--components", type=int, default=5, help="mixture components (--head mdn)")
    t.add_argument(
        "--augment",
        default="none",
        choices=["none", "mirror"],
        help="mirror: add the dorsal/ventral mirror image of every worm's training part",
    )
    e = sub.add_parser("evaluate", help="generation, stability, realism, interpretable cells")
    e.add_argument("--out", required=True, help="run folder written by 'train'")
    e.add_argument("--frames", type=int, default=9000)
    e.add_argument("--shuffles", type=int, default=200)
    e.add_argument(
        "--noise",
        default="gaussian:0,gaussian:1,bootstrap:1",
        help="generation settings kind:scale, comma-separated (kind: gaussian = independent "
        "per channel, bootstrap = held-out residual vectors); scale in residual-s.d. units",
    )
    e.add_argument("--no-cells", action="store_true", help="skip the interpretable-cell search")
    e.add_argument(
        "--no-generation",
        action="store_true",
        help="keep the generation/realism results of an existing results.json; redo the cells",
    )
    e.add_argument(
        "--smooth-s",
        type=float,
        default=None,
        help="cell smoothing window in seconds (overrides the run config; paper: 200 frames "
        "at 10 fps = 20 s)",
    )
    e.add_argument(
        "--sae", action="store_true", help="also train + interpret an SAE on the hidden states"
    )
    e.add_argument("--json", action="store_true")
    h = sub.add_parser(
        "heldout", help="realism on held-out worms (generators fitted on the other worms)"
    )
    h.add_argument("--model", default="mdn", choices=["mdn", "mse", "var"])
    h.add_argument("--dataset", default="flavell", choices=["flavell", "synthetic"])
    h.add_argument("--basis", default="ica", choices=["pca", "ica", "leifer"])
    h.add_argument("--wrap-heading", action="store_true",
                   help="wrap the heading increment into [-pi, pi) (removes 2 pi jumps)")
    h.add_argument("--layers", type=int, default=2)
    h.add_argument("--hidden", type=int, default=64)
    h.add_argument("--dropout", type=float, default=0.2)
    h.add_argument("--epochs", type=int, default=30)
    h.add_argument("--patience", type=int, default=5)
    h.add_argument("--components", type=int, default=5)
    h.add_argument("--order", type=int, default=5, help="VAR order (--model var)")
    h.add_argument("--augment", default="none", choices=["none", "mirror"],
                   help="LSTM training augmentation (see train --augment)")
    h.add_argument(
        "--settings",
        default=None,
        help="candidate sampling settings kind:scale, comma-separated (default: mdn:0.3..1 for "
        "mdn, gaussian/bootstrap at 0.25-1 otherwise); chosen on the training worms",
    )
    h.add_argument("--folds", type=int, default=3)
    h.add_argument("--seqs", type=int, default=4, help="generated sequences per fold")
    h.add_argument("--frames", type=int, default=1000, help="frames per generated sequence")
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    h.add_argument("--out", default=None, help="write the result here as JSON (atomic)")
    h.add_argument("--json", action="store_true", help="print the whole result")
    a = sub.add_parser("sae", help="sparse autoencoder on the LSTM hidden states, interpreted")
    a.add_argument("--out", required=True, help="run folder written by 'train'")
    a.add_argument("--steps", type=int, default=1000)
    a.add_argument("--expansion", type=float, default=1.0)
    a.add_argument("--state", default="h", choices=["h", "c"])
    a.add_argument("--perm", type=int, default=1000, help="block permutations (selectivity)")
    a.add_argument("--json", action="store_true")
    sh = sub.add_parser("ship", help="ship a run's LSTM (+ SAE) to data/models (docs/models.md)")
    sh.add_argument("--out", required=True, help="run folder written by 'train' (and 'sae')")
    sh.add_argument("--lstm-name", default="posture_lstm_4x260")
    sh.add_argument("--sae-name", default="posture_sae_4x260",
                    help="name of the shipped SAE ('' = do not ship the SAE)")
    ss = sub.add_parser("ship-strains", help="ship a `strains --out` table (data/models)")
    ss.add_argument("--table", required=True)
    ss.add_argument("--name", default="posture_strains_ucr")
    d = sub.add_parser("shapes", help="bases' variance explained and RFT vs recorded velocity")
    d.add_argument("--drag-ratio", type=float, default=30.0)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--json", action="store_true")
    s = sub.add_parser(
        "strains", help="repeated 5-fold CV (95% interval) + 70/30 hold-out on the UCR Worms split"
    )
    s.add_argument(
        "--ucr", default=None, help="UCR file (default: shared ucr_worms/Worms_TRAIN.txt)"
    )
    s.add_argument("--methods", default="minirocket,quant,hydra,ensemble,rocket,features,nn")
    s.add_argument("--folds", type=int, default=5)
    s.add_argument("--repeats", type=int, default=5, help="repeats of the stratified k-fold CV")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default=None, help="write the table here as JSON (atomic)")
    return p


def _strains(args) -> int:
    from wormlab.posture._classify import check_method, strain_benchmark
    from wormlab.posture._data import load_ucr_worms, read_ucr
    from wormlab.runs import configure_torch, emit_json

    configure_torch()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        check_method(m)
    if args.folds < 2 or args.repeats < 1:
        raise ValueError(
            f"--folds must be >= 2 and --repeats >= 1 (got {args.folds}, {args.repeats})"
        )
    X, y = read_ucr(args.ucr) if args.ucr else load_ucr_worms()
    done = {}
    if args.out and Path(args.out).exists():  # resume: keep methods already computed
        done = json.loads(Path(args.out).read_text())

    def save(res):
        if args.out:
            emit_json(res, args.out, echo=False)

    res = strain_benchmark(
        X,
        y,
        methods,
        folds=args.folds,
        repeats=args.repeats,
        seed=args.seed,
        show_progress=True,
        done=done,
        on_method=save,
    )
    emit_json(res, args.out or None)
    return 0


def _shapes(args) -> int:
    import numpy as np

    from wormlab.posture._config import KinematicsConfig
    from wormlab.posture._data import leifer_basis, load_flavell, wormpose_postures
    from wormlab.posture._kinematics import kinematics
    from wormlab.posture._shape import fit_ica, fit_pca, split_mean_angle

    recs = load_flavell()
    x = np.concatenate([split_mean_angle(r.angles)[0] for r in recs])
    n = x.shape[1]
    bases = {
        "pca": fit_pca(x, 6),
        "ica": fit_ica(x, 6, seed=args.seed),
        "leifer_resampled": leifer_basis().resampled(n),
        "pca_on_wormpose_resampled": fit_pca(wormpose_postures(5000, args.seed), 6).resampled(n),
    }
    res = {
        "data": "Flavell lab, Dag et al. 2023: " + ", ".join(r.name for r in recs),
        "frames": int(len(x)),
        "segments": n,
        "variance_explained": {
            k: b.variance_explained(x).round(4).tolist() for k, b in bases.items()
        },
        "drag_ratio": args.drag_ratio,
        "rft_vs_recorded": {},
    }
    kcfg = KinematicsConfig(drag_ratio=args.drag_ratio)
    for r in recs:
        k = kinematics(r.angles, r.fps, kcfg)
        res["rft_vs_recorded"][r.name] = {
            "r_speed": round(float(np.corrcoef(k.speed, r.velocity)[0, 1]), 3),
            "mean_abs_speed_rft_mm_s": round(float(np.abs(k.speed).mean()), 4),
            "mean_abs_velocity_recorded": round(float(np.abs(r.velocity).mean()), 4),
            "reversal_frame_agreement": round(
                float(((k.reversal > 0) == (r.reversal > 0)).mean()), 3
            ),
        }
    print(json.dumps(res, indent=1 if args.json else None))
    return 0


def _classify(args) -> int:
    from wormlab.posture._classify import classify_files
    from wormlab.runs import configure_torch

    configure_torch()
    res = classify_files(args.train, args.test, method=args.method, seed=args.seed)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        chosen = f" -> {res['chosen']}" if "chosen" in res else ""
        print(
            f"accuracy {res['accuracy']:.3f} ({res['method']}{chosen}, {res['n_test']} test series)"
        )
        for k, v in res["per_class_accuracy"].items():
            print(f"  class {k}: {v:.3f}")
    return 0


def _train(args) -> int:
    from wormlab.posture._config import LSTMConfig, PostureConfig, ShapeConfig
    from wormlab.posture._lstm import train_lstm
    from wormlab.posture._pipeline import prepare, save_basis
    from wormlab.runs import configure_torch, emit_json, seed_everything

    configure_torch()
    seed_everything(args.seed)
    cfg = PostureConfig(
        dataset=args.dataset,
        seed=args.seed,
        shape=ShapeConfig(basis=args.basis, wrap_heading=args.wrap_heading),
        lstm=LSTMConfig(
            layers=args.layers,
            hidden=args.hidden,
            dropout=args.dropout,
            epochs=args.epochs,
            patience=args.patience,
            augment=args.augment,
            head=args.head,
            n_components=args.components,
        ),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = prepare(cfg)
    save_basis(out / "basis.json", data.basis)
    emit_json(cfg.to_dict(), out / "config.json", indent=2, echo=False)
    res = train_lstm(data.series, cfg.lstm, seed=cfg.seed, checkpoint=out / "lstm", verbose=True)
    emit_json(res.summary(), indent=None)
    return 0


def _evaluate(args) -> int:
    from wormlab.posture._evaluate import evaluate_run

    res = evaluate_run(
        Path(args.out),
        n_frames=args.frames,
        n_shuffles=args.shuffles,
        noises=args.noise,
        cells=not args.no_cells,
        generation=not args.no_generation,
        smooth_s=args.smooth_s,
    )
    if args.sae:
        from wormlab.posture._sae import sae_on_run

        res["sae"] = sae_on_run(Path(args.out))
    print(json.dumps(res, indent=2) if args.json else json.dumps(res))
    return 0


def _heldout(args) -> int:
    from dataclasses import asdict

    from wormlab.posture._config import LSTMConfig, PostureConfig, ShapeConfig
    from wormlab.posture._evaluate import parse_noises
    from wormlab.posture._heldout import heldout_realism, lstm_generator, var_generator
    from wormlab.posture._pipeline import prepare
    from wormlab.runs import configure_torch, emit_json, seed_everything

    defaults = {
        "mdn": "mdn:0.3,mdn:0.5,mdn:0.7,mdn:0.85,mdn:1",
        "mse": "gaussian:1,bootstrap:1,gaussian:0.5,bootstrap:0.5,gaussian:0.25",
        "var": "gaussian:1,bootstrap:1,gaussian:0.7,bootstrap:0.7",
    }
    settings = parse_noises(args.settings or defaults[args.model])
    for kind, _ in settings:  # checked before any data is read or model trained
        if kind == "mdn" and args.model != "mdn":
            raise ValueError(f"--settings mdn:...: mdn sampling needs --model mdn, "
                             f"not --model {args.model}")
    configure_torch()
    seed_everything(args.seed)
    cfg = PostureConfig(dataset=args.dataset, seed=args.seed,
                        shape=ShapeConfig(basis=args.basis, wrap_heading=args.wrap_heading))
    data = prepare(cfg, smoke=args.smoke)
    if args.model == "var":
        fit, sample = var_generator(args.order)
        model_cfg = {"order": args.order}
    else:
        lc = LSTMConfig(layers=args.layers, hidden=args.hidden, dropout=args.dropout,
                        epochs=2 if args.smoke else args.epochs, patience=args.patience,
                        head=args.model, n_components=args.components,
                        augment=args.augment)
        fit, sample = lstm_generator(lc)
        model_cfg = asdict(lc)
    frames, seqs = (300, 3) if args.smoke else (args.frames, args.seqs)
    res = heldout_realism(data.series, fit, sample, settings, n_folds=args.folds, n_seq=seqs,
                          n_frames=frames, seed=args.seed,
                          control_repeats=2 if args.smoke else 10)
    res.update(model=args.model, model_config=model_cfg, data_label=data.label,
               wrap_heading=args.wrap_heading,
               worms=[r.name for r in data.recordings])
    if not args.json:
        brief = {k: res[k] for k in ("model", "chosen", "settings", "folds")}
        brief.update(heldout_c2st=res["heldout_c2st"]["accuracy"],
                     real_vs_real=res["real_vs_real"]["accuracy"],
                     other_worms_vs_heldout=res["other_worms_vs_heldout"]["accuracy"],
                     worst_feature=res["diagnosis"]["worst"],
                     max_abs_off=res["diagnosis"]["max_abs_off"])
        if args.out:
            emit_json(res, args.out, echo=False)
        print(json.dumps(brief))
        return 0
    emit_json(res, args.out or None)
    return 0


def _sae(args) -> int:
    from wormlab.posture._sae import HiddenSAEConfig, sae_on_run

    cfg = HiddenSAEConfig(
        state=args.state, expansion=args.expansion, n_steps=args.steps, n_perm=args.perm
    )
    res = sae_on_run(Path(args.out), cfg)
    res.pop("tables", None)
    print(json.dumps(res, indent=2) if args.json else json.dumps(res))
    return 0


def _ship(args) -> int:
    import shlex

    from wormlab.posture._ship import ship_run

    command = "wormlab posture ship " + " ".join(
        shlex.quote(a) for a in ["--out", args.out, "--lstm-name", args.lstm_name,
                                 "--sae-name", args.sae_name])
    for path in ship_run(Path(args.out), command=command, lstm_name=args.lstm_name,
                         sae_name=args.sae_name or None):
        m = json.loads(Path(path).read_text())
        print(json.dumps({"model": m["name"], "kind": m["kind"], "bytes": m["bytes"],
                          "metrics": m["metrics"]}))
    return 0


def _ship_strains(args) -> int:
    import shlex

    from wormlab.posture._ship import ship_strains

    command = "wormlab posture ship-strains " + " ".join(
        shlex.quote(a) for a in ["--table", args.table, "--name", args.name])
    m = json.loads(Path(ship_strains(args.table, command=command, name=args.name)).read_text())
    print(json.dumps({"model": m["name"], "bytes": m["bytes"], "metrics": m["metrics"]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        handlers = {
            "classify": _classify,
            "train": _train,
            "evaluate": _evaluate,
            "strains": _strains,
            "shapes": _shapes,
            "sae": _sae,
            "heldout": _heldout,
            "ship": _ship,
            "ship-strains": _ship_strains,
        }
        return handlers[args.cmd](args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"wormlab posture: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
