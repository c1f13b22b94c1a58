"""At-least-once delivery for any at-least-once destination (Slack, or any registered one,
lib/destinations/base.py): every feed's part handed over at once, then each item marked done for
that destination (staged, and written with the other marks by Journal.write_staged).

A delivery that fails leaves its items for the next run's (Slack's summary then says how many
are late); a crash after it and before the marks are written delivers them again (at least
once). Slack replaces a summary it refuses for its size or shape by its short fallback itself
(SlackNotifier.post_summary): otherwise it would be refused again, with more, on every run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..destinations import SLACK, Deliverer, FeedPart
from ..records import Record
from ..state.models import DONE, JournalEntry
from .journal import Journal
from .options import RunReport


@dataclass(frozen=True)
class Part:
    """One feed's share of a delivery: its name, journal, report, pending entries, noun and tab."""

    journal: Journal
    report: RunReport
    pending: list[JournalEntry]
    title: str
    tab: str
    feed: str = ""


class AtLeastOnceDelivery:
    """Hands every feed's items not yet at one at-least-once destination (`destination`, by its
    registered name) over at once, then marks them done there.

    Only `counts` (Slack's) add to the report's `posted` and `late`: another destination's
    delivery is counted by its marks alone."""

    def __init__(self, target: Deliverer, *, destination: str = SLACK.name,
                 checkpoint: Callable[[str], None] = lambda step: None,
                 links: Mapping[str, Callable[[], str]] | None = None,
                 row_links: Mapping[str, Callable[[Sequence[Record]], Mapping[str, str]]] | None = None,
                 fence: Callable[[], None] = lambda: None, counts: bool = True):
        self.target = target
        self.destination = destination
        # Each tab's link (the sheet opened at that tab, SheetWriter.tab_url), by tab name:
        # asked only for a part that has items.
        self.links = dict(links or {})
        # Each tab's row links (by key, the link that opens a record's row), by tab name: asked
        # only for a part that has items.
        self.row_links = dict(row_links or {})
        self.checkpoint = checkpoint
        # Called just before the delivery: raises LeaseLost once the run no longer holds the lease.
        self.fence = fence
        self.counts = counts

    def deliver(self, parts: Sequence[Part]) -> None:
        """Deliver each part's entries not yet at the destination (raises if it fails)."""
        # One that waits for an exactly-once destination's keys may have been announced before
        # the journal forgot it: delivered only once the check found it missing and wrote it.
        todo = [(p, [e for e in p.pending if e.state(self.destination) != DONE and not p.journal.awaiting_check(e)])
                for p in parts]
        if not any(entries for _, entries in todo):
            return
        # Fetched before this run started: an earlier run could not deliver them.
        lates = [sum(1 for e in entries if e.fetched_at < p.report.started_at) for p, entries in todo]
        feed_parts = []
        for (p, entries), late in zip(todo, lates):
            link, rows = self.links.get(p.tab), self.row_links.get(p.tab)
            records = p.journal.records_of(entries)
            feed_parts.append(FeedPart(feed=p.feed, noun=p.title, tab=p.tab, records=records, late=late,
                                       link=link() if link is not None and entries else "",
                                       row_links=rows(records) if rows is not None and entries else {}))
        self.fence()
        self.target.deliver(feed_parts)
        self.checkpoint("after_post" if self.destination == SLACK.name else f"after_{self.destination}")
        for (p, entries), late in zip(todo, lates):
            # Written with the other marks, one write per entry (Journal.write_staged); a crash
            # before it delivers them again (at least once).
            p.journal.stage(entries, self.destination, DONE)
            if self.counts:
                p.report.posted += len(entries)
                p.report.late += late


class SlackDelivery:
    """One feed's part alone (as a run with one feed on delivers it, and as tests drive it)."""

    def __init__(self, summary: AtLeastOnceDelivery, journal: Journal, *, title: str, tab: str, feed: str = ""):
        self.summary = summary
        self.journal = journal
        self.title = title
        self.tab = tab
        self.feed = feed

    def deliver(self, report: RunReport, pending: list[JournalEntry]) -> None:
        """Deliver the entries not yet there (raises if the destination fails)."""
        self.summary.deliver([Part(self.journal, report, pending, self.title, self.tab, self.feed)])
