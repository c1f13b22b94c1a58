"""At-least-once Slack: one summary of the journal's unannounced records, then they are marked
(staged, and written with the sheet's marks by Journal.write_staged).

A post that fails leaves them for the next run's summary, which says how many are late. A
summary Slack refuses for its size or shape is replaced at once by its short fallback
(SlackNotifier.post_summary): otherwise it would be refused again, with more records, on every
later run.
"""

from __future__ import annotations

from collections.abc import Callable

from ..destinations.slack.client import SlackNotifier
from ..destinations.slack.summary import build_summary
from ..state.models import DONE, JournalEntry
from .journal import Journal, unchecked
from .options import RunReport


class SlackDelivery:
    """Posts the run's summary and marks its records announced."""

    def __init__(self, slack: SlackNotifier, journal: Journal, *, sheet_url: str, max_listed: int,
                 checkpoint: Callable[[str], None] = lambda step: None, link: Callable[[], str] | None = None,
                 fence: Callable[[], None] = lambda: None):
        self.slack = slack
        self.journal = journal
        self.sheet_url = sheet_url
        # The summary's link: the sheet opened at the tab (SheetWriter.tab_url), asked only when posting.
        self.link = link or (lambda: sheet_url)
        self.max_listed = max_listed
        self.checkpoint = checkpoint
        # Called just before the post: raises LeaseLost once the run no longer holds the lease.
        self.fence = fence

    def deliver(self, report: RunReport, pending: list[JournalEntry]) -> None:
        """Announce the entries not yet in a posted summary (raises if Slack fails)."""
        # One that waits for the key column's word may have been announced before the journal
        # forgot it: announced only once the sheet delivery found it missing and wrote it.
        todo = [e for e in pending if e.slack != DONE and not unchecked(e)]
        if not todo:
            return
        # Fetched before this run started: an earlier run could not post them.
        late = sum(1 for e in todo if e.fetched_at < report.started_at)
        summary = build_summary(
            self.journal.records_of(todo),
            sheet_url=self.link(),
            max_listed=self.max_listed,
            late=late,
        )
        self.fence()
        self.slack.post_summary(summary)
        self.checkpoint("after_post")
        # Written with the sheet marks, one write per entry (Journal.write_staged); a crash
        # before it posts them again (at least once).
        self.journal.stage(todo, slack=DONE)
        report.posted += len(todo)
        report.late += late
