"""The backfill a person can follow, with chats and call messages on: one summary with a part per
source, counts named so that they add up, a stop of any kind recorded as such (never "running"
for ever), and the quota wait shown on the bar. Real clients against the stand-ins."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lib.commands.cli import EXIT_FAILED, EXIT_OK, Context, main
from sandbox.standins.samples import sample_calls, sample_chats
from sandbox.standins.server import Status
from tests.harness import move_cursor_elsewhere, slack_text

UK = ZoneInfo("Europe/London")


@pytest.fixture
def both(harness):
    harness.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    return harness


def today(harness) -> date:
    return harness.clock().astimezone(UK).date()


def cli(harness, *argv: str, sleep=lambda s: None, quota_wait: float | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(env=harness.env(), clock=harness.clock, out=out, err=err, sleep=sleep, backoff=0.01,
                  sheets_quota_wait=quota_wait)
    return main(list(argv), ctx), out.getvalue(), err.getvalue()


def add_days(harness, first: date, days: int, chats: int, calls: int, seed: int = 0) -> None:
    """`chats` chats and `calls` call messages on each of `days` days from `first`, from 09:00."""
    for i in range(days):
        day = first + timedelta(days=i)
        nine = datetime(day.year, day.month, day.day, 9, 0)
        harness.stand.moneypenny.add_chats(sample_chats(chats, start=nine, seed=seed + i,
                                                        spacing=timedelta(minutes=10)))
        harness.stand.moneypenny.add_calls(sample_calls(calls, nine.replace(tzinfo=UK).astimezone(UTC),
                                                        seed=seed + 50 + i, spacing=timedelta(minutes=7)))


def backfill_note(harness) -> dict:
    code, out, _ = cli(harness, "status", "--json")
    return json.loads(out)["backfill"]


def test_backfill_notify_with_calls_posts_one_summary_with_a_part_per_source(both):
    start = today(both) - timedelta(days=3)
    add_days(both, start, 3, chats=2, calls=3, seed=10)
    move_cursor_elsewhere(both)
    code, out, err = cli(both, "backfill", "--from", str(start), "--to", str(start + timedelta(days=2)), "--notify")
    assert code == EXIT_OK, out + err
    assert "Traceback" not in err
    [message] = both.stand.slack.messages()
    assert message["blocks"][0]["text"]["text"].startswith("6 backfilled chats · 9 backfilled calls")
    text = slack_text(message)
    assert "Open the Chats tab" in text and "Open the Calls tab" in text
    assert "one summary of the backfilled chats and calls was posted" in out
    assert backfill_note(both)["state"] == "done"


def test_a_backfill_that_crashes_is_recorded_as_failed_not_running(both, monkeypatch):
    """Whatever stops a backfill (here an unexpected error in the summary), `status` never shows it running."""
    from lib.destinations.slack import combined as slack_combined

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(slack_combined, "build_combined", broken)  # a planted bug, not a stand-in for our code
    start = today(both) - timedelta(days=2)
    add_days(both, start, 2, chats=1, calls=1, seed=20)
    move_cursor_elsewhere(both)
    code, out, err = cli(both, "backfill", "--from", str(start), "--to", str(start + timedelta(days=1)), "--notify")
    assert code == EXIT_FAILED and "Traceback" not in err
    assert "the Slack summary could not be posted" in out
    assert backfill_note(both)["state"] != "running"
    # The rows are written once all the same.
    assert len(both.sheet_keys()) == 2


def test_a_backfill_interrupted_mid_span_is_recorded_as_interrupted_and_status_says_nothing_is_delivering(both):
    """Ctrl-C in the last span: the span's run is recorded as interrupted (not `window ok fetched 0`), the
    backfill as interrupted, and `status` says what the journal holds waits for the next run."""
    both.syncer().run()  # a scheduled run, fine
    start = today(both) - timedelta(days=2)
    add_days(both, start, 2, chats=2, calls=2, seed=30)
    move_cursor_elsewhere(both)
    spans_seen = []

    def interrupt(step: str) -> None:
        if step == "after_calls_fetch":
            spans_seen.append(step)
            if len(spans_seen) == 2:  # the second (last) span, before it delivers
                raise KeyboardInterrupt

    from lib.sync.backfill import run_backfill

    with pytest.raises(KeyboardInterrupt):
        run_backfill(both.settings(), both.open_store(), start, start + timedelta(days=1), window_days=1,
                     build=lambda: both.syncer(checkpoint=interrupt), clock=both.clock, sleep=lambda s: None)
    assert backfill_note(both)["state"] == "interrupted"
    code, out, _ = cli(both, "status", "--json")
    runs = [r for r in json.loads(out)["runs"] if r.get("mode") == "window"]
    assert [r["outcome"] for r in runs] == ["interrupted", "ok"]
    assert json.loads(out)["lease"] is None
    code, text, _ = cli(both, "status")
    assert "being delivered" not in text
    assert "waiting for the next run" in text.splitlines()[0]


def test_backfill_counts_are_named_and_add_up(both):
    start = today(both) - timedelta(days=4)
    add_days(both, start, 4, chats=2, calls=2, seed=40)
    move_cursor_elsewhere(both)
    # The first days were read already by an earlier backfill: known to the journal, in the sheet.
    code, out, _ = cli(both, "backfill", "--from", str(start), "--to", str(start + timedelta(days=1)), "--json")
    first = json.loads(out)["counts"]
    assert code == EXIT_OK and 0 < first["new"] < 16
    code, out, _ = cli(both, "backfill", "--from", str(start), "--to", str(start + timedelta(days=3)), "--json")
    assert code == EXIT_OK
    counts = json.loads(out)["counts"]
    assert counts["read"] == 16 and counts["already_known"] == first["new"] and counts["new"] == 16 - first["new"]
    assert counts["read"] == counts["already_known"] + counts["new"] + counts["set_aside"]
    assert counts["new"] == counts["already_in_sheet"] + counts["written_new"] + counts["waiting"]
    assert counts["written"] == counts["written_new"] + counts["written_earlier"] == counts["new"]
    assert len(both.sheet_keys()) + len(both.stand.sheets.rows(both.sheet_id, "Calls")) - 1 == 16
    code, text, _ = cli(both, "backfill", "--from", str(start), "--to", str(start + timedelta(days=3)))
    assert "read 16: already known 16, new 0" in text and "announced 0" in text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [False, True])
def test_the_bar_says_when_sheets_quota_is_being_waited_out(both, tty):
    start = today(both) - timedelta(days=1)
    add_days(both, start, 1, chats=2, calls=0, seed=50)
    move_cursor_elsewhere(both)
    both.stand.sheets.inject("values.append", Status(429, retry_after=2), times=1)
    out, err = io.StringIO(), Terminal() if tty else io.StringIO()
    ctx = Context(env=both.env(), clock=both.clock, out=out, err=err, backoff=0.01, sheets_quota_wait=5)
    code = main(["backfill", "--from", str(start), "--to", str(start)], ctx)
    assert code == EXIT_OK, out.getvalue() + err.getvalue()
    shown = err.getvalue()
    if tty:  # counted down beside the bar
        assert "waiting for Sheets' quota (60 writes a minute): 2 s left" in shown
        assert "waiting for Sheets' quota (60 writes a minute): 1 s left" in shown
    else:  # one line for the wait
        assert shown.count("waiting for Sheets' quota (60 writes a minute): 2 s left") == 1
    assert len(both.sheet_keys()) == 2




def test_a_backfill_whose_syncer_cannot_be_built_is_recorded_as_failed(both):
    from lib.sync.backfill import run_backfill

    def broken():
        raise RuntimeError("cannot build")

    start = today(both) - timedelta(days=1)
    with pytest.raises(RuntimeError):
        run_backfill(both.settings(), both.open_store(), start, start, build=broken, clock=both.clock)
    assert backfill_note(both)["state"] == "failed"


def test_a_backfill_on_a_sheet_not_shared_stops_with_the_fix_and_no_traceback(both):
    both.stand.sheets.forbid(both.sheet_id)
    start = today(both) - timedelta(days=1)
    code, out, err = cli(both, "backfill", "--from", str(start), "--to", str(start))
    assert code == EXIT_FAILED and "Traceback" not in err
    assert "is not shared with this identity" in out and "fix: Share the spreadsheet" in out
    assert backfill_note(both)["state"] == "failed"


def test_a_backfill_killed_without_a_word_is_not_shown_as_simply_running(both):
    """A process killed (no exception, no note) leaves its note "running": `status` says that no
    run holds the lease, so it may have stopped, and how to finish it."""
    from lib.state.documents import BackfillDoc

    start = today(both) - timedelta(days=3)
    both.open_store().write_doc(BackfillDoc(start=start, end=start, state="running", started_at=both.clock()))
    code, out, _ = cli(both, "status")
    line = next(line for line in out.splitlines() if line.startswith("Last backfill"))
    assert "no run holds the lease now" in line and "run the same command again" in line
