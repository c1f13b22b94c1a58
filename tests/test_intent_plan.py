"""The fetch intent, without a store (lib/sync/fetch.py): which intent `plan_intent` stores
before a run's read for each mode and cursor, which day its recovery read starts from in
CHAT_TIMEZONE (across midnight and the clock changes), and when a read settles it
(`read_settles`). Every expected day below is worked out by hand from the rule: the day, in
CHAT_TIMEZONE, of the last read that reached the journal (or RECONCILE_DAYS before now on a
first read), one day earlier."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from lib.state.documents import CursorDoc, FetchIntent
from lib.sync import RunOptions, plan_intent
from lib.sync.fetch import read_settles
from lib.sync.options import Mode

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
UTC_ZONE = ZoneInfo("UTC")
AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def planned(cursor: CursorDoc, mode: Mode = Mode.NEW, *, at: datetime = AT, tz: ZoneInfo = LONDON,
            reconcile_days: int = 2) -> CursorDoc:
    opts = RunOptions(mode=mode) if mode in (Mode.NEW, Mode.QUARANTINE) else RunOptions(
        mode=mode, start=date(2026, 11, 18), end=date(2026, 11, 20))
    return plan_intent(cursor, opts, run_id="run-1", at=at, tz=tz, reconcile_days=reconcile_days)


@pytest.mark.parametrize("mode", [Mode.NEW, Mode.WINDOW, Mode.RECONCILE])
def test_every_read_of_the_chat_log_is_guarded_by_an_intent_that_names_the_run_and_keeps_the_cursor(mode):
    last = utc(2026, 11, 20, 11, 55)
    cursor = planned(CursorDoc(last_read=last), mode)
    assert cursor.last_read == last
    assert cursor.intent == FetchIntent(since=date(2026, 11, 19), run_id="run-1", at=AT)


def test_a_quarantine_run_reads_no_chat_log_and_stores_no_intent():
    cursor = CursorDoc(last_read=utc(2026, 11, 20, 11, 55))
    assert planned(cursor, Mode.QUARANTINE) == cursor


@pytest.mark.parametrize("mode", [Mode.NEW, Mode.WINDOW, Mode.RECONCILE, Mode.QUARANTINE])
def test_an_intent_left_by_an_earlier_read_is_kept_as_it_reaches_further_back(mode):
    left = FetchIntent(since=date(2026, 11, 2), run_id="crashed", at=utc(2026, 11, 3, 8, 0))
    cursor = CursorDoc(last_read=utc(2026, 11, 3, 7, 55), intent=left)
    assert planned(cursor, mode) == cursor


# (last read that reached the journal, CHAT_TIMEZONE, the recovery read's first day)
SINCE_AFTER_A_READ = [
    pytest.param(utc(2026, 11, 19, 23, 30), LONDON, date(2026, 11, 18), id="London-on-UTC-before-midnight"),
    pytest.param(utc(2026, 11, 19, 23, 30), BERLIN, date(2026, 11, 19), id="Berlin-already-the-next-day"),
    pytest.param(utc(2026, 11, 20, 3, 30), NEW_YORK, date(2026, 11, 18), id="New-York-still-the-day-before"),
    pytest.param(utc(2026, 11, 19, 15, 30), TOKYO, date(2026, 11, 19), id="Tokyo-past-midnight"),
    pytest.param(utc(2026, 11, 20, 0, 0), UTC_ZONE, date(2026, 11, 19), id="UTC-at-midnight-exactly"),
    pytest.param(utc(2026, 11, 19, 23, 59, 59), UTC_ZONE, date(2026, 11, 18), id="UTC-a-second-before-midnight"),
    # London's clocks go forward at 01:00 UTC on 29 March 2026 (GMT to BST).
    pytest.param(utc(2026, 3, 29, 0, 30), LONDON, date(2026, 3, 28), id="London-spring-forward-GMT-side"),
    pytest.param(utc(2026, 3, 28, 23, 30), LONDON, date(2026, 3, 27), id="London-spring-forward-day-before"),
    pytest.param(utc(2026, 3, 29, 23, 30), LONDON, date(2026, 3, 29), id="London-first-BST-night-past-midnight"),
    # They go back at 01:00 UTC on 25 October 2026: 23:30 UTC on the 24th is 00:30 BST on the 25th.
    pytest.param(utc(2026, 10, 24, 23, 30), LONDON, date(2026, 10, 24), id="London-fall-back-BST-past-midnight"),
    pytest.param(utc(2026, 10, 24, 23, 30), UTC_ZONE, date(2026, 10, 23), id="the-same-moment-in-UTC"),
    pytest.param(utc(2026, 10, 25, 1, 30), LONDON, date(2026, 10, 24), id="London-in-the-repeated-hour"),
    # New York's clocks go back at 06:00 UTC on 1 November 2026.
    pytest.param(utc(2026, 11, 1, 4, 30), NEW_YORK, date(2026, 10, 31), id="New-York-fall-back-night-still-on-EDT"),
]


@pytest.mark.parametrize("last_read, tz, since", SINCE_AFTER_A_READ)
def test_the_recovery_read_starts_a_day_before_the_last_read_as_dated_in_chat_timezone(last_read, tz, since):
    cursor = planned(CursorDoc(last_read=last_read), tz=tz, at=utc(2026, 11, 20, 12, 0))
    assert cursor.intent is not None and cursor.intent.since == since


# (now, CHAT_TIMEZONE, RECONCILE_DAYS, the recovery read's first day)
SINCE_ON_A_FIRST_READ = [
    pytest.param(utc(2026, 11, 20, 12, 0), LONDON, 2, date(2026, 11, 17), id="two-reconcile-days-and-a-day"),
    pytest.param(utc(2026, 11, 20, 12, 0), LONDON, 7, date(2026, 11, 12), id="seven-reconcile-days-and-a-day"),
    pytest.param(utc(2026, 11, 20, 12, 0), LONDON, 0, date(2026, 11, 18), id="no-reconcile-days-still-reads-one"),
    pytest.param(utc(2026, 11, 20, 15, 30), TOKYO, 1, date(2026, 11, 19), id="Tokyo-past-midnight"),
    pytest.param(utc(2026, 11, 20, 3, 0), NEW_YORK, 1, date(2026, 11, 17), id="New-York-before-midnight"),
    pytest.param(utc(2026, 3, 30, 0, 30), LONDON, 1, date(2026, 3, 28), id="London-across-spring-forward"),
    pytest.param(utc(2026, 3, 30, 23, 30), LONDON, 1, date(2026, 3, 29), id="London-BST-past-midnight"),
]


@pytest.mark.parametrize("at, tz, reconcile_days, since", SINCE_ON_A_FIRST_READ)
def test_a_first_read_recovers_from_reconcile_days_back_and_a_day_more(at, tz, reconcile_days, since):
    cursor = planned(CursorDoc(), at=at, tz=tz, reconcile_days=reconcile_days)
    assert cursor == CursorDoc(last_read=None, intent=FetchIntent(since=since, run_id="run-1", at=at))


# -- when a read settles the intent ----------------------------------------------------------------

INTENT = FetchIntent(since=date(2026, 11, 17), run_id="run-1", at=AT)
TODAY = date(2026, 11, 20)

# (the read, whether the intent was left by an earlier run, whether the read settles it)
SETTLES = [
    pytest.param(RunOptions(), False, True, id="plain-read-settles-its-own-intent"),
    pytest.param(RunOptions(), True, False, id="plain-read-cannot-settle-an-intent-an-earlier-read-left"),
    pytest.param(RunOptions(mode="window", start=date(2026, 11, 17), end=TODAY), True, True,
                 id="window-from-since-through-today"),
    pytest.param(RunOptions(mode="window", start=date(2026, 11, 1), end=date(2026, 11, 30)), False, True,
                 id="window-around-since-and-today"),
    pytest.param(RunOptions(mode="window", start=date(2026, 11, 18), end=TODAY), True, False,
                 id="window-starting-a-day-after-since"),
    pytest.param(RunOptions(mode="window", start=date(2026, 11, 17), end=date(2026, 11, 19)), False, False,
                 id="window-ending-yesterday"),
    pytest.param(RunOptions(mode="reconcile", start=date(2026, 11, 16), end=TODAY), True, True,
                 id="reconcile-covering-since"),
]


@pytest.mark.parametrize("opts, carried, settles", SETTLES)
def test_a_read_settles_the_intent_only_when_it_covers_what_the_intent_may_have_skipped(opts, carried, settles):
    assert read_settles(INTENT, opts, TODAY, carried=carried) is settles
