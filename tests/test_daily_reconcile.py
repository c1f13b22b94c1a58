"""The daily reconcile folded into the scheduled run (lib/sync/reconcile.py): the first scheduled
run after RECONCILE_AT also reads the last RECONCILE_DAYS days by date, once a day; a day whose
RECONCILE_AT passed with no run is caught up by the first run after; a reconcile read that failed
is made again by the next run; a run that reads by cursor and by date delivers each chat once.

Runs are started as Cloud Scheduler starts them through the function (a sync with the daily
reconcile, named by job and ScheduleTime), on the stand-ins and a hand-moved clock, on SQLite and
on the Firestore emulator.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from lib.errors import RunFailed
from lib.sync import RunOptions, RunReport
from lib.sync.reconcile import due
from sandbox.standins.samples import sample_chats
from sandbox.standins.server import Status
from tests.harness import Crash, crash_at, move_cursor_elsewhere, us_date
from tests.test_run_state import IDLE_READS, IDLE_WRITES

UK = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
JOB = "moneypenny-sync"
DAY = date(2026, 11, 20)  # the harness's day (London is on UTC in November)


def local(day: date, hour: int, minute: int, second: int = 0, tz: ZoneInfo = UK) -> datetime:
    """That local time in `tz`, as the UTC time the clock shows."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=tz).astimezone(UTC)


def scheduled(harness, checkpoint=None) -> RunReport:
    """One run as Cloud Scheduler starts it through the function: a sync that makes the daily
    reconcile when it is due, named by the job and its ScheduleTime."""
    at = harness.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    return harness.syncer(checkpoint=checkpoint).run(options=RunOptions(daily_reconcile=True),
                                                     schedule_time=at, schedule_job=JOB)


def window_reads(harness) -> list[tuple[date, date]]:
    """The days of every date-window call made to the chat log so far (startTime, endTime)."""
    return [(us_date(c.query["startTime"]), us_date(c.query["endTime"]))
            for c in harness.stand.moneypenny.calls("log") if "startTime" in c.query]


def add_day_chats(harness, day: date, n: int, seed: int) -> list[dict]:
    """n chats on one local day, from 09:00, an hour apart."""
    chats = sample_chats(n, start=datetime(day.year, day.month, day.day, 9, 0), seed=seed, spacing=timedelta(hours=1))
    harness.stand.moneypenny.add_chats(chats)
    return chats


def skipped_by_the_cursor(harness, day: date, n: int, seed: int) -> list[dict]:
    """n chats of `day` that Moneypenny's cursor moved past without the sync reading them (an
    answer lost where no fetch intent caught it): only a read by date finds them."""
    chats = add_day_chats(harness, day, n, seed)
    move_cursor_elsewhere(harness)
    return chats


def assert_each_chat_once(harness, expected: int) -> None:
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == expected, keys


# -- once a day, at RECONCILE_AT --------------------------------------------------------------------


def test_the_first_scheduled_run_after_reconcile_at_reads_the_last_days_once_that_day(harness, store):
    harness.clock.value = local(DAY, 3, 10)
    harness.reconciled(local(DAY - timedelta(days=1), 3, 15, 2))
    missed = skipped_by_the_cursor(harness, DAY - timedelta(days=1), 2, seed=1)

    before = scheduled(harness)
    assert not before.reconciled and window_reads(harness) == [] and harness.data_rows() == []

    harness.clock.value = local(DAY, 3, 15, 2)  # the 03:15 run, started two seconds after its time
    first = scheduled(harness)
    assert first.reconciled and first.as_dict()["reconciled"] is True
    assert first.appended == first.recovered == len(missed)
    # RECONCILE_DAYS (2) back, to tomorrow (whether endTime is inclusive is undocumented).
    assert window_reads(harness) == [(DAY - timedelta(days=2), DAY + timedelta(days=1))]
    assert store.read_run_state().reconciled_at == first.started_at

    for _ in range(3):
        harness.clock.advance(minutes=5)
        later = scheduled(harness)
        assert not later.reconciled and "reconciled" not in later.as_dict()
    assert len(window_reads(harness)) == 1
    assert store.read_run_state().reconciled_at == first.started_at
    assert_each_chat_once(harness, len(missed))


