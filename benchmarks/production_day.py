"""The production-day scenario (`benchmarks/run.py --day`): what a day of scheduled runs costs.

A movable clock walks through whole days (Europe/London): Cloud Scheduler's one job every 5
minutes (288 runs a day; the first after 03:15 also makes the daily reconcile's read, as does a
new store's first run), each run as the function makes it
(`lib.runner.run_and_report`, the Syncer and the alerter the handler uses, the scheduler's
JobName and ScheduleTime), on one warm instance. Chats arrive in the Moneypenny stand-in's log
between runs, spread over office hours, each a few minutes after its chatTime. The stand-ins
answer at once, so the day takes only the store's and the CPU's time.

Every figure is counted, none estimated: the store's own counters (`StoreCounters`, in
Firestore's billing units) around each run and each day, and the requests the stand-ins
received. Each day is judged against the targets below.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.report import Target
from lib.counters import FREE_TIER_PER_DAY
from sandbox.standins import StandIns
from sandbox.standins.samples import sample_chats

UK = ZoneInfo("Europe/London")
SYNC_JOB = "moneypenny-sync"  # terraform/scheduler.tf: the one job
RUN_EVERY = timedelta(minutes=5)
RECONCILE_AT = (3, 15)  # RECONCILE_AT's default
OFFICE = ((9, 0), (17, 30))  # chats start between these local times
CHAT_LENGTH = timedelta(minutes=4)  # a chat reaches the log this long after its chatTime
STARTS_AFTER = timedelta(seconds=2)  # the function starts this long after the ScheduleTime

DAY_READS, DAY_WRITES = 2_000, 1_000  # per day
IDLE_READS, IDLE_WRITES = 1, 2  # per run with nothing new (issue #22: the run state alone), and 0 offset reads


class MovableClock:
    """The day's clock, shared by the Syncer, the alerter and the Moneypenny stand-in."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RunCost:
    """One scheduled run: when, what it did, and what it cost (store and calls)."""

    at: str
    job: str
    outcome: str
    fetched: int
    appended: int
    posted: int
    logins: int
    store: dict[str, int]  # the store's counters around the whole call, alerter included
    calls: dict[str, int]  # requests the stand-ins received during it
    reported: dict[str, int]  # the run's own JSON report's `store`
    reconciled: bool = False  # the run also made the daily reconcile's read

    @property
    def idle(self) -> bool:
        """Nothing new, nothing delivered, no login, not the reconcile: the run of most minutes."""
        return (not self.reconciled and self.outcome == "ok" and not (self.fetched or self.appended or self.posted)
                and not self.logins)


@dataclass
class DayCost:
    day: int
    date: str
    chats: int
    store: dict[str, int]
    calls: dict[str, int]
    seconds: float
    cpu_seconds: float
    runs: list[RunCost] = field(default_factory=list)

    def share(self) -> dict[str, float]:
        """Each billed figure as a percentage of Firestore's free tier for a day."""
        return {k: 100 * self.store[k] / limit for k, limit in FREE_TIER_PER_DAY.items()}


@dataclass
class DayResult:
    store_kind: str
    chats_per_day: int
    runs_per_day: int
    days: list[DayCost]
    sheet_rows: int
    unique_keys: int
    chats_added: int
    failed_runs: int


def _schedule_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _day_chats(day: date, n: int, seed: int) -> list[tuple[datetime, dict[str, Any]]]:
    """`n` chats spread over the day's office hours, each with the moment it reaches the log."""
    (h0, m0), (h1, m1) = OFFICE
    start = datetime.combine(day, dtime(h0, m0))  # naive local time, as Moneypenny writes chatTime
    span = datetime.combine(day, dtime(h1, m1)) - start
    chats = sample_chats(n, start=start, seed=seed, spacing=span / max(n, 1)) if n else []
    out = []
    for chat in chats:
        local = datetime.fromisoformat(chat["chatTime"]).replace(tzinfo=UK)
        out.append((local.astimezone(UTC) + CHAT_LENGTH, chat))
    return out


def _counts(stand: StandIns) -> dict[str, int]:
    mp = stand.moneypenny
    return {"moneypenny": mp.count(), "moneypenny_login": mp.count("auth"), "sheets_reads": stand.sheets.count_reads(),
            "sheets_writes": stand.sheets.count_writes(), "slack": stand.slack.count()}


