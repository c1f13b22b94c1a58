"""The command line: run, backfill, check and status against the local stand-ins, with their exit codes."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lib.commands.cli import EXIT_BUSY, EXIT_FAILED, EXIT_OK, EXIT_SETTINGS, EXIT_USAGE, Context, build_parser, main
from lib.sources.chats import HEADER
from sandbox.standins.samples import sample_chats
from sandbox.standins.server import Status
from tests.harness import days_read_by_window, hold_lease_elsewhere, move_cursor_elsewhere

UK = ZoneInfo("Europe/London")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(harness):
    """Run `python -m lib ARGS` in-process with the harness's settings and clock."""

    def run(*argv: str, env: dict | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        ctx = Context(env=env or harness.env(), clock=harness.clock, out=out, err=err,
                      sleep=run.sleeps.append, backoff=0.01)
        code = main(list(argv), ctx)
        return Result(code, out.getvalue(), err.getvalue())

    run.sleeps = []  # type: ignore[attr-defined]
    return run


def check_lines(result: Result) -> dict[str, str]:
    return {c["name"]: c for c in json.loads(result.out)["checks"]}


def today(harness) -> date:
    return harness.clock().astimezone(UK).date()


def add_day_chats(harness, day: date, n: int, seed: int) -> list[dict]:
    """n chats on one local day, from 09:00, an hour apart."""
    chats = sample_chats(n, start=datetime(day.year, day.month, day.day, 9, 0), seed=seed, spacing=timedelta(hours=1))
    harness.stand.moneypenny.add_chats(chats)
    return chats


# -- the parser -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["run"], ["backfill"], ["check"], ["status"], ["quarantine"]])
def test_every_command_has_help_with_the_exit_codes(command, capsys):
    assert main(command + ["--help"]) == 0
    text = capsys.readouterr().out
    assert "usage: python -m lib" in text
    assert "exit codes" in text


@pytest.mark.parametrize("argv", [
    ["backfill", "--from", "2026-11-01"],
    ["backfill", "--from", "2026-11-31", "--to", "2026-12-01"],
    ["status", "--runs", "0"],
    ["run", "--mode", "sideways"],
    ["nonsense"],
])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == EXIT_USAGE
    assert "error:" in capsys.readouterr().err


def test_backfill_dates_in_the_wrong_order_or_in_the_future_are_usage_errors(harness, cli):
    assert cli("backfill", "--from", "2026-11-10", "--to", "2026-11-09").code == EXIT_USAGE
    future = cli("backfill", "--from", "2026-11-19", "--to", str(today(harness) + timedelta(days=1)))
    assert future.code == EXIT_USAGE and "in the future" in future.err
    assert harness.stand.moneypenny.count() == 0


def test_backfill_from_the_edge_of_the_calendar_is_a_usage_error_naming_from_and_the_days_allowed(harness, cli):
    result = cli("backfill", "--from", "0001-01-01", "--to", "2026-11-19")
    assert result.code == EXIT_USAGE, result.err  # before: the run failed on an OverflowError
    assert "--from=0001-01-01 is outside" in result.err and "from 2000-01-01" in result.err
    assert "Traceback" not in result.err and harness.stand.moneypenny.count() == 0


@pytest.mark.parametrize("command", [["run"], ["check"], ["backfill", "--from", "2026-11-01", "--to", "2026-11-02"]])
def test_a_missing_setting_exits_4_naming_it(harness, cli, command):
    env = {k: v for k, v in harness.env().items() if k != "SLACK_CHANNEL"}
    result = cli(*command, env=env)
    assert result.code == EXIT_SETTINGS
    assert "SLACK_CHANNEL is not set" in result.err + result.out


def test_the_parser_lists_every_command():
    text = build_parser().format_help()
    for command in ("run", "backfill", "check", "status", "quarantine"):
        assert command in text


# -- check ------------------------------------------------------------------------------------


def test_check_passes_against_healthy_stand_ins_and_changes_nothing(harness, cli):
    result = cli("check")
    assert result.code == EXIT_OK, result.out
    lines = result.out.splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "DETAIL"]
    for name in ("settings", "state store", "moneypenny login", "sheet", "slack token", "slack channel"):
        row = next(line for line in lines if line.startswith(name + " "))
        assert row[lines[0].index("RESULT"):].startswith("OK")
    assert "the first run creates it" in result.out
    assert harness.stand.sheets.count_writes() == 0
    assert harness.stand.moneypenny.count("log") == 0
    assert harness.stand.slack.messages() == []
    assert harness.open_store().get_token() is None


