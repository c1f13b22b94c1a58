"""At-least-once Slack for one feed: the one summary (lib/sync/sources.py SummaryDelivery) with
a single part, as a run with one feed on posts it and as the tests drive it on its own."""

from __future__ import annotations

from ..state.models import JournalEntry
from .journal import Journal
from .options import RunReport
from .sources import Part, SummaryDelivery


class SlackDelivery:
    """Posts one feed's summary and marks its records announced (SummaryDelivery, one part)."""

    def __init__(self, summary: SummaryDelivery, journal: Journal, *, title: str, tab: str):
        self.summary = summary
        self.journal = journal
        self.title = title
        self.tab = tab

    def deliver(self, report: RunReport, pending: list[JournalEntry]) -> None:
        """Announce the entries not yet in a posted summary (raises if Slack fails)."""
        self.summary.deliver([Part(self.journal, report, pending, self.title, self.tab)])
