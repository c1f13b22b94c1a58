"""The command line with ACCOUNTS: `--account ID` on every command, `status` with one verdict line
per account (exit 1 when any has a problem) and `check` of every account, on the stand-ins."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import timedelta

import pytest

from lib.commands.cli import EXIT_FAILED, EXIT_OK, EXIT_SETTINGS, EXIT_USAGE, Context, main
from lib.state import JournalEntry
from tests.harness import by_header

EAST_SHEET = "sheet-east"
EAST_USER = "east@example.com"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def env(harness):
    """ACCOUNTS=north,east: north writes to tab North of the harness's sheet, east to tab East of
    its own, each with its own Moneypenny login (east's: EAST_USER)."""
    harness.stand.sheets.create_spreadsheet(EAST_SHEET)
    harness.stand.moneypenny.add_user(EAST_USER, "east-password")
    return {**harness.env(), "ACCOUNTS": "north,east", "SHEET_TAB__NORTH": "North", "SHEET_ID__EAST": EAST_SHEET,
            "SHEET_TAB__EAST": "East", "MONEYPENNY_USERNAME__EAST": EAST_USER, "MONEYPENNY_PASSWORD__EAST": "east-password"}


@pytest.fixture
def cli(harness):
    """`python -m lib ARGS` in-process on the harness's clock, with the environment given."""

    def run(env: dict, *argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), Context(env=env, clock=harness.clock, out=out, err=err, sleep=lambda s: None,
                                        backoff=0.01))
        return Result(code, out.getvalue(), err.getvalue())

    return run


def tab_rows(harness, sheet: str, tab: str) -> int:
    return len(by_header(harness.stand.sheets.rows(sheet, tab))) if tab in harness.stand.sheets.tabs(sheet) else 0


@pytest.mark.parametrize("command", ["run", "backfill --from 2026-11-20 --to 2026-11-20", "quarantine", "waiting"])
def test_with_accounts_a_command_needs_a_known_account(harness, cli, env, command):
    argv = command.split()
    missing = cli(env, *argv)
    assert missing.code == EXIT_USAGE
    assert "error: ACCOUNTS names north, east: say which with --account ID (such as --account north)" in missing.err
    unknown = cli(env, *argv, "--account", "west")
    assert unknown.code == EXIT_USAGE and "error: --account: no account 'west'; ACCOUNTS names north, east" in unknown.err
    assert harness.stand.moneypenny.count() == 0 and not list(harness.tmp.glob("state*"))


def test_an_account_id_of_the_wrong_shape_is_a_usage_error(cli, env, capsys):
    result = cli(env, "run", "--account", "North")
    assert result.code == EXIT_USAGE and "argument --account: 'North' is not an account id" in capsys.readouterr().err


def test_without_accounts_an_account_is_a_usage_error(harness, cli):
    result = cli(harness.env(), "status", "--account", "north")
    assert result.code == EXIT_USAGE and "ACCOUNTS is not set: this deployment is one account" in result.err


def test_bad_accounts_exit_4_naming_accounts(cli, env):
    result = cli({**env, "ACCOUNTS": "north,north"}, "status")
    assert result.code == EXIT_SETTINGS and "ACCOUNTS lists 'north' more than once" in result.err


def test_run_and_backfill_of_an_account_write_to_its_own_tab_from_its_own_store(harness, cli, env):
    harness.add_chats(3, seed=1)
    harness.add_chats(3, seed=2, user=EAST_USER)
    north = cli(env, "run", "--account", "north", "--json")
    assert north.code == EXIT_OK and (north.json()["account"], north.json()["appended"]) == ("north", 3)
    day = harness.clock().date().isoformat()
    east = cli(env, "backfill", "--account", "east", "--from", day, "--to", day, "--json")
    assert east.code == EXIT_OK, east.err
    assert (tab_rows(harness, harness.sheet_id, "North"), tab_rows(harness, EAST_SHEET, "East")) == (3, 3)
    assert sorted(p.name for p in harness.tmp.glob("state*")) == ["state.east.sqlite3", "state.north.sqlite3"]
    waiting = cli(env, "waiting", "--account", "east", "--json")
    assert waiting.code == EXIT_OK, waiting.err
    listed = cli(env, "quarantine", "--account", "north")
    assert listed.code == EXIT_OK, listed.err
    retried = cli(env, "quarantine", "--account", "east", "--retry", "--json")
    assert retried.code == EXIT_OK, retried.out + retried.err


def test_status_gives_one_verdict_line_per_account_and_exits_1_when_any_has_a_problem(harness, cli, env):
    harness.add_chats(2)
    assert cli(env, "run", "--account", "north").code == EXIT_OK
    first = cli(env, "status")
    assert first.code == EXIT_OK, first.out + first.err
    lines = first.out.splitlines()
    assert lines[0].startswith("north  OK — last successful run")
    assert lines[1].startswith("east   NO RUNS YET — no state store yet at ") and "state.east.sqlite3" in lines[1]
    # East's password is wrong: its run fails, and status says so on east's line only.
    broken = {**env, "MONEYPENNY_PASSWORD__EAST": "not-the-password"}
    assert cli(broken, "run", "--account", "east").code == EXIT_FAILED
    second = cli(broken, "status", "--json")
    assert second.code == EXIT_FAILED
    verdicts = {v["account"]: v for v in second.json()["accounts"]}
    assert verdicts["north"]["healthy"] is True and verdicts["north"]["verdict"].startswith("OK")
    assert verdicts["east"]["healthy"] is False and verdicts["east"]["verdict"].startswith("PROBLEM")
    assert second.json()["healthy"] is False
    # An account whose settings cannot be read is a problem too, named by its variable.
    third = cli({**env, "CHAT_TIMEZONE__EAST": "Mars/Base"}, "status")
    assert third.code == EXIT_FAILED
    assert third.out.splitlines()[1].startswith("east   PROBLEM — Account 'east': Invalid settings: CHAT_TIMEZONE__EAST")
    # One account's status in full names it.
    one = cli(env, "status", "--account", "north")
    assert one.code == EXIT_OK and one.out.splitlines()[0] == "Account north"