def test_check_on_a_sheet_that_is_not_shared(harness, cli):
    harness.stand.sheets.forbid(harness.sheet_id)
    result = cli("check", "--json")
    assert result.code == EXIT_FAILED
    lines = check_lines(result)
    assert lines["sheet"]["status"] == "FAIL"
    assert "not shared" in lines["sheet"]["detail"] and "SHEET_ID" in lines["sheet"]["detail"]
    assert lines["sheet"]["fix"].startswith("Share the spreadsheet")
    assert {n: c["status"] for n, c in lines.items() if n != "sheet"} == {
        "settings": "OK", "state store": "OK", "last run": "WARN", "moneypenny login": "OK", "slack token": "OK",
        "slack channel": "OK", "watcher": "WARN"}


def test_check_with_a_wrong_slack_token(harness, cli):
    result = cli("check", env={**harness.env(), "SLACK_BOT_TOKEN": "xoxb-revoked-token"})
    assert result.code == EXIT_FAILED
    row = next(line for line in result.out.splitlines() if line.startswith("slack token"))
    assert "FAIL" in row and "invalid_auth" in row and "SLACK_BOT_TOKEN" in row
    assert "xoxb-revoked-token" not in result.out
    assert "fix: Set SLACK_BOT_TOKEN" in result.out
    assert any(line.startswith("slack channel") and "SKIP" in line for line in result.out.splitlines())


def test_check_with_a_bad_password(harness, cli):
    result = cli("check", "--json", env={**harness.env(), "MONEYPENNY_PASSWORD": "hunter2-wrong"})
    assert result.code == EXIT_FAILED
    line = check_lines(result)["moneypenny login"]
    assert line["status"] == "FAIL"
    assert "HTTP 401" in line["detail"] and "MONEYPENNY_PASSWORD" in line["detail"]
    assert "MONEYPENNY_USERNAME" in line["fix"]
    assert "hunter2-wrong" not in result.out
    assert check_lines(result)["sheet"]["status"] == "OK"


def test_check_when_the_bot_is_not_in_the_channel(harness, cli):
    harness.stand.slack.kick("C0DEMO")
    result = cli("check", "--json")
    line = check_lines(result)["slack channel"]
    assert result.code == EXIT_FAILED and line["status"] == "FAIL"
    assert "not in #sales-chats (C0DEMO)" in line["detail"]
    assert line["fix"].endswith("/invite @moneypenny-sync.")


def test_check_a_channel_given_by_name_and_a_missing_alert_channel(harness, cli):
    result = cli("check", "--json", env={**harness.env(), "SLACK_CHANNEL": "#sales", "SLACK_ALERT_CHANNEL": "C0GONE1"})
    lines = check_lines(result)
    assert "not a channel id" in lines["slack channel"]["detail"]
    assert lines["slack alert channel"]["status"] == "FAIL" and "SLACK_ALERT_CHANNEL" in lines["slack alert channel"]["detail"]


