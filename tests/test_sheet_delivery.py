"""Exactly-once rows (lib/sync/exactly_once.py), point by point as docs/guarantees.md's
"Exactly-once rows" states it. Real SheetWriter (gspread) against the Sheets stand-in, a real SQLite store
and the harness's hand-moved clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lib.errors import HeaderMismatchError, SheetAccessError, SheetNoAnswer, SheetUnavailable
from lib.state.models import DONE, INFLIGHT, PENDING
from lib.sync import ANSWERED, RunOptions, settle_time
from sandbox.standins import LostResponse, Status
from tests.harness import Crash, crash_at


def journal_chats(harness, n: int) -> None:
    """n chats fetched into the journal (by the fetch log), none delivered yet."""
    harness.add_chats(n)
    harness.protocols().fetch.read(harness.report("fetch"), RunOptions())


def deliver(harness, run_id: str = "run", checkpoint=None):
    report = harness.report(run_id)
    steps = harness.protocols(checkpoint=checkpoint)
    steps.sheet.deliver(report, harness.open_store().journal_pending())
    steps.journal.write_staged()  # the run's one write per delivered entry, as Syncer makes it
    return report


def states(harness) -> list[str]:
    return [e.state("sheet") for e in harness.open_store().journal_pending()]


def sheet_keys(harness) -> list[str]:
    return harness.sheet_keys()


def test_the_rows_of_a_run_go_in_one_append_and_are_marked_done(harness):
    """All undelivered rows in one values.append; each entry is then done for the sheet."""
    journal_chats(harness, 4)
    report = deliver(harness)
    assert report.appended == 4 and len(set(sheet_keys(harness))) == 4
    assert harness.stand.sheets.count("values.append") == 1
    assert all(e.state("sheet") == DONE for e in harness.open_store().journal_get(sheet_keys(harness)).values())


def test_a_batch_is_marked_in_flight_with_its_run_and_time_before_the_append(harness):
    """In flight before the append: the mark names the run and when its append started."""
    journal_chats(harness, 2)
    seen: list[tuple[str, str | None]] = []

    def at(step: str) -> None:
        if step == "after_mark_inflight":
            seen.extend((e.state("sheet"), e.label("sheet")) for e in harness.open_store().journal_pending())

    deliver(harness, "r1", checkpoint=at)
    assert seen == [(INFLIGHT, f"r1@{int(harness.clock().timestamp())}")] * 2
    assert harness.stand.sheets.count("values.append") == 1


def test_rows_found_in_flight_are_checked_against_the_key_column_before_anything_is_written(harness):
    """A crash between the append and the done mark: the next delivery reads the Chat key
    column once and writes nothing again."""
    journal_chats(harness, 3)
    with pytest.raises(Crash):
        deliver(harness, checkpoint=crash_at("after_append"))
    assert states(harness) == [INFLIGHT] * 3
    harness.clock.advance(minutes=5)
    report = deliver(harness, "next")
    assert report.already_in_sheet == 3 and report.appended == 0
    assert len(sheet_keys(harness)) == 3 and harness.stand.sheets.count("values.append") == 1


def test_rows_in_flight_that_are_not_in_the_sheet_are_written_by_the_next_pass(harness):
    """A crash after the mark and before the append: the key check finds nothing, and the
    rows are appended once."""
    journal_chats(harness, 2)
    with pytest.raises(Crash):
        deliver(harness, checkpoint=crash_at("after_mark_inflight"))
    harness.clock.advance(minutes=5)
    report = deliver(harness, "next")
    assert report.appended == 2 and report.already_in_sheet == 0 and len(sheet_keys(harness)) == 2


def test_rows_of_an_unanswered_append_are_left_alone_until_it_has_surely_ended(harness):
    """No answer: Google may still be carrying the append out. A delivery sooner than
    max(120 s, 2 x HTTP_TIMEOUT_SECONDS) leaves the rows in flight; a later one checks them."""
    journal_chats(harness, 3)
    harness.stand.sheets.inject("values.append", LostResponse())
    with pytest.raises(SheetNoAnswer):
        deliver(harness)
    assert states(harness) == [INFLIGHT] * 3
    settle = settle_time(harness.settings().http_timeout_seconds)
    harness.clock.advance(seconds=settle.total_seconds() - 1)
    reads = harness.stand.sheets.count("values.get")
    early = deliver(harness, "early")
    assert early.waiting == 3 and early.appended == 0 and harness.stand.sheets.count("values.get") == reads  # none
    harness.clock.advance(seconds=1)
    late = deliver(harness, "late")
    assert late.already_in_sheet == 3 and late.appended == 0 and len(sheet_keys(harness)) == 3


def test_an_append_answered_with_a_5xx_is_checked_and_tried_once_more_in_the_same_delivery(harness):
    """Answered with an error, the append has ended: its rows are checked (one read of the
    key column) and written by the next pass of the same delivery."""
    journal_chats(harness, 3)
    harness.stand.sheets.inject("values.append", Status(503))
    report = deliver(harness)
    assert report.appended == 3 and len(set(sheet_keys(harness))) == 3 == len(sheet_keys(harness))
    assert harness.stand.sheets.count("values.append") == 2


def test_rows_of_appends_answered_with_errors_are_written_by_the_very_next_call(harness):
    """Both tries answered 503: the rows stay in flight marked answered, and a delivery seconds
    later (a scheduler retry) checks and writes them without waiting for the settle time."""
    journal_chats(harness, 2)
    harness.stand.sheets.inject("values.append", Status(503), times=2)
    with pytest.raises(SheetUnavailable):
        deliver(harness, "r1")
    assert [e.label("sheet") for e in harness.open_store().journal_pending()] == [f"r1@{ANSWERED}"] * 2
    harness.clock.advance(seconds=20)
    retry = deliver(harness, "retry")
    assert retry.waiting == 0 and retry.appended == 2 and len(sheet_keys(harness)) == 2


def test_a_permanent_error_is_not_retried_and_the_rows_wait_in_the_journal(harness):
    """A sheet not shared with the service account: one try, the error is raised, nothing lost."""
    journal_chats(harness, 2)
    harness.stand.sheets.inject("values.append", Status(403))
    with pytest.raises(SheetAccessError) as failed:
        deliver(harness)
    assert failed.value.fix and harness.stand.sheets.count("values.append") == 1
    assert len(harness.open_store().journal_pending()) == 2


def test_a_wrong_header_is_refused_before_anything_is_marked_in_flight(harness):
    """Row 1 is read before any mark: a header that is not ours writes nothing and marks nothing."""
    journal_chats(harness, 2)
    deliver(harness)  # creates the tab and the header
    harness.stand.sheets.set_rows(harness.sheet_id, harness.settings().sheet_tab, [["Owner", "Chat time"]])
    harness.add_chats(1, seed=5)
    harness.protocols().fetch.read(harness.report("f2"), RunOptions())
    with pytest.raises(HeaderMismatchError):
        deliver(harness, "after")
    assert sorted(states(harness)) == [DONE, DONE, PENDING]  # Slack still has the first two
    assert harness.stand.sheets.count("values.append") == 1


def test_the_settle_time_is_at_least_120_s_and_twice_the_http_timeout():
    """max(120 s, 2 x HTTP_TIMEOUT_SECONDS)."""
    assert settle_time(30) == timedelta(seconds=120)
    assert settle_time(90) == timedelta(seconds=180)
