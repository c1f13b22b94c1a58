"""The run state's own rules, without a store (lib/state/run_state.py): whose lease holds at the
store's time of the read, the quarantine hint (raised, never lowered), the ring of run records,
the scheduled runs done, the lease a run renews, and the stored shape: a round trip, and what a
malformed stored document raises. Every expected value is written out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lib.errors import DocumentError, LeaseLost
from lib.state.documents import CursorDoc, FetchIntent, ScheduleDoc
from lib.state.models import CachedToken, Lease
from lib.state.run_state import LAYOUT, QUARANTINE_UNKNOWN, RECORD_BYTES, LeaseHold, RunState, in_layout

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
MINUTE = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- the lease, judged at the store's time of the read ---------------------------------------------

# (the lease, who asks, the store's time of the read, whether another run holds it)
HELD = [
    pytest.param(None, "me", T0, False, id="no-lease"),
    pytest.param(Lease("me", at(5)), "me", T0, False, id="my-own-running-lease"),
    pytest.param(Lease("other", at(5)), "me", T0, True, id="another-runs-running-lease"),
    pytest.param(Lease("other", T0), "me", T0, False, id="another-runs-lease-ending-at-the-read"),
    pytest.param(Lease("other", T0 + US), "me", T0, True, id="another-runs-lease-a-microsecond-left"),
    pytest.param(Lease("other", at(-1)), "me", T0, False, id="another-runs-expired-lease"),
]


@pytest.mark.parametrize("lease, owner, read_at, held", HELD)
def test_a_lease_is_held_by_another_run_only_while_it_runs_at_the_stores_time_of_the_read(lease, owner, read_at, held):
    assert RunState(lease=lease, read_at=read_at).held_by_other(owner) is held


def test_the_lease_is_judged_by_the_stores_read_time_not_the_callers_clock():
    lease = Lease("other", at(5))
    assert RunState(lease=lease, read_at=at(4)).held_by_other("me")
    assert not RunState(lease=lease, read_at=at(6)).held_by_other("me")
    # A time given names the moment to judge at, whatever the read's time.
    assert not RunState(lease=lease, read_at=at(4)).held_by_other("me", now=at(6))


def test_a_state_that_carries_no_store_time_refuses_to_judge_a_lease():
    state = RunState(lease=Lease("other", at(5)))
    with pytest.raises(ValueError, match="store's time"):
        state.held_by_other("me")
    with pytest.raises(ValueError, match="store's time"):
        state.store_now()


# (the lease, the store's time of the read, the wait ahead, the lease after, None: left as it was)
RENEWALS = [
    pytest.param(Lease("me", at(10)), T0, timedelta(0), None, id="ten-minutes-left-needs-nothing"),
    pytest.param(Lease("me", at(2)), T0, timedelta(0), None, id="exactly-the-margin-left-needs-nothing"),
    pytest.param(Lease("me", at(2) - US), T0, timedelta(0), Lease("me", at(10)), id="under-the-margin-renewed"),
    pytest.param(Lease("me", at(5)), at(4), timedelta(0), Lease("me", at(14)), id="renewed-from-the-stores-time"),
    pytest.param(Lease("me", at(10)), T0, timedelta(minutes=9), Lease("me", at(11)),
                 id="a-wait-past-the-margin-renews-for-wait-and-margin"),
    pytest.param(Lease("me", at(10)), T0, timedelta(minutes=20), Lease("me", at(22)),
                 id="a-wait-longer-than-the-lease-renews-past-it"),
]


@pytest.mark.parametrize("lease, read_at, wait, after", RENEWALS)
def test_a_held_lease_is_renewed_from_the_stores_time_only_when_too_little_is_left(lease, read_at, wait, after):
    hold = LeaseHold("me", length=timedelta(minutes=10), margin=timedelta(minutes=2))
    renewed = hold.applied(RunState(lease=lease, read_at=read_at), wait)
    assert (None if renewed is None else renewed.lease) == after


@pytest.mark.parametrize("lease", [None, Lease("other", at(10)), Lease("other", at(-10))],
                         ids=["given-back", "taken-by-another-run", "taken-and-expired"])
def test_a_lease_that_is_not_the_runs_own_is_lost_for_good(lease):
    hold = LeaseHold("me", length=timedelta(minutes=10), margin=timedelta(minutes=2))
    with pytest.raises(LeaseLost, match="no longer holds the run lease"):
        hold.applied(RunState(lease=lease, read_at=T0))


# -- the quarantine hint ------------------------------------------------------------------------

# (the hint, now, whether the quarantine may hold items that make a run unhealthy)
MAY_HOLD = [
    pytest.param(None, T0, False, id="no-hint"),
    pytest.param(at(1), T0, True, id="until-later"),
    pytest.param(T0, T0, False, id="until-now"),
    pytest.param(at(-1), T0, False, id="until-passed"),
    pytest.param(QUARANTINE_UNKNOWN, T0, True, id="unknown-end"),
]


@pytest.mark.parametrize("until, now, may_hold", MAY_HOLD)
def test_the_quarantine_may_hold_items_only_until_its_hint(until, now, may_hold):
    assert RunState(quarantine_until=until).quarantine_may_hold_items(now) is may_hold


# (the hint, the time a run raises it to, the hint after)
RAISED = [
    pytest.param(None, None, None, id="nothing-to-nothing"),
    pytest.param(None, at(5), at(5), id="set-from-none"),
    pytest.param(at(5), at(9), at(9), id="raised"),
    pytest.param(at(9), at(5), at(9), id="never-lowered"),
    pytest.param(at(9), None, at(9), id="none-leaves-it"),
    pytest.param(QUARANTINE_UNKNOWN, at(5), QUARANTINE_UNKNOWN, id="unknown-stays-unknown"),
]


@pytest.mark.parametrize("current, until, after", RAISED)
def test_the_quarantine_hint_is_raised_never_lowered(current, until, after):
    assert RunState(quarantine_until=current).with_quarantine_until(until).quarantine_until == after


@pytest.mark.parametrize("current, at_, after", [
    pytest.param(None, at(5), at(5), id="set-from-none"),
    pytest.param(at(5), at(9), at(9), id="raised"),
    pytest.param(at(9), at(5), at(9), id="a-slow-run-keeps-the-newer-one"),
    pytest.param(at(9), None, at(9), id="none-leaves-it"),
])
def test_the_reconcile_time_is_raised_never_lowered(current, at_, after):
    assert RunState(reconciled_at=current).with_reconciled_at(at_).reconciled_at == after


# -- the ring of run records --------------------------------------------------------------------


def record(run_id: str, started_at: str = "", **extra: object) -> dict[str, object]:
    return {"run_id": run_id, "started_at": started_at, **extra}


def ring(run_ids: list[str], keep: int) -> RunState:
    state = RunState()
    for run_id in run_ids:
        state = state.with_record(record(run_id), keep=keep)
    return state


# (runs added in order, slots kept, the runs listed newest first, records ever added)
RINGS = [
    pytest.param(["a"], 3, ["a"], 1, id="one"),
    pytest.param(["a", "b", "c"], 3, ["c", "b", "a"], 3, id="full"),
    pytest.param(["a", "b", "c", "d", "e"], 3, ["e", "d", "c"], 5, id="wrapped-oldest-overwritten"),
    pytest.param(["a", "b", "c", "d", "e", "f", "g"], 3, ["g", "f", "e"], 7, id="wrapped-twice"),
    pytest.param(["a", "b"], 0, ["b"], 2, id="keep-none-still-keeps-one"),
]


@pytest.mark.parametrize("added, keep, newest_first, seq", RINGS)
def test_the_run_history_keeps_the_newest_records_in_a_ring_and_counts_every_one(added, keep, newest_first, seq):
    state = ring(added, keep)
    assert [r["run_id"] for r in state.records()] == newest_first
    assert state.seq == seq
    assert len(state.history) == len(newest_first)


def test_a_record_with_a_run_id_already_kept_replaces_it_in_its_slot():
    state = ring(["a", "b", "c"], 3).with_record(record("b", outcome="failed"), keep=3)
    assert [(r["run_id"], r.get("outcome")) for r in state.records()] == [("c", None), ("b", "failed"), ("a", None)]
    assert state.seq == 3  # a replaced record is not counted again
    # ... and it keeps its place: the next record overwrites the oldest, "a", not "b".
    assert [r["run_id"] for r in state.with_record(record("d"), keep=3).records()] == ["d", "c", "b"]


def test_a_smaller_keep_drops_the_slots_past_it_on_the_next_record():
    state = ring(["a", "b", "c", "d"], 4).with_record(record("e"), keep=2)
    assert len(state.history) == 2
    assert "e" in [r["run_id"] for r in state.records()]


def test_records_are_listed_by_when_their_run_started_then_by_when_they_were_added():
    state = RunState()
    for run_id, started in [("late", "2026-11-20T12:05:00+00:00"), ("early", "2026-11-20T12:00:00+00:00"),
                            ("naive-middle", "2026-11-20T12:03:00"), ("same-as-early", "2026-11-20T12:00:00Z")]:
        state = state.with_record(record(run_id, started))
    assert [r["run_id"] for r in state.records()] == ["late", "naive-middle", "same-as-early", "early"]


def test_trimmed_keeps_the_most_recently_added_records():
    state = ring(["a", "b", "c", "d"], 10).trimmed(2)
    assert [r["run_id"] for r in state.records()] == ["d", "c"]
    assert ring(["a"], 10).trimmed(0).history == {}


def test_a_record_too_big_for_its_slot_is_cut_and_keeps_its_counts():
    huge = record("big", "2026-11-20T12:00:00+00:00", appended=7,
                  errors=[{"step": f"s{i}", "cause": "c", "message": "x" * 5000} for i in range(50)],
                  unhealthy=["y" * 5000] * 20)
    state = RunState().with_record(huge)
    (slot_text,) = state.history.values()
    assert len(slot_text) < RECORD_BYTES + 100
    (kept,) = state.records()
    assert (kept["run_id"], kept["appended"]) == ("big", 7)
    assert len(kept["errors"]) == 10 and len(kept["unhealthy"]) == 5


# -- the scheduled runs done --------------------------------------------------------------------

# (schedule times marked done in order, how many kept, the log after, oldest first)
DONE = [
    pytest.param(["t1", "t2"], 5, ("t1", "t2"), id="added-newest-last"),
    pytest.param(["t1", "t2", "t1"], 5, ("t2", "t1"), id="done-again-moves-to-newest-not-twice"),
    pytest.param(["t1", "t2", "t3", "t4"], 2, ("t3", "t4"), id="oldest-dropped-past-keep"),
]


@pytest.mark.parametrize("times, keep, after", DONE)
def test_the_schedule_log_keeps_each_done_schedule_time_once_newest_last(times, keep, after):
    log = ScheduleDoc()
    for time in times:
        log = log.with_done(time, keep=keep)
    assert log.done == after


@pytest.mark.parametrize("time, has", [("t3", True), ("t4", True), ("t1", False), ("T3", False), ("", False)])
def test_a_schedule_time_is_done_only_when_the_log_holds_it_exactly(time, has):
    log = ScheduleDoc(("t2", "t3", "t4"))
    assert log.has(time) is has


# -- the stored shape ---------------------------------------------------------------------------

FULL = RunState(
    lease=Lease("run-7", at(10)),
    cursor=CursorDoc(last_read=at(-5), intent=FetchIntent(since=T0.date(), run_id="run-7", at=T0)),
    schedules=ScheduleDoc(("2026-11-20T11:55:00Z", "2026-11-20T12:00:00Z")),
    quarantine_until=at(60 * 24 * 30),
    reconciled_at=at(-60),
    token=CachedToken("bearer-1", at(60 * 24)),
    alerts={"failing_since": "2026-11-20T11:00:00+00:00", "failed_runs": 2, "alerted": {}, "alerts_sent": 0},
    pending=False,
).with_record(record("run-6", "2026-11-20T11:55:00+00:00", appended=2)).with_record(record("run-7"))


@pytest.mark.parametrize("state", [
    pytest.param(FULL, id="every-part-set"),
    pytest.param(RunState(), id="new-with-the-hint-unknown"),
    pytest.param(RunState(quarantine_until=None), id="nothing-in-quarantine"),
    pytest.param(RunState(pending=True), id="entries-may-be-pending"),
])
def test_the_run_state_comes_back_from_its_stored_shape_as_it_was(state):
    stored = json.loads(json.dumps(state.to_dict()))  # as text, as SQLite keeps it
    back = RunState.from_dict(stored, version=3, read_at=T0)
    assert back == state
    assert (back.version, back.read_at) == (3, T0)
    assert back.records() == state.records()
    assert not back.whole  # written in this layout: the next write sends only what changed


def test_an_empty_stored_document_is_a_state_with_nothing_in_it():
    assert RunState.from_dict({}) == RunState(quarantine_until=None)


# (the stored `pending`, whether the journal must be asked)
PENDING_FLAG = [
    pytest.param(None, True, id="not-known-a-store-from-before-it"),
    pytest.param(True, True, id="marked"),
    pytest.param(False, False, id="promised-none"),
]


@pytest.mark.parametrize("stored, ask", PENDING_FLAG)
def test_only_a_stored_false_spares_the_journal_question(stored, ask):
    data = {"layout": LAYOUT} if stored is None else {"layout": LAYOUT, "pending": stored}
    assert RunState.from_dict(data).may_be_pending() is ask


# (the stored document, whether it is in this layout: else its old token and alert documents are read)
LAYOUTS = [
    pytest.param({}, False, id="no-layout"),
    pytest.param({"layout": 1}, False, id="an-older-layout"),
    pytest.param({"layout": True}, False, id="a-boolean"),
    pytest.param({"layout": LAYOUT}, True, id="this-layout"),
    pytest.param({"layout": LAYOUT + 1}, True, id="a-newer-layout"),
]


@pytest.mark.parametrize("data, current", LAYOUTS)
def test_a_run_state_without_this_layout_is_read_with_its_old_parts_and_written_whole(data, current):
    assert in_layout(data) is current
    assert RunState.from_dict(data).whole is not current


# (the stored document, the words the error must hold: the document and the field at fault)
MALFORMED = [
    pytest.param({"runs": ["a"]}, "'runs'", id="runs-a-list"),
    pytest.param({"runs": {"r00": 1}}, "'runs'", id="runs-not-texts"),
    pytest.param({"seq": "3"}, "'seq'", id="seq-a-text"),
    pytest.param({"seq": True}, "'seq'", id="seq-a-boolean"),
    pytest.param({"cursor": {"intent": "x"}}, "'intent'", id="cursor-intent-a-text"),
    pytest.param({"cursor": {"last_read": "yesterday"}}, "'last_read'", id="cursor-last-read-not-a-time"),
    pytest.param({"cursor": {"intent": {"since": "2026-11-20", "run_id": "r"}}}, "'at'", id="intent-without-at"),
    pytest.param({"schedule_runs": {"done": "t1"}}, "'done'", id="schedule-done-a-text"),
]


@pytest.mark.parametrize("data, field", MALFORMED)
def test_a_malformed_stored_run_state_raises_a_document_error_naming_the_field(data, field):
    with pytest.raises(DocumentError, match=field):
        RunState.from_dict(data)


# Each part of the stored document that is not what it should be (the lease, the times, the
# cursor) is a DocumentError naming that part, as `seq` and `runs` are.
MALFORMED_PARTS = [
    pytest.param({"lease": {"owner": "a"}}, "'lease'", id="lease-without-expiry"),
    pytest.param({"lease": {"owner": "a", "expires_at": "soon"}}, "'lease'", id="lease-expiry-not-a-time"),
    pytest.param({"lease": "a"}, "'lease'", id="lease-a-text"),
    pytest.param({"quarantine_until": "never"}, "'quarantine_until'", id="quarantine-hint-not-a-time"),
    pytest.param({"reconciled_at": 5}, "'reconciled_at'", id="reconciled-at-a-number"),
    pytest.param({"cursor": "x"}, "'cursor'", id="cursor-a-text"),
    pytest.param({"pending": "no"}, "'pending'", id="pending-a-text"),
    pytest.param({"token": "t"}, "'token'", id="token-a-text"),
    pytest.param({"token": {"value": 5, "expires_at": "2026-11-21T12:00:00Z"}}, "'token'", id="token-value-a-number"),
    pytest.param({"token": {"value": "t", "expires_at": "later"}}, "'token'", id="token-expiry-not-a-time"),
    pytest.param({"alerts": "failing"}, "'alerts'", id="alerts-a-text"),
]


@pytest.mark.parametrize("data, field", MALFORMED_PARTS)
def test_a_malformed_lease_or_time_in_the_stored_run_state_raises_a_document_error_naming_the_field(data, field):
    with pytest.raises(DocumentError, match=field):
        RunState.from_dict(data)