def test_check_a_wrong_header_and_a_missing_spreadsheet(harness, cli):
    harness.stand.sheets.create_spreadsheet("odd-sheet", tabs=("Chats",))
    harness.stand.sheets.set_rows("odd-sheet", "Chats", [list(HEADER[:3]) + ["Mail"] + list(HEADER[4:])])
    odd = check_lines(cli("check", "--json", env={**harness.env(), "SHEET_ID": "odd-sheet"}))["sheet"]
    assert odd["status"] == "FAIL" and "column D should read 'Email'" in odd["detail"] and "SHEET_TAB" in odd["detail"]
    missing = check_lines(cli("check", "--json", env={**harness.env(), "SHEET_ID": "no-such-sheet"}))["sheet"]
    assert missing["status"] == "FAIL" and "no spreadsheet" in missing["detail"] and "SHEET_ID" in missing["fix"]
    assert harness.stand.sheets.count_writes() == 0


def test_check_with_invalid_settings_prints_the_table_and_exits_4(harness, cli):
    result = cli("check", env={**harness.env(), "LEASE_SECONDS": "five"})
    assert result.code == EXIT_SETTINGS
    assert "LEASE_SECONDS must be a whole number" in result.out
    assert result.out.count("SKIP") == 7


# -- run --------------------------------------------------------------------------------------


def test_run_syncs_and_prints_the_counts(harness, cli):
    harness.add_chats(3)
    harness.reconciled()  # a run of the day after its reconcile
    result = cli("run")
    assert result.code == EXIT_OK
    assert "ok in" in result.out and "fetched 3, new 3" in result.out and "written 3" in result.out
    assert len(harness.data_rows()) == 3


def test_run_json_and_a_held_lease_exits_3(harness, cli):
    assert hold_lease_elsewhere(harness, "scheduled-run")
    result = cli("run", "--json")
    assert result.code == EXIT_BUSY
    assert result.json()["outcome"] == "skipped"


def test_run_that_fails_exits_1_with_the_cause_and_the_fix(harness, cli):
    result = cli("run", env={**harness.env(), "MONEYPENNY_PASSWORD": "nope-nope"})
    assert result.code == EXIT_FAILED
    assert "error: Moneypenny refused the login" in result.out
    assert "fix: Check MONEYPENNY_USERNAME and MONEYPENNY_PASSWORD" in result.out
    assert "alert posted to C0DEMO" in result.out


def test_reconcile_catches_a_chat_the_cursor_skipped(harness, cli):
    skipped = add_day_chats(harness, today(harness) - timedelta(days=1), 2, seed=30)
    move_cursor_elsewhere(harness)
    harness.reconciled()  # today's daily reconcile was made before the cursor skipped them
    assert cli("run").code == EXIT_OK
    assert harness.data_rows() == []
    result = cli("run", "--mode", "reconcile", "--json")
    assert result.code == EXIT_OK and result.json()["mode"] == "reconcile"
    assert result.json()["appended"] == len(skipped) == len(harness.data_rows())


def test_reconcile_through_the_function(harness, client):
    add_day_chats(harness, date.today() - timedelta(days=1), 2, seed=31)
    move_cursor_elsewhere(harness)
    response = client.post("/?mode=reconcile")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["mode"] == "reconcile" and response.get_json()["appended"] == 2
    assert any("startTime" in c.query for c in harness.stand.moneypenny.calls("log"))


# -- status -----------------------------------------------------------------------------------


