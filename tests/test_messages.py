"""Messages that keep the README's promises: a bad value is echoed cut at 100 characters, every
`check` FAIL line (and every store error) says the fix, items are named by their feed, and the
libraries' retry chatter is shown only with -v."""

from __future__ import annotations

import io
import json
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from lib.commands.cli import EXIT_FAILED, EXIT_SETTINGS, Context, main
from lib.errors import SHOWN_VALUE_LIMIT, SettingsError
from lib.settings import Settings
from lib.state.models import JournalEntry
from sandbox.standins.server import Status
from tests.harness import Harness


@dataclass
class Ran:
    code: int
    out: str
    err: str


def run_cli(harness: Harness, *argv: str, env: dict[str, str] | None = None) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), Context(env=env or harness.env(), clock=harness.clock, out=out, err=err,
                                    sleep=lambda s: None, backoff=0.01))
    return Ran(code, out.getvalue(), err.getvalue())


def closed_url(path: str = "") -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# -- bad values cut at 100 characters -------------------------------------------------------------

LONG = "q" * 500

# Every setting whose bad value a message may show, with a bad value 500 characters long.
BAD_VALUES = {
    "CHAT_TIMEZONE": "Europe/" + LONG,
    "STATE_STORE": "postgres:" + LONG,
    "LOG_FORMAT": "fancy" + LONG,
    "MONEYPENNY_SOURCES": "chats," + LONG,
    "SLACK_MAX_LISTED": "9" + LONG,
    "LEASE_SECONDS": "x" + LONG,
    "RETENTION_DAYS": "1.5" + LONG,
    "RECONCILE_DAYS": "-" + LONG,
    "ALERT_REPEAT_MINUTES": "nan" + LONG,
    "HTTP_TIMEOUT_SECONDS": "inf" + LONG,
    "SHEETS_API_URL": "ftp://" + LONG,
    "MONEYPENNY_AUTH_URL": "http://" + LONG + ":99999/",
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_settings_value_is_echoed_cut_at_100_characters(harness, name):
    value = BAD_VALUES[name]
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**harness.env(), name: value})
    message = str(refused.value)
    assert name in message
    assert value[:SHOWN_VALUE_LIMIT + 1] not in message
    assert len(message) < len("Invalid settings: ") + len(name) + 2 * SHOWN_VALUE_LIMIT + 40


@pytest.mark.parametrize("command", ["status", "run", "check"])
def test_a_command_refusing_a_long_bad_value_prints_it_cut(harness, command):
    ran = run_cli(harness, command, env={**harness.env(), "CHAT_TIMEZONE": "Europe/" + LONG})
    assert ran.code == EXIT_SETTINGS
    shown = ran.out + ran.err
    assert "CHAT_TIMEZONE" in shown and ("Europe/" + LONG)[:SHOWN_VALUE_LIMIT] in shown
    assert ("Europe/" + LONG)[:SHOWN_VALUE_LIMIT + 1] not in shown


def test_a_bad_argument_is_echoed_cut(harness, capsys):
    ran = run_cli(harness, "backfill", "--from", "2026-" + LONG, "--to", "2026-01-02")
    assert ran.code == 2
    err = capsys.readouterr().err  # argparse writes its usage errors to sys.stderr itself
    assert ("2026-" + LONG)[:SHOWN_VALUE_LIMIT] in err and ("2026-" + LONG)[:SHOWN_VALUE_LIMIT + 1] not in err


@pytest.mark.parametrize("setting", ["SHEET_ID", "SHEET_TAB", "SLACK_CHANNEL"])
def test_check_cuts_a_long_sheet_tab_or_channel_it_cannot_find(harness, setting):
    value = {"SHEET_ID": "sheet", "SHEET_TAB": "tab", "SLACK_CHANNEL": "#chan"}[setting] + LONG
    if setting == "SHEET_TAB":  # a tab whose row 1 is not ours: the error names the tab
        harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=(value,))
        harness.stand.sheets.set_rows(harness.sheet_id, value, [["not", "our", "header"]])
    ran = run_cli(harness, "check", "--json", env={**harness.env(), setting: value})
    assert ran.code == EXIT_FAILED
    assert value[:SHOWN_VALUE_LIMIT + 1] not in ran.out and value[:SHOWN_VALUE_LIMIT] in ran.out


# -- every check FAIL has a fix -------------------------------------------------------------------


def _damaged_sqlite_file(harness: Harness) -> dict[str, str]:
    (harness.tmp / "state.sqlite3").write_bytes(b"this is no SQLite database " * 200)
    return {}


def _damaged_run_state(harness: Harness) -> dict[str, str]:
    harness.syncer().run()
    with sqlite3.connect(harness.tmp / "state.sqlite3") as db:
        db.execute("UPDATE run_state SET state = ?", (json.dumps({"runs": ["not", "a", "map"], "seq": 1}),))
    return {}