def test_check_checks_every_account_and_names_a_stray_variable(harness, cli, env):
    harness.stand.sheets.forbid(EAST_SHEET)
    result = cli({**env, "SHEET_ID__NROTH": "typo", "RECONCILE_AT__NORTH": "04:00"}, "check", "--json")
    assert result.code == EXIT_FAILED
    data = result.json()
    assert data["accounts_check"]["status"] == "WARN"
    assert "no account reads SHEET_ID__NROTH, RECONCILE_AT__NORTH" in data["accounts_check"]["detail"]
    assert "RECONCILE_AT is the deployment's, the same for every account" in data["accounts_check"]["fix"]
    checks = {account: {c["name"]: c["status"] for c in part["checks"]} for account, part in data["accounts"].items()}
    assert list(checks) == ["north", "east"]
    assert checks["north"]["sheet"] == "OK" and checks["east"]["sheet"] == "FAIL"
    assert (data["accounts"]["north"]["ok"], data["accounts"]["east"]["ok"]) == (True, False)
    one = cli(env, "check", "--account", "north")
    assert one.code == EXIT_OK, one.out
    bad = cli({**env, "SLACK_MAX_LISTED__EAST": "x"}, "check")
    assert bad.code == EXIT_SETTINGS and "SLACK_MAX_LISTED__EAST must be a whole number" in bad.out


def test_check_fails_accounts_that_share_one_moneypenny_login_naming_the_variables(harness, cli, env):
    # Moneypenny moves a login's one cursor on every read: two accounts on one login would each
    # get part of its chats. The bare MONEYPENNY_USERNAME is both accounts' default here.
    env = {name: value for name, value in env.items() if name != "MONEYPENNY_USERNAME__EAST"}
    shared = cli(env, "check", "--json")
    assert shared.code == EXIT_SETTINGS
    line = shared.json()["accounts_check"]
    assert line["status"] == "FAIL" and "one Moneypenny login is shared by north and east" in line["detail"]
    assert "MONEYPENNY_USERNAME__NORTH, MONEYPENNY_USERNAME__EAST" in line["fix"]
    assert env["MONEYPENNY_USERNAME"] not in line["detail"] + line["fix"]  # the login is never echoed
    # The same login given to both, in another case, is still one login.
    same = {**env, "MONEYPENNY_USERNAME__EAST": env["MONEYPENNY_USERNAME"].upper()}
    assert cli(same, "check", "--json").json()["accounts_check"]["status"] == "FAIL"
    apart = cli({**env, "MONEYPENNY_USERNAME__EAST": EAST_USER}, "check", "--json")
    assert apart.json()["accounts_check"]["status"] == "OK" and apart.code == EXIT_OK, apart.out


@pytest.mark.parametrize("command", ["status", "quarantine", "waiting"])
def test_a_command_for_an_account_that_never_ran_says_so_and_names_its_first_run(harness, cli, env, command):
    result = cli(env, command, "--account", "east")
    assert result.code == EXIT_FAILED
    assert "error: account 'east' has no state store yet: no " in result.err and "state.east.sqlite3" in result.err
    assert "fix: Its first run creates it: `python -m lib run --account east`" in result.err
    assert "Traceback" not in result.err and not list(harness.tmp.glob("state*"))  # read-only: nothing created


def test_check_warns_of_items_left_waiting_in_the_state_from_before_accounts(harness, cli, env):
    # A deployment that ran without ACCOUNTS, an entry still waiting, then ACCOUNTS set: no account
    # reads the old state, so check says what it holds and how to see it.
    store = harness.open_store()
    assert harness.syncer().run().healthy
    stuck = harness.clock() - timedelta(hours=1)
    store.journal_add([JournalEntry(key="left-behind", item={"id": "left-behind"}, item_time=stuck, fetched_at=stuck)])
    result = cli(env, "check", "--json")
    before = result.json()["before_accounts"]
    assert before["status"] == "WARN" and "holds 1 item(s) waiting for the sheet or Slack and 0 set aside" in before["detail"]
    assert "ACCOUNTS= python -m lib waiting" in before["fix"]
    shown = cli({**env, "ACCOUNTS": ""}, "waiting", "--json")
    assert shown.code == EXIT_OK and shown.json()["waiting"] == {"chats": 1}
    # A deployment that starts with ACCOUNTS has no such state: no line.
    harness.store = None
    for path in harness.tmp.glob("state.sqlite3*"):
        path.unlink()
    assert "before_accounts" not in cli(env, "check", "--json").json()


def test_a_quarantine_retry_of_an_account_names_its_own_variable_at_fault(cli, env):
    # The retry reads only the store's, sheet's and Slack's settings, as the account sees them.
    env = {name: value for name, value in env.items() if name != "SHEET_ID"}
    result = cli(env, "quarantine", "--account", "north", "--retry")
    assert result.code == EXIT_SETTINGS
    assert "error: Account 'north': Invalid settings: SHEET_ID__NORTH is not set" in result.err
