"""Wiring: build the Syncer and its clients from Settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .alerts import Alerter
from .clock import utcnow
from .destinations.sheet import client as sheet_module
from .destinations.sheet.writer import SheetWriter
from .destinations.slack import client as slack_module
from .destinations.slack.client import SlackNotifier
from .settings import Settings
from .sources import CHATS_FEED, registered
from .sources.moneypenny import MoneypennyClient
from .state import open_store
from .state.contract import StateStore
from .sync import Syncer


def sheets_identity(settings: Settings) -> str:
    """Who the sheet must be shared with, as far as can be told without a network call."""
    if not settings.sheets_is_google:
        return "the local stand-in (anonymous)"
    try:
        import google.auth  # only for Google itself: local stand-ins never load it

        credentials, _ = google.auth.default(scopes=sheet_module.SCOPES)
    except Exception:
        return ""
    email = getattr(credentials, "service_account_email", "") or ""
    return "" if email == "default" else email


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
    # Credentials are looked up now (a missing one fails at start), but gspread and slack-sdk
    # are loaded, and their clients made, only when a run has something to write or post.
    session = sheet_module.build_session(settings, backoff=backoff, quota_wait=sheets_quota_wait,
                                         on_quota_wait=on_quota_wait)
    tab_ids: dict[str, int] = {}  # the spreadsheet's tab ids (for links), shared by its writers
    # One writer per tab: the chats' always (SHEET_TAB), and one for every other feed that is on.
    writers: dict[str, SheetWriter] = {}
    for feed in registered():
        if feed is CHATS_FEED or settings.feed_on(feed.name):
            writers[feed.name] = SheetWriter(
                lambda: sheet_module.client_on(session, settings),
                settings.sheet_id,
                feed.tab(settings),
                identity=lambda: sheets_identity(settings),
                layout=feed.layout,
                tab_ids=tab_ids,
            )
    slack = SlackNotifier(lambda: slack_module.build_client(settings, backoff=backoff), settings.slack_channel)
    return Syncer(settings, store, moneypenny, writers, slack, clock=clock, checkpoint=checkpoint)


def build_alerter(settings: Settings, syncer: Syncer, *, clock: Callable[[], datetime] | None = None) -> Alerter:
    """The failure alerter: posts to SLACK_ALERT_CHANNEL (or SLACK_CHANNEL) with the syncer's Slack client."""
    notifier = SlackNotifier(lambda: syncer.slack.client, settings.alert_channel)
    return Alerter(syncer.store, notifier, settings, clock=clock or syncer.clock)
