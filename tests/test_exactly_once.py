"""No chat lost, none written twice: one deterministic test per hazard (crashes, lost answers, overlapping calls)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from lib.errors import RunFailed
from lib.state.models import DONE, INFLIGHT
from sandbox.standins import Delay, Drop, LostResponse, Status
from tests.harness import Crash, crash_at


def run_at_once(syncers) -> list:
    """Start the syncers' runs at the same moment; return their reports (re-raising any error)."""
    barrier = threading.Barrier(len(syncers), timeout=30)
    results: list = []

    def call(syncer) -> None:
        barrier.wait()
        try:
            results.append(syncer.run())
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=call, args=(s,)) for s in syncers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == len(syncers), "a concurrent run did not finish"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def assert_each_chat_once(harness, n: int) -> None:
    keys = harness.sheet_keys()
    assert len(keys) == n
    assert len(set(keys)) == n


def test_crash_between_append_and_marking_writes_no_duplicate(harness):
    harness.add_chats(4)
    with pytest.raises(Crash):
        harness.syncer(checkpoint=crash_at("after_append")).run()
    assert len(harness.data_rows()) == 4
    assert all(e.state("sheet") == INFLIGHT for e in harness.open_store().journal_pending())
    harness.clock.advance(minutes=5)
    report = harness.syncer().run()
    assert report.already_in_sheet == 4 and report.appended == 0
    assert_each_chat_once(harness, 4)
    assert harness.stand.sheets.count("values.get") >= 1  # the one key-column read


def test_unanswered_append_is_checked_only_after_it_has_surely_ended(harness):
    harness.add_chats(3)
    harness.stand.sheets.inject("values.append", LostResponse())
    with pytest.raises(RunFailed) as failed:
        harness.syncer().run()
    assert failed.value.transient
    # A scheduler retry 30 s later leaves the in-flight rows alone.
    harness.clock.advance(seconds=30)
    retry = harness.syncer().run()
    assert retry.waiting == 3 and retry.appended == 0 and retry.already_in_sheet == 0
    harness.clock.advance(minutes=5)
    later = harness.syncer().run()
    assert later.already_in_sheet == 3 and later.appended == 0
    assert_each_chat_once(harness, 3)
    assert harness.open_store().journal_pending() == []


def test_append_answered_with_5xx_is_checked_and_retried_within_the_run(harness):
    harness.add_chats(3)
    harness.stand.sheets.inject("values.append", Status(503))
    report = harness.syncer().run()
    assert report.appended == 3
    assert_each_chat_once(harness, 3)


def test_rows_of_an_append_sheets_answered_with_an_error_are_written_by_the_next_call(harness):
    harness.add_chats(3)
    # Both appends of the run are answered 503: the requests have ended, nothing is still running.
    harness.stand.sheets.inject("values.append", Status(503), times=2)
    with pytest.raises(RunFailed):
        harness.syncer().run()
    assert harness.data_rows() == []
    harness.clock.advance(seconds=20)  # a scheduler retry, far sooner than the settle time
    retry = harness.syncer().run()
    assert retry.waiting == 0 and retry.appended == 3
    assert_each_chat_once(harness, 3)
    assert harness.open_store().journal_pending() == []


def test_rows_of_an_answered_append_wait_for_no_settle_time_when_the_key_check_failed_too(harness):
    harness.add_chats(3)
    harness.stand.sheets.inject("values.append", Status(503))

    def key_check_fails(step: str) -> None:
        # Marked in flight before the first try: the read of the key column before the
        # second try is answered 503 as well.
        if step == "after_mark_inflight":
            harness.stand.sheets.inject("values.get", Status(503))

    with pytest.raises(RunFailed):
        harness.syncer(checkpoint=key_check_fails).run()
    assert harness.stand.sheets.count("values.append") == 1
    harness.clock.advance(seconds=20)
    retry = harness.syncer().run()
    assert retry.waiting == 0 and retry.appended == 3
    assert_each_chat_once(harness, 3)


def _intent(harness):
    return (harness.open_store().get_meta("cursor") or {}).get("intent")


def test_a_5xx_on_the_chat_log_call_is_recovered_by_a_date_window_in_the_same_run(harness):
    harness.add_chats(4)
    harness.stand.moneypenny.inject("log", Status(503))
    report = harness.syncer().run()
    assert report.outcome == "ok" and report.recovered == 4 and report.appended == 4
    assert_each_chat_once(harness, 4)
    # The failed call was answered, so it has ended: the window read settled everything.
    assert _intent(harness) is None
    harness.clock.advance(minutes=5)
    harness.stand.moneypenny.reset_calls()
    harness.syncer().run()
    assert [c.query for c in harness.stand.moneypenny.calls("log")] == [{}]


