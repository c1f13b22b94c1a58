"""The protocols of one run, wired to the run's store, clients, clock and crash hook: for each
feed that is on (lib/sources), its journal view, read (the chat log's fetch log, or the day
windows), share of the report and its delivery to each exactly-once destination (the sheet's
tab, and any other registered, lib/destinations); and one delivery of every feed's part to each
at-least-once destination (the one Slack summary).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..destinations import EXACTLY_ONCE, SHEET, SLACK, BuiltDestination, Deliverer, Writer, Writers
from ..destinations.sheet.destination import TabTarget
from ..destinations.sheet.writer import SheetWriter
from ..records import Record, RunRecords
from ..settings import Settings
from ..sources import CHATS_FEED, CursorRead, Feed
from ..sources.moneypenny import MoneypennyClient
from ..state.contract import StateStore
from .at_least_once import AtLeastOnceDelivery, SlackDelivery
from .calls_fetch import CallsFetch
from .exactly_once import ExactlyOnceDelivery
from .fetch import FetchLog
from .journal import Journal
from .options import RunReport
from .session import RunSession
from .sources import FeedSteps, Reader, sub_report


@dataclass
class RunProtocols:
    """The protocols of one run (made by `wire`): one step set per feed that is on, in registry
    order, and one delivery per at-least-once destination (`summary`: Slack's)."""

    feeds: list[FeedSteps]
    at_least_once: list[AtLeastOnceDelivery]

    @property
    def summary(self) -> AtLeastOnceDelivery:
        """The one Slack summary's delivery."""
        for delivery in self.at_least_once:
            if delivery.destination == SLACK.name:
                return delivery
        raise KeyError(SLACK.name)

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
    def sheet(self) -> ExactlyOnceDelivery:
        return self.of(CHATS_FEED.name).sheet

    @property
    def slack(self) -> SlackDelivery:
        """The chats' summary alone (the one summary with one part)."""
        chats = self.of(CHATS_FEED.name)
        return SlackDelivery(self.summary, chats.journal, title=chats.feed.summary_noun, tab=chats.tab,
                             feed=chats.feed.name)


def wire(s: Settings, store: StateStore, moneypenny: MoneypennyClient, *,
         writers: Mapping[str, SheetWriter], destinations: Sequence[BuiltDestination], feeds: list[Feed],
         clock: Callable[[], datetime], checkpoint: Callable[[str], None], session: RunSession | None,
         report: RunReport) -> RunProtocols:
    """A fresh set of one run's protocols: one step set per feed in `feeds` (each writing to its
    tab's writer in `writers`, by feed name, and to every other exactly-once destination that
    takes the feed) and one delivery per at-least-once destination. The chats count into `report`
    itself, every other feed into a share of its own (merged at the end of the run)."""
    retention = timedelta(days=s.retention_days)
    # In a run, every write to a destination is fenced by the lease (lib/sync/session.py).
    put_batch = session.put_batch if session is not None else None
    fence: Callable[[], None] = session.hold if session is not None else (lambda: None)
    # In-flight batches are labelled, and judged settled, by the store's time as the run knows it:
    # a caller whose clock is fast must not take a batch another run's append may still land for
    # as settled.
    batch_clock = session.store_clock if session is not None else clock
    steps: list[FeedSteps] = []
    row_links: dict[str, Callable[[Sequence[Record]], Mapping[str, str]]] = {}
    for feed in feeds:
        writer = writers[feed.name]
        # The exactly-once destinations that take this feed (the sheet: its tab), by name.
        tab_target = TabTarget(writer)  # this run's: it keeps the rows its appends were given
        targets: dict[str, Writer] = {SHEET.name: tab_target}
        for d in destinations:
            if d.protocol == EXACTLY_ONCE and d.name != SHEET.name and isinstance(d.built, Writers):
                target = d.built.writer(feed.name)
                if target is not None:
                    targets[d.name] = target
        # Each entry of the feed is delivered once every destination that takes it is done.
        kinds = {d.name: d.protocol for d in destinations if d.protocol != EXACTLY_ONCE or d.name in targets}
        kinds.setdefault(SHEET.name, EXACTLY_ONCE)
        journal = Journal(store, RunRecords(feed.source, s.chat_timezone), clock=clock, retention=retention,
                          put_batch=put_batch, destinations=kinds)
        reader: Reader
        if isinstance(feed.read, CursorRead):
            reader = FetchLog(store, moneypenny, journal, clock=clock, tz=s.chat_timezone,
                              reconcile_days=s.reconcile_days, checkpoint=checkpoint, session=session)
        else:
            reader = CallsFetch(store, moneypenny, journal, clock=clock, tz=s.chat_timezone,
                                reconcile_days=s.reconcile_days, checkpoint=checkpoint, feed=feed)
        exactly = {name: ExactlyOnceDelivery(target, journal, clock=batch_clock, http_timeout_seconds=s.http_timeout_seconds,
                                             checkpoint=checkpoint, destination=name)
                   for name, target in targets.items()}
        steps.append(FeedSteps(
            feed=feed, journal=journal, fetch=reader, sheet=exactly[SHEET.name],
            writer=writer, report=report if feed.name == CHATS_FEED.name else sub_report(report),
            tab=feed.tab(s), exactly_once=exactly))
        row_links[feed.tab(s)] = _row_links(tab_target, s.sheet_url)
    links: dict[str, Callable[[], str]] = {}
    for step in steps:
        links[step.tab] = (lambda w: lambda: w.tab_url(s.sheet_url))(step.writer)
    at_least_once = [
        AtLeastOnceDelivery(d.built, destination=d.name, checkpoint=checkpoint, links=links, row_links=row_links,
                            fence=fence, counts=d.name == SLACK.name)
        for d in destinations if d.protocol != EXACTLY_ONCE and isinstance(d.built, Deliverer)
    ]
    return RunProtocols(feeds=steps, at_least_once=at_least_once)


def _row_links(target: TabTarget, sheet_url: str) -> Callable[[Sequence[Record]], Mapping[str, str]]:
    """The tab's row links for a run's records (by key): each row as this run's append answered
    it, else found by its key (TabTarget.rows_of)."""
    def links(records: Sequence[Record]) -> Mapping[str, str]:
        return target.sheet.row_urls(sheet_url, target.rows_of(records))
    return links
