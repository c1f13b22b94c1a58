"""Benchmark: one sync run through the function against the local stand-ins, versus the naive way.

    .venv/bin/python benchmarks/run.py                      # sizes 100,1000,10000; 50 ms latency
    .venv/bin/python benchmarks/run.py --sizes 100 --latency-ms 0

For each size N it starts fresh stand-ins (Moneypenny, Sheets, Slack on 127.0.0.1, each answer
delayed by --latency-ms) and a fresh state store, and serves main.sync_chats through
functions-framework in a child process (benchmarks/worker.py), so that the stand-ins' own work
never counts as the function's CPU time or memory. In that process it makes these runs:

  first    1 chat, empty state: logs in, creates the tab and its header (the one-off set-up)
  N chats  N new chats, warm instance: the measured run (wall, CPU, calls, store round trips)
  idle     nothing new
  expired  nothing new, the cached token expired (Moneypenny's too)
  memory   N more new chats with tracemalloc on (tracing slows a run, so it is timed apart)

The naive baseline (benchmarks/naive.py) runs in its own child process against fresh stand-ins
on min(N, --naive-limit) chats; its cost for N chats is extrapolated linearly from its fixed
part and its per-chat loop, and the table says so. A last pass sets the Sheets stand-in's
per-user write quota (60 a minute, as Google's) and runs both ways under it.

Cold start: `python -X importtime` of the function module, of what a run imports on demand, and
of each library alone (median of --import-repeats fresh processes).

This file is the command line; the work is in benchmarks/scenarios.py (what runs),
benchmarks/measure.py (one measured request and the worker process), benchmarks/coldstart.py
(import times) and benchmarks/report.py (targets, tables, JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.coldstart import measure_imports  # noqa: E402
from benchmarks.measure import machine  # noqa: E402
from benchmarks.report import as_data, report  # noqa: E402
from benchmarks.scenarios import FunctionResult, NaiveResult, measure_function, measure_naive, measure_quota  # noqa: E402

# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="One sync run through the function against the local stand-ins, versus the naive way.",
    )
    parser.add_argument("--sizes", default="100,1000,10000",
                        help="comma-separated numbers of new chats (default 100,1000,10000)")
    parser.add_argument("--latency-ms", type=float, default=50.0,
                        help="delay before every answer of every stand-in, in ms (default 50)")
    parser.add_argument("--naive-limit", type=int, default=200,
                        help="the naive way runs on at most this many chats and is extrapolated to N (default 200; 0 "
                        "skips it)")
    parser.add_argument("--quota-chats", type=int, default=None,
                        help="chats for the run under Sheets' write quota (default min(largest size, naive limit); "
                        "0 skips it)")
    parser.add_argument("--store", choices=("sqlite", "firestore"), default="sqlite",
                        help="state store (firestore needs FIRESTORE_EMULATOR_HOST)")
    parser.add_argument("--import-repeats", type=int, default=5,
                        help="fresh processes per import-time measurement (default 5; 0 skips it)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the sample chats")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    parser.add_argument("--profile", metavar="DIR", help="write a cProfile of each measured run to DIR")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (worker logs, state)")
    parser.add_argument("--backfill-year", action="store_true",
                        help="then a year's backfill under the Sheets quota (benchmarks/backfill_year.py)")
    args = parser.parse_args(argv)
    try:
        args.size_list = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes whole numbers separated by commas, e.g. 100,1000,10000")
    if not args.size_list or min(args.size_list) < 1:
        parser.error("--sizes needs at least one size of 1 or more")
    if args.latency_ms < 0:
        parser.error("--latency-ms cannot be negative")
    if args.store == "firestore" and not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        parser.error("--store firestore needs FIRESTORE_EMULATOR_HOST (a running Firestore emulator)")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    latency = args.latency_ms / 1000
    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-"))
    profile_dir = Path(args.profile) if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    facts = machine()
    results: list[FunctionResult] = []
    naive: list[NaiveResult] = []
    quota = None
    imports = None
    try:
        for n in args.size_list:
            print(f"... function, N={n}", file=sys.stderr, flush=True)
            results.append(measure_function(n, latency, args.store, tmp, args.seed, profile_dir))
            if args.naive_limit > 0:
                print(f"... naive, N={n} (on {min(n, args.naive_limit)})", file=sys.stderr, flush=True)
                naive.append(measure_naive(n, args.naive_limit, latency, tmp, args.seed))
        quota_chats = args.quota_chats
        if quota_chats is None:
            quota_chats = min(max(args.size_list), args.naive_limit)
        if quota_chats > 0:
            print(f"... under the Sheets write quota, {quota_chats} chats", file=sys.stderr, flush=True)
            quota = measure_quota(quota_chats, latency, args.store, tmp, args.seed)
        if args.import_repeats > 0:
            print("... import times", file=sys.stderr, flush=True)
            imports = measure_imports(args.import_repeats, tmp)
    finally:
        if args.keep:
            print(f"(temporary files kept in {tmp})", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    text = report(args, facts, results, naive, quota, imports)
    return as_data(args, facts, results, naive, quota, imports, text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = run(args)
    print(data["text"])
    if args.backfill_year:
        from benchmarks.backfill_year import main as backfill_year
        backfill_year(["--store", args.store, "--latency-ms", str(args.latency_ms)])
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
