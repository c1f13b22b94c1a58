"""How a run is described (RunOptions, Mode), what it did (RunReport), and how it fails (RunFailed)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..counters import StoreCounters
from ..errors import PermanentError, SyncError, TransientError, cut
from ..records import Record

# A day window (start..end, both asked for) is read to one day past `end`: whether Moneypenny's
# endTime/`to` is inclusive is undocumented, and the journal makes the overlap harmless.
PAST_END = timedelta(days=1)
# The days a window may ask for: Moneypenny holds nothing older than this, and a day past
# tomorrow is nobody's yet; outside them a date is a typo (and one at the calendar's edge would
# overflow the read's day arithmetic).
EARLIEST_DAY = date(2000, 1, 1)


def window_problem(start: date, end: date, today: date, names: tuple[str, str] = ("start", "end")) -> str | None:
    """What is wrong with a window's days (`names`: how the caller calls its two dates), or None:
    each must lie from EARLIEST_DAY to tomorrow."""
    latest = today + timedelta(days=1)
    bad = [f"{name}={day.isoformat()}" for name, day in zip(names, (start, end)) if not EARLIEST_DAY <= day <= latest]
    if not bad:
        return None
    return (f"{' and '.join(bad)} {'is' if len(bad) == 1 else 'are'} outside the days a window can read: "
            f"{names[0]} and {names[1]} must be from {EARLIEST_DAY.isoformat()} to {latest.isoformat()} (tomorrow)")


class Mode(enum.StrEnum):
    """What a run reads. A StrEnum: `Mode.NEW == "new"`, and it is written to JSON as its value."""

    NEW = "new"  # the chats since the last call (Moneypenny's cursor)
    WINDOW = "window"  # the dates start..end
    RECONCILE = "reconcile"  # the last RECONCILE_DAYS days
    QUARANTINE = "quarantine"  # the quarantine read again, not Moneypenny

    @classmethod
    def parse(cls, value: str) -> Mode:
        """The mode named `value`, or a PermanentError (cause bad_request) that lists the modes."""
        try:
            return cls(value)
        except ValueError:
            modes = ", ".join(m.value for m in cls)
            raise PermanentError(f"a run's mode must be one of {modes}, got {cut(value)!r}", cause="bad_request") from None


@dataclass(frozen=True)
class RunOptions:
    """How a run reads and announces; the defaults are the scheduled run's.

    The one way to describe a run: the HTTP handler, the CLI and the backfill all build one.
    """

    mode: Mode = Mode.NEW
    start: date | None = None
    end: date | None = None
    notify: bool = True  # post the Slack summary (False leaves chats pending for Slack)
    # Deliver after the read. False journals the read only (a backfill reads its whole window
    # this way, then delivers once): its chats wait in the journal for a delivering run.
    deliver: bool = True
    # Keys already in the sheet: new journal entries with these keys are not written again
    # (a backfill past the journal's retention reads the Chat key column once and passes it).
    # None: not read for this run (a read that may meet forgotten rows has them checked at
    # delivery instead: lib/sync/journal.py, UNCHECKED).
    sheet_keys: Collection[str] | None = None
    # New chats dated (in CHAT_TIMEZONE) before this day are entered as announced: a backfill
    # of old days should not flood the channel.
    announce_before: date | None = None
    # Settle a fetch intent left by an earlier read first. A backfill turns this off for all
    # but its first day: the intent stays, and one recovery read settles it afterwards.
    recover: bool = True
    # Cloud Scheduler's X-CloudScheduler-ScheduleTime and -JobName: they name one scheduled
    # run, and a retry of one that already succeeded is skipped (lib/sync/schedule.py).
    schedule_time: str | None = None
    schedule_job: str | None = None
    # A scheduled sync (the function's and `python -m lib run`'s mode new): once the daily
    # reconcile is due (RECONCILE_AT, lib/sync/reconcile.py) the run also reads the last
    # RECONCILE_DAYS days by date, in the same run and under the same lease.
    daily_reconcile: bool = False
    # Set by the run when that read is due: its first day (it reads to tomorrow).
    reconcile_start: date | None = None

    def __post_init__(self) -> None:
        # A mode given as its name ("new") is read as the Mode it names.
        object.__setattr__(self, "mode", Mode.parse(self.mode))


def asked_days(start: date, end: date, today: date, tz: ZoneInfo) -> Callable[[Record], bool]:
    """What a day window's read keeps: records dated (in `tz`) from `start` to `end`, and any
    dated after `today` (a window that reaches today must not leave out what a clock ahead of
    ours dated tomorrow: it would be nobody's). The day read past `end` adds nothing else."""

    def keep(record: Record) -> bool:
        day = record.time.astimezone(tz).date()
        return start <= day <= end or day > today

    return keep


@dataclass
class RunReport:
    """What one run did; the function answers with it as JSON."""

    run_id: str
    mode: str
    started_at: datetime
    fetched: int = 0
    new: int = 0
    recovered: int = 0
    appended: int = 0
    already_in_sheet: int = 0
    posted: int = 0
    late: int = 0
    skipped_invalid: int = 0
    pending: int = 0
    waiting: int = 0
    duration_ms: int = 0
    outcome: str = "ok"  # ok | failed | skipped
    skipped: str | None = None
    not_announced: int = 0
    # A reconcile read (the daily one in a scheduled run, or mode reconcile) reached the journal.
    reconciled: bool = False
    new_keys: list[str] = field(default_factory=list, repr=False)
    # Every key the run read (each once, however many reads met it): counts per item, not per read.
    read_keys: set[str] = field(default_factory=set, repr=False, compare=False)
    errors: list[dict[str, Any]] = field(default_factory=list)
    steps_ms: dict[str, int] = field(default_factory=dict)
    # Healthy: the run did not fail and nothing is stuck (see lib/sync/record.check_health).
    # The outside watcher counts only healthy `run ok` lines, so it also hears runs that
    # "succeed" while nothing reaches the sheet.
    healthy: bool = True
    unhealthy: list[str] = field(default_factory=list)
    # Each source's counts, when the run read more than the chats (lib/sync/sources.py).
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    # Items of a source that is off (MONEYPENNY_SOURCES), waiting in the journal, by source: not
    # `pending`, no health reason; `status` names them and how to deliver or drop them.
    off_waiting: dict[str, int] = field(default_factory=dict)
    # What the state store billed for this run, in Firestore's units (StoreCounters.as_dict():
    # reads, writes, deletes, offset_reads, round_trips), from before the lease to after its
    # release: the JSON answer's `store`.
    store: dict[str, int] = field(default_factory=dict)
    store_from: StoreCounters | None = field(default=None, repr=False, compare=False)
    # The run history's `store`: what the store billed since the previous record this process
    # wrote (that record's own write, its lease release and alert bookkeeping included), else
    # since this run began. A warm instance's records so add up to all it billed; a record
    # cannot count its own write, which the next one does.
    store_recorded: dict[str, int] = field(default_factory=dict, repr=False)
    # The account the run was for (Settings.account; "" without ACCOUNTS, and then not shown).
    account: str = ""

    def count_store(self, counters: StoreCounters) -> None:
        """Set `store` to what `counters` (the run's store's) counted since `store_from`."""
        if self.store_from is not None:
            self.store = counters.since(self.store_from).as_dict()

    def counts(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "new": self.new,
            "recovered": self.recovered,
            "appended": self.appended,
            "already_in_sheet": self.already_in_sheet,
            "posted": self.posted,
            "late": self.late,
            "skipped_invalid": self.skipped_invalid,
            "pending": self.pending,
            "waiting": self.waiting,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.outcome != "failed",
            **({"account": self.account} if self.account else {}),
            "run_id": self.run_id,
            "mode": self.mode,
            "outcome": self.outcome,
            **self.counts(),
            "duration_ms": self.duration_ms,
            "duration_seconds": round(self.duration_ms / 1000, 3),
            "healthy": self.healthy,
            **self.notes(),
            "store": self.store,
        }

    def notes(self) -> dict[str, Any]:
        """The parts a report has only sometimes: why it is unhealthy, why it was skipped, its errors."""
        out: dict[str, Any] = {}
        if self.reconciled:
            out["reconciled"] = True
        if self.sources:
            out["sources"] = self.sources
        if self.off_waiting:
            out["off_waiting"] = self.off_waiting
        if self.unhealthy:
            out["unhealthy"] = self.unhealthy
        if self.skipped:
            out["skipped"] = self.skipped
        if self.errors:
            out["errors"] = self.errors
        return out


def error_info(step: str, exc: BaseException) -> dict[str, Any]:
    """What the report says of a failed step: never more than a SyncError's own message."""
    if isinstance(exc, SyncError):
        info = {"step": step, "cause": exc.cause, "message": str(exc), "retryable": isinstance(exc, TransientError)}
        if exc.fix:
            info["fix"] = exc.fix
        return info
    # An unexpected exception: its message may hold anything, so only its type is reported.
    return {"step": step, "cause": "internal", "message": f"unexpected {type(exc).__name__}", "retryable": True}


def as_sync_error(step: str, exc: BaseException) -> SyncError:
    """The exception as a SyncError: an unexpected one becomes a transient "internal" error."""
    if isinstance(exc, SyncError):
        return exc
    return TransientError(f"unexpected {type(exc).__name__} during {step}", cause="internal")


def first_error(errors: list[SyncError]) -> SyncError | None:
    """The error a run fails with: the first permanent one (a person must act), else the first."""
    if not errors:
        return None
    permanent = [e for e in errors if not isinstance(e, TransientError)]
    return (permanent or errors)[0]