def test_a_lost_chat_log_answer_is_recovered_by_a_date_window_in_the_same_run(harness):
    harness.add_chats(5)
    harness.stand.moneypenny.inject("log", LostResponse())
    report = harness.syncer().run()
    assert harness.stand.moneypenny.pending_chats() == []  # the cursor moved past them
    assert report.outcome == "ok" and report.recovered == 5 and report.appended == 5
    assert_each_chat_once(harness, 5)
    harness.clock.advance(minutes=5)
    harness.add_chats(1, seed=6)
    later = harness.syncer().run()
    assert later.appended == 1
    assert_each_chat_once(harness, 6)


def test_a_dropped_chat_log_call_is_read_by_date_window_and_the_next_plain_call_adds_nothing_twice(harness):
    harness.add_chats(3)
    harness.stand.moneypenny.inject("log", Drop())
    report = harness.syncer().run()
    assert report.outcome == "ok" and report.appended == 3
    assert len(harness.stand.moneypenny.pending_chats()) == 3  # the dropped call moved nothing
    harness.clock.advance(minutes=5)
    later = harness.syncer().run()
    assert later.fetched >= 3 and later.new == 0 and later.appended == 0
    assert_each_chat_once(harness, 3)


def test_a_timed_out_chat_log_call_that_moves_the_cursor_later_loses_nothing(harness):
    harness.env_overrides["HTTP_TIMEOUT_SECONDS"] = "0.2"
    harness.add_chats(2)
    # The call times out; Moneypenny carries it out a second later and moves the cursor.
    harness.stand.moneypenny.inject("log", Delay(1.5))
    report = harness.syncer().run()
    assert report.outcome == "ok" and report.appended == 2
    # A chat arrives after this run's window read, before the late call moves the cursor past it.
    late = harness.add_chats(1, seed=7)
    assert harness.stand.wait_idle()
    assert harness.stand.moneypenny.pending_chats() == []
    assert _intent(harness) is not None  # the call may still have been running: not settled
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    assert_each_chat_once(harness, 3)
    assert late[0]["name"].strip() in {r[1] for r in harness.data_rows()}


def test_when_the_window_read_fails_too_the_next_run_recovers_the_lost_answer(harness):
    harness.add_chats(5)
    harness.stand.moneypenny.inject("log", LostResponse())
    harness.stand.moneypenny.inject("log", Status(503), times=10)
    with pytest.raises(RunFailed):
        harness.syncer().run()
    harness.stand.moneypenny.clear_faults()
    assert harness.data_rows() == []
    harness.clock.advance(minutes=5)
    report = harness.syncer().run()
    assert report.recovered == 5 and report.appended == 5
    assert_each_chat_once(harness, 5)


def test_crash_between_fetch_and_journal_is_recovered(harness):
    harness.add_chats(2)
    with pytest.raises(Crash):
        harness.syncer(checkpoint=crash_at("after_fetch")).run()
    assert harness.open_store().journal_pending() == []
    harness.clock.advance(minutes=5)
    report = harness.syncer().run()
    assert report.recovered == 2
    assert_each_chat_once(harness, 2)


def test_a_window_read_that_starts_after_the_fetch_intent_does_not_settle_it(harness):
    harness.stand.moneypenny.window_moves_cursor = True
    harness.syncer().run()  # the last plain read: two days ago
    harness.clock.advance(days=2)
    today = harness.clock().date()
    yesterday = harness.add_chats(3, start=datetime(today.year, today.month, today.day, 10) - timedelta(days=1))
    # A window from today on moves the cursor past yesterday's chats without returning them.
    report = harness.syncer().run(mode="window", start=today, end=today + timedelta(days=1))
    assert report.fetched == 0 and harness.stand.moneypenny.pending_chats() == []
    harness.clock.advance(minutes=5)
    later = harness.syncer().run()
    assert later.recovered == 3
    assert {c["name"].strip() for c in yesterday} <= {r[1] for r in harness.data_rows()}
    assert_each_chat_once(harness, 3)


def test_a_window_read_ending_today_reads_today_and_settles_the_intent_when_end_time_is_exclusive(harness):
    """It asks for a day past `end`: today is read whatever endTime means, so the intent settles."""
    harness.stand.moneypenny.window_moves_cursor = True
    harness.stand.moneypenny.end_inclusive = False
    today = harness.clock().date()
    harness.add_chats(2)  # today's
    report = harness.syncer().run(mode="window", start=today - timedelta(days=5), end=today)
    assert report.fetched == 2 and report.appended == 2 and harness.stand.moneypenny.pending_chats() == []
    assert _intent(harness) is None
    harness.clock.advance(minutes=5)
    later = harness.syncer().run()
    assert later.recovered == 0 and later.appended == 0
    assert_each_chat_once(harness, 2)


