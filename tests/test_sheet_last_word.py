"""The sheet has the last word (issue #18, duplicate cases 1, 2 and 3): a row whose key the tab
already holds is never appended (nor announced) again, whatever the journal still remembers:
entries expired, a batch document pruned, a new or emptied store, a source switched off and on.
Settings that would make a run read again what the journal forgot are refused.

Real clients against the stand-ins, on SQLite and the Firestore emulator (whose TTL policies do
not run: `forget_expired` deletes what they would have)."""

from __future__ import annotations

import dataclasses
import os
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from lib.errors import RunFailed, SettingsError
from lib.settings import min_retention_days
from lib.state.common import stored_time
from lib.state.models import Lease
from sandbox.standins import LostResponse, Status
from sandbox.standins.samples import sample_calls
from tests.harness import Crash, crash_at, move_cursor_elsewhere

CHATS, CALLS = 3, 2


@pytest.fixture
def both(harness):
    harness.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    return harness


def call_ids(h) -> list[str]:
    rows = h.stand.sheets.rows(h.sheet_id, "Calls")
    return [row[7] for row in rows[1:]]


def deliver_long_ago(h) -> tuple[list[dict], list[dict]]:
    """3 chats and 2 call messages, delivered (sheet and Slack) by a run 40 days before the clock."""
    h.clock.advance(days=-40)
    chats = h.add_chats(CHATS, seed=31)
    calls = sample_calls(CALLS, h.clock() - timedelta(hours=3), seed=32)
    h.stand.moneypenny.add_calls(calls)
    first = h.syncer().run()
    assert first.appended == CHATS + (CALLS if h.settings().calls_on else 0) and len(h.stand.slack.messages()) == 1
    h.clock.advance(days=40)
    return chats, calls


def forget_expired(h, store_kind: str) -> None:
    """What the journal's expiry does by now: SQLite prunes (each run does too); on Firestore the
    TTL policies would delete the expired documents (the emulator has none), so the test does."""
    store = h.open_store()
    now = h.clock()
    if store_kind == "sqlite":
        store.journal_prune(now)
        return
    client = store.client  # type: ignore[attr-defined]
    for name in ("poison_journal", "poison_batches", "poison_quarantine"):
        for snap in client.collection(name).stream():
            expires = stored_time(snap.to_dict().get("expires_at"))
            if expires is not None and expires < now:
                snap.reference.delete()


def empty_store(h, store_kind: str) -> None:
    """The state store emptied (or a new one), the sheet and Moneypenny as they were."""
    if store_kind == "sqlite":
        h.open_store().close()
        h.store = None
        os.remove(h.tmp / "state.sqlite3")
        return
    host = os.environ["FIRESTORE_EMULATOR_HOST"]
    url = f"http://{host}/emulator/v1/projects/demo-test/databases/(default)/documents"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=60):
        pass


def assert_each_once(h, chats: list[dict], calls: list[dict] = ()) -> None:  # type: ignore[assignment]
    keys = h.sheet_keys()
    assert len(keys) == len(set(keys)) == len(chats)
    assert sorted(call_ids(h)) == sorted(c["callId"] for c in calls)


def key_reads(h) -> list:
    """The stand-in's reads of a key column (N2:N on the chats tab, H2:H on the Calls tab)."""
    from urllib.parse import unquote

    return [c for c in h.stand.sheets.calls("values.get") if unquote(c.path).endswith(("!N2:N", "!H2:H"))]


# -- case 1: a day window over days the journal forgot ---------------------------------------------


