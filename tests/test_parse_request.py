"""The function's query string: mode, or a date window of ISO dates; anything else is a 400."""

from __future__ import annotations

from datetime import date

import pytest

from lib.errors import BadRequest, SyncError
from lib.handler import parse_request


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
    assert parse_request(args) == options


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
])
def test_a_bad_query_is_a_bad_request_that_says_what_is_wrong(args, message):
    with pytest.raises(BadRequest) as caught:
        parse_request(args)
    assert message in str(caught.value)
    assert caught.value.cause == "bad_request" and isinstance(caught.value, SyncError)
