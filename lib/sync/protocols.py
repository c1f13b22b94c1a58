"""The protocols of one run, wired to the run's store, clients, clock and crash hook: for each
feed that is on (lib/sources), its journal view, read (the chat log's fetch log, or the day
windows), tab delivery and share of the report; and the one Slack summary of them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..destinations.sheet.writer import SheetWriter
from ..destinations.slack.client import SlackNotifier
from ..records import RunRecords
from ..settings import Settings
from ..sources import CHATS_FEED, CursorRead, Feed
from ..sources.moneypenny import MoneypennyClient
from ..state.contract import StateStore
from .calls_fetch import CallsFetch
from .fetch import FetchLog
from .journal import Journal
from .options import RunReport
from .session import RunSession
from .sheet_delivery import SheetDelivery
from .slack_delivery import SlackDelivery
from .sources import FeedSteps, Reader, SummaryDelivery, sub_report


@dataclass
class RunProtocols:
    """The protocols of one run (made by `wire`): one step set per feed that is on, in registry
    order, and the one summary."""

    feeds: list[FeedSteps]
    summary: SummaryDelivery

    def of(self, name: str) -> FeedSteps:
        """The steps of the feed `name` (KeyError when it is off)."""
        for steps in self.feeds:
            if steps.feed.name == name:
                return steps
        raise KeyError(name)

    # The chats' steps by their former names (the chats' protocols, driven one at a time by tests).
    @property
    def journal(self) -> Journal:
        return self.of(CHATS_FEED.name).journal

    @property
    def fetch(self) -> Reader:
        return self.of(CHATS_FEED.name).fetch

    @property
    def sheet(self) -> SheetDelivery:
        return self.of(CHATS_FEED.name).sheet

    @property
    def slack(self) -> SlackDelivery:
        """The chats' summary alone (the one summary with one part)."""
        chats = self.of(CHATS_FEED.name)
        return SlackDelivery(self.summary, chats.journal, title=chats.feed.summary_noun, tab=chats.tab)


def wire(s: Settings, store: StateStore, moneypenny: MoneypennyClient, slack: SlackNotifier, *,
         writers: Mapping[str, SheetWriter], feeds: list[Feed], clock: Callable[[], datetime],
         checkpoint: Callable[[str], None], session: RunSession | None, report: RunReport) -> RunProtocols:
    """A fresh set of one run's protocols: one step set per feed in `feeds` (each writing to its
    tab's writer in `writers`, by feed name). The chats count into `report` itself, every other
    feed into a share of its own (merged at the end of the run)."""
    retention = timedelta(days=s.retention_days)
    # In a run, every write to the sheet or Slack is fenced by the lease (lib/sync/session.py).
    put_batch = session.put_batch if session is not None else None
    fence: Callable[[], None] = session.hold if session is not None else (lambda: None)
    # In-flight batches are labelled, and judged settled, by the store's time as the run knows it:
    # a caller whose clock is fast must not take a batch another run's append may still land for
    # as settled.
    batch_clock = session.store_clock if session is not None else clock
    steps: list[FeedSteps] = []
    for feed in feeds:
        writer = writers[feed.name]
        journal = Journal(store, RunRecords(feed.source, s.chat_timezone), clock=clock, retention=retention,
                          put_batch=put_batch)
        reader: Reader
        if isinstance(feed.read, CursorRead):
            reader = FetchLog(store, moneypenny, journal, clock=clock, tz=s.chat_timezone,
                              reconcile_days=s.reconcile_days, checkpoint=checkpoint, session=session)
        else:
            reader = CallsFetch(store, moneypenny, journal, clock=clock, tz=s.chat_timezone,
                                reconcile_days=s.reconcile_days, checkpoint=checkpoint, feed=feed)
        steps.append(FeedSteps(
            feed=feed, journal=journal, fetch=reader,
            sheet=SheetDelivery(writer, journal, clock=batch_clock, http_timeout_seconds=s.http_timeout_seconds,
                                checkpoint=checkpoint),
            writer=writer, report=report if feed.name == CHATS_FEED.name else sub_report(report),
            tab=feed.tab(s)))
    links: dict[str, Callable[[], str]] = {}
    for step in steps:
        links[step.tab] = (lambda w: lambda: w.tab_url(s.sheet_url))(step.writer)
    summary = SummaryDelivery(slack, sheet_url=s.sheet_url, max_listed=s.slack_max_listed, checkpoint=checkpoint,
                              links=links, fence=fence)
    return RunProtocols(feeds=steps, summary=summary)
