"""A full workbook (Google's 10,000,000 cells per spreadsheet): a run names it, with Google's reason,
the limit and the fix, and loses nothing; `check` says how full each tab's spreadsheet is and warns
past 80 %. The Sheets stand-in answers as Google does (400 INVALID_ARGUMENT)."""

from __future__ import annotations

import io
import json

import pytest

from lib.commands.cli import Context, main
from lib.errors import RunFailed, SheetFullError

LIMIT = 10_000_000
COLUMNS = 8  # the Chats tab's


def fill(harness, rows_per_tab: int) -> int:
    """The spreadsheet as two tabs (Chats, Archive) of `rows_per_tab` x 8 cells; returns the cells."""
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Chats", "Archive"), rows=rows_per_tab,
                                            cols=COLUMNS)
    return 2 * rows_per_tab * COLUMNS


def check(harness) -> dict[str, dict[str, str]]:
    out, err = io.StringIO(), io.StringIO()
    main(["check", "--json"], Context(env=harness.env(), clock=harness.clock, out=out, err=err, backoff=0.01))
    return {c["name"]: c for c in json.loads(out.getvalue())["checks"]}


def test_a_full_workbook_is_named_with_googles_reason_the_limit_and_the_fix_and_nothing_is_lost(harness):
    fill(harness, 624_999)  # 9,999,984 cells: the header fits, three more rows do not
    harness.add_chats(3, seed=1)
    with pytest.raises(RunFailed) as failed:
        harness.syncer().run()
    error = failed.value.error
    assert isinstance(error, SheetFullError) and not failed.value.transient
    text = str(error)
    assert "HTTP 400 INVALID_ARGUMENT" in text and "is full" in text and "10,000,000 cells" in text
    assert "above the limit of 10000000 cells" in text  # Google's own reason, kept
    assert "SHEET_ID" in error.fix and "Archive old rows" in error.fix
    assert failed.value.report.errors[0]["cause"] == "sheets_full"
    assert len(harness.open_store().journal_pending()) == 3  # waiting in the journal
    # Rows archived (the Archive tab emptied): the next run writes the three, once.
    harness.stand.sheets.delete_rows(harness.sheet_id, "Archive", 1, 600_000)
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    assert len(harness.sheet_keys()) == len(set(harness.sheet_keys())) == 3


@pytest.mark.parametrize("rows, result, words", [
    (1000, "OK", "(0.2 %)"),
    (500_001, "WARN", "past 80%"),
    (625_000, "FAIL", "it is full"),
])
def test_check_reports_how_full_the_spreadsheet_is_and_warns_past_80_percent(harness, rows, result, words):
    cells = fill(harness, rows)
    line = check(harness)["sheet"]
    assert line["status"] == result, line
    assert f"uses {cells:,} of Google's {LIMIT:,} cells" in line["detail"] and words in line["detail"]
    if result != "OK":
        assert "SHEET_ID" in line["fix"]


def test_check_reports_the_calls_tabs_spreadsheet_too(harness):
    harness.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    cells = fill(harness, 500_001)
    line = check(harness)["calls tab"]
    assert line["status"] == "WARN" and f"uses {cells:,} of" in line["detail"]
