"""Benchmark: a year's backfill (`python -m lib backfill`'s run_backfill) under Sheets' quota.

    .venv/bin/python benchmarks/backfill_year.py                        # 365 days x 30 chats, 50 ms, SQLite
    .venv/bin/python benchmarks/backfill_year.py --store firestore      # needs FIRESTORE_EMULATOR_HOST
    .venv/bin/python benchmarks/backfill_year.py --days 60 --per-day 10 --latency-ms 0
    .venv/bin/python benchmarks/run.py --backfill-year                  # the same, after the run benchmark

Fresh stand-ins (every answer delayed by --latency-ms) hold --per-day chats on each of the
--days days before today, out of reach of Moneypenny's cursor (only window reads find them);
the Sheets stand-in enforces Google's per-user quota of 60 writes a minute (--quota). The
backfill runs in this process against a fresh state store, as the command does (its own Sheets
quota wait, the lease, the run history), and the figures are counted by the stand-ins (calls)
and by the store (round trips, documents read/written/deleted, as Firestore bills them). Wall
time includes the stand-ins' own work (they share this process); `stand-ins busy` shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import SHEETS_WRITE_QUOTA, store_env  # noqa: E402
from sandbox.standins import StandIns  # noqa: E402
from sandbox.standins.samples import sample_chats  # noqa: E402

UK = ZoneInfo("Europe/London")

# The targets for a 365-day backfill of 30 chats a day at 50 ms latency.
TARGET_SHEETS_WRITES = 20
TARGET_WALL_SQLITE = 30.0
TARGET_WRITES_PER_CHAT_FIRESTORE = 2.0
# Measured before (one window run per day), for the comparison line.
BEFORE = "before: 366 Sheets writes, 4,018 store round trips, 68 s (Firestore 144 s, 33,949 writes); stopped at day 58 under the quota"


@dataclass
class BackfillFigures:
    store: str
    days: int
    per_day: int
    latency_ms: float
    quota: int | None
    ok: bool = False
    exit: str = ""
    wall: float = 0.0
    busy: float = 0.0
    rows: int = 0
    unique_rows: int = 0
    reads: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    store_counts: dict[str, int] = field(default_factory=dict)
    quota_refusals: int = 0

    @property
    def chats(self) -> int:
        return self.days * self.per_day


def add_year(stand: StandIns, today: date, days: int, per_day: int, seed: int) -> None:
    """`per_day` chats on each of the `days` days before today, from 09:00 through office hours."""
    spacing = timedelta(minutes=max(1, 8 * 60 // max(per_day, 1)))
    chats: list[dict[str, Any]] = []
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        chats += sample_chats(per_day, start=datetime.combine(day, dt_time(9)), seed=seed + back,
                              spacing=spacing)
    stand.moneypenny.add_chats(chats)
    # As after a year of scheduled runs: the cursor is past every chat; only window reads find them.
    env = stand.env()
    token = requests.post(env["MONEYPENNY_AUTH_URL"], timeout=30, json={
        "username": env["MONEYPENNY_USERNAME"], "password": env["MONEYPENNY_PASSWORD"]}).json()["access_token"]
    requests.get(env["MONEYPENNY_CHATS_URL"], headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert stand.moneypenny.pending_chats() == []


def measure(store_kind: str, days: int, per_day: int, latency: float, quota: int | None, seed: int,
            tmp: Path, progress: bool) -> BackfillFigures:
    from lib.app import build_syncer
    from lib.commands.command import ProgressBar
    from lib.settings import Settings
    from lib.state import open_store
    from lib.sync.backfill import BACKFILL_QUOTA_WAIT_SECONDS, run_backfill

    figures = BackfillFigures(store=store_kind, days=days, per_day=per_day, latency_ms=latency * 1000, quota=quota)
    with StandIns(latency=latency) as stand:
        if quota:
            stand.sheets.set_quota(writes=quota)
        env = {**stand.env(), **store_env(store_kind, tmp, "backfill")}
        settings = Settings.from_env(env)
        today = datetime.now(UK).date()
        add_year(stand, today, days, per_day, seed)
        store = open_store(settings)
        stand.reset_calls()
        bar = ProgressBar(sys.stderr, days, "days") if progress else None
        before = store.counters.snapshot()
        t0 = time.perf_counter()
        try:
            result = run_backfill(
                settings, store, today - timedelta(days=days), today - timedelta(days=1),
                build=lambda: build_syncer(settings, store=store, sheets_quota_wait=BACKFILL_QUOTA_WAIT_SECONDS),
                clock=lambda: datetime.now(UK),
                progress=(lambda r: bar.show(r.days_done, r.new, r.appended)) if bar else None,
            )
        finally:
            figures.wall = time.perf_counter() - t0
            if bar:
                bar.done()
        figures.store_counts = store.counters.since(before).as_dict()
        figures.ok, figures.exit = result.ok, result.stopped or "done"
        figures.reads = result.reads
        figures.busy = stand.busy_seconds
        figures.calls = {
            "moneypenny": stand.moneypenny.count(),
            "sheets_reads": stand.sheets.count_reads(),
            "sheets_writes": stand.sheets.count_writes(),
            "sheets_appends": stand.sheets.count("values.append"),
            "slack": stand.slack.count(),
        }
        figures.quota_refusals = stand.sheets.quota_refusals
        keys = [row[-1] for row in stand.sheets.rows(settings.sheet_id, settings.sheet_tab)[1:]]
        figures.rows, figures.unique_rows = len(keys), len(set(keys))
        store.close()
    return figures


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def targets(f: BackfillFigures, baseline: BackfillFigures | None = None) -> list[Any]:
    """The backfill's rows of the issue's table as the main report's Target lines.

    `baseline`, the same window with fewer chats a day, makes the writes a chat the slope
    between the two (what one more chat costs), apart from each read's fixed writes (the run
    state, the progress document, an append's in-flight document)."""
    from benchmarks.report import Target
    from benchmarks.store_targets import BACKFILL_TARGETS

    once = f.ok and f.rows == f.unique_rows == f.chats
    writes = f.calls["sheets_writes"]
    per_chat = f.store_counts.get("writes", 0) / max(f.chats, 1)
    how = "all writes / chats"
    if baseline is not None and baseline.chats < f.chats:
        # An append's in-flight document is one write per 1.5 MB of rows, not per chat.
        appends = f.calls["sheets_appends"] - baseline.calls["sheets_appends"]
        more = f.store_counts.get("writes", 0) - baseline.store_counts.get("writes", 0) - appends
        per_chat = more / (f.chats - baseline.chats)
        fixed = baseline.store_counts.get("writes", 0) - per_chat * baseline.chats
        how = (f"one more chat's writes, against {baseline.per_day} a day; besides them {fixed:.0f} writes for "
               f"the {f.reads} reads themselves and 1 per append ({f.calls['sheets_appends']})")
    where = f"{f.days} days x {f.per_day} chats, {f.store}"
    out = [Target(BACKFILL_TARGETS[0], once and writes <= TARGET_SHEETS_WRITES,
                  f"{where}: {f.exit}, {writes} Sheets writes, {f.quota_refusals} answers 429, every chat once: {once}")]
    if f.store == "sqlite":
        out.append(Target(BACKFILL_TARGETS[1], f.wall <= TARGET_WALL_SQLITE, f"{where}: {f.wall:.1f} s"))
        out.append(Target(BACKFILL_TARGETS[2], None, "measured with --store firestore"))
    else:
        out.append(Target(BACKFILL_TARGETS[1], None, "measured with --store sqlite"))
        out.append(Target(BACKFILL_TARGETS[2], per_chat <= TARGET_WRITES_PER_CHAT_FIRESTORE,
                          f"{where}: {per_chat:.2f} writes a chat ({how})"))
    return out