@pytest.mark.parametrize("last_reconciled, back_at", [
    # The function was down at 03:15 today: the first run after it came back reconciles.
    (local(DAY - timedelta(days=1), 3, 15, 2), local(DAY, 9, 40)),
    # Down for two days: one reconcile read, not one per day missed.
    (local(DAY - timedelta(days=2), 3, 15, 2), local(DAY, 1, 5)),
], ids=["03:15 missed today", "two days down"])
def test_a_reconcile_at_that_passed_without_a_run_is_caught_up_by_the_first_run_after(
        harness, store, last_reconciled, back_at):
    harness.reconciled(last_reconciled)
    missed = skipped_by_the_cursor(harness, back_at.astimezone(UK).date() - timedelta(days=1), 3, seed=2)
    harness.clock.value = back_at
    first = scheduled(harness)
    assert first.reconciled and first.appended == len(missed)
    harness.clock.advance(minutes=5)
    assert not scheduled(harness).reconciled
    assert len(window_reads(harness)) == 1
    assert_each_chat_once(harness, len(missed))


def test_a_failed_reconcile_read_is_made_again_by_the_next_run_not_the_next_day(harness, store):
    harness.reconciled(local(DAY - timedelta(days=1), 3, 15, 2))
    harness.clock.value = local(DAY, 3, 15, 2)
    missed = skipped_by_the_cursor(harness, DAY - timedelta(days=1), 2, seed=3)
    fresh = harness.add_chats(2, seed=4)  # today's, for the cursor

    def date_reads_fail(step: str) -> None:
        if step == "after_fetch":  # the cursor's read went through; every read by date fails
            harness.stand.moneypenny.inject("log", Status(503), times=None)

    with pytest.raises(RunFailed) as failed:
        scheduled(harness, checkpoint=date_reads_fail)
    report = failed.value.report
    assert failed.value.transient, "a 503: Cloud Scheduler retries it"
    assert not report.reconciled and report.appended == len(fresh)  # the cursor's chats went through
    assert [e["step"] for e in report.errors] == ["fetch"]
    state = store.read_run_state()
    assert state.reconciled_at == local(DAY - timedelta(days=1), 3, 15, 2)
    assert state.cursor.intent is not None, "the failed read by date may have moved the cursor: it stays guarded"

    harness.stand.moneypenny.clear_faults()
    harness.stand.wait_idle()
    harness.clock.advance(seconds=10)  # the scheduler's retry, or the next tick: the same
    reads = len(window_reads(harness))
    retried = scheduled(harness)
    assert retried.reconciled and retried.appended == len(missed)
    # One read by date settles the intent and makes the reconcile.
    assert window_reads(harness)[reads:] == [(DAY - timedelta(days=2), DAY + timedelta(days=1))]
    state = store.read_run_state()
    assert state.reconciled_at == retried.started_at and state.cursor.intent is None
    assert_each_chat_once(harness, len(missed) + len(fresh))


# -- each chat once ----------------------------------------------------------------------------------


@pytest.mark.parametrize("window_moves_cursor", [False, True], ids=["window keeps cursor", "window moves cursor"])
def test_a_run_that_reads_by_cursor_and_by_date_delivers_each_chat_once(harness, store, window_moves_cursor):
    """Both reads return today's chats, and one arrives between them: the journal adds each key
    once, so each chat is one row and one line in Slack."""
    harness.stand.moneypenny.window_moves_cursor = window_moves_cursor
    chats = harness.add_chats(3, seed=5)
    between: list[dict] = []

    def a_chat_arrives(step: str) -> None:
        if step == "after_fetch" and not between:
            start = harness.clock().astimezone(UK).replace(tzinfo=None) - timedelta(minutes=1)
            between.extend(harness.add_chats(1, seed=6, start=start))

    first = scheduled(harness, checkpoint=a_chat_arrives)  # a store never reconciled: due
    assert first.reconciled and first.new == first.appended == first.posted == len(chats) + 1
    harness.clock.advance(minutes=5)
    second = scheduled(harness)  # the cursor hands the chat that arrived again, unless the window moved it
    assert second.fetched == (0 if window_moves_cursor else 1)
    assert (second.new, second.appended, second.posted) == (0, 0, 0)
    assert_each_chat_once(harness, len(chats) + 1)