def _server_errors(stand: str, endpoint: str) -> Callable[[Harness], dict[str, str]]:
    def setup(harness: Harness) -> dict[str, str]:
        getattr(harness.stand, stand).inject(endpoint, Status(503), times=None)
        return {}
    return setup


def _env(**values: str) -> Callable[[Harness], dict[str, str]]:
    return lambda harness: dict(values)


def _not_shared(harness: Harness) -> dict[str, str]:
    harness.stand.sheets.forbid(harness.sheet_id)
    return {}


def _kicked(harness: Harness) -> dict[str, str]:
    harness.stand.slack.kick(harness.env()["SLACK_CHANNEL"])
    return {}


def _foreign_header(harness: Harness) -> dict[str, str]:
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Chats",))
    harness.stand.sheets.set_rows(harness.sheet_id, "Chats", [["Date", "Who"]])
    return {}


# Each kind of FAIL a check can print: (the failing line, how to bring it about).
FAIL_KINDS: dict[str, tuple[str, Callable[[Harness], dict[str, str]]]] = {
    "bad settings": ("settings", _env(LEASE_SECONDS="five")),
    "store file damaged": ("state store", _damaged_sqlite_file),
    "stored run state damaged": ("state store", _damaged_run_state),
    "moneypenny unreachable": ("moneypenny login", lambda h: {"MONEYPENNY_AUTH_URL": closed_url("/auth")}),
    "moneypenny server error": ("moneypenny login", _server_errors("moneypenny", "auth")),
    "moneypenny refuses the login": ("moneypenny login", _env(MONEYPENNY_PASSWORD="wrong-password")),
    "calls unreachable": ("moneypenny calls", lambda h: {"MONEYPENNY_SOURCES": "chats,calls",
                                                         "MONEYPENNY_CALLS_URL": closed_url("/calls")}),
    "calls' token endpoint unreachable": ("moneypenny calls", lambda h: {"MONEYPENNY_SOURCES": "chats,calls",
                                                                        "MONEYPENNY_AUTH_URL": closed_url("/auth")}),
    "sheets unreachable": ("sheet", lambda h: {"SHEETS_API_URL": closed_url()}),
    "sheets server error": ("sheet", _server_errors("sheets", "values.get")),
    "sheet not shared": ("sheet", _not_shared),
    "no such spreadsheet": ("sheet", _env(SHEET_ID="no-such-sheet")),
    "foreign header": ("sheet", _foreign_header),
    "slack unreachable": ("slack token", lambda h: {"SLACK_API_URL": closed_url("/api/")}),
    "slack token refused": ("slack token", _env(SLACK_BOT_TOKEN="xoxb-revoked-token")),
    "bot not in the channel": ("slack channel", _kicked),
    "no such channel": ("slack channel", _env(SLACK_CHANNEL="C0NOSUCH1")),
}


@pytest.mark.parametrize("kind", sorted(FAIL_KINDS))
def test_every_check_fail_line_says_the_fix(harness, kind):
    line, bring_about = FAIL_KINDS[kind]
    env = {**harness.env(), **bring_about(harness)}
    checks = {c["name"]: c for c in json.loads(run_cli(harness, "check", "--json", env=env).out)["checks"]}
    assert checks[line]["status"] == "FAIL", json.dumps(checks, indent=1)
    for check in checks.values():
        if check["status"] == "FAIL":
            assert check["fix"].strip(), check
    # The table prints each fix on the line under its FAIL.
    rows = run_cli(harness, "check", env=env).out.splitlines()
    for number, row in enumerate(rows):
        if row.split("  ")[0].strip() in checks and " FAIL " in f" {row} ":
            assert rows[number + 1].strip().startswith("fix: "), rows


@pytest.mark.parametrize("bring_about", [
    lambda h: {"MONEYPENNY_AUTH_URL": closed_url("/auth")},
    _server_errors("moneypenny", "auth"),
], ids=["unreachable", "server error"])
def test_a_calls_check_failing_at_the_token_endpoint_names_moneypenny_auth_url_not_the_calls_url(harness, bring_about):
    env = {**harness.env(), "MONEYPENNY_SOURCES": "chats,calls", **bring_about(harness)}
    checks = {c["name"]: c for c in json.loads(run_cli(harness, "check", "--json", env=env).out)["checks"]}
    calls = checks["moneypenny calls"]
    assert calls["status"] == "FAIL" and "token endpoint" in calls["detail"], calls
    assert "MONEYPENNY_AUTH_URL" in calls["fix"] and "MONEYPENNY_CALLS_URL" not in calls["fix"], calls


@pytest.mark.parametrize("command", [["run"], ["waiting"], ["waiting", "--drop", "calls"],
                                     ["backfill", "--from", "2026-11-18", "--to", "2026-11-19"]])
