"""The second source of a run, call messages, beside the chats: its own journal view, fetch,
Calls-tab delivery and share of the report, and the one Slack summary of both sources.

The journal holds both sources' entries; a call key starts with `call:` (lib/sources/calls.py), so a
run splits the pending entries by key and each source reads only its own. A failure of one
source's fetch or sheet never stops the other's: the error is the run's, the other goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..destinations.slack.client import SlackNotifier
from ..destinations.slack.combined import SummaryPart, build_combined
from ..sources.calls import is_call_key
from ..state.models import DONE, JournalEntry
from .calls_fetch import CallsFetch
from .journal import Journal, unchecked
from .options import RunReport
from .sheet_delivery import SheetDelivery

log = logging.getLogger(__name__)

# The counts a source adds to the run's report (RunReport.counts), summed over the sources.
_SUMMED = ("fetched", "new", "recovered", "appended", "already_in_sheet", "posted", "late", "skipped_invalid",
           "waiting", "not_announced")


@dataclass
class CallSteps:
    """The call messages' protocols of one run, with their own report (merged at the end)."""

    journal: Journal
    fetch: CallsFetch
    sheet: SheetDelivery
    report: RunReport


def split_pending(pending: list[JournalEntry]) -> tuple[list[JournalEntry], list[JournalEntry]]:
    """The pending entries as (chats, calls), by key."""
    chats: list[JournalEntry] = []
    calls: list[JournalEntry] = []
    for entry in pending:
        (calls if is_call_key(entry.key) else chats).append(entry)
    return chats, calls


def sub_report(report: RunReport) -> RunReport:
    """An empty report for one source's share of the run `report`."""
    return RunReport(run_id=report.run_id, mode=report.mode, started_at=report.started_at)


def merge(report: RunReport, chats: RunReport, calls: RunReport) -> None:
    """Add the calls' share to the run's report and note each source's counts."""
    shares = {"chats": {name: getattr(chats, name) for name in _SUMMED},
              "calls": {name: getattr(calls, name) for name in _SUMMED}}
    for name in _SUMMED:
        setattr(report, name, getattr(report, name) + getattr(calls, name))
    report.new_keys.extend(calls.new_keys)
    report.read_keys |= calls.read_keys
    report.sources = shares


class SummaryDelivery:
    """One Slack summary of every source's unannounced entries, then each is marked announced.

    As lib/sync/slack_delivery.py for one source: a failed post leaves them all for the next
    run's summary (which says how many are late); a refused one is replaced by its fallback.
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

    def deliver(self, parts: list[tuple[Journal, RunReport, list[JournalEntry], str, str]]) -> None:
        """Announce each part's (journal, report, pending, noun, tab) entries not yet posted."""
        # (Not those still waiting for the key column's word: lib/sync/slack_delivery.py.)
        todo = [(journal, report, [e for e in pending if e.slack != DONE and not unchecked(e)], title, tab)
                for journal, report, pending, title, tab in parts]
        if not any(entries for _, _, entries, _, _ in todo):
            return
        lates = [sum(1 for e in entries if e.fetched_at < report.started_at) for _, report, entries, _, _ in todo]
        summary = build_combined(
            [SummaryPart(journal.records_of(entries), title, tab, self._link(tab) if entries else "")
             for journal, _, entries, title, tab in todo],
            sheet_url=self.sheet_url, max_listed=self.max_listed, late=sum(lates))
        self.fence()
        self.slack.post_summary(summary)
        self.checkpoint("after_post")
        for (journal, report, entries, _, _), late in zip(todo, lates):
            # Written with the sheet marks, one write per entry (Journal.write_staged).
            journal.stage(entries, slack=DONE)
            report.posted += len(entries)
            report.late += late
