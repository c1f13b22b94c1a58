"""The contract's run-state parts (lease, run history, the cursor and schedule log as named
documents) on top of a store's two run-state calls, `read_run_state` and `write_run_state`.

Both stores inherit this, so the lease rule and the history ring are written once. Each call
here is one read of the run state and, when it changes something, one write by version (the
optimistic form of a one-document transaction: a write that meets a newer version reads again).
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..clock import Clock
from ..errors import StateStoreUnavailable
from .base import StoreBase
from .common import utc
from .models import Lease
from .run_state import PARTS, RUNS_KEPT, LeaseHold, RunState

ATTEMPTS = 10  # writes by version that may meet another one before giving up (a transient error)


class RunStateStore(StoreBase):
    """Lease, run history and the run state's named parts, for any store with the two calls."""

    # The store's clock for tests that move time by hand; None (production): the store's own
    # (Firestore's read time, SQLite's `now`). Never the caller's clock.
    clock: Clock | None = None

    @abstractmethod
    def _get_named(self, name: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def _put_named(self, name: str, value: dict[str, Any]) -> None: ...

    @abstractmethod
    def _delete_named(self, name: str) -> None: ...

    def update_run_state(self, change: Callable[[RunState], RunState | None]) -> RunState:
        """Read the state, write `change(state)` by version, again until no other write came
        between; `change` returning None writes nothing. Returns the state as it now stands."""
        for _ in range(ATTEMPTS):
            seen = self.read_run_state()
            wanted = change(seen)
            if wanted is None or (wanted == seen and seen.version is not None):
                return seen
            written = self.write_run_state(wanted, seen)
            if written is not None:
                return written
        raise StateStoreUnavailable("the run state kept changing under this write (contention); try again")

    # -- lease ---------------------------------------------------------------------------------
    def acquire_lease(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        """Take the run lease atomically if it is free or expired (or already ours).

        Only the length `expires_at - now` is the caller's: whether the lease is free, and
        when it ends, are judged by the store's clock.
        """
        length = utc(expires_at) - utc(now)
        taken = False

        def change(s: RunState) -> RunState | None:
            nonlocal taken
            taken = not s.held_by_other(owner)  # this attempt's word (a write that met another reads again)
            if not taken:
                return None
            return dataclasses.replace(s, lease=Lease(owner, s.store_now() + length))

        self.update_run_state(change)
        return taken

    def hold_lease(self, hold: LeaseHold, wait: timedelta | None = None) -> RunState:
        """Make sure `hold.owner` still holds the lease, for at least `hold.margin` plus `wait`
        more by the store's clock, renewing it when not (one read; one write when renewed).
        Raises LeaseLost (nothing written) when the lease is another run's or was since.
        Returns the state as it now stands."""
        return self.update_run_state(lambda s: hold.applied(s, wait or timedelta(0)))

    def release_lease(self, owner: str) -> None:
        """Give the lease back if `owner` still holds it."""
        self.update_run_state(
            lambda s: dataclasses.replace(s, lease=None) if s.lease is not None and s.lease.owner == owner else None)

    def get_lease(self) -> Lease | None:
        """The current lease, expired or not, or None."""
        return self.read_run_state().lease

    # -- run history ---------------------------------------------------------------------------
    def record_run(self, record: dict[str, Any], keep: int = RUNS_KEPT) -> None:
        """Add a run record to the ring of `keep` (one read, one write); the same run_id is replaced."""
        self.update_run_state(lambda s: s.with_record(record, keep))

    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest run records first: one read of the run state."""
        return self.read_run_state().records()[:max(limit, 0)] if limit > 0 else []

    # -- named documents -----------------------------------------------------------------------
    def get_meta(self, name: str) -> dict[str, Any] | None:
        """A small JSON-able document by name, or None (the run state's parts read from it)."""
        if name in PARTS:
            return self.read_run_state().part(name)
        return self._get_named(name)

    def put_meta(self, name: str, value: dict[str, Any]) -> None:
        """Replace a small named document (a part of the run state: by version, in the run state)."""
        if name in PARTS:
            self.update_run_state(lambda s: s.with_part(name, value))
        else:
            self._put_named(name, value)

    def delete_meta(self, name: str) -> None:
        """Remove a named document if present."""
        if name in PARTS:
            self.update_run_state(lambda s: s.with_part(name, None))
        else:
            self._delete_named(name)
