"""The Moneypenny feeds as plug-ins (singer-sdk's Stream is the model): one `Feed` description
per feed, registered here, in one place.

A feed says what the rest of the system needs to carry its items: its name (as
MONEYPENNY_SOURCES names it), its key prefix (how the journal tells its entries from the other
feeds'), how its items are read from an answer and kept in the journal (a `lib.records.Source`),
its tab (columns, key column, the setting that names the tab and the tab's default name), its
nouns for messages and the summary, how it is read (`CursorRead`: the chat log's cursor guarded
by a fetch intent; `DayRead`: whole days, with a read document of its own), and how `check`
probes it. The run, the summary, status and check loop over the registered feeds; a new feed
is one more `register(Feed(...))`, with no change elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ..destinations.sheet.writer import TabLayout
from ..errors import SettingsError
from ..errors import cut as _cut
from ..records import Source
from ..settings import Settings, register_feed_setting
from .calls import CALLS, CALLS_LAYOUT
from .calls import KEY_PREFIX as CALL_PREFIX
from .chat_source import CHATS
from .chats import CHATS_TAB
from .moneypenny import MoneypennyClient

__all__ = ["CALLS_FEED", "CHATS_FEED", "CursorRead", "DayRead", "Feed", "enabled", "feed_of_key", "named",
           "register", "registered", "unregister"]


@dataclass(frozen=True)
class CursorRead:
    """Read through the chat log's cursor, each read guarded by the fetch intent
    (lib/sync/fetch.py). Only the live chats are read this way."""


@dataclass(frozen=True)
class DayRead:
    """Read by whole days (lib/sync/day_fetch.py): `fetch(client, start, end)` returns every item
    dated from `start` to `end`; reading moves nothing at Moneypenny, so a day may be read again.
    `doc` names the feed's read document in the state store (its last full day read, the digests
    of what it set aside and of what the journal holds of the days read again)."""

    fetch: Callable[[MoneypennyClient, date, date], list[Any]]
    doc: str


@dataclass(frozen=True)
class Feed:
    """One Moneypenny feed as the sync sees it.

    `name`: its MONEYPENNY_SOURCES name ("chats"); `title`: its tab's default name ("Chats");
    `key_prefix`: what every key of the feed starts with ("" for the chats, whose keys are 32 hex
    digits; the longest matching prefix decides); `source`: how its items are parsed and
    journaled; `layout`: its tab's columns and the setting that names the tab; `noun`: one item
    in messages ("call message"); `summary_noun`: one item in the Slack summary ("new call");
    `read`: how it is read; `probe`: how `check` reads it without moving anything (a read of
    `day`, answered with that day's items; None: the cursor feed's own probe, a login only, in
    lib/service_checks.py, as its read would move the cursor).
    """

    name: str
    title: str
    key_prefix: str
    source: Source
    layout: TabLayout
    noun: str
    summary_noun: str
    read: CursorRead | DayRead
    probe: Callable[[MoneypennyClient, date], Sequence[Any]] | None = None

    @property
    def tab_setting(self) -> str:
        """The setting that names the feed's tab (SHEET_TAB, CALLS_TAB, NAME_TAB)."""
        return self.layout.setting

    def owns(self, key: str) -> bool:
        """Whether a journal key is this feed's by its prefix alone (see `feed_of_key`)."""
        return key.startswith(self.key_prefix)

    def tab(self, settings: Settings) -> str:
        """The name of the feed's tab in these settings."""
        return settings.tab_of(self.name)


CHATS_FEED = Feed(name="chats", title="Chats", key_prefix="", source=CHATS, layout=CHATS_TAB, noun="chat",
                  summary_noun="new chat", read=CursorRead())

CALLS_FEED = Feed(name="calls", title="Calls", key_prefix=CALL_PREFIX, source=CALLS, layout=CALLS_LAYOUT,
                  noun="call message", summary_noun="new call",
                  read=DayRead(fetch=lambda client, start, end: client.fetch_calls(start, end), doc="calls_read"),
                  probe=lambda client, day: client.fetch_calls(day, day + timedelta(days=1)))

_FEEDS: dict[str, Feed] = {}


def register(feed: Feed) -> Feed:
    """Add a feed (a test's made-up one, or a new Moneypenny feed): MONEYPENNY_SOURCES may then
    name it, its tab is named by its layout's setting (default: its title), and every run that
    has it on reads it. A name or key prefix already taken is refused."""
    if not feed.name or not feed.name.isidentifier() or feed.name != feed.name.lower():
        raise ValueError(f"a feed's name is a lower-case word, got {_cut(feed.name)!r}")
    for other in _FEEDS.values():
        if other.name == feed.name:
            raise ValueError(f"a feed named {feed.name!r} is already registered")
        if other.key_prefix == feed.key_prefix:
            raise ValueError(f"the key prefix {feed.key_prefix!r} is already the {other.name} feed's")
        if other.layout.setting == feed.layout.setting:
            raise ValueError(f"the tab setting {feed.layout.setting} is already the {other.name} feed's")
    _FEEDS[feed.name] = feed
    register_feed_setting(feed.name, feed.layout.setting, feed.title)
    return feed


def unregister(name: str) -> None:
    """Remove a registered feed (a test's, when it is done); the built-in feeds stay."""
    if name in (CHATS_FEED.name, CALLS_FEED.name):
        raise ValueError(f"the {name} feed is built in")
    _FEEDS.pop(name, None)
    register_feed_setting(name, None, None)


def registered() -> list[Feed]:
    """Every registered feed, in the order registered (the order of tabs and summary parts)."""
    return list(_FEEDS.values())


def named(name: str) -> Feed:
    """The registered feed of this name (KeyError if none)."""
    return _FEEDS[name]


def enabled(settings: Settings) -> list[Feed]:
    """The feeds MONEYPENNY_SOURCES turns on, in registry order; a name no feed has is refused."""
    unknown = [n for n in settings.moneypenny_sources if n not in _FEEDS]
    if unknown:
        raise SettingsError(
            f"MONEYPENNY_SOURCES names no registered feed {', '.join(repr(_cut(n)) for n in unknown)}",
            fix=f"Name some of {', '.join(_FEEDS)}, separated by commas.")
    return [feed for feed in _FEEDS.values() if feed.name in settings.moneypenny_sources]


def feed_of_key(key: str, feeds: Sequence[Feed] | None = None) -> Feed:
    """The feed a journal key belongs to: the registered feed with the longest prefix it starts
    with (the chats' empty prefix takes whatever no other feed's does)."""
    owners = [f for f in (feeds if feeds is not None else _FEEDS.values()) if key.startswith(f.key_prefix)]
    if not owners:
        return CHATS_FEED
    return max(owners, key=lambda f: len(f.key_prefix))


register(CHATS_FEED)
register(CALLS_FEED)