def test_a_window_over_days_older_than_the_retention_writes_and_announces_nothing_again(both, store_kind):
    """Case 1: `?start=D&end=D` over a day delivered 40 days ago (RETENTION_DAYS=30): the rows are
    found in each tab's key column, nothing is appended or announced again."""
    chats, calls = deliver_long_ago(both)
    forget_expired(both, store_kind)
    assert both.open_store().journal_get(both.sheet_keys()) == {}  # the journal forgot them
    day = (both.clock() - timedelta(days=40)).astimezone(both.settings().chat_timezone).date()
    report = both.syncer().run(mode="window", start=day, end=day)
    # (Call messages the calls_read document still names as journaled are not even journaled.)
    assert report.fetched == CHATS + CALLS and report.new >= CHATS
    assert report.appended == 0 and report.already_in_sheet == report.new and report.posted == 0
    assert len(both.stand.slack.messages()) == 1  # the first run's only
    assert_each_once(both, chats, calls)
    assert report.healthy and report.pending == 0
    # Taken as delivered: the next window over that day does not even read the key column again.
    both.clock.advance(minutes=5)
    reads = both.stand.sheets.count("values.get")
    again = both.syncer().run(mode="window", start=day, end=day)
    assert again.new == 0 and again.appended == 0 and both.stand.sheets.count("values.get") == reads


def test_a_window_over_forgotten_days_writes_the_rows_missing_from_the_tab_once(both):
    """Where the key column lacks a row (a person deleted it), the window writes that row, once,
    and announces only it."""
    chats, calls = deliver_long_ago(both)
    forget_expired(both, "sqlite")
    both.stand.sheets.delete_rows(both.sheet_id, "Chats", CHATS + 1)  # the last chat's row, deleted by hand
    day = (both.clock() - timedelta(days=40)).astimezone(both.settings().chat_timezone).date()
    report = both.syncer().run(mode="window", start=day, end=day)
    assert report.appended == 1 and report.already_in_sheet == report.new - 1 and report.posted == 1
    assert_each_once(both, chats, calls)


def test_a_crash_between_the_window_read_and_the_key_check_writes_nothing_twice(both):
    """Journaled unchecked, they wait for the key column in the store itself: a crash before
    the check leaves them for the next run, which checks first."""
    chats, calls = deliver_long_ago(both)
    forget_expired(both, "sqlite")
    day = (both.clock() - timedelta(days=40)).astimezone(both.settings().chat_timezone).date()
    with pytest.raises(Crash):
        both.syncer(checkpoint=crash_at("after_journal")).run(mode="window", start=day, end=day)
    both.clock.advance(minutes=15)
    later = both.syncer().run()
    assert later.appended == 0 and later.already_in_sheet >= CHATS and later.posted == 0
    assert_each_once(both, chats, calls)
    assert len(both.stand.slack.messages()) == 1


def test_a_plain_read_of_a_chat_older_than_the_journal_remembers_checks_the_sheet(harness):
    """Moneypenny hands out, as new, a chat dated before the journal's memory that the sheet
    holds (entered again late, say): not written twice. A plain read of recent chats reads no
    key column (the scheduled run's cost)."""
    chats = deliver_long_ago(harness)[0]
    harness.syncer().run()
    reads = harness.stand.sheets.count("values.get")
    harness.clock.advance(minutes=5)
    harness.add_chats(2, seed=33)
    fresh = harness.syncer().run()
    assert fresh.appended == 2 and harness.stand.sheets.count("values.get") == reads + 1  # row 1 only
    harness.stand.moneypenny.add_chats(chats[:1])  # the old chat, handed out again
    harness.clock.advance(minutes=5)
    late = harness.syncer().run()
    assert late.new == 1 and late.appended == 0 and late.already_in_sheet == 1 and late.posted == 0
    assert len(harness.sheet_keys()) == len(set(harness.sheet_keys())) == CHATS + 2


# -- case 2: retention shorter than what a run reads again ----------------------------------------


