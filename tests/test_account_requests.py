"""Several accounts in one deployment, through the function (real functions-framework, the
stand-ins): `?account=` picks one (400 listing them otherwise), each delivers to its own tab and
channel from its own state, and one account's failure fails and alerts only that account."""

from __future__ import annotations

import json
import os
import threading
import time
from zoneinfo import ZoneInfo

import pytest

from lib.accounts import settings_for
from lib.app import build_syncer
from lib.handler import handle
from lib.runner import run_and_report
from lib.sources.chats import chat_key, parse_chat_time
from lib.sync import RunOptions
from sandbox.standins.server import Delay, Status
from tests.harness import UK, by_header, slack_text

EAST_USER, EAST_PASSWORD = "east@example.com", "east-moneypenny-password"
EAST_SHEET = "sheet-east"


@pytest.fixture
def accounts(harness, client, monkeypatch):
    """ACCOUNTS=north,east: north writes to tab North of the harness's sheet and posts to C-NORTH,
    east to tab East of its own sheet and C-EAST, each with its own login to the Moneypenny stand-in
    (east's: EAST_USER; RECONCILE_AT=off: each account reads only what its cursor hands it)."""
    harness.stand.sheets.create_spreadsheet(EAST_SHEET)
    harness.stand.moneypenny.add_user(EAST_USER, EAST_PASSWORD)
    harness.stand.slack.channels.update({"C-NORTH": "north-chats", "C-EAST": "east-chats", "C-EAST-ALERTS": "east-alerts"})
    harness.stand.slack.member_of.update({"C-NORTH", "C-EAST", "C-EAST-ALERTS"})
    for name, value in {"ACCOUNTS": "north,east", "RECONCILE_AT": "off", "SHEET_TAB__NORTH": "North",
                        "SLACK_CHANNEL__NORTH": "C-NORTH", "SHEET_ID__EAST": EAST_SHEET, "SHEET_TAB__EAST": "East",
                        "SLACK_CHANNEL__EAST": "C-EAST", "SLACK_ALERT_CHANNEL__EAST": "C-EAST-ALERTS",
                        "MONEYPENNY_USERNAME__EAST": EAST_USER, "MONEYPENNY_PASSWORD__EAST": EAST_PASSWORD}.items():
        monkeypatch.setenv(name, value)
    return client


def keys(harness, sheet: str, tab: str) -> list[str]:
    if tab not in harness.stand.sheets.tabs(sheet):
        return []
    return [row["Chat key"] for row in by_header(harness.stand.sheets.rows(sheet, tab))]


def chat_keys(harness, chats) -> list[str]:
    """The chats' keys as a run computes them, in the order given."""
    return [chat_key(chat, parse_chat_time(chat["chatTime"], ZoneInfo(UK))) for chat in chats]


@pytest.mark.parametrize("query, shown", [
    ("", "query parameter 'account' is required (ACCOUNTS names north, east): call with ?account=north"),
    ("?account=", "query parameter 'account' is required"),
    ("?account=west", "query parameter 'account': no account 'west'; ACCOUNTS names north, east"),
    ("?account=" + "w" * 300, "no account '" + "w" * 100 + "…'; ACCOUNTS names north, east"),
])
def test_with_accounts_a_call_without_a_known_account_is_a_400_listing_them_and_touches_nothing(
        harness, accounts, query, shown):
    harness.add_chats(2)
    response = accounts.post("/" + query)
    body = response.get_json()
    assert response.status_code == 400
    assert shown in body["error"] and body["accounts"] == ["north", "east"]
    assert body["cause"] == "bad_request" and body["retryable"] is False
    assert harness.stand.moneypenny.count() == 0 and not any(harness.tmp.glob("state*"))


def test_a_bad_accounts_setting_answers_500_naming_it_and_reads_nothing(harness, accounts, monkeypatch):
    monkeypatch.setenv("ACCOUNTS", "north,North")
    response = accounts.post("/?account=north")
    body = response.get_json()
    assert response.status_code == 500 and body["cause"] == "settings"
    assert body["error"].startswith("ACCOUNTS must be account ids") and "'North'" in body["error"]
    assert harness.stand.moneypenny.count() == 0 and not any(harness.tmp.glob("state*"))


