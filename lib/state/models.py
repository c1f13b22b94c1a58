"""What the state store holds (tokens, journal entries, set-aside items, the lease) and the
delivered/expiry rule: data types only, so that the contract (`contract`), the run state
(`run_state`) and both stores can import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# Journal per-destination states.
PENDING = "pending"
INFLIGHT = "inflight"  # sheet only: an append was started and not yet confirmed
DONE = "done"


def delivered(sheet: str, slack: str) -> bool:
    """The one rule: an entry is delivered once both destinations are done (then it may expire)."""
    return sheet == DONE and slack == DONE


def expiry_for(sheet: str, slack: str, now: datetime, retention_days: int) -> datetime | None:
    """When an entry in these states expires: `retention_days` after `now` once delivered, else None."""
    return now + timedelta(days=retention_days) if delivered(sheet, slack) else None


@dataclass(frozen=True)
class CachedToken:
    """A Moneypenny bearer token and the moment it stops working."""

    value: str = field(repr=False)
    expires_at: datetime


@dataclass
class JournalEntry:
    """One fetched item (a chat, a call message, ...), kept until every destination has it.

    `item` is the item exactly as its source sent it (a JSON object), so that a later run can
    rebuild the row even if the parsing code changed in between; an item too large for the
    store is kept cut to what its row and summary need (the source's `journal_item`).
    `item_time` is the item's own time (a chat's start, a call message's time): the journal's order.
    """

    key: str
    # Stored as `chat` and `chat_time` (SQLite columns, Firestore fields): the names the store
    # had before the journal held more than chats. Only the Python names changed, so no store
    # migration; each store maps them in its journal module.
    item: dict[str, Any] = field(repr=False)
    item_time: datetime
    fetched_at: datetime
    sheet: str = PENDING
    sheet_batch: str | None = None
    slack: str = PENDING
    expires_at: datetime | None = None
    # The stored batch that holds this entry in flight (set by journal_pending), else None:
    # the batch, not the entry's own document, says that its append was started.
    batch: InflightBatch | None = field(default=None, repr=False, compare=False)

    @property
    def delivered(self) -> bool:
        return delivered(self.sheet, self.slack)


@dataclass(frozen=True)
class InflightBatch:
    """One append's rows in flight, as one stored document instead of a mark on each entry.

    `label` is what its entries' `sheet_batch` reads while they are in flight (the sheet
    delivery's "<run id>@<epoch seconds>" or "<run id>@answered"); the store keeps it as given.
    """

    id: str
    label: str
    keys: tuple[str, ...] = field(repr=False)
    expires_at: datetime  # when the store may forget it (Firestore's TTL; SQLite prunes it)


@dataclass(frozen=True)
class RejectedItem:
    """An item from the chat log that could not be read, kept (not lost) for a person to look at."""

    raw: str = field(repr=False)  # the item as JSON text; may hold personal data, never logged
    reason: str  # names the field at fault, never its value
    fetched_at: datetime
    # Set aside items expire like delivered journal entries (RETENTION_DAYS): Firestore's TTL
    # policy deletes them, the SQLite store prunes them with the journal. None: kept.
    expires_at: datetime | None = None
    id: str = ""  # given by the store; names the item for `quarantine_remove`


@dataclass(frozen=True)
class Lease:
    owner: str
    expires_at: datetime
