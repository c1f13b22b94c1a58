"""What the state store holds (tokens, journal entries, set-aside items, the lease) and the
delivered/expiry rule: data types only, so that the contract (`contract`), the run state
(`run_state`) and both stores can import them without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# Journal per-destination states (`JournalEntry.states`: destination name -> state).
PENDING = "pending"
INFLIGHT = "inflight"  # exactly-once destinations only: a write was started and not yet confirmed
DONE = "done"


def delivered(states: Mapping[str, str]) -> bool:
    """The one rule: an entry is delivered once every destination in its mapping is done (then
    it may expire). The run writes the mapping of every registered destination, so an entry is
    pending while any registered destination is not done; an empty mapping is not delivered."""
    return bool(states) and all(state == DONE for state in states.values())


def expiry_for(states: Mapping[str, str], now: datetime, retention_days: int) -> datetime | None:
    """When an entry in these states expires: `retention_days` after `now` once delivered, else None."""
    return now + timedelta(days=retention_days) if delivered(states) else None


def legacy_states(sheet: str | None, slack: str | None) -> dict[str, str]:
    """The mapping of an entry stored in the old shape (the two fields `sheet` and `slack`)."""
    return {"sheet": sheet or PENDING, "slack": slack or PENDING}


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
    # Each destination's state (PENDING/INFLIGHT/DONE) by its registered name; a destination
    # the mapping does not name is PENDING for this entry.
    states: dict[str, str] = field(default_factory=dict)
    # An exactly-once destination's in-flight label kept on the entry's own document (the
    # sheet's "<run id>@unchecked"), by destination; a stored batch's label comes with `inflight`.
    labels: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None
    # The stored batches that hold this entry in flight, by destination (set by journal_pending):
    # the batch, not the entry's own document, says that its write was started.
    inflight: dict[str, InflightBatch] = field(default_factory=dict, repr=False, compare=False)

    def state(self, destination: str) -> str:
        """This entry's state for one destination (PENDING when its mapping does not name it)."""
        return self.states.get(destination, PENDING)

    def label(self, destination: str) -> str | None:
        """The in-flight label of this entry for one destination, or None."""
        return self.labels.get(destination)

    def batch(self, destination: str) -> InflightBatch | None:
        """The stored batch that holds this entry in flight for one destination, or None."""
        return self.inflight.get(destination)

    def set_state(self, destination: str, state: str, label: str | None = None) -> None:
        """Set one destination's state and label (None removes the label)."""
        self.states[destination] = state
        if label is None:
            self.labels.pop(destination, None)
        else:
            self.labels[destination] = label

    def delivered_to(self, destinations: Iterable[str]) -> bool:
        """Whether every one of these destinations is done."""
        return all(self.state(name) == DONE for name in destinations)

    @property
    def delivered(self) -> bool:
        return delivered(self.states)


@dataclass(frozen=True)
class InflightBatch:
    """One append's rows in flight, as one stored document instead of a mark on each entry.

    `label` is what its entries' label for `destination` reads while they are in flight (the
    exactly-once delivery's "<run id>@<epoch seconds>" or "<run id>@answered"); the store keeps
    it as given. `destination`: the exactly-once destination whose write it covers (a batch
    stored before destinations were plug-ins is the sheet's).
    """

    id: str
    label: str
    keys: tuple[str, ...] = field(repr=False)
    expires_at: datetime  # when the store may forget it (Firestore's TTL; SQLite prunes it)
    destination: str = "sheet"


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
