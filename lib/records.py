"""What the sync core knows of the records it carries: nothing that makes them chats.

The journal, the sheet delivery and the Slack summary handle `Record`s: a record has a stable
key, a time, its sheet row, its summary line and its raw form (what the journal keeps). A
`Source` says how one kind of record is read from a batch and from the journal; lib/sources/chats.py
gives the live chats' source (`CHATS`). A second source (call messages) is another `Source`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from .errors import InvalidItem

R = TypeVar("R", bound="Record")

# What a journal item may take (a Firestore document holds at most 1 MiB, key and states
# included): a record whose JSON is larger is journaled cut, marked by CUT_FIELD, which holds
# the key of the whole record. Cells of a cut item are halved down to MIN_CELL at the least.
JOURNAL_ITEM_BYTES = 900_000
CUT_FIELD = "__moneypenny_sync_cut__"
MIN_CELL = 1_000
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


class Record(Protocol):
    """One item carried to the sheet and Slack."""

    @property
    def key(self) -> str:
        """Stable across reads of the same item: how the journal and the sheet know it."""

    @property
    def former_keys(self) -> tuple[str, ...]:
        """Keys an earlier version of the key recipe gave it, where they differ (usually none):
        an entry or row under one of them is this record."""

    @property
    def time(self) -> datetime:
        """When it happened, timezone-aware: the order of rows and summary lines."""

    @property
    def raw(self) -> dict[str, Any]:
        """The item as the source sent it."""

    def row(self) -> list[str]:
        """Its sheet row, every cell plain text."""

    def summary_line(self, limit: int, dated: bool = False) -> str:
        """Its line in a Slack summary, at most `limit` by lib.destinations.slack.summary.slack_size; its time
        with its day ("Tue 3 Dec 09:32") when `dated` (the summary spans more than one day)."""


class Rejection(Protocol):
    """An item of a batch that could not be read: where it stood, why, and the item."""

    @property
    def index(self) -> int: ...

    @property
    def reason(self) -> str: ...

    @property
    def item(self) -> Any: ...


@dataclass(frozen=True)
class Source:
    """How the core reads one kind of record.

    `parse_batch(items, tz)` gives the readable records (one per key, in time order) and the
    rejected items; `journal_item(record)` is what the journal keeps of a record;
    `from_journal(item, tz)` reads that back.
    """

    name: str
    parse_batch: Callable[[Sequence[Any], ZoneInfo], tuple[Sequence[Record], Sequence[Rejection]]]
    journal_item: Callable[[Any], dict[str, Any]]
    from_journal: Callable[[Any, ZoneInfo], Record]
    with_key: Callable[[Any, str], Record]


def sort_records(records: Iterable[Record]) -> list[Record]:
    """Time order, then key: the order of rows in the sheet and lines in a summary."""
    return sorted(records, key=lambda r: (r.time, r.key))


class RunRecords:
    """Each journal entry's record, parsed once per run.

    A record read in this run (fetched and newly journaled whole, or read back from the
    journal) is kept by its key for the rest of the run; the journal's copy of a key never
    changes within a run. A new RunRecords is made for every run: nothing outlives it.
    """

    def __init__(self, source: Source, tz: ZoneInfo):
        self.source = source
        self.tz = tz
        self._by_key: dict[str, Record] = {}
        self.parsed = 0  # journal items parsed by this run (fetched ones not counted)

    def remember(self, record: Record) -> None:
        """Keep a record whose journal item is exactly `source.journal_item(record)` == its raw form."""
        self._by_key[record.key] = record

    def of(self, key: str, item: dict[str, Any]) -> Record:
        """The record of the journal entry `key` holding `item`."""
        record = self._by_key.get(key)
        if record is None:
            record = self.source.from_journal(item, self.tz)
            self.parsed += 1
            if record.key != key:
                # The journal's key wins: it is the one already in the sheet.
                record = self.source.with_key(record, key)
            self._by_key[key] = record
        return record


@dataclass(frozen=True)
class Rejected:
    """An item that could not be read: where it stood in the batch and why (never its data)."""

    index: int
    reason: str
    item: Any = field(repr=False)


def parse_each(items: Sequence[Any], tz: ZoneInfo, parse: Callable[[Any, ZoneInfo], R]) -> tuple[list[R], list[Rejected]]:
    """Read a whole batch with `parse` (which raises InvalidItem naming the field at fault):
    the good records, one per key, in time order (then key), and the rejects."""
    found: dict[str, R] = {}
    rejected: list[Rejected] = []
    for index, item in enumerate(items):
        try:
            record = parse(item, tz)
        except InvalidItem as exc:
            rejected.append(Rejected(index, str(exc), item))
            continue
        found.setdefault(record.key, record)
    return sorted(found.values(), key=lambda r: (r.time, r.key)), rejected


def parse_time(value: Any, name: str, tz: ZoneInfo, *, naive: tzinfo) -> datetime:
    """Read the ISO 8601 field `name` as an aware datetime in `tz` (a value without an offset
    is in `naive`), or raise InvalidItem naming the field."""
    if value is None or value == "":
        raise InvalidItem(f"{name} is missing")
    if not isinstance(value, str):
        raise InvalidItem(f"{name} is not a string")
    raw = value.strip()
    if raw.endswith(("Z", "z")):  # ISO 8601 takes either case for UTC
        raw = raw[:-1] + "+00:00"
    # Python 3.11 reads up to 6 fractional digits; .NET services send up to 7.
    if "." in raw:
        raw = _LONG_FRACTION.sub(r"\1", raw)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidItem(f"{name} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=naive)
    try:
        # The journal keeps the time in UTC and the sheet shows it in `tz`: a time at the edge
        # of the calendar (9999-12-31 west of UTC, 0001-01-01 east of it) fits in only one.
        parsed.astimezone(UTC)
        return parsed.astimezone(tz)
    except (OverflowError, ValueError):
        raise InvalidItem(f"{name} is outside the years 1 to 9999 in UTC or CHAT_TIMEZONE") from None