def test_a_retention_shorter_than_the_days_read_again_is_refused_naming_both_settings(harness):
    """Case 2: RETENTION_DAYS=1 beside RECONCILE_DAYS=2 is refused, with the fix."""
    harness.env_overrides.update(RETENTION_DAYS="1", RECONCILE_DAYS="2")
    with pytest.raises(SettingsError) as refused:
        harness.settings()
    message = str(refused.value)
    assert "RETENTION_DAYS=1" in message and "RECONCILE_DAYS=2" in message
    assert f"at least {min_retention_days(2)}" in message
    harness.env_overrides.update(RETENTION_DAYS=str(min_retention_days(2)))
    assert harness.settings().retention_days == min_retention_days(2)
    harness.env_overrides.update(RETENTION_DAYS="30", RECONCILE_DAYS="31")
    with pytest.raises(SettingsError, match=r"RETENTION_DAYS=30 .*RECONCILE_DAYS=31.*at least 34"):
        harness.settings()


def test_the_reconcile_over_an_emptied_store_writes_nothing_twice(both, store_kind):
    """Case 2 (the daily reconcile), the journal having forgotten everything: a new store."""
    both.clock.advance(days=-1)
    chats = both.add_chats(CHATS, seed=41)
    calls = sample_calls(CALLS, both.clock() - timedelta(hours=1), seed=42)
    both.stand.moneypenny.add_calls(calls)
    both.syncer().run()
    both.clock.advance(days=1)
    empty_store(both, store_kind)
    if store_kind == "firestore":
        both.store = type(both.store)(both.store.client, "poison")  # type: ignore[call-arg, attr-defined]
    report = both.syncer().run(mode="reconcile")
    assert report.appended == 0 and report.already_in_sheet == CHATS + CALLS and report.posted == 0
    assert_each_once(both, chats, calls)
    assert len(both.stand.slack.messages()) == 1


def test_a_503_on_the_first_plain_call_of_a_new_store_reads_back_without_writing_twice(harness):
    """Case 2 (one 503 on the plain log call: its window reads back a day), on a store that does
    not remember yesterday's rows."""
    harness.clock.advance(days=-1)
    harness.add_chats(CHATS, seed=43)
    harness.syncer().run()
    harness.clock.advance(days=1)
    empty_store(harness, "sqlite")
    harness.stand.moneypenny.inject("log", Status(503))
    report = harness.syncer().run()
    assert report.recovered == CHATS and report.appended == 0 and report.already_in_sheet == CHATS
    assert len(harness.sheet_keys()) == len(set(harness.sheet_keys())) == CHATS
    assert len(harness.stand.slack.messages()) == 1


def test_an_unanswered_append_outlived_by_its_batch_document_is_checked_not_written_again(harness, store_kind):
    """Case 2 (an unanswered append, then an unshared sheet for longer than RETENTION_DAYS: its
    batch document expires): the rows pending since before the journal's memory are checked
    against the key column before anything is written."""
    harness.env_overrides["RETENTION_DAYS"] = str(min_retention_days(2))
    harness.syncer().run()  # the store's first read
    harness.clock.advance(minutes=5)
    harness.add_chats(CHATS, seed=44)
    harness.stand.sheets.inject("values.append", LostResponse())  # lands, the answer is lost
    with pytest.raises(RunFailed):
        harness.syncer().run()
    assert len(harness.sheet_keys()) == CHATS
    harness.stand.sheets.forbid(harness.sheet_id)  # the sheet unshared
    for _ in range(min_retention_days(2) + 1):
        harness.clock.advance(days=1)
        with pytest.raises(RunFailed):
            harness.syncer().run()
        forget_expired(harness, store_kind)
    assert harness.open_store().batch_list() == []  # the in-flight mark is gone
    harness.stand.sheets.forbid(harness.sheet_id, False)
    harness.clock.advance(minutes=5)
    report = harness.syncer().run()
    assert report.appended == 0 and report.already_in_sheet == CHATS
    assert len(harness.sheet_keys()) == len(set(harness.sheet_keys())) == CHATS
    assert report.pending == 0 and harness.open_store().journal_pending() == []


