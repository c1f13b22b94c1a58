"""The calls fetch: Moneypenny's call messages, read by whole days into the journal.

The Messages endpoint has no cursor: a run asks for days. A scheduled run reads from the last
day it read fully, minus one day (messages taken around midnight or entered late), to tomorrow
(whether `to` is inclusive is undocumented: a window ending after today covers today either
way). Every message is journaled by its key, and the journal adds only keys it has not seen, so
reading a day again adds nothing. The last full day read is written only once the read is in the
journal: a failed read is simply read again by the next run, there is nothing to lose.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo

from ..moneypenny import MoneypennyClient
from ..state.base import StateStore
from ..state.documents import DocumentError
from .journal import Journal
from .options import Mode, RunOptions, RunReport

log = logging.getLogger(__name__)

CALLS_READ_DOC = "calls_read"
# Read this many days before the last full day again: a message taken just before midnight, or
# entered late by the receptionist, can appear after its day was read.
LOOK_BACK = timedelta(days=1)


@dataclass(frozen=True)
class CallsReadDoc:
    """The last day whose call messages a run read whole (in CHAT_TIMEZONE), and when."""

    NAME: ClassVar[str] = CALLS_READ_DOC
    last_full_day: date
    read_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"last_full_day": self.last_full_day.isoformat(), "read_at": self.read_at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        try:
            day = date.fromisoformat(data["last_full_day"])
        except (KeyError, TypeError, ValueError):
            raise DocumentError(f"the stored {CALLS_READ_DOC!r} document has no ISO date in 'last_full_day'") from None
        try:
            at = datetime.fromisoformat(data["read_at"])
        except (KeyError, TypeError, ValueError):
            raise DocumentError(f"the stored {CALLS_READ_DOC!r} document has no ISO time in 'read_at'") from None
        return cls(last_full_day=day, read_at=at)


class CallsFetch:
    """Reads the call messages of a run's days into the journal."""

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

    def window(self, opts: RunOptions) -> tuple[date, date]:
        """The days a run reads: a window run's own, else from the last full day read (less
        LOOK_BACK) to tomorrow."""
        if opts.mode != Mode.NEW:
            assert opts.start is not None and opts.end is not None
            return opts.start, opts.end
        today = self.clock().astimezone(self.tz).date()
        done = self.store.read_doc(CallsReadDoc)
        start = done.last_full_day - LOOK_BACK if done else today - timedelta(days=max(self.reconcile_days, 1))
        return min(start, today), today + timedelta(days=1)

    def read(self, report: RunReport, opts: RunOptions) -> None:
        """Read the run's days into the journal; then, for a scheduled run, record yesterday
        as the last full day read."""
        started = self.clock()
        start, end = self.window(opts)
        items = self.moneypenny.fetch_calls(start, end)
        self.checkpoint("after_calls_fetch")
        self.journal.ingest(report, items, opts)
        if opts.mode == Mode.NEW:
            # Only now that the read is in the journal: a crash before this reads it again.
            yesterday = started.astimezone(self.tz).date() - timedelta(days=1)
            self.store.write_doc(CallsReadDoc(last_full_day=yesterday, read_at=started))
        log.info("read the call messages", extra={"fields": {
            "run_id": report.run_id, "from": start.isoformat(), "to": end.isoformat(), "items": len(items)}})
