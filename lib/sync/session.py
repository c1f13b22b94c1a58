"""The run's state (lib/state/run_state.py): read once when the lease is taken, written once at the end.

`begin` reads the run state and, in one write by version, takes the lease and makes the fetch
intent durable (the intent must be stored before Moneypenny's cursor-moving call). During the
run the cursor is settled in memory only (lib/sync/fetch.py). `finish` writes the rest in one
write: the settled cursor, the scheduled run noted as done, the quarantine hint, the run's record
and the lease given back. That write names the version `begin` wrote; when the state changed
since (a skipped run recorded itself, or the lease expired and another run took it over), it
reads the state again and writes only what is still this run's to write: a run that lost its
lease adds its record (and its scheduled run's name) but leaves the cursor and lease alone.

The run state also says whether the journal may hold pending entries (`pending`, see
lib/state/run_state.py): a run that finds it False does not ask the journal (an idle run reads
the run state and nothing else). Only `finish` sets it back to False, and only on evidence: a
query of the journal that came after the state was read at the very version the write names
(a pending mark, written with every entry left pending, changes that version). The run's own
query of what earlier runs left counts as that evidence when the run delivered everything it
knew of and its write still names the version it queried at; else `finish` asks the journal
once more (a query of one document) before the write, and again after reading the state anew
when that write meets a newer version.

A run that takes over a lease left behind (its run died before `finish`) cannot know what that
run set aside, so the quarantine hint becomes unknown until a count clears it.

The lease is judged by the store's clock (each read of the run state carries the store's time),
never the run's own: a caller whose clock runs fast cannot take a lease still held. Just before
each write to the sheet or Slack the run makes sure it still holds it (`hold`, `put_batch`),
renewing it when near its end, so a delivery longer than the lease keeps it, and a run that
lost it (asleep through a 429 storm while another run took over) writes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from ..clock import Clock, utcnow
from ..settings import LEASE_MARGIN_SECONDS
from ..state.contract import StateStore
from ..state.documents import CursorDoc, FetchIntent
from ..state.models import InflightBatch, Lease
from ..state.run_state import QUARANTINE_UNKNOWN, LeaseHold, RunState

__all__ = ["LEASE_MARGIN", "RunSession"]

# A write to the sheet or Slack needs the lease to last at least this much longer by the store's
# clock (else it is renewed first): the request and its answer fit well inside it (settings
# refuses a LEASE_SECONDS shorter than it plus HTTP_TIMEOUT_SECONDS).
LEASE_MARGIN = timedelta(seconds=LEASE_MARGIN_SECONDS)


class RunSession:
    """One run's view of the run state, owned by the run whose id is `owner`."""

    def __init__(self, store: StateStore, owner: str, clock: Clock = utcnow):
        self.store = store
        self.owner = owner
        self.clock = clock  # the run's own clock: only its rate is used here (time elapsed)
        self.length = timedelta(0)  # how long the lease lasts when taken or renewed (set by `begin`)
        self._seen = RunState()
        self._seen_by_clock = clock()  # the run's clock when the store's time `seen.read_at` was read
        # The cursor as this run has settled it so far: what `finish` writes.
        self.cursor = CursorDoc()
        self.carried: FetchIntent | None = None  # an intent an earlier read left, found by `begin`
        self.already_done = False  # the scheduled run `begin` was told of had succeeded before
        self.holder: Lease | None = None  # the lease that kept this run out (begin returned False)
        # Another run held the lease while this one ran (found by `renew`): its cursor is not ours to settle.
        self.retaken = False
        # The run state's version when this run asked the journal what is pending (None: it did not).
        self._queried_at: Any = None

    @property
    def seen(self) -> RunState:
        """The run state as this run last read or wrote it."""
        return self._seen

    @seen.setter
    def seen(self, state: RunState) -> None:
        if state.read_at is not None and state.read_at != self._seen.read_at:
            self._seen_by_clock = self.clock()
        self._seen = state

    def store_clock(self) -> datetime:
        """The store's time now, as this run best knows it: the store's time of its last read
        of the run state plus what the run's own clock says has elapsed since (its rate, not its
        setting: a clock 11 minutes fast measures the same minutes). The in-flight batches are
        labelled and judged settled by it, so that runs whose clocks disagree agree on how old
        an unanswered append is. The run's own clock when no read carried the store's time."""
        if self._seen.read_at is None:
            return self.clock()
        return self._seen.read_at + (self.clock() - self._seen_by_clock)

    def may_be_pending(self) -> bool:
        """Whether the journal must be asked for pending entries (the run state does not promise none)."""
        return self.seen.may_be_pending()

    def queried(self) -> None:
        """Note that the run asked the journal for every pending entry just now (after the
        state it last read or wrote): evidence `finish` may use to promise nothing is pending."""
        self._queried_at = self.seen.version

    def quarantine_hint(self, now: datetime) -> bool:
        """Whether the quarantine may hold unexpired items (else counting it is not needed)."""
        return self.seen.quarantine_may_hold_items(now)

    def begin(self, length: timedelta, *, schedule: str | None = None,
              plan: Callable[[CursorDoc], CursorDoc] = lambda cursor: cursor) -> bool:
        """Take the lease for `length` and store `plan(cursor)` (the fetch intent) in one write.

        False (nothing written) when another run holds the lease, by the store's clock. A
        scheduled run that already succeeded (`schedule` among the done names) takes the lease
        but plans no read.
        """
        self.length = length

        def change(state: RunState) -> RunState | None:
            if state.held_by_other(self.owner):
                return None
            self.already_done = schedule is not None and state.schedules.has(schedule)
            self.carried = state.cursor.intent
            cursor = state.cursor if self.already_done else plan(state.cursor)
            taken = dataclasses.replace(state, lease=Lease(self.owner, state.store_now() + length), cursor=cursor)
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

    def renew(self) -> str:
        """Hold the lease for its length again, for a run that may have outlived it.

        "kept": no other run took it meanwhile (what this run holds in memory is still right);
        "retaken": another run held it in between and is done (it may have delivered what this
        run journaled: ask the store); "lost": another run holds it now.
        """
        outcome = "lost"

        def change(state: RunState) -> RunState | None:
            nonlocal outcome
            if state.lease is not None and state.lease.owner == self.owner:
                outcome = "kept"
            elif state.held_by_other(self.owner):
                outcome = "lost"
                return None
            else:
                outcome = "retaken"
            return dataclasses.replace(state, lease=Lease(self.owner, state.store_now() + self.length))

        self.seen = self.store.update_run_state(change)
        self.retaken = self.retaken or outcome == "retaken"
        return outcome

    @property
    def _hold(self) -> LeaseHold:
        return LeaseHold(self.owner, self.length, LEASE_MARGIN)

    def hold(self, wait: float = 0.0) -> None:
        """Just before a write to the sheet or Slack (or a wait of `wait` seconds before one):
        make sure this run still holds the lease for LEASE_MARGIN (and the wait) more by the
        store's clock, renewing it when not. LeaseLost when another run took it meanwhile."""
        self.seen = self.store.hold_lease(self._hold, timedelta(seconds=wait))

    def put_batch(self, batch: InflightBatch) -> None:
        """Store an in-flight batch document only while this run holds the lease (checked, and
        renewed when near its end, in the same transaction); else LeaseLost, nothing stored."""
        state = self.store.batch_put_held(batch, self._hold)
        if state is not None:
            self.seen = state

    def finish(self, record: dict[str, Any] | None, *, schedule_done: str | None = None,
               quarantined_until: datetime | None = None, quarantine_empty: bool = False,
               reconciled_at: datetime | None = None, reminded_on: date | None = None,
               settled: bool = False) -> None:
        """Write what the run leaves: its cursor, lease given back, `record`, the scheduled run
        `schedule_done`, the quarantine hint (raised to `quarantined_until`, cleared when this
        run counted it empty), when its reconcile read reached the journal (`reconciled_at`:
        that read is in the journal whoever holds the lease now), the day of the reminder of
        unclaimed leads it posted (`reminded_on`) — in one write by version, or, when the state
        changed since, by reading it again (see the module's docstring).

        `settled`: this run delivered everything it knew of (nothing it read or was left is
        still pending): then the pending flag is cleared when the evidence allows it."""

        def change(state: RunState, clear: bool = False) -> RunState:
            ours = state.lease is not None and state.lease.owner == self.owner
            if ours and self.retaken:
                state = dataclasses.replace(state, lease=None)
            elif ours:
                state = dataclasses.replace(state, lease=None, cursor=self.cursor)
                if quarantine_empty:
                    state = dataclasses.replace(state, quarantine_until=None)
            state = state.with_quarantine_until(quarantined_until).with_reconciled_at(reconciled_at)
            state = state.with_reminded_on(reminded_on)
            if schedule_done is not None:
                state = dataclasses.replace(state, schedules=state.schedules.with_done(schedule_done))
            if clear:
                state = dataclasses.replace(state, pending=False)
            return state if record is None else state.with_record(record)

        # The run's own query is the evidence while the state is still at the version it was at.
        evidence = settled and self._queried_at is not None and self._queried_at == self.seen.version
        if settled and not evidence and self.seen.may_be_pending():
            # Asked now, after the state was read (or written) at the version the write names.
            evidence = not self.store.journal_any_pending()
        written = self.store.write_run_state(change(self.seen, evidence), self.seen)
        if written is None and settled:
            written = self._finish_asking(change)
        self.seen = written if written is not None else self.store.update_run_state(change)

    def _finish_asking(self, change: Callable[[RunState, bool], RunState]) -> RunState | None:
        # The state changed since this run last saw it (a mark among the changes, maybe): read
        # it, ask the journal, and write by the version read (None when it changed again).
        state = self.store.read_run_state()
        clear = state.may_be_pending() and not self.store.journal_any_pending()
        return self.store.write_run_state(change(state, clear), state)