def test_a_first_read_whose_run_died_between_append_and_post_is_announced_after_its_batch_expired(harness):
    """A store's first read journals its chats unchecked; its run appends them and dies before the
    Slack post; no run gets to the sheet before the batch document of that append expires. The
    entries the journal still holds (pending, never announced) are found in the sheet and
    announced then, not taken as announced long ago."""
    retention = min_retention_days(2)
    harness.env_overrides["RETENTION_DAYS"] = str(retention)
    harness.add_chats(CHATS, seed=45)
    with pytest.raises(Crash):
        harness.syncer(checkpoint=crash_at("after_append")).run()
    assert len(harness.sheet_keys()) == CHATS and harness.stand.slack.messages() == []
    harness.clock.advance(days=retention + 1)
    report = harness.syncer().run()
    assert report.appended == 0 and report.already_in_sheet == CHATS
    assert report.posted == CHATS, "never announced: taken as announced when its batch document expired"
    assert len(harness.stand.slack.messages()) == 1
    assert harness.open_store().journal_pending() == []


# -- case 3: a source switched off and on -------------------------------------------------------


def test_chats_turned_off_for_40_days_then_on_again_read_nothing_twice(both, store_kind):
    """Case 3: MONEYPENNY_SOURCES=calls for 40 days, then chats,calls again. A calls-only run
    plans no chat fetch intent, so nothing is recovered; what was delivered stays once."""
    chats = both.add_chats(CHATS, seed=51)
    calls = sample_calls(CALLS, both.clock() - timedelta(hours=2), seed=52)
    both.stand.moneypenny.add_calls(calls)
    both.syncer().run()
    both.env_overrides["MONEYPENNY_SOURCES"] = "calls"
    log_calls = both.stand.moneypenny.count("log")
    for _ in range(4):
        both.clock.advance(days=10)
        report = both.syncer().run()
        assert report.healthy, report.unhealthy
        assert both.open_store().read_run_state().cursor.intent is None  # no chat read planned
        forget_expired(both, store_kind)
    assert both.stand.moneypenny.count("log") == log_calls
    both.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    both.clock.advance(minutes=5)
    again = both.syncer().run()
    assert again.recovered == 0 and again.appended == 0
    assert_each_once(both, chats, calls)


def test_a_read_left_unsettled_before_chats_were_turned_off_is_recovered_without_duplicates(both, store_kind):
    """The intent an unanswered plain call left before the switch stays (a calls-only run neither
    settles nor plans one); 40 days later its recovery read reaches back before the journal's
    memory, and the key column decides: nothing written or announced twice."""
    both.add_chats(CHATS, seed=53)
    both.syncer().run()
    both.clock.advance(minutes=5)
    both.add_chats(2, seed=54, start=(both.clock() - timedelta(minutes=30)).astimezone(
        both.settings().chat_timezone).replace(tzinfo=None))
    both.stand.moneypenny.inject("log", LostResponse())  # the cursor moved, the answer lost
    read_instead = both.syncer().run()  # its window read journals them; the intent stays
    assert read_instead.recovered == 2 and read_instead.appended == 2
    assert both.open_store().read_run_state().cursor.intent is not None
    both.env_overrides["MONEYPENNY_SOURCES"] = "calls"
    for _ in range(4):
        both.clock.advance(days=10)
        assert both.syncer().run().healthy
        assert both.open_store().read_run_state().cursor.intent is not None  # left for the chats
        forget_expired(both, store_kind)
    both.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    messages = len(both.stand.slack.messages())
    report = both.syncer().run()
    assert report.recovered == CHATS + 2 and report.appended == 0 and report.already_in_sheet == CHATS + 2
    assert both.open_store().read_run_state().cursor.intent is None
    keys = both.sheet_keys()
    assert len(keys) == len(set(keys)) == CHATS + 2
    assert len(both.stand.slack.messages()) == messages


