"""The per-run state (lib/sync/session.py, lib/state/run_state.py): what an idle run costs in
documents as Firestore bills them, and the state each way a run can end leaves behind: skipped
for the lease, crashed holding it, taken over after it expired, retried by the scheduler."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lib.errors import RunFailed
from lib.runner import run_and_report
from lib.sync import RunOptions, RunSession, plan_intent
from tests.harness import Crash, crash_at

# The targets of an idle run (nothing new, nothing pending), in documents as Firestore bills
# them, and of a production day of them.
IDLE_READS, IDLE_WRITES, IDLE_DELETES = 1, 2, 0  # issue #22: the run state alone
DAY_RUNS = 288  # every 5 minutes


def scheduled(harness, at: str, job: str = "moneypenny-sync"):
    """A run as Cloud Scheduler starts it through the function (alerts included)."""
    return run_and_report(harness.settings(), RunOptions(), lambda: harness.syncer(),
                          schedule_time=at, schedule_job=job)


def schedule_time(harness) -> str:
    return harness.clock().strftime("%Y-%m-%dT%H:%M:%SZ")


def idle_costs(harness, store, runs: int):
    """Run `runs` scheduled runs 5 minutes apart with nothing new; return each one's cost."""
    costs = []
    for _ in range(runs):
        harness.clock.advance(minutes=5)
        before = store.counters.snapshot()
        result = scheduled(harness, schedule_time(harness))
        costs.append(store.counters.since(before))
        assert result.report.outcome == "ok" and result.report.fetched == 0 and result.report.healthy
    return costs


def test_an_idle_run_reads_only_the_run_state_writes_it_twice_and_deletes_nothing(harness, store):
    harness.add_chats(2)
    assert scheduled(harness, schedule_time(harness)).report.appended == 2
    for cost in idle_costs(harness, store, 3):
        assert cost.reads <= IDLE_READS and cost.writes <= IDLE_WRITES and cost.deletes <= IDLE_DELETES, cost


def test_a_day_of_idle_runs_fits_one_read_and_two_writes_a_run(harness):
    """Plus the day's one login: its new token is written into the run state (a read and a
    write), and the run's last write then reads the state again."""
    store = harness.open_store()
    scheduled(harness, schedule_time(harness))
    logins = harness.stand.moneypenny.count("auth")
    costs = idle_costs(harness, store, DAY_RUNS)
    logins = harness.stand.moneypenny.count("auth") - logins
    assert logins == 1  # the token lives 24 hours
    assert sum(c.writes for c in costs) <= IDLE_WRITES * DAY_RUNS + logins
    assert sum(c.reads for c in costs) <= IDLE_READS * DAY_RUNS + 2 * logins
    assert sum(c.deletes for c in costs) == 0
    assert len(store.recent_runs(1000)) == 100  # the history stays a ring of 100


def test_a_run_skipped_for_the_lease_is_recorded_and_the_holder_finishes_as_if_alone(harness, store):
    """The skipped run adds its record while the holder runs; the holder's last write meets
    that change, reads again, and still settles its cursor and gives the lease back."""
    harness.add_chats(3)
    skipped = []

    def overlap(step: str) -> None:
        if step == "after_journal" and not skipped:
            skipped.append(scheduled(harness, "overlap", job="other").report)

    holder = harness.syncer(checkpoint=overlap).run(schedule_time="held", schedule_job="moneypenny-sync")
    assert skipped[0].skipped == "another run holds the lease" and holder.appended == 3
    state = store.read_run_state()
    assert state.lease is None and state.cursor.intent is None and state.cursor.last_read == holder.started_at
    assert state.schedules.has("moneypenny-sync held") and not state.schedules.has("other overlap")
    assert {r["run_id"] for r in store.recent_runs()} == {holder.run_id, skipped[0].run_id}


def test_a_run_that_died_holding_the_lease_is_taken_over_once_it_expires(harness, store):
    """Its intent is read again by window, and its quarantine is counted (it may have set
    items aside without saying so) until a count finds it empty."""
    harness.add_chats(2)
    now = harness.clock()
    dead = RunSession(store, "dead-run")
    assert dead.begin(timedelta(seconds=harness.settings().lease_seconds),
                      plan=lambda c: plan_intent(c, RunOptions(), run_id="dead-run", at=now,
                                                 tz=harness.settings().chat_timezone, reconcile_days=2))
    harness.syncer().moneypenny.fetch_new()  # the dead run's call: the cursor moved past 2 chats
    assert harness.syncer().run().skipped == "another run holds the lease"
    harness.clock.advance(seconds=harness.settings().lease_seconds + 1)
    taker = harness.syncer().run()
    assert taker.recovered == 2 and taker.appended == 2
    state = store.read_run_state()
    assert state.lease is None and state.cursor.intent is None
    assert state.quarantine_until is None  # counted (the hint was unknown) and found empty


