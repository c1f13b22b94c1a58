"""How a run is described (lib/sync/options.py): one typed RunOptions with a Mode, whichever
caller builds it."""

from __future__ import annotations

import json
from datetime import date

import pytest

from lib.errors import PermanentError
from lib.handler import parse_request
from lib.sync import Mode, RunOptions


def test_a_mode_is_its_name_in_comparisons_and_in_json():
    """Mode is a StrEnum: existing string comparisons and JSON answers keep working."""
    assert Mode.NEW == "new" and Mode("reconcile") is Mode.RECONCILE
    assert json.dumps({"mode": Mode.WINDOW}) == '{"mode": "window"}'


def test_options_given_a_mode_name_hold_the_mode_it_names():
    """RunOptions(mode="window") holds Mode.WINDOW."""
    opts = RunOptions(mode="window", start=date(2026, 11, 1), end=date(2026, 11, 2))
    assert opts.mode is Mode.WINDOW


def test_an_unknown_mode_is_refused_with_every_mode_named():
    """A bad mode is a clear, permanent error that lists the modes."""
    with pytest.raises(PermanentError) as refused:
        RunOptions(mode="sideways")
    assert refused.value.cause == "bad_request"
    assert "new, window, reconcile, quarantine" in str(refused.value) and "'sideways'" in str(refused.value)


def test_the_handlers_query_makes_run_options():
    """The handler's parsed query is the keyword arguments of a RunOptions."""
    opts = RunOptions(**parse_request({"start": "2026-11-01", "end": "2026-11-02"}), schedule_time="t")
    assert (opts.mode, opts.start, opts.end, opts.schedule_time) == (Mode.WINDOW, date(2026, 11, 1), date(2026, 11, 2), "t")


def test_keyword_arguments_and_options_describe_the_same_run(harness):
    """Syncer.run's keyword arguments are turned into the same RunOptions a caller could pass."""
    harness.add_chats(2)
    by_keywords = harness.syncer().run(mode="reconcile", notify=False)
    by_options = harness.syncer().run(options=RunOptions(mode=Mode.RECONCILE, notify=False))
    assert (by_keywords.mode, by_keywords.new, by_keywords.posted) == ("reconcile", 2, 0)
    assert (by_options.mode, by_options.new, by_options.posted) == ("reconcile", 0, 0)


def test_a_journal_only_run_reads_into_the_journal_and_the_next_run_delivers_it_once(harness):
    """deliver=False journals the read and touches neither the sheet nor Slack; a delivering run
    (whatever it reads itself) then writes those chats once."""
    harness.add_chats(4)
    harness.stand.sheets.reset_calls()
    report = harness.syncer().run(options=RunOptions(deliver=False))
    assert (report.outcome, report.new, report.appended, report.posted) == ("ok", 4, 0, 0)
    assert harness.stand.sheets.count() == 0 and harness.stand.slack.messages() == []
    assert len(harness.open_store().journal_pending()) == 4
    delivered = harness.syncer().run()
    assert (delivered.new, delivered.appended, delivered.posted) == (0, 4, 4)
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == 4
