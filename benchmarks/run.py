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

With --store firestore the N-chat run's writes are noted and made again right after it, in the
same process, by a bare loop in the same batches (benchmarks/floor.py): the run's function CPU
over that loop's is issue #22's target at 10,000 chats (<= 1.5x).

The naive baseline (benchmarks/naive.py) runs in its own child process against fresh stand-ins
on min(N, --naive-limit) chats; its cost for N chats is extrapolated linearly from its fixed
part and its per-chat loop, and the table says so. A last pass sets the Sheets stand-in's
per-user write quota (60 a minute, as Google's) and runs both ways under it.

Cold start: `python -X importtime` of the function module, of what a run imports on demand, and
of each library alone (median of --import-repeats fresh processes).

With --day it runs the production-day scenario instead (benchmarks/production_day.py): 288
scheduled runs a day (the first after 03:15 also the reconcile) and 50 chats over office hours on a movable clock,
counting what the store bills and the calls per day (--store both: Firestore, then SQLite).

    .venv/bin/python benchmarks/run.py --day --store both     # two days on each store, ~a minute

With --accounts (and --day) it runs that day for several accounts in one deployment
(benchmarks/accounts_day.py): each account its own Scheduler job, staggered a minute, their runs
interleaved; documents per day against Firestore's free tier, Scheduler jobs against the 3 free
ones, and how many accounts fit the free tier.

    .venv/bin/python benchmarks/run.py --day --accounts 1,10,50 --days 1

--store firestore uses the emulator FIRESTORE_EMULATOR_HOST names, or starts one
(sandbox/emulator.py).

This file is the command line; the work is in benchmarks/scenarios.py (what runs),
benchmarks/measure.py (one measured request and the worker process), benchmarks/coldstart.py
(import times) and benchmarks/report.py (targets, tables, JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.coldstart import measure_imports  # noqa: E402
from benchmarks.measure import machine  # noqa: E402
from benchmarks.report import as_data, report  # noqa: E402
from benchmarks.scenarios import FunctionResult, NaiveResult, measure_function, measure_naive, measure_quota  # noqa: E402
from sandbox.emulator import emulator_script, firestore_emulator  # noqa: E402

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
    parser.add_argument("--store", choices=("sqlite", "firestore", "both"), default="sqlite",
                        help="state store: firestore uses FIRESTORE_EMULATOR_HOST or starts the emulator; both "
                        "(Firestore, then SQLite) with --day only")
    parser.add_argument("--day", action="store_true",
                        help="run the production-day scenario instead (scheduled runs, reconcile, chats over a day)")
    parser.add_argument("--days", type=int, default=2,
                        help="production days simulated, with --day or after the runs (default 2; 0 skips them)")
    parser.add_argument("--day-chats", type=int, default=50, help="with --day: chats a day (default 50)")
    parser.add_argument("--day-runs", type=int, default=288,
                        help="with --day: scheduled runs a day, 5 min apart from midnight (default 288)")
    parser.add_argument("--accounts", metavar="N,N,...",
                        help="with --day: the production day for these numbers of accounts instead (e.g. 1,10,50: "
                        "each account its own staggered job, runs interleaved), against Firestore's free tier")
    parser.add_argument("--import-repeats", type=int, default=5,
                        help="fresh processes per import-time measurement (default 5; 0 skips it)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the sample chats")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    parser.add_argument("--profile", metavar="DIR",
                        help="write a cProfile of each measured run to DIR (timed in CPU seconds: where the CPU goes)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (worker logs, state)")
    parser.add_argument("--backfill-year", action=argparse.BooleanOptionalAction, default=True,
                        help="also a year's backfill under the Sheets quota (benchmarks/backfill_year.py), "
                             "judged with the other targets (default: on)")
    args = parser.parse_args(argv)
    try:
        args.size_list = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes whole numbers separated by commas, e.g. 100,1000,10000")
    if not args.size_list or min(args.size_list) < 1:
        parser.error("--sizes needs at least one size of 1 or more")
    if args.latency_ms < 0:
        parser.error("--latency-ms cannot be negative")
    if args.store == "both" and not args.day:
        parser.error("--store both goes with --day")
    if args.days < (1 if args.day else 0) or args.day_chats < 0 or not 1 <= args.day_runs <= 288:
        parser.error("--days needs 0 or more (1 or more with --day), --day-chats 0 or more, --day-runs 1 to 288")
    args.account_list = []
    if args.accounts is not None:
        try:
            args.account_list = [int(s) for s in args.accounts.split(",") if s.strip()]
        except ValueError:
            parser.error("--accounts takes whole numbers separated by commas, e.g. 1,10,50")
        if not args.day or not args.account_list or min(args.account_list) < 1:
            parser.error("--accounts goes with --day and needs numbers of 1 or more, e.g. --day --accounts 1,10,50")
    if args.store in ("firestore", "both") and not (os.environ.get("FIRESTORE_EMULATOR_HOST") or emulator_script()):
        parser.error("--store firestore needs FIRESTORE_EMULATOR_HOST or Google's Firestore emulator installed")
    return args


def run_day(args: argparse.Namespace) -> dict[str, Any]:
    """The production-day scenario on each store asked for (Firestore first)."""
    from benchmarks.production_day import day_data, day_text, run_days

    kinds = ["firestore", "sqlite"] if args.store == "both" else [args.store]
    tmp = Path(tempfile.mkdtemp(prefix="mp-day-"))
    results: list[Any] = []
    try:
        for kind in kinds:
            with firestore_emulator() if kind == "firestore" else contextlib.nullcontext():
                if args.account_list:
                    from benchmarks.accounts_day import simulate_accounts

                    results += [simulate_accounts(
                        n, kind, tmp, days=args.days, chats_per_day=args.day_chats, runs_per_day=args.day_runs,
                        seed=args.seed, progress=lambda text, kind=kind: print(f"... {kind}: {text}", file=sys.stderr))
                        for n in args.account_list]
                    continue
                results.append(run_days(kind, tmp, days=args.days, chats_per_day=args.day_chats,
                                        runs_per_day=args.day_runs, seed=args.seed,
                                        progress=lambda text, kind=kind: print(f"... {kind}: {text}", file=sys.stderr)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    facts = machine()
    head = (f"Moneypenny sync benchmark, production day, {datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}\n"
            f"Machine: {facts['cpu']}, {facts['cores']} cores ({facts['usable_cores']} usable), {facts['memory']} RAM, "
            f"{facts['os']}, {facts['implementation']} {facts['python']}\n")
    if args.account_list:
        from benchmarks.accounts_day import accounts_data, accounts_text

        text = head + accounts_text(results)
        return {"machine": facts, **accounts_data(results), "text": text}
    text = head + day_text(results)
    return {"machine": facts, **day_data(results), "text": text}


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
    days = []
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
        if args.days > 0:
            from benchmarks.production_day import run_days

            days.append(run_days(args.store, tmp, days=args.days, chats_per_day=args.day_chats,
                                 runs_per_day=args.day_runs, seed=args.seed,
                                 progress=lambda text: print(f"... production day: {text}", file=sys.stderr)))
        if args.import_repeats > 0:
            print("... import times", file=sys.stderr, flush=True)
            imports = measure_imports(args.import_repeats, tmp)
    finally:
        if args.keep:
            print(f"(temporary files kept in {tmp})", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    backfill = None
    if args.backfill_year:
        from benchmarks import backfill_year

        print("... a year's backfill under the Sheets quota", file=sys.stderr, flush=True)
        figures = backfill_year.run(backfill_year.parse_args(["--store", args.store, "--latency-ms", str(args.latency_ms)]),
                                    quiet=True)
        baseline = None
        if args.store == "firestore":
            baseline = backfill_year.run(backfill_year.parse_args(
                ["--store", args.store, "--latency-ms", str(args.latency_ms), "--per-day", "1"]), quiet=True)
        backfill = backfill_year.targets(figures, baseline)
    text = report(args, facts, results, naive, quota, imports, days, backfill)
    if backfill is not None:
        text += "\n\n" + backfill_year.report(figures)
    return as_data(args, facts, results, naive, quota, imports, text, days, backfill)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.day:
        data = run_day(args)
    elif args.store == "firestore":
        with firestore_emulator():
            data = run(args)
    else:
        data = run(args)
    print(data["text"])
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
