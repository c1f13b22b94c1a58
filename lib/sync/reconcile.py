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

import dataclasses
import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..errors import PermanentError
from ..settings import Settings
from .options import Mode, RunOptions
from .session import RunSession

__all__ = ["due", "last_due_time", "reconcile_window", "window_options", "with_daily_reconcile"]

log = logging.getLogger(__name__)


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


def window_options(opts: RunOptions, started: datetime, settings: Settings, tz: ZoneInfo) -> RunOptions:
    """The options with a reconcile's window filled in; a bad window is refused."""
    if opts.mode == Mode.RECONCILE:
        start, end = reconcile_window(started, settings.reconcile_days, tz)
        opts = dataclasses.replace(opts, start=start, end=end)
    if opts.mode in (Mode.WINDOW, Mode.RECONCILE) and (opts.start is None or opts.end is None or opts.end < opts.start):
        raise PermanentError("A window run needs a start date on or before its end date", cause="bad_request")
    return opts


def with_daily_reconcile(opts: RunOptions, session: RunSession, started: datetime, settings: Settings,
                         tz: ZoneInfo) -> RunOptions:
    """The options with the daily reconcile's read added, for a scheduled sync that finds it
    due in the run state it just read (`due` above)."""
    if not opts.daily_reconcile or opts.mode != Mode.NEW:
        return opts
    # The chats' first read (no cursor: a new or emptied store) reconciles too, even if a run
    # with chats off noted the day's reconcile: what an emptied journal held is found by date.
    first_chats = settings.chats_on and session.seen.cursor.last_read is None
    if not due(session.seen.reconciled_at, started, settings.reconcile_at, tz) and not (
            first_chats and settings.reconcile_at is not None):
        return opts
    start, _ = reconcile_window(started, settings.reconcile_days, tz)
    log.info("the daily reconcile is due: this run also reads by date",
             extra={"fields": {"run_id": session.owner, "from": start.isoformat()}})
    return dataclasses.replace(opts, reconcile_start=start)
