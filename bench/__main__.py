"""python -m bench [--quick] [--only a,b,...]"""

from __future__ import annotations

import argparse
import sys

from . import load, report, scenarios


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, fewer peers: a smoke check under a minute")
    parser.add_argument("--only", default="abcdefghijk", help="scenarios to run, e.g. 'ab' (default: all)")
    args = parser.parse_args()
    try:
        load.wrk_path()
    except load.WrkMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    plan = scenarios.Plan(args.quick)
    for key in args.only.replace(",", ""):
        scenarios.SCENARIOS[key](plan)
    judged = scenarios.targets(plan)
    print(report.table(plan.rows, judged))
    for line in report.write(plan.rows, judged, args.quick):
        print(f"bench: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