def test_a_damaged_sqlite_store_under_a_command_that_writes_says_the_fix(harness, command):
    """As `status` says it: the file STATE_STORE names is not a state store, and how to fix it."""
    _damaged_sqlite_file(harness)
    ran = run_cli(harness, *command)
    assert ran.code == EXIT_FAILED, ran.out + ran.err
    text = ran.out + ran.err
    assert "is not a SQLite state store" in text and "STATE_STORE=sqlite:" in text, text
    assert "fix: Check STATE_STORE" in text, text
    assert "Traceback" not in text


def test_status_names_the_feed_of_the_items_waiting_too_long(harness):
    """Call messages stuck in the journal are "call message(s)" in status's first line, not chats."""
    harness.add_chats(1)
    store = harness.open_store()
    assert harness.syncer().run().healthy
    stuck = harness.clock() - timedelta(hours=1)
    store.journal_add([JournalEntry(key="call:stuck-1", item={"callId": "stuck-1"}, item_time=stuck, fetched_at=stuck),
                       JournalEntry(key="call:stuck-2", item={"callId": "stuck-2"}, item_time=stuck, fetched_at=stuck)])
    harness.clock.advance(minutes=1)
    ran = run_cli(harness, "status")
    first = ran.out.splitlines()[0]
    assert first.startswith("PROBLEM") and "2 call message(s) waiting, the oldest fetched 1 h 1 min ago" in first, first
    assert "chat(s) waiting" not in first


# -- library chatter only with -v -----------------------------------------------------------------

CHATTER = ("Retrying (", "Failed to send a request to Slack API server")


def _all_down(harness: Harness) -> dict[str, str]:
    return {**harness.env(), "MONEYPENNY_AUTH_URL": closed_url("/auth"), "MONEYPENNY_CHATS_URL": closed_url("/log"),
            "SHEETS_API_URL": closed_url(), "SLACK_API_URL": closed_url("/api/")}


@pytest.mark.parametrize("command", ["check", "run"])
def test_with_the_stand_ins_down_the_libraries_retry_chatter_shows_only_with_v(harness, command):
    env = _all_down(harness)
    quiet = run_cli(harness, command, env=env)
    assert quiet.code == EXIT_FAILED
    assert not any(words in quiet.err for words in CHATTER), quiet.err
    assert "did not answer" in quiet.out  # our own message says what failed
    loud = run_cli(harness, command, "-v", env=env)
    assert "Retrying (" in loud.err


# -- tab rules only for the tabs in use -----------------------------------------------------------


@pytest.mark.parametrize(("sources", "tabs", "refused"), [
    ("chats", {"SHEET_TAB": "Calls"}, False),  # the Calls tab is not in use
    ("calls", {"SHEET_TAB": "Calls"}, False),  # the chats tab is not in use
    ("calls", {"CALLS_TAB": "Chats"}, False),
    ("chats,calls", {"SHEET_TAB": "Calls"}, True),
    ("chats,calls", {"CALLS_TAB": "Chats"}, True),
    ("chats,calls", {"SHEET_TAB": "Leads", "CALLS_TAB": "Phone"}, False),
])
def test_the_two_tabs_must_differ_only_while_both_sources_are_read(harness, sources, tabs, refused):
    env = {**harness.env(), "MONEYPENNY_SOURCES": sources, **tabs}
    if refused:
        with pytest.raises(SettingsError, match="CALLS_TAB must name another tab than SHEET_TAB"):
            Settings.from_env(env)
    else:
        settings = Settings.from_env(env)
        assert (settings.sheet_tab, settings.calls_tab) == (tabs.get("SHEET_TAB", "Chats"),
                                                            tabs.get("CALLS_TAB", "Calls"))


def test_a_run_with_calls_off_writes_chats_to_a_tab_named_calls(harness):
    harness.add_chats(3)
    ran = run_cli(harness, "run", env={**harness.env(), "SHEET_TAB": "Calls"})
    assert ran.code == 0, ran.out + ran.err
    assert len(harness.stand.sheets.rows(harness.sheet_id, "Calls")) == 4


def test_check_leaves_the_chats_tab_alone_while_only_calls_are_read(harness):
    # The spreadsheet's "Chats" tab holds something else: with chats off it is none of our business.
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Chats",))
    harness.stand.sheets.set_rows(harness.sheet_id, "Chats", [["Order", "Customer"]])
    ran = run_cli(harness, "check", "--json", env={**harness.env(), "MONEYPENNY_SOURCES": "calls"})
    checks = {c["name"]: c for c in json.loads(ran.out)["checks"]}
    assert ran.code == 0, checks
    assert "sheet" not in checks and checks["calls tab"]["status"] == "OK"


def test_a_url_is_shown_as_its_scheme_host_and_port_cut_at_100_characters():
    from lib.settings import show_url

    host = ".".join(["sub"] * 80) + ".example"
    shown = show_url(f"https://{host}:8443/path?token=secret")
    assert len(shown) <= SHOWN_VALUE_LIMIT + 1 and shown.startswith("https://sub.sub.") and "secret" not in shown
    assert show_url("http://127.0.0.1:9/auth") == "http://127.0.0.1:9"
