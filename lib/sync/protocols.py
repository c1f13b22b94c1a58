"""The protocols of one run, wired to the run's store, clients, clock and crash hook: the chats'
fetch log, journal, sheet and Slack delivery, and, when calls are on, the calls' own (their
journal, day-window fetch and tab) with the one summary of both sources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..destinations.sheet.writer import SheetWriter
from ..destinations.slack.client import SlackNotifier
from ..records import RunRecords, Source
from ..settings import Settings
from ..sources.calls import CALLS
from ..sources.moneypenny import MoneypennyClient
from ..state.contract import StateStore
from .calls_fetch import CallsFetch
from .fetch import FetchLog
from .journal import Journal
from .options import RunReport
from .session import RunSession
from .sheet_delivery import SheetDelivery
from .slack_delivery import SlackDelivery
from .sources import CallSteps, SummaryDelivery, sub_report


@dataclass
class RunProtocols:
    """The protocols of one run, sharing the run's parsed records (made by `wire`)."""

    journal: Journal
    fetch: FetchLog
    sheet: SheetDelivery
    slack: SlackDelivery
    calls: CallSteps | None = None  # when MONEYPENNY_SOURCES includes calls
    summary: SummaryDelivery | None = None  # the one summary of both sources


def wire(s: Settings, store: StateStore, moneypenny: MoneypennyClient, sheet: SheetWriter, slack: SlackNotifier, *,
         calls_sheet: SheetWriter | None, clock: Callable[[], datetime], checkpoint: Callable[[str], None],
         source: Source, session: RunSession | None, report: RunReport) -> RunProtocols:
    """A fresh set of one run's protocols (`calls_sheet`, the Calls tab's writer, turns calls on)."""
    retention = timedelta(days=s.retention_days)
    # In a run, every write to the sheet or Slack is fenced by the lease (lib/sync/session.py).
    put_batch = session.put_batch if session is not None else None
    fence: Callable[[], None] = session.hold if session is not None else (lambda: None)
    # In-flight batches are labelled, and judged settled, by the store's time as the run knows it:
    # a caller whose clock is fast must not take a batch another run's append may still land for
    # as settled.
    batch_clock = session.store_clock if session is not None else clock
    journal = Journal(store, RunRecords(source, s.chat_timezone), clock=clock, retention=retention,
                      put_batch=put_batch)
    calls, summary = None, None
    if calls_sheet is not None:
        calls_journal = Journal(store, RunRecords(CALLS, s.chat_timezone), clock=clock, retention=retention,
                                put_batch=put_batch)
        calls = CallSteps(
            journal=calls_journal,
            fetch=CallsFetch(store, moneypenny, calls_journal, clock=clock, tz=s.chat_timezone,
                             reconcile_days=s.reconcile_days, checkpoint=checkpoint),
            sheet=SheetDelivery(calls_sheet, calls_journal, clock=batch_clock,
                                http_timeout_seconds=s.http_timeout_seconds, checkpoint=checkpoint),
            report=sub_report(report),
        )
        summary = SummaryDelivery(slack, sheet_url=s.sheet_url, max_listed=s.slack_max_listed, checkpoint=checkpoint,
                                  links={sheet.tab: lambda: sheet.tab_url(s.sheet_url),
                                         calls_sheet.tab: lambda: calls_sheet.tab_url(s.sheet_url)},
                                  fence=fence)
    return RunProtocols(
        journal=journal,
        fetch=FetchLog(store, moneypenny, journal, clock=clock, tz=s.chat_timezone,
                       reconcile_days=s.reconcile_days, checkpoint=checkpoint, session=session),
        sheet=SheetDelivery(sheet, journal, clock=batch_clock, http_timeout_seconds=s.http_timeout_seconds,
                            checkpoint=checkpoint),
        slack=SlackDelivery(slack, journal, sheet_url=s.sheet_url, max_listed=s.slack_max_listed,
                            checkpoint=checkpoint, link=lambda: sheet.tab_url(s.sheet_url), fence=fence),
        calls=calls,
        summary=summary,
    )