def test_status_shows_runs_token_and_the_oldest_undelivered_chat(harness, cli):
    harness.add_chats(2, seed=40)
    assert cli("run").code == EXIT_OK
    harness.clock.advance(minutes=5)
    harness.stand.slack.kick("C0DEMO")
    harness.add_chats(2, seed=41, start=datetime(2026, 11, 20, 8, 0))
    assert cli("run").code == EXIT_FAILED
    result = cli("status")
    assert result.code == EXIT_FAILED  # the last run failed
    lines = result.out.splitlines()
    header = next(line for line in lines if line.strip().startswith("TIME"))
    assert header.split() == ["TIME", "MODE", "OUTCOME", "FETCHED", "NEW", "WRITTEN", "POSTED", "DURATION", "STORE",
                              "R/W/D", "CAUSE"]
    runs = lines[lines.index(header) + 1:lines.index(header) + 3]
    assert runs[0].split()[2:5] == ["new", "failed", "2"] and runs[0].rstrip().endswith("slack_config")
    assert runs[1].split()[2:4] == ["new", "ok"]
    assert "Moneypenny token   valid until 2026-11-21 12:00:00 (in 23 h 55 min)" in result.out
    pending = harness.open_store().journal_pending()
    oldest = min(pending, key=lambda e: e.item_time)
    assert f"2 undelivered (waiting for the sheet: 0, for Slack: 2); oldest: chat {oldest.key[:12]} of 2026-11-20 08:" \
        in result.out
    assert "failing since" in result.out
    data = cli("status", "--json").json()
    assert data["journal"]["undelivered"] == 2 and data["journal"]["oldest"]["key"] == oldest.key
    assert data["token"]["valid"] is True and data["healthy"] is False
    assert set(data["journal"]["oldest"]) == {"key", "chat_time", "fetched_at", "sheet", "slack"}  # no chat content


def test_status_before_any_run(harness, cli):
    harness.open_store()  # the store as a first run would leave it (status creates none: tests/test_read_only.py)
    result = cli("status")
    assert result.code == EXIT_OK
    assert "(no runs recorded yet)" in result.out and "none cached" in result.out and "0 undelivered" in result.out


def test_run_history_records_outcome_and_counts_and_keeps_the_last_100(harness):
    store = harness.open_store()
    harness.add_chats(2)
    harness.syncer().run()
    record = store.recent_runs(1)[0]
    assert record["outcome"] == "ok" and record["fetched"] == 2 and record["appended"] == 2
    assert record["duration_ms"] >= 0 and record["mode"] == "new"
    syncer = harness.syncer()
    for _ in range(104):
        harness.clock.advance(seconds=30)
        syncer.run()
    runs = store.recent_runs(500)
    assert len(runs) == 100
    assert runs[0]["started_at"] == harness.clock().isoformat()


# -- backfill ---------------------------------------------------------------------------------


def test_backfill_over_rows_already_written_adds_only_the_missing_ones(harness, cli):
    first = today(harness) - timedelta(days=6)
    days = [first + timedelta(days=i) for i in range(5)]
    add_day_chats(harness, days[1], 3, seed=50)
    add_day_chats(harness, days[2], 2, seed=51)
    assert cli("run").code == EXIT_OK  # days 2 and 3 reach the sheet and Slack
    written = set(harness.sheet_keys())
    assert len(written) == 5
    for i, day in enumerate((days[0], days[3], days[4])):
        add_day_chats(harness, day, 2, seed=60 + i)
    move_cursor_elsewhere(harness)  # the cursor skips them: only a window read finds them
    harness.stand.slack.clear_messages()

    harness.stand.moneypenny.reset_calls()
    result = cli("backfill", "--from", str(days[0]), "--to", str(days[4]))
    assert result.code == EXIT_OK, result.out + result.err
    # One window read for the five days, plus at most one recovery read settling an earlier intent.
    assert len(harness.stand.moneypenny.calls("log")) <= 2
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == 11
    assert written < set(keys)
    assert "5 of 5 days read" in result.out and "new 6: already in the sheet 0, written 6" in result.out
    # The progress: a bar over the days read, then the rows written.
    assert re.search(r"days read: 100%\|#+\| 5/5 ", result.err)
    assert "rows written: 6 rows" in result.err
    assert result.err.index("days read: 100%") < result.err.index("rows written: 6 rows")
    assert days_read_by_window(harness.stand.moneypenny.calls("log")) >= set(days)
    assert harness.stand.slack.messages() == []  # old chats are not announced one by one
    assert harness.open_store().journal_pending() == []  # nor left for the next run to post as late

    again = cli("backfill", "--from", str(days[0]), "--to", str(days[4]), "--json")
    assert again.code == EXIT_OK and again.json()["new"] == 0 and again.json()["appended"] == 0
    assert len(harness.sheet_keys()) == 11


