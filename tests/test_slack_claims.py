"""Claims from Slack (#23 items 2 and 3): a signed click on a summary's Claim button puts the
clicker's name in the item's Owner and Claimed at cells once, found by key at the moment of the
click, and updates the message; the store decides who was first; what failed is written by the
next run. The real slack-sdk, gspread and functions-framework against the stand-ins, on SQLite
and the Firestore emulator (`store`)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from slack_sdk import WebClient

from lib.actions import handle_action
from lib.app import build_claim_desk
from lib.settings import Settings
from lib.sources import CHATS_FEED
from sandbox.standins import DEMO_CHANNEL_ID, DEMO_SLACK_TOKEN
from sandbox.standins.a1 import col_letters
from sandbox.standins.server import Status
from sandbox.standins.slack import APP_ID, SIGNING_SECRET, TEAM_ID, FakeSlack
from tests.harness import by_header

ACTION_ENV = {"SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_TEAM_ID": TEAM_ID, "SLACK_APP_ID": APP_ID}
OWNER_COLUMN = len(CHATS_FEED.layout.header)  # 0-based: Owner, then Claimed at, right of the synced columns


def button(key: str, feed: str = "chats") -> dict[str, Any]:
    return {"type": "button", "action_id": "claim", "text": {"type": "plain_text", "text": "Claim"},
            "value": json.dumps({"a": "", "f": feed, "k": key}, separators=(",", ":"))}


def synced(harness, n: int = 3, *, columns: bool = True) -> tuple[list[str], dict[str, Any]]:
    """`n` chats run into the sheet (with Owner and Claimed at added by hand when `columns`), and
    a summary with a Claim button per item posted: (keys, the stored message)."""
    harness.add_chats(n)
    harness.syncer().run()
    sheet, tab = harness.sheet_id, harness.settings().sheet_tab
    # Owner and Claimed at right of the synced columns (as the sync adds them when missing), or
    # none there (a person cleared them).
    for n, title in enumerate(("Owner", "Claimed at") if columns else ("", "")):
        harness.stand.sheets.set_cell(sheet, tab, f"{col_letters(OWNER_COLUMN + n)}1", title, user_entered=False)
    keys = harness.sheet_keys()
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": f"{n} new chats"}}]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": f"09:0{i} · a visitor · `{k[-8:]}`"},
                "accessory": button(k)} for i, k in enumerate(keys)]
    client = WebClient(token=DEMO_SLACK_TOKEN, base_url=harness.stand.slack.api_url)
    ts = client.chat_postMessage(channel=DEMO_CHANNEL_ID, text="new chats", blocks=blocks)["ts"]
    harness.stand.reset_calls()
    return keys, harness.stand.slack.message(ts)


def click(harness, message: dict[str, Any], key: str, user: str = "U0ANN", store=None, **sign: Any) -> tuple[Any, int]:
    """One click as Slack posts it, answered by lib.actions.handle_action on this store."""
    slack: FakeSlack = harness.stand.slack
    wanted = next(b for b in slack.buttons(message) if json.loads(b["value"])["k"] == key)
    body, headers = slack.interactivity_request(slack.click_payload(message, wanted, user), **sign)
    env = {**harness.env(), **ACTION_ENV}

    def desk_for(settings: Settings):
        return build_claim_desk(settings, store=store or harness.open_store(), clock=harness.clock)

    return handle_action("POST", body, headers, env, desk_for=desk_for)


def row_of(harness, key: str) -> dict[str, str]:
    rows = harness.rows()
    header = rows[0] + [""] * 3
    return next(r for r in by_header([header, *rows[1:]]) if r.get("Chat key") == key)


def test_a_signed_click_writes_owner_and_claimed_at_once_and_updates_the_message(harness, store):
    keys, message = synced(harness)
    answer, status = click(harness, message, keys[1], store=store)
    assert (answer, status) == ("", 200)
    row = row_of(harness, keys[1])
    assert row["Owner"] == "Ann"  # users.info's display name, not the payload's user name
    assert row["Claimed at"].startswith(harness.clock().astimezone(harness.settings().chat_timezone).strftime("%Y-%m-%d"))
    assert [row_of(harness, k).get("Owner", "") for k in (keys[0], keys[2])] == ["", ""]
    assert harness.stand.sheets.count("values.batchUpdate") == 1
    updated = harness.stand.slack.message(message["ts"])
    lines = [b["text"]["text"] for b in updated["blocks"] if b["type"] == "section"]
    assert "claimed by *Ann*" in lines[1] and "claimed by" not in lines[0] + lines[2]
    assert [json.loads(b["value"])["k"] for b in FakeSlack.buttons(updated)] == [keys[0], keys[2]]
    assert updated["text"] == "new chats"  # the message's own text (its notification) kept
    assert harness.stand.slack.responses() == []  # the message says it: nobody is told apart
    claim = store.claim_get("chats", keys[1])
    assert claim is not None and not claim.due and claim.owner == "Ann"


def test_a_second_click_changes_nothing_and_tells_only_the_clicker_who_has_it(harness, store):
    keys, message = synced(harness)
    click(harness, message, keys[0], store=store)
    harness.stand.reset_calls()
    before = harness.rows()
    assert click(harness, message, keys[0], user="U0BOB", store=store) == ("", 200)
    assert harness.rows() == before and harness.stand.sheets.count_writes() == 0
    assert harness.stand.slack.count("chat.update") == 0
    told = harness.stand.slack.responses()
    assert len(told) == 1 and told[0]["response_type"] == "ephemeral" and told[0]["replace_original"] is False
    assert "Ann claimed this lead" in told[0]["text"]
    assert store.claim_get("chats", keys[0]).owner == "Ann"


def test_two_clicks_at_the_same_moment_give_one_owner(harness, store):
    keys, message = synced(harness)
    answers: list[Any] = []
    start = threading.Barrier(2)

    def one(user: str) -> None:
        start.wait()
        answers.append(click(harness, message, keys[0], user=user, store=store))

    threads = [threading.Thread(target=one, args=(user,)) for user in ("U0ANN", "U0BOB")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [("", 200), ("", 200)]
    owner = store.claim_get("chats", keys[0]).owner
    assert owner in ("Ann", "Bob B")
    assert row_of(harness, keys[0])["Owner"] == owner
    assert harness.stand.sheets.count("values.batchUpdate") == 1
    told = harness.stand.slack.responses()
    assert len(told) == 1 and f"{owner} claimed this lead" in told[0]["text"]


def test_two_leads_of_one_message_claimed_at_once_both_show_claimed(harness, store):
    keys, message = synced(harness)
    # Both clicks carry the message as it was before either update (clicked in the same moment):
    # Bob's update must not bring Ann's button back nor drop her line.
    click(harness, message, keys[0], store=store)
    click(harness, message, keys[2], user="U0BOB", store=store)
    updated = harness.stand.slack.message(message["ts"])
    lines = [b["text"]["text"] for b in updated["blocks"] if b["type"] == "section"]
    assert "claimed by *Ann*" in lines[0] and "claimed by *Bob B*" in lines[2] and "claimed by" not in lines[1]
    assert [json.loads(b["value"])["k"] for b in FakeSlack.buttons(updated)] == [keys[1]]
    assert updated["text"] == message["text"]


def test_a_clicks_store_round_trips_do_not_grow_with_the_buttons_on_its_message(harness):
    keys, message = synced(harness, 6)
    store = harness.open_store()

    def trips(on: dict[str, Any], key: str, user: str) -> int:
        before = store.counters.snapshot()
        assert click(harness, on, key, user=user, store=store) == ("", 200)
        return store.counters.since(before).round_trips

    six_buttons = trips(message, keys[0], "U0ANN")
    five_buttons = trips(harness.stand.slack.message(message["ts"]), keys[5], "U0BOB")
    assert six_buttons == five_buttons


def idle_run_reads(harness, store) -> int:
    before = store.counters.snapshot()
    harness.clock.advance(minutes=5)
    harness.syncer(store=store).run()
    return store.counters.since(before).reads


def test_a_failed_sheet_write_reaches_the_sheet_on_the_next_run(harness, store):
    keys, message = synced(harness)
    idle = idle_run_reads(harness, store)
    harness.stand.sheets.inject("values.batchUpdate", Status(503), times=20)
    assert click(harness, message, keys[2], store=store) == ("", 200)
    assert row_of(harness, keys[2]).get("Owner", "") == ""
    assert "the next scheduled run writes your name" in harness.stand.slack.responses()[0]["text"]
    assert "claimed by *Ann*" in json.dumps(harness.stand.slack.message(message["ts"])["blocks"])
    assert store.read_run_state().claims_due == 1
    harness.stand.sheets.clear_faults()
    harness.clock.advance(minutes=5)
    harness.syncer(store=store).run()
    assert row_of(harness, keys[2])["Owner"] == "Ann"
    assert store.read_run_state().claims_due == 0 and store.claims_due() == []
    # Written once: a later run reads no claim (an idle run's reads, as before any claim) and
    # writes nothing more.
    harness.stand.reset_calls()
    assert idle_run_reads(harness, store) == idle
    assert harness.stand.sheets.count("values.batchUpdate") == 0


def test_a_failed_message_update_is_made_by_the_next_run_with_every_claim_on_it(harness, store):
    keys, message = synced(harness)
    harness.stand.slack.inject("chat.update", Status(500), times=10)
    click(harness, message, keys[0], store=store)
    harness.stand.slack.clear_faults()
    # Bob's click comes on the message as Slack still shows it (Ann's button there).
    click(harness, harness.stand.slack.message(message["ts"]), keys[1], user="U0BOB", store=store)
    harness.clock.advance(minutes=5)
    harness.syncer(store=store).run()
    text = json.dumps(harness.stand.slack.message(message["ts"])["blocks"])
    assert "claimed by *Ann*" in text and "claimed by *Bob B*" in text
    assert [json.loads(b["value"])["k"] for b in FakeSlack.buttons(harness.stand.slack.message(message["ts"]))] == [keys[2]]
    assert store.claims_due() == [] and store.read_run_state().claims_due == 0


def test_the_row_is_found_by_its_key_after_a_sort_and_a_deleted_row_is_told_and_not_written(harness, store):
    keys, message = synced(harness, 4)
    sheet, tab = harness.sheet_id, harness.settings().sheet_tab
    harness.stand.sheets.sort_rows(sheet, tab, len(CHATS_FEED.layout.header) - 1, reverse=True)
    click(harness, message, keys[0], store=store)
    assert row_of(harness, keys[0])["Owner"] == "Ann"
    where = next(i for i, r in enumerate(harness.rows()) if keys[1] in r)
    harness.stand.sheets.delete_rows(sheet, tab, where + 1)
    harness.stand.reset_calls()
    before = harness.rows()
    click(harness, message, keys[1], user="U0BOB", store=store)
    assert harness.rows() == before and harness.stand.sheets.count_writes() == 0
    assert "no longer in the sheet" in harness.stand.slack.responses()[0]["text"]
    assert store.claim_get("chats", keys[1]) is None


def test_rows_sorted_while_slack_names_the_clicker_get_the_name_on_the_clicked_row(harness):
    keys, message = synced(harness, 4)
    sheet, tab, key_column = harness.sheet_id, harness.settings().sheet_tab, len(CHATS_FEED.layout.header) - 1
    harness.stand.sheets.sort_rows(sheet, tab, key_column)
    first = min(keys)  # row 2 now; the sort below moves it to the last row

    class SortedOnLookup(dict):  # a person sorts the sheet while Slack answers users.info
        def __getitem__(self, user):
            harness.stand.sheets.sort_rows(sheet, tab, key_column, reverse=True)
            return super().__getitem__(user)

    harness.stand.slack.users = SortedOnLookup(harness.stand.slack.users)
    click(harness, message, first)
    owners = {r["Chat key"]: r.get("Owner", "") for r in (row_of(harness, k) for k in keys)}
    assert owners == {k: "Ann" if k == first else "" for k in keys}


def test_a_name_typed_in_the_owner_cell_counts_as_a_claim(harness, store):
    keys, message = synced(harness)
    where = next(i for i, r in enumerate(harness.rows()) if keys[0] in r)
    harness.stand.sheets.set_cell(harness.sheet_id, harness.settings().sheet_tab,
                                  f"{col_letters(OWNER_COLUMN)}{where + 1}", "Carol")
    harness.stand.reset_calls()
    click(harness, message, keys[0], store=store)
    assert harness.stand.sheets.count_writes() == 0 and harness.stand.slack.count("chat.update") == 0
    assert "Carol has this lead" in harness.stand.slack.responses()[0]["text"]
    assert store.claim_get("chats", keys[0]) is None


def test_a_hostile_name_is_text_in_the_sheet_and_inert_in_slack(harness):
    keys, message = synced(harness)
    harness.stand.slack.users["U0EVE"] = ("eve", "Eve", "=HYPERLINK(\"http://evil.example\";\"x\") <!channel>")
    click(harness, message, keys[0], user="U0EVE")
    assert row_of(harness, keys[0])["Owner"].startswith("=HYPERLINK(")
    assert harness.stand.sheets.formulas(harness.sheet_id, harness.settings().sheet_tab) == []
    assert FakeSlack.message_live_entities(harness.stand.slack.message(message["ts"])) == []


def test_who_has_it_is_inert_in_the_word_to_the_clicker(harness):
    keys, message = synced(harness)
    where = next(i for i, r in enumerate(harness.rows()) if keys[0] in r)
    harness.stand.sheets.set_cell(harness.sheet_id, harness.settings().sheet_tab,  # typed in the sheet
                                  f"{col_letters(OWNER_COLUMN)}{where + 1}", "<https://evil.example|Carol> <!channel>")
    harness.stand.slack.users["U0EVE"] = ("eve", "<!here> Eve", "<https://evil.example|Eve>")
    click(harness, message, keys[0])
    click(harness, message, keys[1], user="U0EVE")
    click(harness, message, keys[1])  # Eve has it: Ann is told so
    told = [t["text"] for t in harness.stand.slack.responses()]
    assert len(told) == 2 and "Carol" in told[0] and "Eve" in told[1]
    assert [e for text in told for e in FakeSlack.live_entities(text)] == []


def test_missing_owner_columns_keep_the_claim_due_until_they_are_there(harness):
    keys, message = synced(harness, columns=False)
    click(harness, message, keys[0])
    store = harness.open_store()
    assert store.claims_due() != [] and "Owner" not in harness.rows()[0]
    assert row_of(harness, keys[0]).get("Owner", "") == ""
    sheet, tab = harness.sheet_id, harness.settings().sheet_tab
    # Typed by a person, in their own case and order: found by name all the same.
    harness.stand.sheets.set_cell(sheet, tab, f"{col_letters(OWNER_COLUMN)}1", "claimed AT")
    harness.stand.sheets.set_cell(sheet, tab, f"{col_letters(OWNER_COLUMN + 1)}1", "owner")
    harness.syncer().run()
    row = next(r for r in harness.rows() if keys[0] in r)
    assert row[OWNER_COLUMN + 1] == "Ann" and row[OWNER_COLUMN].startswith("20")
    assert store.claims_due() == [] and store.read_run_state().claims_due == 0


# -- the public entry point (main.slack_actions through functions-framework) ----------------------


def _post(actions_client, body: bytes, headers: dict[str, str]):
    return actions_client.post("/", data=body, headers=headers)


def _signed_click(harness, message, key, **kw):
    slack = harness.stand.slack
    wanted = next(b for b in slack.buttons(message) if json.loads(b["value"])["k"] == key)
    payload = slack.click_payload(message, wanted, **{k: v for k, v in kw.items() if k in ("team", "app")})
    return slack.interactivity_request(payload, **{k: v for k, v in kw.items() if k in ("secret", "timestamp")})


REFUSED = [
    ("another secret", {"secret": "not-the-apps-secret"}),
    ("older than 5 minutes", {"timestamp": int(time.time()) - 5 * 60 - 5}),
    ("another workspace", {"team": "T0OTHER"}),
    ("another app", {"app": "A0OTHER"}),
]


@pytest.mark.parametrize("why, how", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_click_not_slacks_for_this_app_is_a_401_with_nothing_touched(harness, actions_client, why, how):
    keys, message = synced(harness)
    body, headers = _signed_click(harness, message, keys[0], **how)
    response = _post(actions_client, body, headers)
    assert response.status_code == 401, why
    assert response.get_json() == {"ok": False, "error": "unauthorized"}
    assert harness.stand.sheets.count() == 0 and harness.stand.slack.count() == 0
    assert harness.open_store().claim_get("chats", keys[0]) is None


def test_an_unsigned_or_oversized_request_is_a_401_and_a_get_a_405(harness, actions_client):
    keys, message = synced(harness)
    body, headers = _signed_click(harness, message, keys[0])
    unsigned = {"Content-Type": headers["Content-Type"]}
    assert _post(actions_client, body, unsigned).status_code == 401
    big = body + b"&pad=" + b"x" * (128 * 1024)
    _, big_headers = FakeSlack.interactivity_request("{}")
    assert _post(actions_client, big, big_headers).status_code == 401
    assert actions_client.get("/").status_code == 405
    assert harness.stand.sheets.count() == 0 and harness.stand.slack.count() == 0


def test_a_signed_malformed_payload_is_a_400_naming_what_is_missing(harness, actions_client):
    keys, _ = synced(harness)
    for payload in ("not json", json.dumps({"type": "block_actions", "team": {"id": TEAM_ID}, "api_app_id": APP_ID,
                                            "actions": [{"action_id": "claim", "value": "{}"}], "user": {"id": "U0ANN"}})):
        body, headers = FakeSlack.interactivity_request(payload)
        response = _post(actions_client, body, headers)
        assert response.status_code == 400
        assert "payload" in response.get_json()["error"]
    assert harness.stand.sheets.count() == 0 and harness.stand.slack.count() == 0


def test_a_signed_click_through_the_function_claims_and_a_replay_changes_nothing(harness, actions_client,
                                                                                monkeypatch):
    keys, message = synced(harness)
    for name in ("MONEYPENNY_USERNAME", "MONEYPENNY_PASSWORD"):
        monkeypatch.delenv(name)  # the public function holds no Moneypenny login
    body, headers = _signed_click(harness, message, keys[0])
    response = _post(actions_client, body, headers)
    assert response.status_code == 200 and response.get_data() == b""
    assert row_of(harness, keys[0])["Owner"] == "Ann"
    harness.stand.reset_calls()
    before = harness.rows()
    replay = _post(actions_client, body, headers)  # the very same request, within its 5 minutes
    assert replay.status_code == 200
    assert harness.rows() == before and harness.stand.sheets.count_writes() == 0
    assert harness.stand.slack.count("chat.update") == 0
    assert "Ann claimed this lead" in harness.stand.slack.responses()[0]["text"]


def test_missing_action_settings_are_a_500_whose_log_names_each_variable_and_whose_answer_none(
        harness, actions_client, monkeypatch, caplog):
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    monkeypatch.setenv("SLACK_TEAM_ID", "workspace")
    response = _post(actions_client, b"payload=%7B%7D", {"Content-Type": "application/x-www-form-urlencoded"})
    body = response.get_json()
    assert response.status_code == 500 and body["cause"] == "settings"
    # The request is not verified: a stranger learns neither the names at fault nor their values.
    assert "SLACK_" not in json.dumps(body) and "workspace" not in json.dumps(body)
    [logged] = [r for r in caplog.records if r.getMessage() == "the Slack actions settings are invalid"]
    assert "SLACK_SIGNING_SECRET is not set" in logged.fields["error"] and "SLACK_TEAM_ID must be" in logged.fields["error"]


# -- the summary's line, whatever its layout (no store: table-driven) ------------------------------

KEY_A, KEY_B = "a" * 24 + "11111111", "b" * 24 + "22222222"
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "09:00 one `11111111`\n09:05 two `22222222`"}}


@pytest.mark.parametrize("blocks, expect_lines, expect_buttons", [
    # A section per item, its button the accessory (the summary's layout).
    ([{**SECTION, "text": {"type": "mrkdwn", "text": "09:00 one `11111111`"}, "accessory": button(KEY_A)}],
     ["09:00 one `11111111` · :white_check_mark: claimed by *Ann ∗B∗*"], []),
    # Lines in one section, buttons in an actions block after it: the line with the short key.
    ([SECTION, {"type": "actions", "elements": [button(KEY_A), button(KEY_B)]}],
     ["09:00 one `11111111` · :white_check_mark: claimed by *Ann ∗B∗*\n09:05 two `22222222`"], [KEY_B]),
    # The last button of an actions block: the block goes with it.
    ([SECTION, {"type": "actions", "elements": [button(KEY_A)]}],
     ["09:00 one `11111111` · :white_check_mark: claimed by *Ann ∗B∗*\n09:05 two `22222222`"], []),
])
def test_the_claimed_line_says_who_and_loses_its_button(blocks, expect_lines, expect_buttons):
    from lib.destinations.slack.claims import claimed_blocks

    out = claimed_blocks(blocks, "chats", KEY_A, "Ann *B*")
    assert [b["text"]["text"] for b in out if b["type"] == "section"] == expect_lines
    assert [json.loads(b["value"])["k"] for b in FakeSlack.buttons({"blocks": out})] == expect_buttons
    assert claimed_blocks(out, "chats", KEY_A, "Bob") is None  # no button left for it: nothing to do
    assert claimed_blocks(blocks, "calls", KEY_A, "Ann") is None  # another feed's item of the same key


def test_a_click_on_an_accounts_button_claims_in_that_accounts_sheet(harness):
    from lib.actions import settings_for
    from lib.app import build_syncer

    harness.stand.sheets.create_spreadsheet("north-sheet", tabs=("Sheet1",))
    env = {**harness.env(), "ACCOUNTS": "north,east-london", "SHEET_ID__NORTH": "north-sheet"}
    north = settings_for(env, "north")
    harness.add_chats(2)
    build_syncer(north, store=harness.open_store(), clock=harness.clock).run()
    harness.stand.sheets.set_cell("north-sheet", north.sheet_tab, f"{col_letters(OWNER_COLUMN)}1", "Owner")
    harness.stand.sheets.set_cell("north-sheet", north.sheet_tab, f"{col_letters(OWNER_COLUMN + 1)}1", "Claimed at")
    key = harness.stand.sheets.rows("north-sheet", north.sheet_tab)[1][OWNER_COLUMN - 1]
    north_button = {**button(key), "value": json.dumps({"a": "north", "f": "chats", "k": key})}
    client = WebClient(token=DEMO_SLACK_TOKEN, base_url=harness.stand.slack.api_url)
    ts = client.chat_postMessage(channel=DEMO_CHANNEL_ID, text="north", blocks=[
        {"type": "section", "text": {"type": "mrkdwn", "text": f"a chat `{key[-8:]}`"}, "accessory": north_button}])["ts"]
    slack = harness.stand.slack
    body, headers = slack.interactivity_request(slack.click_payload(slack.message(ts), north_button))
    answer = handle_action("POST", body, headers, {**env, **ACTION_ENV},
                           desk_for=lambda s: build_claim_desk(s, store=harness.open_store(), clock=harness.clock))
    assert answer == ("", 200)
    assert harness.stand.sheets.rows("north-sheet", north.sheet_tab)[1][OWNER_COLUMN] == "Ann"
    assert harness.stand.sheets.rows(harness.sheet_id, north.sheet_tab) == []  # the default sheet untouched
    # A button of an account ACCOUNTS no longer lists: nothing written, the clicker alone told why.
    gone = {**north_button, "value": json.dumps({"a": "west", "f": "chats", "k": key})}
    body, headers = slack.interactivity_request(slack.click_payload(slack.message(ts), gone))
    harness.stand.reset_calls()
    assert handle_action("POST", body, headers, {**env, **ACTION_ENV}) == ("", 200)
    assert harness.stand.sheets.count_writes() == 0 and harness.stand.slack.count("chat.update") == 0
    [told] = harness.stand.slack.responses()
    assert "no longer syncs" in told["text"] and told["response_type"] == "ephemeral"


def test_the_demos_click_claims_the_first_button_and_says_so(harness):
    from sandbox.claim_demo import click_first_claim

    keys, message = synced(harness)
    lines = click_first_claim(harness.stand.slack, harness.stand.sheets, {"": harness.sheet_id}, harness.env())
    assert lines[0].endswith("HTTP 200") and "Owner 'Ann'" in lines[1]
    assert row_of(harness, keys[0])["Owner"] == "Ann"
    assert "claimed by *Ann*" in json.dumps(harness.stand.slack.message(message["ts"])["blocks"])


SLACK_API, STAND_IN_API = "https://slack.com/api/", "http://127.0.0.1:5000/api/"


@pytest.mark.parametrize("url, api, allowed", [
    ("https://hooks.slack.com/actions/T0/1/x", SLACK_API, True),
    ("HTTPS://HOOKS.SLACK.COM/actions/T0/1/x", SLACK_API, True),
    ("http://hooks.slack.com/actions/T0/1/x", SLACK_API, False),  # not over https
    ("https://hooks.slack.com.evil.example/x", SLACK_API, False),
    ("https://hooks.slack.com@evil.example/x", SLACK_API, False),
    ("https://hooks.slack.com\\@evil.example/x", SLACK_API, False),
    ("https://evil.example/hooks.slack.com", SLACK_API, False),
    ("https://slack.com/api/chat.postMessage", SLACK_API, False),  # Slack, but no response URL
    ("http://127.0.0.1:5000/response/T0/1/hook", SLACK_API, False),  # the stand-in's, in production
    ("http://127.0.0.1:5000/response/T0/1/hook", STAND_IN_API, True),
    ("http://127.0.0.1:5001/response/T0/1/hook", STAND_IN_API, False),
    ("", SLACK_API, False),
])
def test_only_slacks_response_urls_are_ever_posted_to(url, api, allowed):
    from lib.destinations.slack.claims import response_url_allowed

    assert response_url_allowed(url, api) is allowed
