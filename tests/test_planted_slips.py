"""What the suite once let through (issue #18, item 9): each test here catches a plausible one-line
slip that was planted, one at a time, in a copy of the code, and that the whole suite passed.

- the calls read starting at the last full day instead of one day before it;
- `calls_read` recorded before the journal holds the read;
- an in-flight batch document deleted before its entries are marked done;
- a secret setting left out of `Settings.secrets()` (the log scrubber masks only what it is given);
- the backfill building its Sheets session without its own (300 s) quota wait.

The state store fails here through tests/store_faults.py, which raises what the store's own
library raises (and lets the store's guard translate it), never a mock of our classes.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections import Counter
from dataclasses import fields
from datetime import datetime, timedelta

import pytest

from lib import handler
from lib.commands.cli import EXIT_OK, Context, main
from lib.destinations.sheet.client import SHEETS_QUOTA_WAIT_SECONDS
from lib.errors import RunFailed
from lib.settings import Settings
from lib.sync.backfill import BACKFILL_QUOTA_WAIT_SECONDS
from lib.sync.exactly_once import ATTEMPTS
from sandbox.standins.samples import sample_calls
from sandbox.standins.server import Status
from tests.harness import Crash, by_header, crash_at
from tests.store_faults import FaultyStore

# -- the calls read -------------------------------------------------------------------------------


def _calls(h) -> Counter:
    return Counter(r.get("Call id", "") for r in by_header(h.stand.sheets.rows(h.sheet_id, "Calls")))


def test_a_call_message_entered_late_for_the_day_before_the_last_full_day_is_read_by_the_next_run(harness):
    """A scheduled run reads from one day before the last full day read: a message the
    receptionist enters late, for that day, is still read (and only once)."""
    harness.env_overrides["MONEYPENNY_SOURCES"] = "calls"
    tz = harness.settings().chat_timezone
    harness.syncer().run()  # records yesterday as the last full day read
    today = harness.clock().astimezone(tz).date()
    last_full_day = today - timedelta(days=1)
    # Taken late in the evening of the day before the last full day, entered only now.
    evening = datetime(last_full_day.year, last_full_day.month, last_full_day.day, 22, 0, tzinfo=tz) - timedelta(days=1)
    [late] = sample_calls(1, evening, seed=31)
    harness.stand.moneypenny.add_calls([late])
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    assert _calls(harness) == Counter({late["callId"]: 1})


@pytest.mark.parametrize("kind", ["unavailable", "contention", "timeout"])
def test_a_failed_journal_write_of_a_calls_read_loses_no_call(harness, store, kind):
    """The last full day read (and the keys it knows) is recorded only once the read is in the
    journal: when the journal write fails, the next run reads and delivers every message."""
    harness.env_overrides["MONEYPENNY_SOURCES"] = "calls"
    calls = sample_calls(4, harness.clock() - timedelta(hours=3), seed=32)
    harness.stand.moneypenny.add_calls(calls)
    store = FaultyStore(store)
    harness.store = store
    store.fail("journal_add", kind)
    with pytest.raises(RunFailed):
        harness.syncer().run()
    assert store.injected == [f"journal_add:{kind}"]
    for _ in range(2):
        harness.clock.advance(minutes=5)
        harness.syncer().run()
    assert _calls(harness) == Counter({c["callId"]: 1 for c in calls})
    assert harness.store.journal_pending() == []


# -- in-flight batches and the done marks -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["unavailable", "contention", "timeout"])
@pytest.mark.parametrize("where", ["after the append", "after the key-column check"])
def test_a_failed_done_write_leaves_the_rows_in_flight_and_none_is_written_twice(harness, store, where, kind):
    """An append's batch document is deleted only after its entries are marked done, both when
    the run appended them and when a later run found them in the sheet: if the done writes fail,
    the batch still names the rows, the next run finds them in the sheet and writes none again."""
    chats = harness.add_chats(5, seed=33)
    store = FaultyStore(store)
    harness.store = store
    if where == "after the key-column check":
        # The rows land but the run dies before marking them: the next run checks the key column.
        with pytest.raises(Crash):
            harness.syncer(checkpoint=crash_at("after_append")).run()
        harness.clock.advance(minutes=5)  # past the settle time of the unanswered append
    # Every done write of the run fails (the store is down from then on, for this run).
    store.fail("journal_update", kind, times=None)
    with pytest.raises(RunFailed):
        harness.syncer().run()
    store.clear()
    assert store.injected and set(store.injected) == {f"journal_update:{kind}"}
    for _ in range(2):
        harness.clock.advance(minutes=5)
        harness.syncer().run()
    keys = harness.sheet_keys()
    assert len(keys) == len(chats) and len(set(keys)) == len(keys)
    assert harness.store.journal_pending() == []


# -- secrets in logs --------------------------------------------------------------------------------

# Every setting that holds a secret: its variable and its Settings field.
SECRET_SETTINGS = (
    ("MONEYPENNY_USERNAME", "moneypenny_username"),
    ("MONEYPENNY_PASSWORD", "moneypenny_password"),
    ("SLACK_BOT_TOKEN", "slack_bot_token"),
)


def test_the_secret_settings_table_names_every_secret_field_of_the_settings():
    assert sorted(f.name for f in fields(Settings) if f.type == "Secret") == sorted(a for _, a in SECRET_SETTINGS)


def _function(harness, env: dict[str, str], capsys) -> str:
    capsys.readouterr()
    handler.handle({}, {}, env)
    return "function"


def _cli(*command: str):
    def run(harness, env: dict[str, str], capsys) -> str:
        yesterday = str(harness.clock().date() - timedelta(days=1))
        args = [yesterday if part == "YESTERDAY" else part for part in command]
        main(args, Context(env=env, clock=harness.clock, out=io.StringIO(), err=io.StringIO(), backoff=0.01))
        return " ".join(args)

    return run


# Each way logging is set up for real: the function's handler, and the commands.
ENTRY_POINTS = {
    "the function": _function,
    "python -m lib run": _cli("run"),
    "python -m lib backfill": _cli("backfill", "--from", "YESTERDAY", "--to", "YESTERDAY"),
    "python -m lib check": _cli("check"),
}


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(("variable", "attr"), SECRET_SETTINGS)
def test_each_secret_setting_is_masked_in_every_log_line(harness, capsys, variable, attr, entry, log_format):
    """Whatever logged it (a message, a structured field, an exception's text), a secret setting's
    value never reaches the output: each entry point registers every secret with the scrubber."""
    # A value no earlier test registered, and no pattern (bearer, xox…) would catch by itself.
    value = "s" + secrets.token_hex(12)
    env = {**harness.env(), variable: value, "LOG_FORMAT": log_format}
    stream = io.StringIO()
    way = ENTRY_POINTS[entry](harness, env, capsys)
    # Logging stays as the entry point set it up; point its handler at a stream to read.
    for h in logging.getLogger().handlers:
        if getattr(h, "_moneypenny_sync", False):
            h.stream = stream
    assert any(getattr(h, "_moneypenny_sync", False) for h in logging.getLogger().handlers), way
    log = logging.getLogger("lib.test_planted_slips")
    log.error(f"the value is {value}", extra={"fields": {"setting": value}})
    try:
        raise RuntimeError(f"failed with {value}")
    except RuntimeError as exc:
        log.error(f"error: {exc}", exc_info=True)
    out = stream.getvalue()
    assert out.count("***") >= 3 and len(out.splitlines()) >= 2, out
    assert value not in out
    assert value not in capsys.readouterr().err


# -- the backfill's quota wait ----------------------------------------------------------------------


def test_a_backfill_waits_out_sheets_quota_longer_than_a_scheduled_run(harness, monkeypatch):
    """The backfill's Sheets session waits up to BACKFILL_QUOTA_WAIT_SECONDS for the quota, not a
    scheduled run's SHEETS_QUOTA_WAIT_SECONDS: a 429 storm longer than the one and shorter than the
    other is waited out (the waits are counted, not slept)."""
    retry_after, answers = 30, 9
    # Longer than both of a scheduled run's passes may wait (ATTEMPTS), within the backfill's wait.
    assert ATTEMPTS * SHEETS_QUOTA_WAIT_SECONDS < answers * retry_after <= BACKFILL_QUOTA_WAIT_SECONDS
    waited: list[float] = []
    monkeypatch.setattr("time.sleep", lambda seconds: waited.append(seconds))
    tz = harness.settings().chat_timezone
    day = harness.clock().astimezone(tz).date() - timedelta(days=2)
    chats = harness.add_chats(4, seed=35, start=datetime(day.year, day.month, day.day, 10, 0))
    harness.stand.sheets.inject("values.append", Status(429, retry_after=retry_after), times=answers)
    out, err = io.StringIO(), io.StringIO()
    # The command as a person runs it: no quota wait passed in.
    ctx = Context(env=harness.env(), clock=harness.clock, out=out, err=err, sleep=waited.append, backoff=0.01)
    code = main(["backfill", "--from", str(day), "--to", str(day)], ctx)
    assert code == EXIT_OK, out.getvalue() + err.getvalue()
    assert sum(waited) >= answers * retry_after
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == len(chats)
