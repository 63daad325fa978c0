"""A plain argparse script, as it might be found in any repository: switches, optional flags, an
nargs list, a repeated flag and a positional. It fits a toy "model" (it only counts) and writes
what it was called with, so a test can check the exact argv HQ built from the manifest.

    python argv_echo.py fast --label demo --maxiter 50 --plot --size 1 2 3 --tag a --tag b
    python argv_echo.py slow --label demo --no-cache --results out.json

It prints its argv, and with --results PATH writes a results.json whose table "argv" lists every
argument (and whose metrics count a few of them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["fast", "slow"])
    parser.add_argument("--label", required=True)
    parser.add_argument("--maxiter", type=int)  # optional, no default
    parser.add_argument("--plot", action="store_true")
    parser.add_argument("--no-cache", dest="cache", action="store_false")
    parser.add_argument("--size", type=int, nargs="+", default=[])
    parser.add_argument("--tag", action="append", default=[])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--results", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    print("argv:", json.dumps(sys.argv))
    if args.data is not None:
        print(f"data: {args.data} ({args.data.stat().st_size} bytes)")
    results = {
        "metrics": {
            "n_args": len(argv),
            "n_sizes": len(args.size),
            "n_tags": len(args.tag),
            "plot": int(args.plot),
            "cache": int(args.cache),
            "maxiter": args.maxiter if args.maxiter is not None else -1,
        },
        "tables": {"argv": [{"i": i, "arg": arg} for i, arg in enumerate(sys.argv)]},
    }
    if args.results is not None:
        args.results.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
