"""The daily reconcile, folded into the scheduled run: when it falls due and what it reads.

Moneypenny's cursor can skip a chat (an answer lost in transit that no fetch intent caught), so
once a day the run also reads the last RECONCILE_DAYS days by date, to tomorrow (whether
`endTime` is inclusive is undocumented), and journals whatever the cursor missed: the journal
adds only keys it has not seen, so the read overlapping the cursor's read writes nothing twice.

There is no second Scheduler job. The run state keeps when the last reconcile read reached the
journal (`RunState.reconciled_at`); a scheduled run whose start is past the latest RECONCILE_AT
(local time in CHAT_TIMEZONE) that this time does not cover makes the read, under its own lease.
So a day whose 03:15 run did not happen (the function was down) is reconciled by the first run
after, and a reconcile read that failed is made again by the next run, not the next day. A
deployment that never reconciled (a new one, or one upgraded from the two-job design) reconciles
in its first scheduled run.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["due", "last_due_time", "reconcile_window"]


def last_due_time(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The latest moment at or before `now` that the local clock in `tz` read `at`."""
    today = now.astimezone(tz).date()
    for day in (today, today - timedelta(days=1)):
        moment = datetime.combine(day, at, tzinfo=tz)
        if moment <= now:
            return moment
    # `at` fell in a gap of the local clock twice running (not a real zone): a day earlier.
    return datetime.combine(today - timedelta(days=2), at, tzinfo=tz)


def due(last: datetime | None, now: datetime, at: time | None, tz: ZoneInfo) -> bool:
    """Whether a run starting at `now` makes the reconcile read, the last one having reached the
    journal at `last` (None: never). `at` None (RECONCILE_AT=off): never due."""
    if at is None:
        return False
    return last is None or last < last_due_time(now, at, tz)


def reconcile_window(now: datetime, days: int, tz: ZoneInfo) -> tuple[date, date]:
    """The days a reconcile read asks for: RECONCILE_DAYS back from today, through today (the
    read goes a day past its end, lib/sync/options.py PAST_END: whether endTime is inclusive is
    undocumented)."""
    today = now.astimezone(tz).date()
    return today - timedelta(days=days), today
