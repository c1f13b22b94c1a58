"""The function's query string: mode, or a date window of ISO dates; anything else is a 400."""

from __future__ import annotations

from datetime import date

import pytest

from lib.errors import BadRequest, SyncError
from lib.handler import parse_request

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize("args, options", [
    ({}, {"mode": "new"}),
    ({"mode": ""}, {"mode": "new"}),
    ({"mode": "new"}, {"mode": "new"}),
    ({"mode": " reconcile "}, {"mode": "reconcile"}),
    ({"start": "2026-11-01", "end": "2026-11-30"},
     {"mode": "window", "start": date(2026, 11, 1), "end": date(2026, 11, 30)}),
    ({"start": " 2026-11-20 ", "end": "2026-11-20"},  # one day
     {"mode": "window", "start": date(2026, 11, 20), "end": date(2026, 11, 20)}),
    ({"mode": "window", "start": "2026-11-01", "end": "2026-11-02"},
     {"mode": "window", "start": date(2026, 11, 1), "end": date(2026, 11, 2)}),
    ({"start": "2024-01-01", "end": "2025-01-01"},  # 366 days, the longest window
     {"mode": "window", "start": date(2024, 1, 1), "end": date(2025, 1, 1)}),
    ({"start": "", "end": ""}, {"mode": "new"}),
    ({"other": "ignored"}, {"mode": "new"}),
])
def test_a_good_query_gives_the_runs_options(args, options):
    assert parse_request(args, today=TODAY) == options


@pytest.mark.parametrize("start, end", [("2000-01-01", "2000-01-01"), ("2026-12-02", "2026-12-02")])
def test_a_window_from_2000_to_tomorrow_is_accepted(start, end):
    assert parse_request({"start": start, "end": end}, today=TODAY)["mode"] == "window"


@pytest.mark.parametrize("args, message", [
    ({"mode": "sideways"}, "query parameter 'mode' must be one of new, reconcile, window, got 'sideways'"),
    ({"mode": "NEW"}, "query parameter 'mode' must be one of new, reconcile, window, got 'NEW'"),
    ({"mode": "reconcile", "start": "2026-11-01", "end": "2026-11-02"}, "mode=window"),  # never a silent window
    ({"mode": "window"}, "mode=window needs 'start' and 'end'"),
    ({"start": "2026-11-01"}, "query parameters 'start' and 'end' go together"),
    ({"end": "2026-11-01"}, "query parameters 'start' and 'end' go together"),
    ({"start": "2026-11-01", "end": " "}, "query parameters 'start' and 'end' go together"),
    ({"start": "2026-13-01", "end": "2026-13-02"}, "query parameters 'start' and 'end' must be ISO dates (YYYY-MM-DD)"),
    ({"start": "11/01/2026", "end": "11/02/2026"}, "must be ISO dates (YYYY-MM-DD)"),  # Moneypenny's order, not ours
    ({"start": "2026-11-01", "end": "tomorrow"}, "must be ISO dates (YYYY-MM-DD)"),
    ({"start": "2026-11-02", "end": "2026-11-01"}, "query parameter 'end' is before 'start'"),
    ({"start": "2024-01-01", "end": "2025-01-02"}, "a window of more than 366 days is too long for one call"),
    # At the calendar's edge (the run's day arithmetic would overflow), or far off: a typo, named.
    ({"start": "9999-12-30", "end": "9999-12-31"}, "start=9999-12-30 and end=9999-12-31 are outside the days a "
                                                   "window can read: start and end must be from 2000-01-01 to 2026-12-02"),
    ({"start": "0001-01-01", "end": "0001-01-02"}, "start=0001-01-01 and end=0001-01-02 are outside"),
    ({"start": "1999-12-31", "end": "2000-01-01"}, "start=1999-12-31 is outside the days a window can read"),
    ({"start": "2026-11-20", "end": "2026-12-03"}, "end=2026-12-03 is outside the days a window can read"),
])
def test_a_bad_query_is_a_bad_request_that_says_what_is_wrong(args, message):
    with pytest.raises(BadRequest) as caught:
        parse_request(args, today=TODAY)
    assert message in str(caught.value)
    assert caught.value.cause == "bad_request" and isinstance(caught.value, SyncError)
