"""python -m bench [--quick] [--only a,b,...] [--profile]"""

from __future__ import annotations

import argparse
import sys

from . import load, profile, report, scenarios


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, fewer peers: a smoke check under a minute")
    parser.add_argument("--only", default="abcdefghijklm", help="scenarios to run, e.g. 'ab' (default: all)")
    parser.add_argument("--profile", action="store_true",
                        help="sample mcp-actors with py-spy during each throughput measurement; flame graphs "
                             "and a summary by layer go to bench/results/ (profiled figures are not for comparison)")
    args = parser.parse_args()
    if args.profile and (why := profile.available()):
        print(f"bench: --profile: {why}", file=sys.stderr)
        return 2
    try:
        load.wrk_path()
    except load.WrkMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    plan = scenarios.Plan(args.quick, args.profile)
    for key in args.only.replace(",", ""):
        scenarios.SCENARIOS[key](plan)
    judged = scenarios.targets(plan)
    print(report.table(plan.rows, judged))
    for line in report.write(plan.rows, judged, args.quick, plan.profiles):
        print(f"bench: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