def test_call_messages_waiting_while_calls_are_off_are_reported_as_theirs_and_keep_runs_healthy(both):
    """Calls turned off while messages wait (the Calls tab failing): no run is unhealthy for
    them, none says "chat(s) undelivered"; each run reports them as the calls' (off_waiting);
    turning calls on again delivers them once."""
    calls = sample_calls(CALLS, both.clock() - timedelta(hours=1), seed=61)
    both.stand.moneypenny.add_calls(calls)
    both.stand.sheets.inject("values.append", Status(400), times=1)  # refused: nothing landed
    with pytest.raises(RunFailed):
        both.syncer().run()
    assert call_ids(both) == []
    both.env_overrides["MONEYPENNY_SOURCES"] = "chats"
    for _ in range(3):
        both.clock.advance(minutes=20)
        report = both.syncer().run()
        assert report.healthy and report.unhealthy == [] and report.pending == 0
        assert report.off_waiting == {"calls": CALLS}
        assert report.as_dict()["off_waiting"] == {"calls": CALLS}
    both.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    both.clock.advance(minutes=5)
    report = both.syncer().run()
    assert report.appended == CALLS and sorted(call_ids(both)) == sorted(c["callId"] for c in calls)


def test_status_names_the_held_call_messages_and_waiting_drop_lets_them_go(both):
    """`status` says OK, naming the call messages held while calls are off and the two ways out;
    `python -m lib waiting --drop calls` takes them as delivered: calls on again writes none."""
    import io

    from lib.commands.cli import EXIT_OK, Context, main

    def cli(*argv: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), Context(env=both.env(), clock=both.clock, out=out, err=err, backoff=0.01))
        return code, out.getvalue() + err.getvalue()

    calls = sample_calls(CALLS, both.clock() - timedelta(hours=1), seed=63)
    both.stand.moneypenny.add_calls(calls)
    both.stand.sheets.inject("values.append", Status(400), times=1)
    with pytest.raises(RunFailed):
        both.syncer().run()
    both.env_overrides["MONEYPENNY_SOURCES"] = "chats"
    both.clock.advance(minutes=20)
    assert both.syncer().run().healthy
    code, text = cli("status")
    assert code == EXIT_OK and text.startswith("OK"), text
    assert f"{CALLS} call message(s) wait in the journal while calls are off" in text
    assert "python -m lib waiting --drop calls" in text
    code, text = cli("waiting", "--drop", "calls")
    assert code == EXIT_OK and f"dropped {CALLS} waiting calls item(s)" in text and "Nothing waits" in text
    both.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    both.clock.advance(minutes=5)
    report = both.syncer().run()
    assert report.appended == 0 and call_ids(both) == [] and report.healthy


def test_waiting_drop_keeps_the_dropped_items_for_retention_days(both):
    """`python -m lib waiting --drop calls` reads RETENTION_DAYS, as the runs do: the dropped
    call messages expire RETENTION_DAYS after the drop, not after the default 30 days."""
    import io

    from lib.commands.cli import EXIT_OK, Context, main

    calls = sample_calls(CALLS, both.clock() - timedelta(hours=1), seed=66)
    both.stand.moneypenny.add_calls(calls)
    both.stand.sheets.forbid(both.sheet_id)  # nothing delivered: the call messages wait
    with pytest.raises(RunFailed):
        both.syncer().run()
    both.env_overrides["RETENTION_DAYS"] = "90"
    out, err = io.StringIO(), io.StringIO()
    code = main(["waiting", "--drop", "calls"], Context(env=both.env(), clock=both.clock, out=out, err=err, backoff=0.01))
    assert code == EXIT_OK, err.getvalue()
    dropped = both.open_store().journal_get(f"call:{c['callId']}" for c in calls)
    assert len(dropped) == CALLS
    assert all(e.delivered and e.expires_at == both.clock() + timedelta(days=90) for e in dropped.values())


