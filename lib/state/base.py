"""The state store contract: token cache, chat journal, quarantine, lease, run history, metadata.

Two implementations keep the same contract: `SqliteStore` (local runs, tests) and
`FirestoreStore` (the cloud). The contract tests in tests/test_state_contract.py run against both.

All datetimes passed in and returned are timezone-aware (UTC is stored). Callers pass `now`
explicitly so that tests can move the clock.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from ..counters import StoreCounters

# Journal per-destination states.
PENDING = "pending"
INFLIGHT = "inflight"  # sheet only: an append was started and not yet confirmed
DONE = "done"


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
    store is kept cut to what its row and summary need (lib/chats.journal_item).
    """

    key: str
    chat: dict[str, Any] = field(repr=False)
    chat_time: datetime
    fetched_at: datetime
    sheet: str = PENDING
    sheet_batch: str | None = None
    slack: str = PENDING
    expires_at: datetime | None = None

    @property
    def delivered(self) -> bool:
        return self.sheet == DONE and self.slack == DONE


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


class StateStore(abc.ABC):
    """Where the sync keeps everything that must outlive one run.

    `counters` (a `lib.counters.StoreCounters`) counts round trips and the documents read,
    written and deleted, as Firestore bills them, since the store was opened.
    """

    counters: StoreCounters

    @property
    def round_trips(self) -> int:
        """Server round trips so far (the same as `counters.round_trips`)."""
        return self.counters.round_trips

    # -- token cache ---------------------------------------------------------------------------
    @abc.abstractmethod
    def get_token(self) -> CachedToken | None:
        """The cached Moneypenny token, or None."""

    @abc.abstractmethod
    def put_token(self, token: CachedToken) -> None:
        """Replace the cached token."""

    @abc.abstractmethod
    def clear_token(self) -> None:
        """Forget the cached token (after Moneypenny refused it)."""

    # -- journal -------------------------------------------------------------------------------
    @abc.abstractmethod
    def journal_add(self, entries: Iterable[JournalEntry]) -> list[str]:
        """Insert entries whose key is not yet in the journal, in batches; return the new keys.

        An entry whose key is already present is left exactly as it is (whatever its state),
        so fetching the same chat again changes nothing.
        """

    @abc.abstractmethod
    def journal_pending(self) -> list[JournalEntry]:
        """Every entry not yet delivered to both destinations, oldest chat first (then key)."""

    @abc.abstractmethod
    def journal_get(self, keys: Iterable[str]) -> dict[str, JournalEntry]:
        """The entries with these keys that exist (delivered or not)."""

    @abc.abstractmethod
    def journal_update(self, keys: Iterable[str], **changes: Any) -> None:
        """Set fields on existing entries, in batches.

        Allowed fields: sheet, sheet_batch, slack, expires_at. Unknown keys are ignored.
        """

    @abc.abstractmethod
    def journal_prune(self, now: datetime) -> int:
        """Delete delivered entries whose expires_at has passed; return how many.

        Quarantined items whose expires_at has passed go too (not counted). Firestore leaves
        both to its TTL policies and may return 0.
        """

    # -- quarantine ----------------------------------------------------------------------------
    @abc.abstractmethod
    def quarantine(self, items: Iterable[RejectedItem]) -> None:
        """Keep unreadable items so that nothing fetched is lost."""

    @abc.abstractmethod
    def quarantine_count(self) -> int:
        """How many items are in quarantine."""

    @abc.abstractmethod
    def quarantine_oldest(self) -> datetime | None:
        """When the oldest item in quarantine was fetched, or None when it is empty."""

    @abc.abstractmethod
    def quarantine_list(self) -> list[RejectedItem]:
        """Every item in quarantine with its id, oldest fetched first (then id)."""

    @abc.abstractmethod
    def quarantine_remove(self, ids: Iterable[str]) -> None:
        """Delete these items from quarantine (unknown ids are ignored), in batches."""

    # -- lease ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def acquire_lease(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        """Take the run lease atomically if it is free or expired (or already ours)."""

    @abc.abstractmethod
    def release_lease(self, owner: str) -> None:
        """Give the lease back if `owner` still holds it."""

    @abc.abstractmethod
    def get_lease(self) -> Lease | None:
        """The current lease, expired or not, or None."""

    # -- small named documents -----------------------------------------------------------------
    @abc.abstractmethod
    def get_meta(self, name: str) -> dict[str, Any] | None:
        """A small JSON-able document by name, or None."""

    @abc.abstractmethod
    def put_meta(self, name: str, value: dict[str, Any]) -> None:
        """Replace a small named document (values: str, int, float, bool, None, lists, dicts)."""

    @abc.abstractmethod
    def delete_meta(self, name: str) -> None:
        """Remove a named document if present."""

    # -- run history ---------------------------------------------------------------------------
    @abc.abstractmethod
    def record_run(self, record: dict[str, Any], keep: int = 100) -> None:
        """Append a run record (it has a `started_at` ISO string); keep only the newest `keep`."""

    @abc.abstractmethod
    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest run records first."""

    def close(self) -> None:
        """Release connections."""
