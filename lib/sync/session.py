"""The run's state (lib/state/run_state.py): read once when the lease is taken, written once at the end.

`begin` reads the run state and, in one write by version, takes the lease and makes the fetch
intent durable (the intent must be stored before Moneypenny's cursor-moving call). During the
run the cursor is settled in memory only (lib/sync/fetch.py). `finish` writes the rest in one
write: the settled cursor, the scheduled run noted as done, the quarantine hint, the run's record
and the lease given back. That write names the version `begin` wrote; when the state changed
since (a skipped run recorded itself, or the lease expired and another run took it over), it
reads the state again and writes only what is still this run's to write: a run that lost its
lease adds its record (and its scheduled run's name) but leaves the cursor and lease alone.

A run that takes over a lease left behind (its run died before `finish`) cannot know what that
run set aside, so the quarantine hint becomes unknown until a count clears it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..state.base import Lease, StateStore
from ..state.documents import CursorDoc, FetchIntent
from ..state.run_state import QUARANTINE_UNKNOWN, RunState

__all__ = ["RunSession"]


class RunSession:
    """One run's view of the run state, owned by the run whose id is `owner`."""

    def __init__(self, store: StateStore, owner: str):
        self.store = store
        self.owner = owner
        self.seen = RunState()  # the run state as this run last read or wrote it
        # The cursor as this run has settled it so far: what `finish` writes.
        self.cursor = CursorDoc()
        self.carried: FetchIntent | None = None  # an intent an earlier read left, found by `begin`
        self.already_done = False  # the scheduled run `begin` was told of had succeeded before
        self.holder: Lease | None = None  # the lease that kept this run out (begin returned False)
        # Another run held the lease while this one ran (found by `renew`): its cursor is not ours to settle.
        self.retaken = False

    def quarantine_hint(self, now: datetime) -> bool:
        """Whether the quarantine may hold unexpired items (else counting it is not needed)."""
        return self.seen.quarantine_may_hold_items(now)

    def begin(self, now: datetime, until: datetime, *, schedule: str | None = None,
              plan: Callable[[CursorDoc], CursorDoc] = lambda cursor: cursor) -> bool:
        """Take the lease until `until` and store `plan(cursor)` (the fetch intent) in one write.

        False (nothing written) when another run holds the lease. A scheduled run that already
        succeeded (`schedule` among the done names) takes the lease but plans no read.
        """

        def change(state: RunState) -> RunState | None:
            if state.held_by_other(self.owner, now):
                return None
            self.already_done = schedule is not None and state.schedules.has(schedule)
            self.carried = state.cursor.intent
            cursor = state.cursor if self.already_done else plan(state.cursor)
            taken = dataclasses.replace(state, lease=Lease(self.owner, until), cursor=cursor)
            if state.lease is not None and state.lease.owner != self.owner:
                # A lease left behind: its run may have set items aside without saying so.
                taken = dataclasses.replace(taken, quarantine_until=QUARANTINE_UNKNOWN)
            return taken

        state = self.store.update_run_state(change)
        self.seen = state
        if state.lease is None or state.lease.owner != self.owner:
            self.holder = state.lease
            return False
        self.cursor = state.cursor
        return True

    def renew(self, now: datetime, until: datetime) -> str:
        """Hold the lease until `until`, for a run that may have outlived it.

        "kept": no other run took it meanwhile (what this run holds in memory is still right);
        "retaken": another run held it in between and is done (it may have delivered what this
        run journaled: ask the store); "lost": another run holds it now.
        """
        outcome = "lost"

        def change(state: RunState) -> RunState | None:
            nonlocal outcome
            if state.lease is not None and state.lease.owner == self.owner:
                outcome = "kept"
            elif state.held_by_other(self.owner, now):
                outcome = "lost"
                return None
            else:
                outcome = "retaken"
            return dataclasses.replace(state, lease=Lease(self.owner, until))

        self.seen = self.store.update_run_state(change)
        self.retaken = self.retaken or outcome == "retaken"
        return outcome

    def finish(self, record: dict[str, Any] | None, *, schedule_done: str | None = None,
               quarantined_until: datetime | None = None, quarantine_empty: bool = False,
               reconciled_at: datetime | None = None) -> None:
        """Write what the run leaves: its cursor, lease given back, `record`, the scheduled run
        `schedule_done`, the quarantine hint (raised to `quarantined_until`, cleared when this
        run counted it empty), when its reconcile read reached the journal (`reconciled_at`:
        that read is in the journal whoever holds the lease now) — in one write by version, or,
        when the state changed since, by reading it again (see the module's docstring)."""

        def change(state: RunState) -> RunState:
            ours = state.lease is not None and state.lease.owner == self.owner
            if ours and self.retaken:
                state = dataclasses.replace(state, lease=None)
            elif ours:
                state = dataclasses.replace(state, lease=None, cursor=self.cursor)
                if quarantine_empty:
                    state = dataclasses.replace(state, quarantine_until=None)
            state = state.with_quarantine_until(quarantined_until).with_reconciled_at(reconciled_at)
            if schedule_done is not None:
                state = dataclasses.replace(state, schedules=state.schedules.with_done(schedule_done))
            return state if record is None else state.with_record(record)

        written = self.store.write_run_state(change(self.seen), self.seen)
        self.seen = written if written is not None else self.store.update_run_state(change)
