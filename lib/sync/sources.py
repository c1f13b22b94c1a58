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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..destinations.sheet.writer import SheetWriter
from ..sources import Feed, feed_of_key, registered
from ..state.models import JournalEntry
from .exactly_once import ExactlyOnceDelivery
from .journal import Journal
from .options import RunOptions, RunReport

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
    sheet: ExactlyOnceDelivery
    writer: SheetWriter
    report: RunReport
    tab: str
    # Every exactly-once destination's delivery of this feed, by destination name (the sheet's
    # is `sheet`), in registry order.
    exactly_once: dict[str, ExactlyOnceDelivery] = field(default_factory=dict)


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
