"""Helpers both stores share: UTC times, journal changes, the first entry of each key, chunks, the guard.

Each store maps its own library's exceptions to StateStoreUnavailable through `guard`, giving it a
`translate` function; the wrapping, and letting our own StateStoreError through, are here once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from ..errors import StateStoreError, UnknownJournalField
from .models import DONE, INFLIGHT, InflightBatch, JournalEntry

# The journal fields `journal_update` may set; the others are fixed when the entry is added.
# `states` and `labels` are whole mappings (destination name -> state, -> in-flight label): the
# run always writes an entry's whole mapping, so a store never reads before it writes.
JOURNAL_FIELDS = ("states", "labels", "expires_at")

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


def utc(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is refused (the store cannot guess its zone)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("the state store takes timezone-aware datetimes only")
    return value.astimezone(UTC)


def utc_text(value: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order (SQL comparisons, sort keys)."""
    return utc(value).isoformat(timespec="microseconds")


def stored_time(value: str | datetime | None) -> datetime | None:
    """A time as the store kept it (ISO text, or Firestore's DatetimeWithNanoseconds), as a
    plain timezone-aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC)
    return datetime(*value.utctimetuple()[:6], value.microsecond, tzinfo=UTC)


def started_at_utc(started_at: Any) -> datetime | None:
    """A run record's `started_at` as a UTC datetime (naive taken as UTC), or None if unparseable."""
    try:
        parsed = datetime.fromisoformat(str(started_at))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def journal_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The fields `journal_update` sets, in JOURNAL_FIELDS order; an unknown field is refused."""
    unknown = sorted(set(changes) - set(JOURNAL_FIELDS))
    if unknown:
        raise UnknownJournalField(
            f"journal_update cannot set {', '.join(unknown)}: the fields it sets are {', '.join(JOURNAL_FIELDS)}"
        )
    values = {name: changes[name] for name in JOURNAL_FIELDS if name in changes}
    for name in ("states", "labels"):
        if name in values:
            values[name] = {str(k): str(v) for k, v in dict(values[name]).items()}
    return values


def first_of_each_key(entries: Iterable[JournalEntry]) -> dict[str, JournalEntry]:
    """The first entry of each key, in the given order: a later duplicate is not new."""
    first: dict[str, JournalEntry] = {}
    for entry in entries:
        first.setdefault(entry.key, entry)
    return first


def with_batches(entries: list[JournalEntry], batches: Iterable[InflightBatch]) -> None:
    """Mark the entries that a stored batch holds in flight for its destination (the entry's
    own DONE wins).

    A key is in one batch of a destination at most: an exactly-once delivery deletes a batch
    before any of its keys go in another.
    """
    holder = {(batch.destination, key): batch for batch in batches for key in batch.keys}
    if not holder:
        return
    destinations = {destination for destination, _key in holder}
    for entry in entries:
        for destination in destinations:
            batch = holder.get((destination, entry.key))
            if batch is not None and entry.state(destination) != DONE:
                entry.set_state(destination, INFLIGHT, batch.label)
                entry.inflight[destination] = batch


def unique(items: Iterable[str]) -> list[str]:
    """Each item once, in the given order."""
    return list(dict.fromkeys(items))


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


Translate = Callable[[Any, str, Exception], None]


def guard(translate: Translate) -> Callable[[str], Callable[[Callable[P, R]], Callable[P, R]]]:
    """A decorator factory: `@guard(translate)(operation)` runs the method and, when it raises,
    lets `translate(store, operation, exc)` raise a StateStoreUnavailable instead (inside the
    `except` block, so it picks its own chaining); when translate returns, the exception
    goes on unchanged. A StateStoreError raised by the method itself goes on unchanged."""

    def for_operation(operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
        def wrap(method: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(method)
            def inner(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    return method(*args, **kwargs)
                except StateStoreError:
                    raise
                except Exception as exc:
                    translate(args[0], operation, exc)  # args[0]: the store (self)
                    raise

            return inner

        return wrap

    return for_operation