def test_an_unhealthy_run_names_the_source_whose_items_wait(both):
    """Stuck call messages are "call message(s) undelivered", not chats."""
    calls = sample_calls(CALLS, both.clock() - timedelta(hours=1), seed=62)
    both.stand.moneypenny.add_calls(calls)
    both.stand.sheets.inject("values.append", Status(400), times=None)
    with pytest.raises(RunFailed):
        both.syncer().run()
    both.clock.advance(minutes=15)
    with pytest.raises(RunFailed) as failed:
        both.syncer().run()
    assert failed.value.report.unhealthy[:1] == [f"{CALLS} call message(s) undelivered for over 10 min"]


# -- item 4: day windows read the days asked for ---------------------------------------------------


@pytest.mark.parametrize("inclusive", [True, False])
def test_a_one_day_window_reads_that_day_whatever_end_time_means(both, inclusive):
    """`?start=D&end=D` asks Moneypenny for D to D+1 and keeps D's items only."""
    both.stand.moneypenny.end_inclusive = inclusive
    both.stand.moneypenny.calls_to_inclusive = inclusive
    tz = both.settings().chat_timezone
    day = both.clock().astimezone(tz).date() - timedelta(days=3)
    noon = datetime(day.year, day.month, day.day, 12, 0)
    on_day = both.add_chats(2, seed=71, start=noon)
    both.add_chats(2, seed=72, start=noon + timedelta(days=1))  # the day after: not asked for
    calls = sample_calls(2, noon.replace(tzinfo=UTC), seed=73)
    both.stand.moneypenny.add_calls(calls + sample_calls(1, noon.replace(tzinfo=UTC) + timedelta(days=1), seed=74))
    move_cursor_elsewhere(both)
    report = both.syncer().run(mode="window", start=day, end=day)
    assert len(both.sheet_keys()) == 2 and {r["Name"] for r in both.records()} == {c["name"].strip() for c in on_day}
    assert sorted(call_ids(both)) == sorted(c["callId"] for c in calls)
    assert report.fetched == 4 and report.appended == 4
    log_query = both.stand.moneypenny.calls("log")[-1].query
    assert (log_query["startTime"], log_query["endTime"]) == (
        day.strftime("%m/%d/%Y"), (day + timedelta(days=1)).strftime("%m/%d/%Y"))


def test_a_store_with_no_history_reads_the_key_column_once_and_a_known_store_not_at_all(harness):
    """The cost: the first read of a store checks the key column (one values.get of the column);
    the plain runs after it do not."""
    harness.add_chats(2, seed=81)
    harness.syncer().run()
    first = key_reads(harness)
    assert len(first) == 1
    for n in range(3):
        harness.clock.advance(minutes=5)
        harness.add_chats(1, seed=82 + n)
        harness.syncer().run()
    assert len(key_reads(harness)) == 1 and len(harness.sheet_keys()) == 5


def test_dropping_a_sources_waiting_items_takes_them_as_delivered_on_either_store(both, store):
    """lib.commands.waiting.drop: the source's undelivered entries become delivered (expiring), the
    other source's stay; a run holding the lease makes it write nothing."""
    from lib.commands.waiting import by_source, drop

    calls = sample_calls(CALLS, both.clock() - timedelta(hours=1), seed=64)
    both.stand.moneypenny.add_calls(calls)
    both.add_chats(1, seed=65)
    both.stand.sheets.forbid(both.sheet_id)  # nothing delivered: both sources' items wait
    with pytest.raises(RunFailed):
        both.syncer().run()
    assert {s: len(e) for s, e in by_source(store.journal_pending()).items()} == {"chats": 1, "calls": CALLS}
    held = Lease("another-run", both.clock() + timedelta(minutes=5))
    store.update_run_state(lambda state: dataclasses.replace(state, lease=held))
    assert drop(store, "calls", both.clock(), 30) is None
    both.clock.advance(minutes=6)
    assert drop(store, "calls", both.clock(), 30) == CALLS
    assert {s: len(e) for s, e in by_source(store.journal_pending()).items()} == {"chats": 1}
    dropped = store.journal_get(f"call:{c['callId']}" for c in calls)
    assert all(e.delivered and e.expires_at == both.clock() + timedelta(days=30) for e in dropped.values())
