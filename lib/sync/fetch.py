"""The fetch log: Moneypenny's cursor, the fetch intent, and the recovery read by date window.

Moneypenny's plain log call moves its cursor when it answers. Before making it, the run writes a
*fetch intent* to the state store; only once every chat of the answer is in the journal is the
intent cleared. An intent that is still there at the start of a run (the answer was lost, the
body was bad, the run crashed) is settled first by a date-window read that covers everything
since the last read that reached the journal. A plain call that fails is not retried: the same
run makes that window read instead. Window reads are safe to repeat: the journal adds only keys
it has not seen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..errors import MoneypennyError, MoneypennyNoAnswer
from ..moneypenny import MoneypennyClient
from ..state.base import StateStore
from ..state.documents import CURSOR_DOC, CursorDoc, FetchIntent
from .journal import Journal
from .options import Mode, RunOptions, RunReport

log = logging.getLogger(__name__)

__all__ = ["CURSOR_DOC", "RECOVERY_MARGIN", "FetchLog", "read_settles"]

# A chat that started before a read can be handed out by the next one; look back a day more.
RECOVERY_MARGIN = timedelta(days=1)


class FetchLog:
    """Reads Moneypenny into the journal without ever losing what its cursor moved past."""

    def __init__(self, store: StateStore, moneypenny: MoneypennyClient, journal: Journal, *,
                 clock: Callable[[], datetime], tz: ZoneInfo, reconcile_days: int,
                 checkpoint: Callable[[str], None] = lambda step: None):
        self.store = store
        self.moneypenny = moneypenny
        self.journal = journal
        self.clock = clock
        self.tz = tz
        self.reconcile_days = reconcile_days
        self.checkpoint = checkpoint

    def read(self, report: RunReport, opts: RunOptions) -> None:
        """The run's read (plain or by window), after settling an intent left behind."""
        cursor = self.store.read_doc(CursorDoc) or CursorDoc()
        today = self.clock().astimezone(self.tz).date()
        if cursor.intent is not None and opts.recover:
            cursor = self._recover(report, opts, cursor.intent, today)

        # Whether a window read moves the cursor is undocumented, so every read is guarded.
        read_started = self.clock()
        intent = cursor.intent
        if intent is None:
            intent = FetchIntent(since=self._since(cursor, read_started), run_id=report.run_id, at=read_started)
            self.store.write_doc(CursorDoc(last_read=cursor.last_read, intent=intent))

        if opts.mode == Mode.NEW:
            try:
                items = self.moneypenny.fetch_new()
            except MoneypennyError as exc:
                self._read_instead(report, opts, exc, intent.since, today, read_started)
                return
        else:
            assert opts.start is not None and opts.end is not None
            items = self.moneypenny.fetch_window(opts.start, opts.end)
        self.checkpoint("after_fetch")
        self.journal.ingest(report, items, opts)
        if read_settles(intent, opts, today, carried=cursor.intent is not None):
            self.store.write_doc(CursorDoc(last_read=read_started))
        # Otherwise the intent stays: if this read moved the cursor, the next run's recovery
        # read fetches what it skipped.

    def _since(self, cursor: CursorDoc, read_started: datetime) -> date:
        since_dt = cursor.last_read or read_started - timedelta(days=max(self.reconcile_days, 1))
        return (since_dt.astimezone(self.tz) - RECOVERY_MARGIN).date()

    def _recover(self, report: RunReport, opts: RunOptions, left: FetchIntent, today: date) -> CursorDoc:
        # An earlier plain read may have moved Moneypenny's cursor without reaching the
        # journal: read its whole possible span again by date.
        since = left.since
        items = self.moneypenny.fetch_window(since, today + timedelta(days=1))
        report.recovered += self.journal.ingest(report, items, opts)
        log.info(
            "recovered a read that had not reached the journal",
            extra={"fields": {"run_id": report.run_id, "since": since.isoformat(), "new": report.recovered}},
        )
        # Settled; the store keeps the old intent until the next write replaces it, which is
        # safe (it only reaches further back).
        return CursorDoc(last_read=self.clock())

    def _read_instead(
        self, report: RunReport, opts: RunOptions, failed: MoneypennyError, since: date, today: date, read_started: datetime
    ) -> None:
        # The plain call failed, and may have moved the cursor. The window read that the fetch
        # intent allows fetches the same chats in this run, so one blip costs no failed run.
        log.warning(
            "the chat log call failed; reading the fetch intent's window instead",
            extra={"fields": {"run_id": report.run_id, "cause": failed.cause, "error": str(failed), "since": since.isoformat()}},
        )
        items = self.moneypenny.fetch_window(since, today + timedelta(days=1))
        self.checkpoint("after_fetch")
        report.recovered += self.journal.ingest(report, items, opts)
        if not isinstance(failed, MoneypennyNoAnswer):
            # Answered: the call has ended, whatever it did to the cursor, and the window read
            # covers its whole span.
            self.store.write_doc(CursorDoc(last_read=read_started))
        # Unanswered, it may still be running at Moneypenny and move the cursor after the window
        # read: the intent stays, and the next run reads its span again.


def read_settles(intent: FetchIntent, opts: RunOptions, today: date, *, carried: bool) -> bool:
    """Whether a read that reached the journal settles the fetch intent."""
    if opts.mode == Mode.NEW:
        # A plain call returns everything since the previous plain call: it settles the intent
        # written just before it, not one an earlier read left (whose answer it cannot return).
        return not carried
    # A window read settles only an intent it covers, from its `since` through today. Whether
    # endTime is inclusive is undocumented, so only a window ending after today covers today.
    assert opts.start is not None and opts.end is not None
    return opts.start <= intent.since and opts.end > today
