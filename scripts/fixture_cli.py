"""The command line the fixture scripts share: OUT, --per-class N, --seed S."""
from __future__ import annotations

import argparse


def run(doc: str, write, per_class: int, argv=None) -> tuple[str, int]:
    """Parse argv, call `write(out, per_class=N, seed=S)`; -> (its path, N)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("out", metavar="OUT", help="the folder to write (made if missing)")
    ap.add_argument("--per-class", type=int, default=per_class, help="training images per class")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.per_class < 1:
        ap.error("--per-class must be >= 1")
    return write(args.out, per_class=args.per_class, seed=args.seed), args.per_class