def test_backfill_beyond_the_journals_retention_reads_the_sheet_instead(harness, cli):
    day = today(harness) - timedelta(days=3)
    add_day_chats(harness, day, 4, seed=70)
    assert cli("run").code == EXIT_OK
    harness.clock.advance(days=40)  # the delivered entries expire from the journal
    assert cli("run").code == EXIT_OK
    assert harness.open_store().journal_get(harness.sheet_keys()) == {}
    result = cli("backfill", "--from", str(day), "--to", str(day), "--json")
    assert result.code == EXIT_OK
    assert result.json()["new"] == 4 and result.json()["already_in_sheet"] == 4 and result.json()["appended"] == 0
    assert len(harness.sheet_keys()) == 4


def test_backfill_whatever_the_end_date_semantics(harness, cli):
    harness.stand.moneypenny.end_inclusive = False
    day = today(harness) - timedelta(days=2)
    add_day_chats(harness, day, 3, seed=80)
    move_cursor_elsewhere(harness)
    assert cli("backfill", "--from", str(day), "--to", str(day)).code == EXIT_OK
    assert len(harness.sheet_keys()) == 3


def test_backfill_notify_posts_one_summary_and_todays_chats_are_announced_as_usual(harness, cli):
    start = today(harness) - timedelta(days=3)
    for i in range(3):
        add_day_chats(harness, start + timedelta(days=i), 2, seed=90 + i)
    todays = sample_chats(2, start=datetime.combine(today(harness), datetime.min.time()).replace(hour=8), seed=99)
    harness.stand.moneypenny.add_chats(todays)
    move_cursor_elsewhere(harness)
    result = cli("backfill", "--from", str(start), "--to", str(today(harness)), "--notify")
    assert result.code == EXIT_OK, result.out
    messages = harness.stand.slack.messages()
    assert len(messages) == 2
    announced, summary = messages
    assert announced["blocks"][0]["text"]["text"].startswith("2 new chats")
    assert summary["blocks"][0]["text"]["text"].startswith("6 backfilled chats")
    assert len(harness.sheet_keys()) == 8
    assert "one summary of the backfilled chats was posted" in result.out


def test_backfill_waits_for_the_lease_then_exits_3(harness, cli):
    assert hold_lease_elsewhere(harness, "scheduled-run")
    result = cli("backfill", "--from", str(today(harness) - timedelta(days=1)), "--to", str(today(harness)),
                 "--wait", "12")
    assert result.code == EXIT_BUSY
    assert "another run holds the lease (run scheduled-run" in result.out
    assert cli.sleeps == [5, 5, 2]  # tried at 0, 5, 10 and 12 seconds
    assert harness.stand.moneypenny.count() == 0


def test_backfill_stops_at_a_failing_day_and_a_second_run_finishes(harness, cli):
    start = today(harness) - timedelta(days=4)
    for i in range(3):
        add_day_chats(harness, start + timedelta(days=i), 2, seed=100 + i)
    move_cursor_elsewhere(harness)
    harness.stand.moneypenny.inject("log", Status(503), times=None)
    failed = cli("backfill", "--from", str(start), "--to", str(start + timedelta(days=2)), "--json")
    assert failed.code == EXIT_FAILED
    body = failed.json()
    assert body["stopped"] == "failed" and body["failed_day"] == str(start) and "HTTP 503" in body["error"]
    harness.stand.moneypenny.clear_faults()
    done = cli("backfill", "--from", str(start), "--to", str(start + timedelta(days=2)))
    assert done.code == EXIT_OK
    assert len(harness.sheet_keys()) == len(set(harness.sheet_keys())) == 6
    status = cli("status", "--json").json()
    assert status["backfill"]["state"] == "done" and status["backfill"]["done_through"] == str(start + timedelta(days=2))


# -- quarantine -------------------------------------------------------------------------------


