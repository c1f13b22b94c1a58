"""The feeds of a run (lib/sources: the chats, the call messages, any other registered), each
with its own journal view, read, tab delivery and share of the report, and the one Slack summary
of them all.

The journal holds every feed's entries; a key tells its feed (lib.sources.feed_of_key: a call key
starts with `call:`), so a run splits the pending entries by key and each feed reads only its
own. A failure of one feed's read or tab never stops the others': the error is the run's, the
others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..destinations.sheet.writer import SheetWriter
from ..destinations.slack.client import SlackNotifier
from ..destinations.slack.combined import SummaryPart, build_combined
from ..sources import Feed, feed_of_key, registered
from ..state.models import DONE, JournalEntry
from .journal import Journal, unchecked
from .options import RunOptions, RunReport
from .sheet_delivery import SheetDelivery

log = logging.getLogger(__name__)

# The counts a feed adds to the run's report (RunReport.counts), summed over the feeds.
_SUMMED = ("fetched", "new", "recovered", "appended", "already_in_sheet", "posted", "late", "skipped_invalid",
           "waiting", "not_announced")


class Reader(Protocol):
    """How a feed's items reach the journal in a run (FetchLog, CallsFetch)."""

    def read(self, report: RunReport, opts: RunOptions) -> None: ...


@dataclass
class FeedSteps:
    """One feed's protocols of a run, with its own share of the report (merged at the end)."""

    feed: Feed
    journal: Journal
    fetch: Reader
    sheet: SheetDelivery
    writer: SheetWriter
    report: RunReport
    tab: str


def split_pending(pending: list[JournalEntry], feeds: Sequence[Feed] | None = None) -> dict[str, list[JournalEntry]]:
    """The pending entries by feed name, by key (every registered feed has a list, maybe empty)."""
    feeds = list(feeds) if feeds is not None else registered()
    out: dict[str, list[JournalEntry]] = {feed.name: [] for feed in feeds}
    for entry in pending:
        out.setdefault(feed_of_key(entry.key, feeds).name, []).append(entry)
    return out


def sub_report(report: RunReport) -> RunReport:
    """An empty report for one feed's share of the run `report`."""
    return RunReport(run_id=report.run_id, mode=report.mode, started_at=report.started_at)


def merge(report: RunReport, shares: Mapping[str, RunReport]) -> None:
    """Add every feed's share (but the run's own report, the chats' share) to the run's report
    and note each feed's counts."""
    counted = {name: {n: getattr(share, n) for n in _SUMMED} for name, share in shares.items()}
    for share in shares.values():
        if share is report:
            continue
        for name in _SUMMED:
            setattr(report, name, getattr(report, name) + getattr(share, name))
        report.new_keys.extend(share.new_keys)
        report.read_keys |= share.read_keys
    report.sources = counted


@dataclass(frozen=True)
class Part:
    """One feed's share of a summary: its journal, report, pending entries, noun and tab."""

    journal: Journal
    report: RunReport
    pending: list[JournalEntry]
    title: str
    tab: str


class SummaryDelivery:
    """One Slack summary of every feed's unannounced entries, then each is marked announced
    (staged, and written with the sheet's marks by Journal.write_staged); with one feed, the
    one-source summary (lib/slack_summary.py).

    At least once: a failed post leaves them all for the next run's summary (which says how many
    are late); a summary Slack refuses for its size or shape is replaced at once by its short
    fallback (SlackNotifier.post_summary), or it would be refused again, with more, on every run.
    """

    def __init__(self, slack: SlackNotifier, *, sheet_url: str, max_listed: int,
                 checkpoint: Callable[[str], None] = lambda step: None,
                 links: Mapping[str, Callable[[], str]] | None = None,
                 fence: Callable[[], None] = lambda: None):
        self.slack = slack
        self.sheet_url = sheet_url
        # Each tab's link (the sheet opened at that tab, SheetWriter.tab_url), by tab name.
        self.links = dict(links or {})
        self.max_listed = max_listed
        self.checkpoint = checkpoint
        # Called just before the post: raises LeaseLost once the run no longer holds the lease.
        self.fence = fence

    def _link(self, tab: str) -> str:
        link = self.links.get(tab)
        return link() if link is not None else self.sheet_url

    def deliver(self, parts: Sequence[Part]) -> None:
        """Announce each part's entries not yet posted (raises if Slack fails)."""
        # One that waits for the key column's word may have been announced before the journal
        # forgot it: announced only once the sheet delivery found it missing and wrote it.
        todo = [(p, [e for e in p.pending if e.slack != DONE and not unchecked(e)]) for p in parts]
        if not any(entries for _, entries in todo):
            return
        # Fetched before this run started: an earlier run could not post them.
        lates = [sum(1 for e in entries if e.fetched_at < p.report.started_at) for p, entries in todo]
        summary = build_combined(
            [SummaryPart(p.journal.records_of(entries), p.title, p.tab, self._link(p.tab) if entries else "")
             for p, entries in todo],
            sheet_url=self.sheet_url, max_listed=self.max_listed, late=sum(lates))
        self.fence()
        self.slack.post_summary(summary)
        self.checkpoint("after_post")
        for (p, entries), late in zip(todo, lates):
            # Written with the sheet marks, one write per entry (Journal.write_staged); a crash
            # before it posts them again (at least once).
            p.journal.stage(entries, slack=DONE)
            p.report.posted += len(entries)
            p.report.late += late