def test_a_run_that_reads_by_cursor_and_by_date_counts_each_item_fetched_once(harness):
    """`fetched` is per item, once a run: the reconcile read meets the plain read's chats (and
    its unreadable one) again, and a recovery read with the reconcile due meets them too."""
    chats = harness.add_chats(3, seed=5)
    harness.stand.moneypenny.add_chats([{"chatTime": f"{DAY.isoformat()}T25:61:00", "name": "x"}])
    first = scheduled(harness)  # a store never reconciled: plain read, then the reconcile read
    assert first.reconciled and first.new == len(chats) and first.skipped_invalid == 1
    assert first.fetched == len(chats) + 1  # before: 8, each item counted by both reads
    harness.clock.advance(days=1)
    more = harness.add_chats(2, seed=7)
    with pytest.raises(Crash):  # the plain read's answer lost: the next run recovers by date
        scheduled(harness, checkpoint=crash_at("after_fetch"))
    second = scheduled(harness)  # the recovery read, then its own read, with the reconcile due
    assert second.fetched == len(chats) + len(more) + 1, second.as_dict()
    assert_each_chat_once(harness, len(chats) + len(more))


@pytest.mark.parametrize("window_moves_cursor", [False, True], ids=["window keeps cursor", "window moves cursor"])
def test_a_run_that_dies_in_its_reconcile_read_loses_nothing(harness, store, window_moves_cursor):
    harness.stand.moneypenny.window_moves_cursor = window_moves_cursor
    chats = harness.add_chats(2, seed=7)
    missed = skipped_by_the_cursor(harness, DAY - timedelta(days=1), 1, seed=8)
    between: list[dict] = []

    def dies(step: str) -> None:
        if step == "after_fetch" and not between:
            start = harness.clock().astimezone(UK).replace(tzinfo=None) - timedelta(minutes=1)
            between.extend(harness.add_chats(1, seed=9, start=start))
        if step == "after_reconcile_fetch":  # the read by date answered; nothing of it journaled
            raise Crash(step)

    with pytest.raises(Crash):
        scheduled(harness, checkpoint=dies)
    assert store.read_run_state().reconciled_at is None
    harness.clock.advance(seconds=harness.settings().lease_seconds + 1)
    then = scheduled(harness)
    assert then.reconciled
    assert_each_chat_once(harness, len(chats) + len(missed) + len(between))


# -- by hand, off, the calls ---------------------------------------------------------------------------


def test_a_reconcile_by_hand_after_reconcile_at_stands_for_the_day_one_before_it_does_not(harness, store):
    harness.reconciled(local(DAY - timedelta(days=1), 3, 15, 2))
    harness.clock.value = local(DAY, 2, 0)
    assert harness.syncer().run(mode="reconcile").reconciled  # ?mode=reconcile still works by hand
    harness.clock.value = local(DAY, 3, 15, 2)
    assert scheduled(harness).reconciled, "made before 03:15: today's is still due"
    harness.clock.value = local(DAY, 10, 0)
    by_hand = harness.syncer().run(mode="reconcile")
    assert by_hand.reconciled and store.read_run_state().reconciled_at == by_hand.started_at
    harness.clock.advance(minutes=5)
    assert not scheduled(harness).reconciled
    assert len(window_reads(harness)) == 3


def test_reconcile_at_off_makes_no_daily_reconcile(harness, store):
    harness.env_overrides["RECONCILE_AT"] = "off"
    skipped_by_the_cursor(harness, DAY - timedelta(days=1), 1, seed=10)
    for _ in range(3):  # 12:00, 20:00, then 04:00 the next day: past 03:15
        assert not scheduled(harness).reconciled
        harness.clock.advance(hours=8)
    assert window_reads(harness) == [] and harness.data_rows() == []
    assert harness.syncer().run(mode="reconcile").appended == 1  # by hand it still reads


def test_reconcile_at_is_read_in_chat_timezone(harness, store):
    harness.env_overrides.update(CHAT_TIMEZONE="America/New_York", RECONCILE_AT="22:30")
    ny_day = DAY - timedelta(days=1)
    harness.reconciled(local(ny_day - timedelta(days=1), 22, 30, 2, tz=NEW_YORK))
    harness.clock.value = local(ny_day, 22, 25, tz=NEW_YORK)  # 03:25 UTC on DAY
    assert not scheduled(harness).reconciled
    harness.clock.value = local(ny_day, 22, 30, 2, tz=NEW_YORK)
    assert scheduled(harness).reconciled


