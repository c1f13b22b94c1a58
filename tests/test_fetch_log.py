"""The fetch log (lib/sync/fetch.py), point by point as docs/guarantees.md's "No lost cursor" states it.

Driven with the real Moneypenny client against the Moneypenny stand-in, a real SQLite store and
the harness's hand-moved clock.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from lib.errors import MoneypennyNoAnswer
from lib.sync import CURSOR_DOC, RunOptions
from sandbox.standins import LostResponse, Malformed, Status
from tests.harness import Crash, crash_at


def cursor(harness) -> dict:
    return harness.open_store().get_meta(CURSOR_DOC) or {}


def journaled(harness) -> set[str]:
    return {e.key for e in harness.open_store().journal_pending()}


def today(harness) -> date:
    return harness.clock().astimezone(harness.settings().chat_timezone).date()


def lose_a_read(harness, n: int) -> None:
    """A plain read whose answer moved Moneypenny's cursor but never reached the journal."""
    harness.add_chats(n, seed=99)
    with pytest.raises(Crash):
        harness.protocols(checkpoint=crash_at("after_fetch")).fetch.read(harness.report("lost"), RunOptions())
    assert harness.stand.moneypenny.pending_chats() == [] and journaled(harness) == set()


def test_a_plain_read_writes_its_intent_before_the_call_and_clears_it_once_the_answer_is_journaled(harness):
    """Before the plain call the run records a fetch intent; only when the whole answer is in
    the journal is it cleared, leaving the time of the read."""
    harness.add_chats(3)
    seen: list[dict] = []

    def at(step: str) -> None:
        if step == "after_fetch":  # the call has answered, nothing is journaled yet
            seen.append(cursor(harness))

    report = harness.report()
    harness.protocols(checkpoint=at).fetch.read(report, RunOptions())
    [during] = seen
    assert during["intent"]["run_id"] == "run" and "since" in during["intent"]
    assert cursor(harness) == {"last_read": harness.clock().isoformat()}
    assert report.new == 3 and len(journaled(harness)) == 3


def test_an_intent_left_behind_is_settled_first_by_a_window_read_of_everything_since_the_last_read(harness):
    """A run that finds an intent (here: the run crashed after the call) first re-reads, by
    date window, everything since the last read that reached the journal."""
    lose_a_read(harness, 4)
    assert "intent" in cursor(harness)
    harness.clock.advance(minutes=5)
    report = harness.report()
    harness.protocols().fetch.read(report, RunOptions())
    assert report.recovered == 4 and len(journaled(harness)) == 4
    assert "intent" not in cursor(harness)
    assert harness.stand.moneypenny.count("log") == 3  # the lost call, the window read, the plain call


@pytest.mark.parametrize("fault", [Status(503), Malformed()], ids=["5xx", "bad body"])
def test_an_answered_failure_of_the_plain_call_is_read_by_window_in_the_same_run_and_settles_the_intent(harness, fault):
    """The plain call that fails is not retried: the same run makes the date-window read, so one
    Moneypenny blip costs no failed run; after an answered failure that read settles the intent."""
    harness.add_chats(3)
    harness.stand.moneypenny.inject("log", fault)
    report = harness.report()
    harness.protocols().fetch.read(report, RunOptions())
    assert report.recovered == 3 and len(journaled(harness)) == 3
    assert "intent" not in cursor(harness)


def test_after_an_unanswered_plain_call_the_intent_stays_for_the_next_run_to_read_again(harness):
    """An unanswered call may still be moving the cursor at Moneypenny: its window read
    journals what it can, and the intent stays for the next run's recovery read."""
    harness.add_chats(2)
    harness.stand.moneypenny.inject("log", LostResponse())
    report = harness.report()
    harness.protocols().fetch.read(report, RunOptions())
    assert report.recovered == 2 and "intent" in cursor(harness)
    harness.clock.advance(minutes=5)
    harness.add_chats(1, seed=7)  # moved past by the lost call, which answered nothing
    nxt = harness.report("next")
    harness.protocols().fetch.read(nxt, RunOptions())
    assert nxt.recovered == 1 and len(journaled(harness)) == 3
    assert "intent" not in cursor(harness)


def test_a_window_read_clears_the_intent_only_when_it_covers_its_since_through_today(harness):
    """A window read settles an intent only from its `since` through today (it reads a day
    past its end, so today is covered whatever endTime means); any other window leaves it."""
    lose_a_read(harness, 2)
    since = date.fromisoformat(cursor(harness)["intent"]["since"])
    short = RunOptions(mode="window", start=since, end=today(harness) - timedelta(days=1), recover=False)
    harness.protocols().fetch.read(harness.report("short"), short)
    assert "intent" in cursor(harness)
    late_start = RunOptions(mode="window", start=since + timedelta(days=1), end=today(harness), recover=False)
    harness.protocols().fetch.read(harness.report("late"), late_start)
    assert "intent" in cursor(harness)
    whole = RunOptions(mode="window", start=since, end=today(harness), recover=False)
    harness.protocols().fetch.read(harness.report("whole"), whole)
    assert "intent" not in cursor(harness) and len(journaled(harness)) == 2


def test_without_recovery_a_left_intent_stays_and_no_recovery_read_is_made(harness):
    """A backfill day after the first (recover=False) leaves an earlier intent alone: one
    recovery read settles it afterwards."""
    lose_a_read(harness, 1)
    calls = harness.stand.moneypenny.count("log")
    window = RunOptions(mode="window", start=date(2026, 1, 5), end=date(2026, 1, 6), recover=False)
    harness.protocols().fetch.read(harness.report(), window)
    assert harness.stand.moneypenny.count("log") == calls + 1  # the window only
    assert "intent" in cursor(harness)


def test_the_first_read_reaches_back_reconcile_days_and_a_day_more(harness):
    """With no read before, the intent's span starts RECONCILE_DAYS before now, less a day of
    margin (a chat that started before a read can be handed out by the next one)."""
    harness.env_overrides["RECONCILE_DAYS"] = "3"
    seen: list[dict] = []
    harness.protocols(checkpoint=lambda step: seen.append(cursor(harness))).fetch.read(harness.report(), RunOptions())
    local: datetime = harness.clock().astimezone(harness.settings().chat_timezone)
    assert seen[0]["intent"]["since"] == (local - timedelta(days=4)).date().isoformat()


def test_the_client_reports_an_unanswered_call_as_no_answer(harness):
    """The boundary the intent rule rests on: a lost answer is MoneypennyNoAnswer, not an
    answered error."""
    harness.stand.moneypenny.inject("log", LostResponse())
    with pytest.raises(MoneypennyNoAnswer):
        harness.syncer().moneypenny.fetch_new()
