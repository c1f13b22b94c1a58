"""Wiring: build the Syncer and its clients from Settings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from . import destinations
from .alerts import Alerter
from .clock import utcnow
from .destinations import SHEET, SLACK, BuildContext, FeedTab, build_each
from .destinations.sheet import client as sheet_module
from .destinations.sheet.claims import ClaimCells
from .destinations.sheet.destination import SheetTabs
from .destinations.slack import client as slack_module
from .destinations.slack.claims import SlackClaims
from .destinations.slack.client import SlackNotifier
from .destinations.slack.destination import SlackSummary
from .settings import Settings
from .sources import CHATS_FEED, registered
from .sources.moneypenny import MoneypennyClient
from .state import open_store
from .state.contract import StateStore
from .sync import Syncer
from .sync.claims import ClaimDesk

# Seconds a click's Sheets request may wait out 429 answers: Slack wants its answer in 3 seconds.
CLAIM_QUOTA_WAIT_SECONDS = 2.0


def build_claim_desk(settings: Settings, *, store: StateStore | None = None, syncer: Syncer | None = None,
                     clock: Callable[[], datetime] = utcnow) -> ClaimDesk:
    """The claims of one account (lib/sync/claims.py): its store, each feed's tab and Slack.

    With `syncer`, its store, tab writers and Slack client (a run's retry of due claims); else
    built from the settings (the Slack actions entry point), clients made on first use."""
    # Every registered feed's tab, on or off: a lead delivered while its source was on is still a
    # lead after MONEYPENNY_SOURCES turned it off, and a claim of it still reaches its row.
    feeds = [FeedTab(feed.name, feed.tab(settings), feed.layout, feed.summary_noun) for feed in registered()]
    if syncer is not None:
        writers, slack_client, store = dict(syncer.writers), (lambda: syncer.slack.client), syncer.store
        missing = [feed for feed in feeds if feed.name not in writers]
    else:
        writers, missing = {}, feeds
        slack_client = functools.partial(slack_module.build_client, settings)
        store = store or open_store(settings)
    if missing:
        # A click waits out a Sheets quota refusal briefly only: the next run writes what it could not.
        writers.update(SHEET.build(BuildContext(settings, missing, quota_wait=CLAIM_QUOTA_WAIT_SECONDS)).writers)
    cells = {feed: ClaimCells(writer) for feed, writer in writers.items()}
    slack = SlackClaims(slack_client, settings.slack_api_url, timeout=settings.http_timeout_seconds)
    return ClaimDesk(store, cells, slack, tz=settings.chat_timezone, clock=clock)


def build_syncer(
    settings: Settings,
    *,
    store: StateStore | None = None,
    clock: Callable[[], datetime] = utcnow,
    checkpoint: Callable[[str], None] | None = None,
    backoff: float = 0.5,
    sheets_quota_wait: float = sheet_module.SHEETS_QUOTA_WAIT_SECONDS,
    on_quota_wait: Callable[[float], None] | None = None,
) -> Syncer:
    """A Syncer talking to the services that the settings name.

    `sheets_quota_wait`: seconds one Sheets request may wait out 429 answers (quota) in all;
    `on_quota_wait` hears the seconds left while it waits (the backfill's bar shows them)."""
    store = store or open_store(settings)
    moneypenny = MoneypennyClient(
        auth_url=settings.moneypenny_auth_url,
        chats_url=settings.moneypenny_chats_url,
        calls_url=settings.moneypenny_calls_url,
        username=settings.moneypenny_username,
        password=settings.moneypenny_password,
        store=store,
        timeout=settings.http_timeout_seconds,
        clock=clock,
        backoff=backoff,
    )
    # Every registered destination (lib/destinations), built from the settings: the sheet gets a
    # writer per tab (the chats' always, SHEET_TAB, and every other feed's that is on). Credentials
    # are looked up now (a missing one fails at start), but gspread and slack-sdk are loaded, and
    # their clients made, only when a run has something to write or post.
    feeds = [FeedTab(feed.name, feed.tab(settings), feed.layout, feed.summary_noun)
             for feed in registered() if feed is CHATS_FEED or settings.feed_on(feed.name)]
    context = BuildContext(settings, feeds, backoff=backoff, quota_wait=sheets_quota_wait,
                           on_quota_wait=on_quota_wait)
    built = build_each(destinations.registered(), context)
    kinds = {b.name: b.built for b in built}
    sheet, slack = kinds[SHEET.name], kinds[SLACK.name]
    assert isinstance(sheet, SheetTabs) and isinstance(slack, SlackSummary)
    syncer = Syncer(settings, store, moneypenny, sheet.writers, slack.notifier, clock=clock, checkpoint=checkpoint,
                    destinations=built)
    # A run writes the claims from Slack that are still due (the run state's claims_due says when).
    syncer.claims = build_claim_desk(settings, syncer=syncer, clock=clock)
    return syncer



def build_alerter(settings: Settings, syncer: Syncer, *, clock: Callable[[], datetime] | None = None) -> Alerter:
    """The failure alerter: posts to SLACK_ALERT_CHANNEL (or SLACK_CHANNEL) with the syncer's Slack client."""
    notifier = SlackNotifier(lambda: syncer.slack.client, settings.alert_channel)
    return Alerter(syncer.store, notifier, settings, clock=clock or syncer.clock,
                   last_state=lambda: syncer.last_state)