def test_a_window_read_that_covers_the_intent_through_today_settles_it(harness):
    harness.syncer().run()
    harness.clock.advance(minutes=5)
    harness.add_chats(2)
    report = harness.syncer().run(mode="reconcile")
    assert report.appended == 2
    assert _intent(harness) is None
    harness.clock.advance(minutes=5)
    harness.stand.moneypenny.reset_calls()
    harness.syncer().run()
    assert [c.query for c in harness.stand.moneypenny.calls("log")] == [{}]


def test_window_read_overlapping_rows_already_written_adds_none(harness):
    harness.add_chats(4)
    harness.syncer().run()
    day = harness.clock().date()
    report = harness.syncer().run(mode="window", start=day - timedelta(days=1), end=day + timedelta(days=1))
    assert report.fetched == 4 and report.new == 0 and report.appended == 0
    assert_each_chat_once(harness, 4)


def test_slack_failure_never_blocks_the_sheet_and_the_next_summary_says_late(harness):
    harness.add_chats(2)
    harness.stand.slack.inject("chat.postMessage", Status(500), times=5)
    with pytest.raises(RunFailed) as failed:
        harness.syncer().run()
    assert failed.value.report.appended == 2
    assert harness.stand.slack.messages() == []
    harness.clock.advance(minutes=5)
    harness.add_chats(1, seed=2)
    report = harness.syncer().run()
    assert report.posted == 3 and report.late == 2
    message = harness.stand.slack.messages()[0]
    assert "2 of these are late" in str(message["blocks"])


def test_a_call_while_another_holds_the_lease_is_skipped(harness):
    store = harness.open_store()
    now = harness.clock()
    assert store.acquire_lease("other-run", now, now + timedelta(minutes=10))
    harness.add_chats(2)
    report = harness.syncer().run()
    assert report.outcome == "skipped" and report.skipped == "another run holds the lease"
    assert report.as_dict()["ok"] is True
    assert harness.data_rows() == []
    harness.clock.advance(minutes=11)  # the holder crashed: its lease expires and is taken over
    assert harness.syncer().run().appended == 2


def test_a_scheduler_retry_of_a_run_that_succeeded_does_nothing(harness):
    harness.add_chats(2)
    first = harness.syncer().run(schedule_time="2026-11-20T12:00:00Z")
    harness.add_chats(1, seed=3)
    retry = harness.syncer().run(schedule_time="2026-11-20T12:00:00Z")
    assert first.appended == 2
    assert retry.outcome == "skipped" and retry.fetched == 0
    assert harness.syncer().run(schedule_time="2026-11-20T12:05:00Z").appended == 1


def test_a_retry_of_a_failed_scheduled_run_runs_again(harness):
    harness.add_chats(2)
    harness.stand.moneypenny.inject("log", Status(503), times=10)
    with pytest.raises(RunFailed):
        harness.syncer().run(schedule_time="2026-11-20T12:00:00Z")
    harness.stand.moneypenny.clear_faults()
    assert harness.syncer().run(schedule_time="2026-11-20T12:00:00Z").appended == 2


def test_delivered_entries_expire_after_the_retention_and_sqlite_prunes_them(harness):
    harness.add_chats(2)
    harness.syncer().run()
    store = harness.open_store()
    keys = harness.sheet_keys()
    entries = store.journal_get(keys)
    for entry in entries.values():
        assert entry.states == {"sheet": DONE, "slack": DONE}
        assert entry.expires_at - harness.clock() == timedelta(days=30)
    harness.clock.advance(days=31)
    harness.syncer().run()
    assert store.journal_get(keys) == {}


def test_two_calls_at_once_one_processes_one_is_skipped(harness):
    harness.add_chats(6)
    harness.stand.set_latency(0.05)
    reports = run_at_once([harness.syncer(), harness.syncer()])
    outcomes = sorted(r.outcome for r in reports)
    assert outcomes == ["ok", "skipped"]
    assert_each_chat_once(harness, 6)


def test_two_calls_at_once_on_the_firestore_emulator(harness, firestore_client):
    from lib.state.firestore.store import FirestoreStore
    from tests.conftest import _emulator_client

    harness.add_chats(6)
    harness.stand.set_latency(0.05)
    # Each call has its own client, as two function instances would.
    syncers = [harness.syncer(store=FirestoreStore(_emulator_client(), "concurrency")) for _ in range(2)]
    reports = run_at_once(syncers)
    assert sorted(r.outcome for r in reports) == ["ok", "skipped"]
    assert [r.skipped for r in reports if r.outcome == "skipped"] == ["another run holds the lease"]
    assert_each_chat_once(harness, 6)