def test_without_accounts_a_call_naming_an_account_is_a_400(harness, client):
    response = client.post("/?account=north")
    assert response.status_code == 400
    assert "this deployment has no ACCOUNTS: leave 'account' out" in response.get_json()["error"]
    assert harness.stand.moneypenny.count() == 0


def test_without_accounts_the_answer_and_the_store_are_as_before(harness, client):
    harness.add_chats(2)
    body = client.post("/").get_json()
    assert body["ok"] is True and "account" not in body
    assert sorted(p.name for p in harness.tmp.glob("state*.sqlite3")) == ["state.sqlite3"]
    assert "account" not in harness.open_store().recent_runs()[0]


def test_two_accounts_deliver_to_their_own_tabs_and_channels_from_their_own_state(harness, accounts):
    north_chats = harness.add_chats(3, seed=1)
    north = accounts.post("/?account=north").get_json()
    east_chats = harness.add_chats(2, seed=2, user=EAST_USER)
    east = accounts.post("/?account=east").get_json()
    assert (north["account"], north["appended"], north["posted"]) == ("north", 3, 3)
    assert (east["account"], east["appended"], east["posted"]) == ("east", 2, 2)
    assert keys(harness, harness.sheet_id, "North") == chat_keys(harness, north_chats)
    assert keys(harness, EAST_SHEET, "East") == chat_keys(harness, east_chats)
    assert "East" not in harness.stand.sheets.tabs(harness.sheet_id)
    slack = harness.stand.slack
    assert [len(slack.messages(c)) for c in ("C-NORTH", "C-EAST", "C0DEMO")] == [1, 1, 0]
    # Each account logged in for itself (its own token cache): a login is never shared.
    assert harness.stand.moneypenny.count("auth") == 2
    # Each account's run history is its own file's, and names it.
    from lib.state.sqlite.store import SqliteStore

    for account, run in (("north", north), ("east", east)):
        store = SqliteStore(str(harness.tmp / f"state.{account}.sqlite3"))
        try:
            assert [(r["account"], r["run_id"]) for r in store.recent_runs()] == [(account, run["run_id"])]
        finally:
            store.close()
    # Called again, nothing is delivered twice.
    again = [accounts.post(f"/?account={a}").get_json() for a in ("north", "east")]
    assert [(b["appended"], b["posted"]) for b in again] == [(0, 0), (0, 0)]


def test_an_accounts_log_lines_name_it_as_a_field_and_a_label(harness, accounts, monkeypatch, capfd):
    monkeypatch.setenv("LOG_FORMAT", "json")
    harness.add_chats(1, user=EAST_USER)
    capfd.readouterr()
    accounts.post("/?account=east")
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    assert [line["message"] for line in lines] == ["created the worksheet tab", "run ok"]
    assert all(line["account"] == "east" for line in lines)
    assert all(line["logging.googleapis.com/labels"]["account"] == "east" for line in lines)


def _break_east(harness, monkeypatch, fault: str) -> None:
    if fault == "wrong password":
        monkeypatch.setenv("MONEYPENNY_PASSWORD__EAST", "not-the-east-password")
    elif fault == "unshared sheet":
        harness.stand.sheets.forbid(EAST_SHEET)
    elif fault == "refused channel":
        monkeypatch.setenv("SLACK_CHANNEL__EAST", "C-GONE")
    elif fault == "settings":
        monkeypatch.setenv("SLACK_MAX_LISTED__EAST", "lots")