def test_with_calls_on_the_due_reconcile_widens_the_one_calls_read(harness, store):
    harness.env_overrides.update(MONEYPENNY_SOURCES="chats,calls", RECONCILE_DAYS="5")
    harness.reconciled(local(DAY - timedelta(days=1), 3, 15, 2))
    harness.clock.value = local(DAY, 3, 5)
    scheduled(harness)  # reads the calls from RECONCILE_DAYS back (no day read yet) and notes yesterday

    def calls_read_from() -> list[date]:
        return [us_date(c.query["from"]) for c in harness.stand.moneypenny.calls("calls")]

    harness.clock.value = local(DAY, 3, 10)
    assert not scheduled(harness).reconciled
    assert calls_read_from()[-1] == DAY - timedelta(days=2)  # the last full day (yesterday), less a day
    harness.clock.value = local(DAY, 3, 15, 2)
    reads = len(calls_read_from())
    assert scheduled(harness).reconciled
    assert calls_read_from()[reads:] == [DAY - timedelta(days=5)]  # one read, RECONCILE_DAYS back


def test_a_failed_calls_read_leaves_the_reconcile_due(harness, store):
    harness.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    harness.stand.moneypenny.inject("calls", Status(503), times=None)
    with pytest.raises(RunFailed):
        scheduled(harness)
    assert store.read_run_state().reconciled_at is None
    harness.stand.moneypenny.clear_faults()
    harness.clock.advance(minutes=5)
    assert scheduled(harness).reconciled


def test_the_chats_first_read_reconciles_even_after_a_chats_off_run_noted_the_days_reconcile(harness, store):
    """A store emptied while chats waited in its journal (Moneypenny's cursor already past them),
    whose first run has chats off (calls only) and so notes the day's reconcile without reading
    chats by date: the first run with chats on again reads them by date, so they are written."""
    harness.env_overrides["MONEYPENNY_SOURCES"] = "calls"
    harness.clock.value = local(DAY, 9, 0)
    waiting = skipped_by_the_cursor(harness, DAY - timedelta(days=1), 2, seed=7)
    assert scheduled(harness).reconciled  # calls only: the day's reconcile is noted
    harness.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    harness.clock.advance(minutes=5)
    first = scheduled(harness)
    assert first.reconciled and first.appended == len(waiting)
    assert_each_chat_once(harness, len(waiting))


# -- what it costs ---------------------------------------------------------------------------------------


def test_the_reconcile_adds_no_write_to_its_run_and_idle_runs_cost_what_they_did(harness, store):
    """The reconcile time is written in the run's own last write; the runs after read and
    write what an idle run always did."""
    harness.reconciled(local(DAY - timedelta(days=1), 3, 15, 2))
    harness.clock.value = local(DAY, 3, 10)
    chats = harness.add_chats(2, seed=11)
    assert scheduled(harness).appended == len(chats)
    harness.clock.value = local(DAY, 3, 15, 2)
    before = store.counters.snapshot()
    reconciling = scheduled(harness)
    cost = store.counters.since(before)
    assert reconciling.reconciled and reconciling.fetched == len(chats) and reconciling.new == 0
    assert cost.writes <= IDLE_WRITES and cost.deletes == 0, cost
    for _ in range(3):
        harness.clock.advance(minutes=5)
        before = store.counters.snapshot()
        idle = scheduled(harness)
        cost = store.counters.since(before)
        assert not idle.reconciled and idle.fetched == 0
        assert cost.reads <= IDLE_READS and cost.writes <= IDLE_WRITES and cost.deletes == 0, cost


def test_a_day_of_scheduled_runs_makes_one_reconcile_in_the_first_run_after_reconcile_at(harness):
    store = harness.open_store()
    harness.clock.value = local(DAY, 12, 0)
    scheduled(harness)  # a new store reconciles in its first run
    reconciling = []
    writes, logins = 0, harness.stand.moneypenny.count("auth")
    for _ in range(288):  # every 5 minutes, a day
        harness.clock.advance(minutes=5)
        before = store.counters.snapshot()
        report = scheduled(harness)
        writes += store.counters.since(before).writes
        if report.reconciled:
            reconciling.append(report.started_at.astimezone(UK).strftime("%H:%M"))
    assert reconciling == ["03:15"]
    # The token lives 24 hours: the day's one login writes the new token into the run state.
    assert writes <= IDLE_WRITES * 288 + harness.stand.moneypenny.count("auth") - logins


