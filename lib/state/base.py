"""What the state store holds (tokens, journal entries, set-aside items, the lease), the
delivered/expiry rule, and `StoreBase`, the part both stores share.

The contract itself, one protocol per concern, is in `contract` (`StateStore` is re-exported
here); the run state's parts (lease, run history) are built once for both stores in
`run_store`. Two implementations keep it: `SqliteStore` (local runs, tests) and
`FirestoreStore` (the cloud). The contract tests in tests/test_state_contract.py run against both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .contract import Documents, Journal, Leases, Quarantine, RunLog, RunStates, StateStore, TokenCache

if TYPE_CHECKING:
    from .documents import D, Document

__all__ = [
    "DONE", "INFLIGHT", "PENDING", "CachedToken", "Documents", "InflightBatch", "Journal", "JournalEntry", "Lease",
    "Leases", "Quarantine", "RejectedItem", "RunLog", "RunStates", "StateStore", "StoreBase", "TokenCache",
    "delivered", "expiry_for",
]

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
    """One fetched chat, kept until every destination has it.

    `chat` is the item exactly as Moneypenny sent it (a JSON object), so that a later run can
    rebuild the row even if the parsing code changed in between; an item too large for the
    store is kept cut to what its row and summary need (lib/chat_source.journal_item).
    """

    key: str
    chat: dict[str, Any] = field(repr=False)
    chat_time: datetime
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


class StoreBase(StateStore):
    """What both stores share on top of their own methods: `round_trips` and typed documents.

    The typed documents are built once here on get_meta/put_meta/delete_meta, so they cost the
    same round trips and billed documents as the raw calls.
    """

    @property
    def round_trips(self) -> int:
        """Server round trips so far (the same as `counters.round_trips`)."""
        return self.counters.round_trips

    def read_doc(self, kind: type[D]) -> D | None:
        """The document of this class (under its NAME), or None; DocumentError if malformed."""
        data = self.get_meta(kind.NAME)
        return None if data is None else kind.from_dict(data)

    def write_doc(self, doc: Document) -> None:
        """Replace the document under its class's NAME with `doc.to_dict()`."""
        self.put_meta(doc.NAME, doc.to_dict())

    def delete_doc(self, kind: type[Document]) -> None:
        """Remove the document of this class if present."""
        self.delete_meta(kind.NAME)

    def close(self) -> None:
        """Release connections."""