def set_aside_by_an_older_version(harness, chats: list[dict]) -> None:
    """Items an older parser could not read: as that version left them in the store."""
    from lib.state.models import RejectedItem

    now = harness.clock()
    harness.open_store().quarantine(
        RejectedItem(raw=json.dumps(chat), reason="chatTime is not an ISO 8601 date-time", fetched_at=now,
                     expires_at=now + timedelta(days=30))
        for chat in chats
    )


def test_quarantine_lists_time_reason_and_size_and_shows_content_only_when_asked(harness, cli):
    [chat] = sample_chats(1, start=datetime(2026, 11, 20, 9, 0), seed=60)
    set_aside_by_an_older_version(harness, [chat])
    listed = cli("quarantine")
    assert listed.code == EXIT_OK
    assert "1 unreadable item(s) set aside" in listed.out and "chatTime is not an ISO 8601 date-time" in listed.out
    assert f"{len(json.dumps(chat).encode())} B" in listed.out and "2026-11-20 12:00:00" in listed.out
    assert chat["name"] not in listed.out and chat["email"] not in listed.out
    data = cli("quarantine", "--json").json()
    assert data["count"] == 1 and "raw" not in data["items"][0]
    assert data["items"][0]["expires_at"] == (harness.clock() + timedelta(days=30)).isoformat()
    shown = cli("quarantine", "--show")
    assert chat["name"] in shown.out and chat["email"] in shown.out


def test_quarantine_retry_delivers_what_now_reads_exactly_once_and_keeps_the_rest(harness, cli):
    fixed, known = sample_chats(2, start=datetime(2026, 11, 20, 9, 0), seed=61)
    harness.stand.moneypenny.add_chats([known])
    assert cli("run").code == EXIT_OK and len(harness.data_rows()) == 1
    unreadable = {**fixed, "chatTime": "last Tuesday"}
    # The fixed chat twice (a window read set it aside again), one already delivered, one still unreadable.
    set_aside_by_an_older_version(harness, [fixed, known, fixed, unreadable])
    log_calls = harness.stand.moneypenny.count("log")
    posts = len(harness.stand.slack.messages())

    result = cli("quarantine", "--retry")
    assert result.code == EXIT_OK, result.out
    assert "4 item(s) read again, 3 now readable (1 new in the journal" in result.out
    assert "1 still unreadable" in result.out
    assert len(harness.sheet_keys()) == len(set(harness.sheet_keys()))  # no chat twice
    assert len(harness.data_rows()) == 2 and fixed["name"] in {r[1] for r in harness.data_rows()}
    assert len(harness.stand.slack.messages()) == posts + 1
    assert harness.stand.moneypenny.count("log") == log_calls  # Moneypenny is not read
    left = harness.open_store().quarantine_list()
    assert [json.loads(i.raw)["chatTime"] for i in left] == ["last Tuesday"]

    again = cli("quarantine", "--retry", "--json")
    assert again.code == EXIT_OK and again.json()["count"] == 1
    assert len(harness.data_rows()) == 2 and len(harness.stand.slack.messages()) == posts + 1
    assert harness.open_store().recent_runs(1)[0]["mode"] == "quarantine"


def test_quarantine_retry_after_a_crash_between_journal_and_removal_writes_the_row_once(harness, cli):
    from lib.errors import RunFailed
    from lib.sync import RunOptions

    [fixed] = sample_chats(1, start=datetime(2026, 11, 20, 9, 0), seed=62)
    set_aside_by_an_older_version(harness, [fixed])

    def crash(step: str) -> None:
        if step == "after_quarantine_journal":
            raise RuntimeError("instance died")

    with pytest.raises(RunFailed):
        harness.syncer(checkpoint=crash).run(options=RunOptions(mode="quarantine"))
    assert harness.open_store().quarantine_count() == 1  # still there: nothing is lost
    assert cli("quarantine", "--retry").code == EXIT_OK
    assert harness.open_store().quarantine_count() == 0
    assert len(harness.data_rows()) == 1