def test_a_run_whose_lease_expired_and_was_taken_over_leaves_the_new_holder_alone(harness, store):
    """Its lease taken over before it delivered, it delivers nothing (the holder will) and fails
    as transient; its last write adds its record but neither the cursor nor the lease (the new
    holder's intent and lease stay). Once the holder is gone, the next run writes the chat once."""
    harness.add_chats(1)
    taken = []

    def overtaken(step: str) -> None:
        if step == "after_journal" and not taken:
            harness.clock.advance(seconds=harness.settings().lease_seconds + 1)
            now = harness.clock()
            taken.append(store.acquire_lease("new-holder", now, now + timedelta(minutes=10)))

    with pytest.raises(RunFailed) as failed:
        harness.syncer(checkpoint=overtaken).run()
    slow = failed.value.report
    assert taken == [True] and slow.appended == 0
    assert failed.value.error.cause == "lease_lost"
    state = store.read_run_state()
    assert state.lease is not None and state.lease.owner == "new-holder"
    assert state.cursor.intent is not None and state.cursor.intent.run_id == slow.run_id  # for the next read
    assert store.recent_runs(1)[0]["run_id"] == slow.run_id
    assert harness.sheet_keys() == []

    store.release_lease("new-holder")
    later = harness.syncer().run()
    assert later.appended == 1 and len(harness.sheet_keys()) == 1


def test_a_taken_over_run_does_not_overwrite_the_cursor_the_new_holder_settled(harness, store):
    harness.add_chats(1)
    newer = []

    def overtaken(step: str) -> None:
        if step == "after_journal" and not newer:
            harness.clock.advance(seconds=harness.settings().lease_seconds + 1)
            harness.add_chats(2, seed=5)
            newer.append(harness.syncer().run())

    harness.syncer(checkpoint=overtaken).run()
    keys = harness.sheet_keys()
    assert len(keys) == 3 == len(set(keys))  # each chat once, whichever run wrote it
    state = store.read_run_state()
    assert state.lease is None and state.cursor.intent is None
    assert state.cursor.last_read == newer[0].started_at  # not the slow run's older read
    assert len(store.recent_runs()) == 2


def test_a_crash_after_the_read_leaves_the_intent_for_the_next_run(harness, store):
    harness.add_chats(2)
    with pytest.raises(Crash):
        harness.syncer(checkpoint=crash_at("after_fetch")).run()
    assert store.read_run_state().cursor.intent is not None
    nxt = harness.syncer().run()
    assert nxt.recovered == 2 and store.read_run_state().cursor.intent is None


def test_a_scheduler_retry_of_a_succeeded_run_reads_nothing_and_leaves_the_state_as_it_was(harness, store):
    harness.add_chats(1)
    first = scheduled(harness, "03:15").report
    settled = store.read_run_state().cursor
    harness.clock.advance(seconds=20)
    calls = harness.stand.moneypenny.count("log")
    retry = scheduled(harness, "03:15").report
    assert retry.skipped == "this scheduled run already succeeded" and first.appended == 1
    assert harness.stand.moneypenny.count("log") == calls  # no read, no intent
    state = store.read_run_state()
    assert state.cursor == settled and state.lease is None
    assert [r["run_id"] for r in store.recent_runs()] == [retry.run_id, first.run_id]


def test_the_quarantine_is_counted_while_its_hint_says_items_may_wait_and_not_after(harness, store):
    harness.stand.moneypenny.add_chats(["not a chat"])
    assert harness.syncer().run().skipped_invalid == 1
    harness.clock.advance(minutes=5)
    waiting = harness.syncer().run()
    assert not waiting.healthy and any("quarantine" in p for p in waiting.unhealthy)
    harness.clock.advance(days=harness.settings().retention_days, minutes=5)
    before, logins = store.counters.snapshot(), harness.stand.moneypenny.count("auth")
    later = harness.syncer().run()
    assert later.healthy, later.unhealthy  # the item has expired: nothing waits, nothing counted
    # (Days later the token has expired too: its login writes the new one, and reads the state again.)
    logins = harness.stand.moneypenny.count("auth") - logins
    assert store.counters.since(before).reads <= IDLE_READS + 2 * logins


def test_a_run_near_its_lease_end_renews_it_and_delivers_from_memory(harness, store):
    """A run that reaches delivery within a minute of its lease's end, with no other run in
    between, renews the lease and writes what it journaled once, settling its own cursor."""
    harness.add_chats(2)
    renewed = []

    def slow(step: str) -> None:
        if step == "after_journal":
            harness.clock.advance(seconds=harness.settings().lease_seconds - 30)
        if step == "after_mark_inflight":
            renewed.append(store.read_run_state().lease)

    report = harness.syncer(checkpoint=slow).run()
    assert report.appended == 2 and len(set(harness.sheet_keys())) == 2 == len(harness.sheet_keys())
    assert renewed and renewed[0] is not None and renewed[0].owner == report.run_id
    assert renewed[0].expires_at > report.started_at + timedelta(seconds=harness.settings().lease_seconds)
    state = store.read_run_state()
    assert state.lease is None and state.cursor.intent is None
    assert state.cursor.last_read == report.started_at