@pytest.mark.parametrize("fault, status, shown", [
    ("wrong password", 500, "Moneypenny"),
    ("unshared sheet", 500, "sheet"),
    ("refused channel", 500, "channel"),
    ("settings", 500, "SLACK_MAX_LISTED__EAST must be a whole number"),
])
def test_one_accounts_failure_fails_and_alerts_only_that_account(harness, accounts, monkeypatch, fault, status, shown):
    north_chats = harness.add_chats(2, seed=1)
    assert accounts.post("/?account=north").status_code == 200
    _break_east(harness, monkeypatch, fault)
    answers: list[tuple[str, int, dict]] = []
    every = list(north_chats)
    for round_ in range(3):
        north_chats += harness.add_chats(1, seed=10 + round_)
        every += north_chats[-1:]
        for account in ("north", "east", "north"):
            if account == "east":
                every += harness.add_chats(1, seed=20 + round_, user=EAST_USER)
            response = accounts.post(f"/?account={account}")
            answers.append((account, response.status_code, response.get_json()))
        harness.clock.advance(minutes=11)  # past a transient failure's grace: east alerts
    assert all(code == 200 for account, code, _ in answers if account == "north"), answers
    east = [(code, body) for account, code, body in answers if account == "east"]
    assert all(code == status and body["account"] == "east" for code, body in east), east
    assert shown.lower() in east[0][1]["error"].lower()
    # North has each of its chats once, and none of east's.
    assert keys(harness, harness.sheet_id, "North") == chat_keys(harness, north_chats)
    north_posts = harness.stand.slack.messages("C-NORTH")
    assert "failing" not in slack_text(*north_posts)
    # East's alert (when east could build its Slack client) names east, in east's alert channel only.
    alerts = harness.stand.slack.messages("C-EAST-ALERTS")
    if fault != "settings":
        assert alerts and "Moneypenny sync of account east is failing" in slack_text(*alerts)
        assert "python -m lib check --account east" in slack_text(*alerts)
    assert "east" not in json.dumps([b for a, _, b in answers if a == "north"])


def test_two_accounts_run_at_once_and_neither_waits_for_the_other(harness, accounts):
    """North's run is held in its chat log read (the stand-in answers it after 1.5 s); east's whole
    run, first request of its account in this process included, ends while north's goes on."""
    chats = {"North": harness.add_chats(2, seed=1), "East": harness.add_chats(2, seed=2, user=EAST_USER)}
    harness.stand.moneypenny.inject("log", Delay(1.5))
    answers: dict[str, tuple[dict, int]] = {}
    north = threading.Thread(target=lambda: answers.__setitem__("north", handle({"account": "north"}, {})))
    north.start()
    deadline = time.monotonic() + 10
    while harness.stand.moneypenny.count("log") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    answers["east"] = handle({"account": "east"}, {})
    assert north.is_alive(), "east's run waited for north's"
    assert answers["east"][0]["outcome"] == "ok"  # not skipped: north's lease is north's own
    north.join(10)
    assert [answers[a][1] for a in ("north", "east")] == [200, 200], answers
    # Each account's chats in its own tab, each once.
    assert keys(harness, harness.sheet_id, "North") == chat_keys(harness, chats["North"])
    assert keys(harness, EAST_SHEET, "East") == chat_keys(harness, chats["East"])


def runner(harness):
    """A scheduled run of one account as the function makes it (run_and_report, the settings
    from the environment as the `accounts` fixture set it), on the harness's clock with quick retries."""

    def run(account: str):
        env = {**harness.env(), **{k: v for k, v in os.environ.items() if "__" in k or k in ("ACCOUNTS", "RECONCILE_AT")}}
        settings = settings_for(env, account)
        return run_and_report(settings, RunOptions(daily_reconcile=True),
                              lambda: build_syncer(settings, clock=harness.clock, backoff=0.001))

    return run


def test_moneypenny_down_for_one_account_leaves_the_others_runs_untouched(harness, accounts):
    """Through run_and_report (the function's path) with quick retries: east's logins fail (503)
    while north's cached token still works, as when only east's Moneypenny account is down."""
    run = runner(harness)
    north_chats = harness.add_chats(2, seed=1)
    assert run("north").http_status == 200
    harness.stand.moneypenny.inject("auth", Status(503), times=None)
    results = []
    for round_ in range(2):
        north_chats += harness.add_chats(1, seed=10 + round_)
        results += [("north", run("north")), ("east", run("east"))]
        harness.clock.advance(minutes=11)
    assert [r.http_status for a, r in results if a == "north"] == [200, 200]
    assert [(r.http_status, r.report.account, r.error.cause) for a, r in results if a == "east"] == [
        (503, "east", "moneypenny")] * 2
    assert keys(harness, harness.sheet_id, "North") == chat_keys(harness, north_chats)
    assert "Moneypenny sync of account east is failing" in slack_text(*harness.stand.slack.messages("C-EAST-ALERTS"))
    assert "failing" not in slack_text(*harness.stand.slack.messages("C-NORTH"))