def test_quarantine_retry_waits_its_turn_while_a_run_holds_the_lease(harness, cli):
    [fixed] = sample_chats(1, start=datetime(2026, 11, 20, 9, 0), seed=63)
    set_aside_by_an_older_version(harness, [fixed])
    assert hold_lease_elsewhere(harness, "scheduled-run")
    result = cli("quarantine", "--retry")
    assert result.code == EXIT_BUSY and "another run holds the lease" in result.out
    assert harness.open_store().quarantine_count() == 1 and harness.data_rows() == []


def test_items_set_aside_by_a_run_expire_after_the_retention_and_status_shows_the_oldest(harness, cli):
    [good] = harness.add_chats(1, seed=64)
    harness.stand.moneypenny.add_chats([{"name": "No Time", "email": "no.time@example.com"}])
    assert cli("run").code == EXIT_OK
    [item] = harness.open_store().quarantine_list()
    assert item.expires_at == harness.clock() + timedelta(days=30)
    status = cli("status")
    assert re.search(r"Quarantine +1 unreadable item\(s\) set aside, the oldest fetched 2026-11-20 12:00:00", status.out)
    assert "python -m lib quarantine" in status.out and "no.time@example.com" not in status.out
    assert cli("status", "--json").json()["quarantine_oldest"] == harness.clock().isoformat()
    harness.clock.advance(days=30, seconds=1)
    assert cli("run").code == EXIT_OK
    assert harness.open_store().quarantine_count() == 0
    assert re.search(r"Quarantine +empty", cli("status").out)


def test_quarantine_retry_of_a_chat_already_in_the_sheet_past_the_journals_retention_writes_nothing(harness, cli):
    [chat] = harness.add_chats(1, seed=65)
    assert cli("run").code == EXIT_OK and len(harness.data_rows()) == 1
    harness.clock.advance(days=31)
    assert cli("run").code == EXIT_OK
    assert harness.open_store().journal_get(harness.sheet_keys()) == {}  # pruned from the journal
    set_aside_by_an_older_version(harness, [chat])
    result = cli("quarantine", "--retry", "--json")
    assert result.code == EXIT_OK
    assert result.json()["retry"]["already_in_sheet"] == 1 and result.json()["count"] == 0
    assert len(harness.data_rows()) == 1


def test_quarantine_retry_on_firestore(harness, firestore_client):
    from lib.state.firestore.store import FirestoreStore
    from lib.state.models import RejectedItem
    from lib.sync import RunOptions

    store = FirestoreStore(firestore_client, "retry")
    [fixed] = sample_chats(1, start=datetime(2026, 11, 20, 9, 0), seed=66)
    now = harness.clock()
    store.quarantine(RejectedItem(json.dumps(c), "old parser", now, expires_at=now + timedelta(days=30))
                     for c in (fixed, fixed, {"chatTime": 7}))
    report = harness.syncer(store=store).run(options=RunOptions(mode="quarantine"))
    assert (report.recovered, report.new, report.appended, report.skipped_invalid) == (2, 1, 1, 1)
    assert [json.loads(i.raw) for i in store.quarantine_list()] == [{"chatTime": 7}]
    assert harness.sheet_keys() == list(store.journal_get(harness.sheet_keys()))
    assert harness.syncer(store=store).run(options=RunOptions(mode="quarantine")).appended == 0
    assert len(harness.data_rows()) == 1 and harness.data_rows()[0][1] == fixed["name"]


def test_a_reader_that_stops_early_ends_the_command_without_a_traceback(harness, cli):
    """`python -m lib status | head -1`: the reader closed the pipe; the command ends with exit 1
    and no BrokenPipeError traceback on stderr."""

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    assert cli("run").code == EXIT_OK  # a store with a run, so status has a report to write
    err = io.StringIO()
    code = main(["status"], Context(env=harness.env(), clock=harness.clock, out=ClosedPipe(), err=err))
    assert code == EXIT_FAILED and "Traceback" not in err.getvalue()