def report(f: BackfillFigures) -> str:
    writes_per_chat = f.store_counts.get("writes", 0) / max(f.chats, 1)
    lines = [
        f"Backfill of {f.days} days x {f.per_day} chats = {f.chats:,} chats, {f.latency_ms:.0f} ms per request, "
        f"{f.store} store, Sheets quota {f.quota or 'off'} writes/min/user",
        f"  outcome: {f.exit}; rows in the sheet {f.rows:,} ({f.unique_rows:,} distinct keys)"
        f" - {met(f.ok and f.rows == f.unique_rows == f.chats)} (every chat once)",
        f"  finished under the quota: {'yes' if f.ok else 'no'}; 429 answers {f.quota_refusals}",
        f"  Sheets writes {f.calls['sheets_writes']} ({f.calls['sheets_appends']} appends), reads {f.calls['sheets_reads']}"
        f" - target <= {TARGET_SHEETS_WRITES}: {met(f.calls['sheets_writes'] <= TARGET_SHEETS_WRITES)}",
        f"  Moneypenny calls {f.calls['moneypenny']} ({f.reads} window reads); Slack calls {f.calls['slack']}",
        f"  store: {f.store_counts.get('round_trips', 0):,} round trips, {f.store_counts.get('reads', 0):,} reads, "
        f"{f.store_counts.get('writes', 0):,} writes ({writes_per_chat:.2f} a chat), "
        f"{f.store_counts.get('deletes', 0):,} deletes",
        f"  wall {f.wall:.1f} s (stand-ins busy {f.busy:.1f} s, their latency included)",
    ]
    if f.store == "sqlite":
        lines.append(f"  target wall <= {TARGET_WALL_SQLITE:.0f} s on SQLite: {met(f.wall <= TARGET_WALL_SQLITE)}")
    else:
        lines.append(f"  target <= {TARGET_WRITES_PER_CHAT_FIRESTORE:.0f} writes a chat on Firestore: judged on one more "
                     "chat's writes (benchmarks/run.py measures a second window with 1 chat a day); "
                     f"all writes / chats here, each read's own writes included: {writes_per_chat:.3f}")
    lines.append(f"  ({BEFORE})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/backfill_year.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365, help="days backfilled (default 365)")
    parser.add_argument("--per-day", type=int, default=30, help="chats a day (default 30)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="delay of every stand-in answer (default 50)")
    parser.add_argument("--quota", type=int, default=SHEETS_WRITE_QUOTA,
                        help=f"Sheets writes a minute per user (default {SHEETS_WRITE_QUOTA}; 0 turns it off)")
    parser.add_argument("--store", choices=("sqlite", "firestore"), default="sqlite",
                        help="state store (firestore needs FIRESTORE_EMULATOR_HOST)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--progress", action="store_true", help="show the backfill's progress bar on stderr")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.days < 1 or args.per_day < 1:
        parser.error("--days and --per-day must be 1 or more")
    if args.store == "firestore" and not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        parser.error("--store firestore needs FIRESTORE_EMULATOR_HOST (a running Firestore emulator)")
    return args


def run(args: argparse.Namespace, *, quiet: bool = False) -> BackfillFigures:
    """Measure the backfill the arguments describe and print its report (unless `quiet`)."""
    with tempfile.TemporaryDirectory(prefix="mp-backfill-") as tmp:
        figures = measure(args.store, args.days, args.per_day, args.latency_ms / 1000, args.quota or None,
                          args.seed, Path(tmp), args.progress)
    if not quiet:
        print(report(figures))
    if args.json:
        Path(args.json).write_text(json.dumps({**figures.__dict__, "chats": figures.chats}, indent=2))
    return figures


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