# -- the rule --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("last, now, at, tz, expected", [
    (None, local(DAY, 12, 0), time(3, 15), UK, True),  # never reconciled (a new or upgraded store)
    (None, local(DAY, 12, 0), None, UK, False),  # RECONCILE_AT=off
    (local(DAY - timedelta(days=1), 3, 15), local(DAY, 3, 14, 59), time(3, 15), UK, False),
    (local(DAY - timedelta(days=1), 3, 15), local(DAY, 3, 15), time(3, 15), UK, True),
    (local(DAY, 3, 15), local(DAY, 23, 59), time(3, 15), UK, False),
    (local(DAY, 3, 14), local(DAY, 3, 20), time(3, 15), UK, True),  # a reconcile just before it
    (local(DAY - timedelta(days=9), 3, 15), local(DAY, 0, 5), time(3, 15), UK, True),  # down for days
    (local(DAY, 3, 15), local(DAY, 3, 16), time(0, 0), UK, False),  # midnight
    (local(DAY - timedelta(days=1), 0, 1), local(DAY, 0, 0), time(0, 0), UK, True),
    # British Summer Time begins 2026-03-29 at 01:00 (01:30 never shows): due once the clock passes it.
    (local(date(2026, 3, 28), 1, 30), datetime(2026, 3, 29, 0, 59, tzinfo=UTC), time(1, 30), UK, False),
    (local(date(2026, 3, 28), 1, 30), datetime(2026, 3, 29, 1, 30, tzinfo=UTC), time(1, 30), UK, True),
    # It ends 2026-10-25 at 02:00 (01:30 shows twice): due at the first, not again at the second.
    (local(date(2026, 10, 24), 1, 30), datetime(2026, 10, 25, 0, 30, tzinfo=UTC), time(1, 30), UK, True),
    (datetime(2026, 10, 25, 0, 30, 5, tzinfo=UTC), datetime(2026, 10, 25, 1, 31, tzinfo=UTC), time(1, 30), UK, False),
    # Local time in CHAT_TIMEZONE, whatever UTC's date says.
    (local(DAY - timedelta(days=1), 22, 31, tz=NEW_YORK), datetime(2026, 11, 21, 3, 29, tzinfo=UTC), time(22, 30),
     NEW_YORK, False),
    (local(DAY - timedelta(days=1), 22, 31, tz=NEW_YORK), datetime(2026, 11, 21, 3, 30, tzinfo=UTC), time(22, 30),
     NEW_YORK, True),
])
def test_when_the_daily_reconcile_is_due(last, now, at, tz, expected):
    assert due(last, now, at, tz) is expected


# -- through the function ----------------------------------------------------------------------------------


def test_the_function_makes_the_daily_reconcile_in_a_scheduled_sync_once(harness, client, monkeypatch):
    """The function runs on the wall clock: RECONCILE_AT is set twelve hours away, so that it
    cannot fall due between the two calls. A store never reconciled reconciles first."""
    now = datetime.now(UK)
    monkeypatch.setenv("RECONCILE_AT", (now + timedelta(hours=12)).strftime("%H:%M"))
    missed = skipped_by_the_cursor(harness, now.date() - timedelta(days=1), 2, seed=12)
    headers = {"X-CloudScheduler-JobName": JOB}
    first = client.post("/", headers={**headers, "X-CloudScheduler-ScheduleTime": "2026-11-20T12:00:00Z"})
    body = first.get_json()
    assert first.status_code == 200 and body["reconciled"] is True and body["appended"] == len(missed), body
    second = client.post("/", headers={**headers, "X-CloudScheduler-ScheduleTime": "2026-11-20T12:05:00Z"})
    assert second.status_code == 200 and "reconciled" not in second.get_json(), second.get_json()
    assert len(window_reads(harness)) == 1
    assert_each_chat_once(harness, len(missed))
