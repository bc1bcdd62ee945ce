"""``wormlab recordings ...``: list, inspect, convert recordings and make virtual worms."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_FILE_SUFFIXES = (".npz", ".csv", ".mat", ".nwb", ".h5")


def _load(spec: str):
    from wormlab import recordings as R

    # a missing file is "does not exist", not a malformed shared-recording id
    if Path(spec).exists() or Path(spec).suffix.lower() in _FILE_SUFFIXES:
        return R.load(spec)
    return R.load_shared(spec)


def main(argv: list[str] | None = None) -> int:
    from wormlab import recordings as R

    p = argparse.ArgumentParser(prog="wormlab recordings", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="recordings in the shared data folder")
    q = sub.add_parser("info", help="summary of a recording (file path or id)")
    q.add_argument("recording")
    q = sub.add_parser("convert", help="convert between formats (.npz .csv .mat .nwb)")
    q.add_argument("source", help="file path or shared id, e.g. kato2015/worm0")
    q.add_argument("dest")
    q.add_argument("--mat-version", default="7", choices=["7", "7.3"])
    q = sub.add_parser("virtual", help="write a SYNTHETIC virtual-worm recording")
    q.add_argument("dest", help="output file; its name must contain 'synthetic'")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--duration-s", type=float, default=1800.0)
    q.add_argument("--n-observed", type=int, default=189)
    args = p.parse_args(argv)
    try:
        if args.cmd == "list":
            for rid in R.list_shared():
                print(rid)
            return 0
        if args.cmd == "info":
            print(_load(args.recording).summary())
            return 0
        if args.cmd == "convert":
            rec = _load(args.source)
            kw = {"version": args.mat_version} if args.dest.endswith(".mat") else {}
            print(R.save(rec, args.dest, **kw))
            return 0
        if args.cmd == "virtual":
            cfg = R.VirtualWormConfig(seed=args.seed, n_observed=args.n_observed,
                                      protocol=R.ProtocolConfig(duration_s=args.duration_s))
            rec = R.virtual_worm(cfg)
            print(R.save(rec, args.dest))
            print(rec.summary())
            return 0
    except (ValueError, OSError, KeyError) as exc:  # OSError: e.g. an unwritable destination
        print(f"wormlab recordings: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