def _minus(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


def simulate(stand: StandIns, settings: Any, store: Any, clock: MovableClock, *, days: int, chats_per_day: int,
             runs_per_day: int, seed: int, progress: Callable[[str], None] = lambda text: None) -> DayResult:
    """Walk `days` days of scheduled runs through `run_and_report` on `store`; return what they cost."""
    from lib.app import build_syncer
    from lib.runner import run_and_report
    from lib.sync import RunOptions

    syncer = build_syncer(settings, store=store, clock=clock, backoff=0.01)  # one warm instance
    first = clock.now.astimezone(UK).date()
    out: list[DayCost] = []
    failed = added = 0
    for number in range(days):
        day = first + timedelta(days=number)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UK).astimezone(UTC)
        arriving = _day_chats(day, chats_per_day, seed + number)
        progress(f"day {number + 1} ({day}), {len(arriving)} chats, {runs_per_day} runs")
        day_store, day_calls = store.counters.snapshot(), _counts(stand)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        cost = DayCost(number + 1, day.isoformat(), len(arriving), {}, {}, 0.0, 0.0)
        for tick in range(runs_per_day):
            at = midnight + RUN_EVERY * tick
            due = [chat for when, chat in arriving if when <= at]
            arriving = [(when, chat) for when, chat in arriving if when > at]
            stand.moneypenny.add_chats(due)
            added += len(due)
            local = at.astimezone(UK)
            clock.now = at + STARTS_AFTER
            before, calls = store.counters.snapshot(), _counts(stand)
            # As the function makes it: a sync that makes the daily reconcile once it is due.
            result = run_and_report(settings, RunOptions(daily_reconcile=True), lambda: syncer,
                                    schedule_time=_schedule_time(at), schedule_job=SYNC_JOB)
            report = result.report
            failed += report is None or report.outcome == "failed"
            spent = _minus(_counts(stand), calls)
            cost.runs.append(RunCost(
                at=local.strftime("%H:%M"), job=SYNC_JOB, outcome=report.outcome if report else "not started",
                fetched=report.fetched if report else 0, appended=report.appended if report else 0,
                posted=report.posted if report else 0, logins=spent["moneypenny_login"],
                store=store.counters.since(before).as_dict(), calls=spent,
                reported=dict(report.store) if report else {}, reconciled=bool(report and report.reconciled),
            ))
        cost.store = store.counters.since(day_store).as_dict()
        cost.calls = _minus(_counts(stand), day_calls)
        cost.seconds, cost.cpu_seconds = time.perf_counter() - wall0, time.process_time() - cpu0
        out.append(cost)
    rows = stand.sheets.rows(stand.sheet_id, settings.sheet_tab)
    column = rows[0].index("Chat key") if rows else 0
    keys = [row[column] for row in rows[1:] if len(row) > column]
    kind = "firestore" if "firestore" in type(store).__name__.lower() else "sqlite"
    return DayResult(store_kind=kind, chats_per_day=chats_per_day, runs_per_day=runs_per_day, days=out,
                     sheet_rows=len(keys), unique_keys=len(set(keys)), chats_added=added, failed_runs=failed)


def run_days(store_kind: str, tmp: Path, *, days: int = 2, chats_per_day: int = 50, runs_per_day: int = 288,
             seed: int = 7, start: date | None = None, progress: Callable[[str], None] = lambda text: None) -> DayResult:
    """The scenario on a fresh store of `store_kind` ("sqlite", or "firestore" on the emulator that
    FIRESTORE_EMULATOR_HOST names) and fresh stand-ins, from local midnight of `start`."""
    from benchmarks.scenarios import store_env
    from lib.settings import Settings
    from lib.state import open_store

    first = start or datetime.now(UK).date() - timedelta(days=days)
    clock = MovableClock(datetime(first.year, first.month, first.day, tzinfo=UK).astimezone(UTC))
    with StandIns(latency=0.0, clock=clock) as stand:
        env = {**stand.env(), **store_env(store_kind, tmp, f"day{os.getpid()}"), "HTTP_TIMEOUT_SECONDS": "30",
               "LOG_FORMAT": "text"}
        settings = Settings.from_env(env)
        store = open_store(settings)
        try:
            result = simulate(stand, settings, store, clock, days=days, chats_per_day=chats_per_day,
                              runs_per_day=runs_per_day, seed=seed, progress=progress)
        finally:
            store.close()
    return result


# --------------------------------------------------------------------------- verdicts and text


def idle_runs(result: DayResult) -> list[RunCost]:
    """The idle runs, leaving out the very first run of the scenario (a fresh store)."""
    runs = [run for day in result.days for run in day.runs]
    return [run for run in runs[1:] if run.idle]


