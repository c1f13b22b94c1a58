"""The N-record run with call messages on (MONEYPENNY_SOURCES=chats,calls): N new chats and N new
call messages in one run, against fresh stand-ins, through the function in its own process.

    .venv/bin/python benchmarks/calls.py --sizes 100,1000 --latency-ms 50

Per N: a first run (1 chat, 1 call: login, both tabs and headers), the measured run (N chats and
N calls, warm instance) and a run with nothing new (the call days are read again and add
nothing). It prints wall and CPU of the request inside the function's process, the calls each
stand-in counted and the store's round trips; the main benchmark (benchmarks/run.py) is the
chats-only figure it compares with.

    .venv/bin/python benchmarks/calls.py --per-day 20,2000

The idle run at volume: M call messages on each of the three days a scheduled run reads again
(M = 20 and 2,000), journaled and written by the runs before; then a run with nothing new. Its
store reads must not grow with M: the days read again are checked against the calls_read
document's digests (one read), not the journal (a read a message).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import Run, Worker, measure_run, worker_env  # noqa: E402
from benchmarks.scenarios import local_now, make_chats, store_env  # noqa: E402
from sandbox.standins import StandIns  # noqa: E402
from sandbox.standins.samples import sample_calls  # noqa: E402


def measure(n: int, latency: float, tmp: Path, seed: int = 7) -> list[Run]:
    """The three runs for one N."""
    runs = []
    with StandIns(latency=latency) as stand:
        env = worker_env(stand, {**store_env("sqlite", tmp, f"calls{n}"), "MONEYPENNY_SOURCES": "chats,calls"})
        with Worker(env, "function", tmp / f"function-calls-{n}.log") as worker:
            start = local_now() - timedelta(hours=20)
            now = datetime.now(UTC)
            stand.moneypenny.add_chats(make_chats(1, start, seed + 1))
            stand.moneypenny.add_calls(sample_calls(1, now - timedelta(hours=20), seed=seed + 1))
            runs.append(measure_run(worker, stand, "first (cold, sets up both tabs)", 2))
            stand.moneypenny.add_chats(make_chats(n, start + timedelta(minutes=1), seed))
            # Spread over the last hours: every message is inside the days a run reads.
            spacing = timedelta(seconds=max(1, int(18 * 3600 / n)))
            stand.moneypenny.add_calls(sample_calls(n, now - timedelta(hours=19), seed=seed, spacing=spacing))
            runs.append(measure_run(worker, stand, f"{n} new chats + {n} new calls", 2 * n))
            runs.append(measure_run(worker, stand, "nothing new", 0))
    return runs


def measure_idle(per_day: int, latency: float, tmp: Path) -> Run:
    """The idle run with `per_day` call messages on each of the three days it reads again."""
    with StandIns(latency=latency) as stand:
        env = worker_env(stand, {**store_env("sqlite", tmp, f"idle{per_day}"), "MONEYPENNY_SOURCES": "chats,calls"})
        with Worker(env, "function", tmp / f"function-idle-{per_day}.log") as worker:
            now = datetime.now(UTC).astimezone(ZoneInfo("Europe/London"))
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            for days_ago in (2, 1, 0):
                first = midnight - timedelta(days=days_ago)
                # Today's spread over the hours so far, the other days' over the whole day.
                length = (now - first) if days_ago == 0 else timedelta(days=1)
                spacing = timedelta(seconds=max(1, int(length.total_seconds() * 0.95 / per_day)))
                stand.moneypenny.add_calls(sample_calls(per_day, first.astimezone(UTC), seed=days_ago,
                                                        spacing=spacing))
            measure_run(worker, stand, "first", 3 * per_day)
            measure_run(worker, stand, "second (the document learns the days)", 0)
            return measure_run(worker, stand, f"idle, {per_day:,} calls a day", 0)


def main(argv: list[str] | None = None) -> int:
    """Run and print the table; exit 1 if a run did not write what it should."""
    parser = argparse.ArgumentParser(prog="benchmarks/calls.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000", help="comma-separated N (default 100,1000)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="delay before every answer (default 50)")
    parser.add_argument("--per-day", default="",
                        help="comma-separated call messages a day for the idle-run figure (e.g. 20,2000); "
                        "given, only that figure is measured")
    args = parser.parse_args(argv)
    latency = args.latency_ms / 1000
    if args.per_day:
        print(f"{'idle run':<34} {'wall s':>7} {'store reads':>11} {'writes':>6} {'calls read again':>16}")
        with tempfile.TemporaryDirectory(prefix="mp-bench-idle-") as tmp:
            for per_day in [int(s) for s in args.per_day.split(",") if s.strip()]:
                run = measure_idle(per_day, latency, Path(tmp))
                store = run.body.get("store") or {}
                fetched = (run.body.get("sources") or {}).get("calls", {}).get("fetched")
                print(f"{run.label:<34} {run.wall:>7.2f} {store.get('reads', '?'):>11} {store.get('writes', '?'):>6} "
                      f"{fetched!s:>16}")
        return 0
    print(f"{'run':<34} {'wall s':>7} {'CPU s':>6} {'calls: Moneypenny / Sheets r+w / Slack':>40} {'round trips':>11}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="mp-bench-calls-") as tmp:
        for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
            for run in measure(n, latency, Path(tmp)):
                c = run.calls
                counted = f"{c['moneypenny']} / {c['sheets_reads']}+{c['sheets_writes']} / {c['slack']}"
                print(f"{run.label:<34} {run.wall:>7.2f} {run.cpu:>6.2f} {counted:>40} {run.round_trips or 0:>11}")
                ok = ok and run.body.get("appended") == (run.chats if run.label != "nothing new" else 0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
