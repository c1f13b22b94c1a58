"""The fetch log: Moneypenny's cursor, the fetch intent, and the recovery read by date window.

Moneypenny's plain log call moves its cursor when it answers. Before making it, the run writes a
*fetch intent* to the state store; only once every chat of the answer is in the journal is the
intent cleared. An intent that is still there at the start of a run (the answer was lost, the
body was bad, the run crashed) is settled first by a date-window read that covers everything
since the last read that reached the journal. A plain call that fails is not retried: the same
run makes that window read instead. Window reads are safe to repeat: the journal adds only keys
it has not seen.

The intent and the cursor are parts of the run state (lib/sync/session.py): the intent is
planned by `plan_intent` and stored with the lease when the run begins, before any call; the
read settles the cursor in the run's memory, and the run's last write stores it, so an intent is
cleared only after every chat of the answer is in the journal (and a run that dies before its
last write leaves the intent for the next run's recovery read).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..errors import MoneypennyNoAnswer, MoneypennyUnavailable, TransientError
from ..sources.moneypenny import MoneypennyClient
from ..state.contract import StateStore
from ..state.documents import CURSOR_DOC, CursorDoc, FetchIntent
from .journal import Journal
from .options import PAST_END, Mode, RunOptions, RunReport, asked_days
from .session import RunSession

log = logging.getLogger(__name__)

__all__ = ["CURSOR_DOC", "RECOVERY_MARGIN", "FetchLog", "plan_intent", "read_settles"]

# A chat that started before a read can be handed out by the next one; look back a day more.
RECOVERY_MARGIN = timedelta(days=1)
# The digests of unreadable chats already set aside that the cursor keeps (the newest): a read
# by date (the daily reconcile, a recovery or window read) meets them again, and a chat set aside
# (then dropped by its owner) must not come back and turn runs unhealthy again. 32 characters
# each: 200 add 6.6 kB to the run state, which every run reads anyway.
SET_ASIDE_KEPT = 200
# The lease a FetchLog used on its own (no run around it) takes for its read.
ALONE_LEASE = timedelta(minutes=10)


def plan_intent(cursor: CursorDoc, opts: RunOptions, *, run_id: str, at: datetime, tz: ZoneInfo,
                reconcile_days: int) -> CursorDoc:
    """The cursor to store before a run's read: with a fetch intent for every read (whether a
    window read moves the cursor is undocumented, so every read is guarded), unless one is left
    from an earlier read (it reaches further back) or the run reads no chat log."""
    if opts.mode == Mode.QUARANTINE or cursor.intent is not None:
        return cursor
    since_dt = cursor.last_read or at - timedelta(days=max(reconcile_days, 1))
    since = (since_dt.astimezone(tz) - RECOVERY_MARGIN).date()
    return dataclasses.replace(cursor, intent=FetchIntent(since=since, run_id=run_id, at=at))


class FetchLog:
    """Reads Moneypenny into the journal without ever losing what its cursor moved past."""

    def __init__(self, store: StateStore, moneypenny: MoneypennyClient, journal: Journal, *,
                 clock: Callable[[], datetime], tz: ZoneInfo, reconcile_days: int,
                 checkpoint: Callable[[str], None] = lambda step: None, session: RunSession | None = None):
        self.store = store
        self.moneypenny = moneypenny
        self.journal = journal
        self.clock = clock
        self.tz = tz
        self.reconcile_days = reconcile_days
        self.checkpoint = checkpoint
        self._set_aside: list[str] = []  # during a read: digests of the chats set aside (CursorDoc.set_aside)
        self.session = session  # the run's state (lib/sync/session.py), if the read is part of a run

    def read(self, report: RunReport, opts: RunOptions, session: RunSession | None = None) -> None:
        """The run's read (plain or by window), after settling an intent left behind.

        `session` (default: the one this FetchLog was made with) is the run's state, begun with
        `plan_intent`; without one (a read on its own) the read begins and finishes a session
        of its own around it.
        """
        session = session or self.session
        if session is None:
            self._read_alone(report, opts)
            return
        self._set_aside = list(session.cursor.set_aside)
        try:
            self._read(report, opts, session)
        finally:
            # Kept with the cursor, whatever the read settled: the run's last write stores it.
            kept = tuple(self._set_aside[-SET_ASIDE_KEPT:])
            if kept != session.cursor.set_aside:
                session.cursor = dataclasses.replace(session.cursor, set_aside=kept)

    def _read(self, report: RunReport, opts: RunOptions, session: RunSession) -> None:
        today = self.clock().astimezone(self.tz).date()
        intent, carried = session.cursor.intent, session.carried is not None
        # The first day that a window read of this run read through today (None: none did).
        covered: date | None = None
        # The source's first read (a new or emptied store, chats turned on): what it meets may
        # be in the sheet from before, so the key column decides (lib/sync/journal.py).
        first = session.cursor.last_read is None
        if session.carried is not None and opts.recover:
            intent, covered = self._recover(report, opts, session, session.carried, today)
            carried = False
        assert intent is not None, "the run's session stores an intent before its read"

        read_started = self.clock()
        keep = None
        if opts.mode == Mode.NEW:
            try:
                items = self.moneypenny.fetch_new()
            except MoneypennyUnavailable as exc:
                # With the daily reconcile due, the window read reaches back to its first day too.
                since = intent.since if opts.reconcile_start is None else min(intent.since, opts.reconcile_start)
                covered = self._read_instead(report, opts, session, exc, since, today, read_started)
                items = None
        else:
            assert opts.start is not None and opts.end is not None
            # The days asked for, whatever endTime means: one day past `end`, then only theirs.
            items = self.moneypenny.fetch_window(opts.start, opts.end + PAST_END)
            keep = asked_days(opts.start, opts.end, today, self.tz)
        if items is not None:
            self.checkpoint("after_fetch")
            # A window or reconcile read meets chats of days an earlier run delivered; so does a
            # source's first read: the key column decides (lib/sync/journal.py).
            self.journal.ingest(report, items, opts, check_sheet=first or opts.mode != Mode.NEW, keep=keep,
                                set_aside=self._set_aside, again=opts.mode != Mode.NEW)
            if read_settles(intent, opts, today, carried=carried):
                session.cursor = CursorDoc(last_read=read_started)
            # Otherwise the intent stays: if this read moved the cursor, the next run's recovery
            # read fetches what it skipped.
        if opts.reconcile_start is not None and (covered is None or covered > opts.reconcile_start):
            self._reconcile(report, opts, session, opts.reconcile_start, today)

    def _reconcile(self, report: RunReport, opts: RunOptions, session: RunSession, start: date, today: date) -> None:
        # The daily reconcile, after the run's own read (lib/sync/reconcile.py): a window read
        # of the last RECONCILE_DAYS days, journaled as a reconcile run's read is. It may move
        # Moneypenny's cursor (undocumented), so it is guarded like any read: with the cursor
        # settled, an intent from the run's read on stands until this read is in the journal
        # (a failure leaves it, and the next run's recovery read covers it); an intent the
        # run's read left (it reaches further back) stays as it is.
        before = session.cursor
        if before.intent is None:
            session.cursor = plan_intent(before, opts, run_id=report.run_id, at=self.clock(), tz=self.tz,
                                         reconcile_days=self.reconcile_days)
        assert session.cursor.intent is not None
        # Through today, read to a day past it (PAST_END) and kept to its days, as any day window.
        window = dataclasses.replace(opts, mode=Mode.RECONCILE, start=start, end=today, reconcile_start=None)
        read_started = self.clock()
        items = self.moneypenny.fetch_window(start, today + PAST_END)
        self.checkpoint("after_reconcile_fetch")
        # It meets chats an earlier run delivered and the journal may have forgotten: the key column decides.
        report.recovered += self.journal.ingest(report, items, window, check_sheet=True,
                                                keep=asked_days(start, today, today, self.tz), set_aside=self._set_aside)
        log.info("the daily reconcile read the last days by date",
                 extra={"fields": {"run_id": report.run_id, "from": start.isoformat(), "items": len(items)}})
        if before.intent is None and read_settles(session.cursor.intent, window, today, carried=False):
            session.cursor = CursorDoc(last_read=read_started)

    def _read_alone(self, report: RunReport, opts: RunOptions) -> None:
        session = RunSession(self.store, report.run_id, clock=self.clock)
        now = self.clock()
        plan = functools.partial(plan_intent, opts=opts, run_id=report.run_id, at=now, tz=self.tz,
                                 reconcile_days=self.reconcile_days)
        if not session.begin(ALONE_LEASE, plan=plan):
            raise TransientError("another run holds the lease", cause="lease")
        try:
            self.read(report, opts, session)
        finally:
            session.finish(None)

    def _recover(self, report: RunReport, opts: RunOptions, session: RunSession, left: FetchIntent,
                 today: date) -> tuple[FetchIntent, date]:
        # An earlier plain read may have moved Moneypenny's cursor without reaching the
        # journal: read its whole possible span again by date. With the daily reconcile due,
        # from its first day if that is earlier: this one read then serves both.
        since = left.since if opts.reconcile_start is None else min(left.since, opts.reconcile_start)
        items = self.moneypenny.fetch_window(since, today + timedelta(days=1))
        # It meets chats an earlier read delivered: the key column decides (lib/sync/journal.py).
        report.recovered += self.journal.ingest(report, items, opts, check_sheet=True, set_aside=self._set_aside)
        log.info(
            "recovered a read that had not reached the journal",
            extra={"fields": {"run_id": report.run_id, "since": since.isoformat(), "new": report.recovered}},
        )
        # Settled. The stored intent (the one left) still guards the read that follows, as it
        # reaches further back; this run's own intent is what the run's last write leaves.
        settled = self.clock()
        session.cursor = plan_intent(CursorDoc(last_read=settled), opts, run_id=report.run_id, at=settled,
                                     tz=self.tz, reconcile_days=self.reconcile_days)
        assert session.cursor.intent is not None
        return session.cursor.intent, since

    def _read_instead(
        self, report: RunReport, opts: RunOptions, session: RunSession, failed: MoneypennyUnavailable, since: date,
        today: date, read_started: datetime,
    ) -> date:
        """The window read made instead of a failed plain call; returns its first day."""
        # The plain call failed, and may have moved the cursor. The window read that the fetch
        # intent allows fetches the same chats in this run, so one blip costs no failed run.
        log.warning(
            "the chat log call failed; reading the fetch intent's window instead",
            extra={"fields": {"run_id": report.run_id, "cause": failed.cause, "error": str(failed), "since": since.isoformat()}},
        )
        items = self.moneypenny.fetch_window(since, today + timedelta(days=1))
        self.checkpoint("after_fetch")
        report.recovered += self.journal.ingest(report, items, opts, check_sheet=True, set_aside=self._set_aside)
        if not isinstance(failed, MoneypennyNoAnswer):
            # Answered: the call has ended, whatever it did to the cursor, and the window read
            # covers its whole span.
            session.cursor = CursorDoc(last_read=read_started)
        # Unanswered, it may still be running at Moneypenny and move the cursor after the window
        # read: the intent stays, and the next run reads its span again.
        return since


def read_settles(intent: FetchIntent, opts: RunOptions, today: date, *, carried: bool) -> bool:
    """Whether a read that reached the journal settles the fetch intent."""
    if opts.mode == Mode.NEW:
        # A plain call returns everything since the previous plain call: it settles the intent
        # written just before it, not one an earlier read left (whose answer it cannot return).
        return not carried
    # A window read settles only an intent it covers, from its `since` through today: it reads
    # to one day past its `end` (PAST_END), so a window asked through today covers today
    # whether endTime is inclusive or not.
    assert opts.start is not None and opts.end is not None
    return opts.start <= intent.since and opts.end >= today