def day_targets(result: DayResult) -> list[Target]:
    """The issue's production-day and idle-run targets, judged on every simulated day."""
    days = result.days
    per_day = ", ".join(f"day {d.day}: {d.store['reads']:,}" for d in days)
    out = [
        Target(f"A production day: <= {DAY_READS:,} document reads ({result.store_kind})",
               all(d.store["reads"] <= DAY_READS for d in days), per_day),
        Target(f"A production day: <= {DAY_WRITES:,} document writes ({result.store_kind})",
               all(d.store["writes"] <= DAY_WRITES for d in days),
               ", ".join(f"day {d.day}: {d.store['writes']:,}" for d in days)),
    ]
    idle = idle_runs(result)
    if not idle:
        return out + [Target("An idle scheduled run of the day", None, "no idle run in the scenario")]
    worst = {k: max(run.store[k] for run in idle) for k in ("reads", "writes", "deletes", "offset_reads")}
    typical = {k: statistics.median(run.store[k] for run in idle) for k in worst}
    detail = lambda k: f"max {worst[k]}, median {typical[k]:g} over {len(idle)} idle runs"  # noqa: E731
    out += [
        Target(f"An idle scheduled run of the day: <= {IDLE_READS} reads ({result.store_kind})", worst["reads"] <= IDLE_READS,
               detail("reads")),
        Target(f"An idle scheduled run of the day: <= {IDLE_WRITES} writes ({result.store_kind})", worst["writes"] <= IDLE_WRITES,
               detail("writes") + f"; deletes {detail('deletes')}"),
        Target(f"An idle scheduled run of the day: 0 offset reads ({result.store_kind})", worst["offset_reads"] == 0,
               detail("offset_reads")),
    ]
    return out


def day_text(results: list[DayResult], with_targets: bool = True) -> str:
    """Per store and day: the billed documents, the calls, the free-tier share; then the targets."""
    from benchmarks.report import _table

    lines = []
    for result in results:
        lines.append(f"A production day on {result.store_kind}: {result.runs_per_day} scheduled runs "
                     f"{int(RUN_EVERY.total_seconds() // 60)} min apart (the first after "
                     f"{RECONCILE_AT[0]:02d}:{RECONCILE_AT[1]:02d} also the reconcile), "
                     f"{result.chats_per_day} chats over office hours "
                     "(Europe/London); stand-ins at 0 latency")
        rows = []
        for d in result.days:
            share = d.share()
            rows.append([str(d.day), d.date, str(len(d.runs)), str(d.chats), f"{d.store['reads']:,}",
                         f"{d.store['offset_reads']:,}", f"{d.store['writes']:,}", f"{d.store['deletes']:,}",
                         f"{d.store['round_trips']:,}", str(d.calls["moneypenny"]),
                         f"{d.calls['sheets_reads']}/{d.calls['sheets_writes']}", str(d.calls["slack"]),
                         f"{share['reads']:.1f}% / {share['writes']:.1f}% / {share['deletes']:.1f}%",
                         f"{d.seconds:.1f}"])
        lines.append(_table(["day", "date", "runs", "chats", "reads", "of which offset", "writes", "deletes",
                             "round trips", "Moneypenny", "Sheets r/w", "Slack", "free tier r/w/d", "wall s"], rows))
        idle = idle_runs(result)
        if idle:
            run = idle[len(idle) // 2]
            lines.append(f"  An idle run (e.g. {run.at}): {run.store['reads']} reads ({run.store['offset_reads']} "
                         f"of them offset), {run.store['writes']} writes, {run.store['deletes']} deletes, "
                         f"{run.store['round_trips']} round trips; {run.calls['moneypenny']} Moneypenny, "
                         f"{run.calls['sheets_reads'] + run.calls['sheets_writes']} Sheets, {run.calls['slack']} Slack")
        lines.append(f"  Sheet: {result.sheet_rows} rows, {result.unique_keys} distinct chat keys, for "
                     f"{result.chats_added} chats; {result.failed_runs} failed runs. Free tier: "
                     + ", ".join(f"{v:,} {k}" for k, v in FREE_TIER_PER_DAY.items()) + " a day.")
        lines.append("")
    if with_targets:
        lines.append("Targets (issue #12: a production day, an idle run)")
        lines += [t.line() for t in (t for result in results for t in day_targets(result))]
    return "\n".join(lines).rstrip("\n")


def day_data(results: list[DayResult]) -> dict[str, Any]:
    """Every figure, for --json."""
    return {"day": [{"store": r.store_kind, "runs_per_day": r.runs_per_day, "chats_per_day": r.chats_per_day,
                     "sheet_rows": r.sheet_rows, "unique_keys": r.unique_keys, "chats_added": r.chats_added,
                     "failed_runs": r.failed_runs,
                     "days": [{**{k: v for k, v in vars(d).items() if k != "runs"}, "free_tier_share": d.share(),
                               "runs": [vars(run) for run in d.runs]} for d in r.days],
                     "targets": [vars(t) for t in day_targets(r)]} for r in results]}