def test_an_account_added_later_starts_from_its_own_first_run(harness, accounts, monkeypatch):
    run = runner(harness)
    monkeypatch.setenv("ACCOUNTS", "north")
    monkeypatch.delenv("RECONCILE_AT")
    chats = harness.add_chats(3)
    assert run("north").report.appended == 3
    assert accounts.post("/?account=east").status_code == 400
    east_chats = harness.add_chats(2, seed=5, user=EAST_USER)  # east's, there before it was added
    monkeypatch.setenv("ACCOUNTS", "north,east")
    east = run("east").report
    # East's first run reads today by date (its own first read), from its own empty state.
    assert (east.account, east.outcome, east.reconciled, east.appended, east.posted) == ("east", "ok", True, 2, 2)
    assert keys(harness, EAST_SHEET, "East") == chat_keys(harness, east_chats)
    north = run("north").report
    assert (north.appended, north.posted) == (0, 0)
    assert keys(harness, harness.sheet_id, "North") == chat_keys(harness, chats)


def test_two_accounts_on_firestore_deliver_from_their_own_collections(firestore_emulator, firestore_client, harness,
                                                                      accounts, monkeypatch):
    # firestore_client first: made while FIRESTORE_EMULATOR_HOST is set (the `client` fixture clears FIRESTORE_*).
    assert firestore_client._emulator_host == firestore_emulator
    for name, value in {"STATE_STORE": "firestore", "GOOGLE_CLOUD_PROJECT": "demo-test",
                        "FIRESTORE_COLLECTION_PREFIX": "acct", "FIRESTORE_EMULATOR_HOST": firestore_emulator}.items():
        monkeypatch.setenv(name, value)
    north_chats = harness.add_chats(2, seed=1)
    north = accounts.post("/?account=north")
    east_chats = harness.add_chats(3, seed=2, user=EAST_USER)
    east = accounts.post("/?account=east")
    assert [north.status_code, east.status_code] == [200, 200], (north.get_json(), east.get_json())
    assert keys(harness, harness.sheet_id, "North") == chat_keys(harness, north_chats)
    assert keys(harness, EAST_SHEET, "East") == chat_keys(harness, east_chats)
    journal = sorted(snap.reference.path.rsplit("/", 1)[0] for snap in firestore_client.collection_group("acct_journal").stream())
    assert journal == ["acct_accounts/east/acct_journal"] * 3 + ["acct_accounts/north/acct_journal"] * 2
    runs = {account: firestore_client.document(f"acct_accounts/{account}/acct_state/run").get().exists
            for account in ("north", "east")}
    assert runs == {"north": True, "east": True}
    assert not firestore_client.collection("acct_state").document("run").get().exists


def test_two_accounts_on_one_moneypenny_login_fail_naming_the_variable_and_read_nothing(harness, accounts, monkeypatch):
    # East takes the bare MONEYPENNY_USERNAME, north's login: Moneypenny's one cursor per login
    # would hand each account part of the chats. Neither runs; each answer names its own variable.
    monkeypatch.delenv("MONEYPENNY_USERNAME__EAST")
    harness.add_chats(2)
    for account, other in (("north", "east"), ("east", "north")):
        response = accounts.post(f"/?account={account}")
        body = response.get_json()
        assert response.status_code == 500 and body["account"] == account and body["retryable"] is False
        assert f"MONEYPENNY_USERNAME__{account.upper()}: account {other!r} signs in with the same" in body["error"]
        assert f"MONEYPENNY_USERNAME__{account.upper()} and MONEYPENNY_PASSWORD__{account.upper()}" in body["fix"]
    assert harness.stand.moneypenny.count() == 0 and not list(harness.tmp.glob("state*"))
