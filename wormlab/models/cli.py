"""``wormlab models list [--json]`` and ``wormlab models verify [NAME ...] [--json]``."""

from __future__ import annotations

import argparse
import sys


def _fmt_metrics(d: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in d.items())


def _list(a) -> int:
    from wormlab.models import list_models, models_dir
    from wormlab.runs import emit_json

    rows = list_models()
    if a.json:
        emit_json({"models_dir": str(models_dir()), "models": rows}, indent=1)
        return 0
    if not rows:
        print(f"no shipped models in {models_dir()}")
        return 0
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<24} ERROR {r['error']}")
            continue
        dirty = " (dirty)" if r.get("dirty") else ""
        print(f"{r['name']:<24} {r['kind']:<22} {r['bytes'] / 1e6:7.3f} MB  sha256 {r['sha256']}"
              f"  {r['created']}  commit {r['commit']}{dirty}\n{'':<24} {_fmt_metrics(r['metrics'])}")
    return 0


def _verify(a) -> int:
    from wormlab.models import failed, list_models, verify
    from wormlab.runs import emit_json, progress

    names = a.names or [r["name"] for r in list_models()]
    results = [verify(n) for n in progress(names, desc="verify models", unit="model")]
    ok = not any(failed(r) for r in results)
    if a.json:
        emit_json({"ok": ok, "models": results}, a.out, indent=1)
    else:
        if a.out:
            emit_json({"ok": ok, "models": results}, a.out, echo=False)
        for r in results:
            state = "ok" if r["ok"] else "skipped" if "skipped" in r else "FAILED"
            print(f"{r['name']:<24} {state}  ({r.get('wall_s', 0):.1f} s)")
            for k in ("error", "skipped"):
                if k in r:
                    print(f"    {r[k]}")
            for k, v in r["metrics"].items():
                new = "-" if v["recomputed"] is None else f"{v['recomputed']:.4g}"
                print(f"    {k}: recorded {v['recorded']:.4g}, recomputed {new}, tolerance "
                      f"{v['tolerance']:g}  {'ok' if v['ok'] else 'OUT OF TOLERANCE'}")
        if not results:
            print("no shipped models to verify")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wormlab models", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("list", help="the shipped models with their manifests' metrics")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_list)
    s = sub.add_parser("verify", help="check hashes and recompute each model's headline metric"
                       " on its recorded held-out set (exit 1 when one fails)")
    s.add_argument("names", nargs="*", help="models to verify (default: all)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--out", default=None, help="also write the JSON result here (atomic)")
    s.set_defaults(func=_verify)
    a = p.parse_args(argv)
    return int(a.func(a))


if __name__ == "__main__":
    sys.exit(main())
