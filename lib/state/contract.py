"""The state store's contract, one small protocol per concern; `StateStore` is all of them.

Code that needs one concern can ask for just that protocol (a `TokenCache` for the Moneypenny
client, `Documents` for the alert state); both stores satisfy every one. The methods are
abstract, so that a store that forgets one cannot be made.

All datetimes passed in and returned are timezone-aware (UTC is stored). Callers pass `now`
explicitly so that tests can move the clock.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..counters import StoreCounters
from .claims import Claim
from .documents import D, Document
from .models import CachedToken, InflightBatch, JournalEntry, Lease, RejectedItem
from .run_state import LeaseHold, RunState


class TokenCache(Protocol):
    """The Moneypenny bearer token, shared by every instance for its 24 hours (a part of the
    run state: each call is a read of it, and a change one write by version)."""

    @abstractmethod
    def get_token(self) -> CachedToken | None:
        """The cached Moneypenny token, or None."""

    @abstractmethod
    def put_token(self, token: CachedToken) -> None:
        """Replace the cached token."""

    @abstractmethod
    def clear_token(self) -> None:
        """Forget the cached token (after Moneypenny refused it)."""


class Journal(Protocol):
    """Every fetched item, with its state per destination, until it is delivered and expires."""

    @abstractmethod
    def journal_add(self, entries: Iterable[JournalEntry]) -> list[str]:
        """Insert entries whose key is not yet in the journal, in batches; return the new keys.

        An entry whose key is already present is left exactly as it is (whatever its state),
        so fetching the same chat again changes nothing. New keys cost no read: only a batch
        that meets a key already present reads that batch's keys.
        """

    @abstractmethod
    def journal_pending(self) -> list[JournalEntry]:
        """Every entry still pending (a destination its mapping names, as last written, is not
        done), oldest item first (then key).

        An entry whose key is in a stored in-flight batch (and not done for the batch's
        destination) comes back INFLIGHT for that destination, with the batch's label and the
        batch in `inflight`; the batches are read only when some entry is pending.
        """

    @abstractmethod
    def journal_any_pending(self) -> bool:
        """Whether any entry is pending (one read: a query of at most one document)."""

    @abstractmethod
    def journal_get(self, keys: Iterable[str]) -> dict[str, JournalEntry]:
        """The entries with these keys that exist (delivered or not), as their own documents
        hold them (in-flight batches are not read)."""

    @abstractmethod
    def batch_put(self, batch: InflightBatch) -> None:
        """Store (or replace, under its id) an in-flight batch: one write, not one per key."""

    @abstractmethod
    def batch_put_held(self, batch: InflightBatch, hold: LeaseHold) -> RunState | None:
        """`batch_put`, fenced by the lease: in one transaction with a read of the run state,
        written only if `hold.owner` still holds the lease (renewed, as `hold_lease` does, when
        near its end by the store's clock); else LeaseLost and nothing written. Returns the run
        state as it now stands, or None when its new version is not known here."""

    @abstractmethod
    def batch_list(self) -> list[InflightBatch]:
        """Every stored in-flight batch, by id."""

    @abstractmethod
    def batch_delete(self, batches: Iterable[InflightBatch]) -> None:
        """Forget these in-flight batches (unknown ones are ignored)."""

    @abstractmethod
    def journal_update(self, keys: Iterable[str], **changes: Any) -> None:
        """Set fields on existing entries (missing keys are skipped), in batches.

        Allowed fields: states (the entry's whole mapping of destination states, which decides
        whether it is pending), labels (its whole mapping of in-flight labels; cleared when
        `states` is given without it), expires_at; any
        other raises `UnknownJournalField` (a ValueError naming it) before anything is written.
        """

    @abstractmethod
    def journal_prune(self, now: datetime) -> int:
        """Delete delivered entries whose expires_at has passed; return how many.

        Quarantined items and in-flight batches whose expires_at has passed go too (not counted). Firestore leaves
        both to its TTL policies and may return 0.
        """


class Quarantine(Protocol):
    """Items that could not be read, kept for a person to look at."""

    @abstractmethod
    def quarantine(self, items: Iterable[RejectedItem]) -> None:
        """Keep unreadable items so that nothing fetched is lost."""

    @abstractmethod
    def quarantine_count(self, since: datetime | None = None) -> int:
        """How many items are in quarantine (only those fetched at or after `since`, if given)."""

    @abstractmethod
    def quarantine_oldest(self) -> datetime | None:
        """When the oldest item in quarantine was fetched, or None when it is empty."""

    @abstractmethod
    def quarantine_list(self) -> list[RejectedItem]:
        """Every item in quarantine with its id, oldest fetched first (then id)."""

    @abstractmethod
    def quarantine_remove(self, ids: Iterable[str]) -> None:
        """Delete these items from quarantine (unknown ids are ignored), in batches."""


class RunStates(Protocol):
    """The run state (lib/state/run_state.py): one document, read and written whole, by version."""

    @abstractmethod
    def read_run_state(self) -> RunState:
        """The stored run state with its version (an empty one, version None, if never written).

        A store upgraded from separate documents builds it from them on this first read.
        """

    @abstractmethod
    def write_run_state(self, state: RunState, seen: RunState) -> RunState | None:
        """Store `state` if the stored state is still `seen` (same version, or still absent when
        `seen.version` is None); return `state` with its new version, or None (nothing written)
        when it changed meanwhile. Costs one write, no read."""

    @abstractmethod
    def update_run_state(self, change: Callable[[RunState], RunState | None]) -> RunState:
        """Read the state, write `change(state)` by version, again until no other write came
        between; `change` returning None writes nothing. Returns the state as it now stands."""


class Leases(Protocol):
    """The one run lease (a part of the run state): at most one run works on the journal at a time."""

    @abstractmethod
    def acquire_lease(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        """Take the run lease atomically if it is free or expired (or already ours), judged by
        the store's clock; only the length `expires_at - now` is the caller's."""

    @abstractmethod
    def hold_lease(self, hold: LeaseHold, wait: timedelta | None = None) -> RunState:
        """Make sure `hold.owner` still holds the lease, for at least `hold.margin` plus `wait`
        more by the store's clock, renewing it when not (one read; one write when renewed).
        Raises LeaseLost (nothing written) when the lease is another run's or was since."""

    @abstractmethod
    def release_lease(self, owner: str) -> None:
        """Give the lease back if `owner` still holds it."""

    @abstractmethod
    def get_lease(self) -> Lease | None:
        """The current lease, expired or not, or None."""


class Documents(Protocol):
    """Small named documents: raw JSON-able dicts by name, or typed (lib/state/documents.py).

    The cursor, the schedule log and the alert state (`run_state.PARTS`) are parts of the run
    state: these calls read and write them there (a write by version, so one read and one write).
    """

    @abstractmethod
    def get_meta(self, name: str) -> dict[str, Any] | None:
        """A small JSON-able document by name, or None."""

    @abstractmethod
    def put_meta(self, name: str, value: dict[str, Any]) -> None:
        """Replace a small named document (values: str, int, float, bool, None, lists, dicts)."""

    @abstractmethod
    def delete_meta(self, name: str) -> None:
        """Remove a named document if present."""

    @abstractmethod
    def read_doc(self, kind: type[D]) -> D | None:
        """The document of this class (under its NAME), or None; DocumentError if malformed."""

    @abstractmethod
    def write_doc(self, doc: Document) -> None:
        """Replace the document under its class's NAME with `doc.to_dict()`."""

    @abstractmethod
    def delete_doc(self, kind: type[Document]) -> None:
        """Remove the document of this class if present."""


class RunLog(Protocol):
    """The history of runs (a ring in the run state), newest first, of a fixed length."""

    @abstractmethod
    def record_run(self, record: dict[str, Any], keep: int = 100) -> None:
        """Add a run record (it has a `started_at` ISO string) to the run state's ring of `keep`
        (one read and one write; no query). A record with the same `run_id` is replaced."""

    @abstractmethod
    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest run records first (by started_at): one read of the run state."""


class Claims(Protocol):
    """Claims from Slack's "Claim" button (lib/state/claims.py): the first click on an item wins."""

    @abstractmethod
    def claim_get(self, feed: str, key: str) -> Claim | None:
        """The claim on this item, or None (one read)."""

    @abstractmethod
    def claims_of(self, items: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Claim]:
        """The claims on those (feed, key) items that have one, by item (one round trip: a
        click's message update looks up every other button of the message at once)."""

    @abstractmethod
    def claim_take(self, claim: Claim) -> tuple[Claim, bool]:
        """In one transaction: the claim already on `claim`'s item and False, or `claim` stored
        and True, with the run state's `claims_due` raised by one (so the next run looks)."""

    @abstractmethod
    def claim_put(self, claim: Claim) -> None:
        """Store what is done of a claim that exists (one write)."""

    @abstractmethod
    def claims_due(self) -> list[Claim]:
        """Every claim not yet written to both the sheet and its message, oldest first (one query)."""


class StateStore(TokenCache, Journal, Quarantine, RunStates, Leases, Documents, RunLog, Claims, Protocol):
    """Where the sync keeps everything that must outlive one run.

    `counters` (a `lib.counters.StoreCounters`) counts round trips and the documents read,
    written and deleted, as Firestore bills them, since the store was opened.
    """

    counters: StoreCounters

    @property
    @abstractmethod
    def round_trips(self) -> int:
        """Server round trips so far (the same as `counters.round_trips`)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
