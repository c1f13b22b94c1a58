"""The local stand-ins, exercised with the real clients (gspread, slack_sdk, requests)."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta

import gspread
import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from lib.settings import Settings
from sandbox.standins import (
    Delay,
    Drop,
    FakeMoneypenny,
    FakeSheets,
    FakeSlack,
    LostResponse,
    Malformed,
    StandIns,
    Status,
    sample_chats,
    tricky_chats,
)
from sandbox.standins.a1 import Box, RangeError, box_text, col_index, col_letters, parse_box, split_sheet
from tests.harness import Clock

SHEET = "sheet-under-test"


class RewritingSession(requests.Session):
    """What our code hands gspread: Google's host swapped for the stand-in's root."""

    def __init__(self, root: str):
        super().__init__()
        self.root = root

    def request(self, method, url, *args, **kwargs):
        return super().request(method, url.replace("https://sheets.googleapis.com", self.root), *args, **kwargs)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def sheets():
    with FakeSheets() as fake:
        fake.create_spreadsheet(SHEET, tabs=("Sheet1",))
        yield fake
        assert fake.errors == []


@pytest.fixture
def gc(sheets):
    client = gspread.Client(auth=None, session=RewritingSession(sheets.url))
    client.set_timeout(5)
    return client


@pytest.fixture
def chats_tab(gc):
    book = gc.open_by_key(SHEET)
    ws = book.add_worksheet("Chats", rows=100, cols=5)
    ws.update([["Key", "Name", "Note"]], "A1")
    return ws


@pytest.fixture
def slack():
    with FakeSlack(channels={"C0DEMO": "sales-chats", "C0OTHER": "random"}, member_of=["C0DEMO"]) as fake:
        yield fake
        assert fake.errors == []


@pytest.fixture
def web(slack):
    return WebClient(token="xoxb-demo-token", base_url=slack.api_url, timeout=5)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def mp(clock):
    with FakeMoneypenny(clock=clock) as fake:
        yield fake
        assert fake.errors == []


def login(mp: FakeMoneypenny) -> dict[str, str]:
    r = requests.post(mp.auth_url, json={"username": "demo@example.com", "password": "demo-password"}, timeout=5)
    assert r.status_code == 200
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# --------------------------------------------------------------------------- A1 notation


def test_a1_parsing_covers_the_forms_gspread_and_our_code_send():
    assert split_sheet("'Bob''s chats'!A1:B2") == ("Bob's chats", "A1:B2")
    assert split_sheet("'My tab'") == ("My tab", None)
    assert split_sheet("Chats!N2:N") == ("Chats", "N2:N")
    assert split_sheet("A1") == (None, "A1")
    assert parse_box("B3") == Box(2, 3, 1, 2, single=True)
    assert parse_box("1:1") == Box(0, 1, 0, None)
    assert parse_box("A:A") == Box(0, None, 0, 1)
    assert parse_box("N2:N") == Box(1, None, 13, 14)
    assert parse_box("A5:1") == Box(0, 5, 0, None)
    assert parse_box("$A$1:$C$4") == Box(0, 4, 0, 3)
    for bad in ("A0", "foo bar", "A1:B2:C3", ""):
        with pytest.raises(RangeError):
            parse_box(bad)
    assert col_index("AA") == 26 and col_letters(26) == "AA" and col_letters(0) == "A"
    assert box_text("Chats", 0, 0, 3, 2) == "Chats!A1:B3"
    assert box_text("My tab", 1, 1, 2, 2) == "'My tab'!B2"


# --------------------------------------------------------------------------- Sheets


def test_gspread_opens_the_book_and_adds_a_tab(gc, sheets):
    book = gc.open_by_key(SHEET)
    assert [ws.title for ws in book.worksheets()] == ["Sheet1"]
    assert book.sheet1.id == 0
    ws = book.add_worksheet("Chats", rows=50, cols=14)
    assert (ws.title, ws.row_count, ws.col_count) == ("Chats", 50, 14)
    assert sheets.tabs(SHEET) == ["Sheet1", "Chats"]
    assert book.worksheet("Chats").id == ws.id
    with pytest.raises(gspread.exceptions.APIError) as err:
        book.add_worksheet("chats", rows=10, cols=10)
    assert err.value.response.status_code == 400 and "already exists" in str(err.value)
    assert sheets.tabs(SHEET) == ["Sheet1", "Chats"]


def test_a_full_workbook_is_refused_as_google_refuses_it(chats_tab, sheets):
    """Past the spreadsheet's cell limit (Google's 10,000,000; here a small one set for the test) an
    append that grows the grid, or a new tab, is answered 400 INVALID_ARGUMENT with Google's reason;
    the metadata's gridProperties say how many cells are used."""
    meta = chats_tab.spreadsheet.fetch_sheet_metadata()
    used = sum(s["properties"]["gridProperties"]["rowCount"] * s["properties"]["gridProperties"]["columnCount"]
               for s in meta["sheets"])
    assert used == 1000 * 26 + 100 * 5
    sheets.set_cell_limit(SHEET, used + 4)
    chats_tab.append_rows([["a", "b", "c"]], value_input_option="RAW", insert_data_option="OVERWRITE")  # fits
    with pytest.raises(gspread.exceptions.APIError) as err:
        chats_tab.append_rows([["d", "e"]], value_input_option="RAW", insert_data_option="INSERT_ROWS")
    body = err.value.response.json()["error"]
    assert (body["code"], body["status"]) == (400, "INVALID_ARGUMENT")
    assert body["message"] == f"This action would increase the number of cells in the workbook above the limit of {used + 4} cells."
    with pytest.raises(gspread.exceptions.APIError):
        chats_tab.spreadsheet.add_worksheet("More", rows=1, cols=5)
    assert sheets.rows(SHEET, "Chats") == [["Key", "Name", "Note"], ["a", "b", "c"]]


def test_raw_append_keeps_text_and_user_entered_makes_formulas_and_numbers(chats_tab, sheets):
    chats_tab.append_rows([["k1", "=1+1", "0123"]], value_input_option="RAW", table_range="A1")
    chats_tab.append_rows([["k2", "=1+1", "0123"], ["k3", "-2+3", "'=quoted"]],
                          value_input_option="USER_ENTERED", table_range="A1")
    assert sheets.rows(SHEET, "Chats") == [
        ["Key", "Name", "Note"],
        ["k1", "=1+1", "0123"],
        ["k2", "=1+1", "123"],
        ["k3", "=-2+3", "=quoted"],
    ]
    kinds = [[c.kind for c in row] for row in sheets.cells(SHEET, "Chats")[1:]]
    assert kinds == [["text", "text", "text"], ["text", "formula", "number"], ["text", "formula", "text"]]
    assert sheets.formulas(SHEET, "Chats") == ["B3", "B4"]


def test_append_reports_google_shaped_ranges(chats_tab):
    res = chats_tab.append_rows([["k1", "a"], ["k2", "b"]], value_input_option="RAW", table_range="A1")
    assert res["tableRange"] == "Chats!A1:C1"
    assert res["updates"] == {
        "spreadsheetId": SHEET, "updatedRange": "Chats!A2:B3", "updatedRows": 2, "updatedColumns": 2, "updatedCells": 4,
    }


def test_append_lands_below_the_table_after_a_hand_sort_and_notes_to_the_right(chats_tab, sheets):
    chats_tab.append_rows([["k3", "c"], ["k1", "a"], ["k2", "b"]], value_input_option="RAW", table_range="A1")
    sheets.sort_rows(SHEET, "Chats", 0)
    assert [r[0] for r in sheets.rows(SHEET, "Chats")] == ["Key", "k1", "k2", "k3"]
    sheets.add_column_values(SHEET, "Chats", "E", ["called", "", "no answer"])
    chats_tab.append_rows([["k4", "d"]], value_input_option="RAW", table_range="A1")
    rows = sheets.rows(SHEET, "Chats")
    assert rows[4] == ["k4", "d"]
    assert rows[1] == ["k1", "a", "", "", "called"]
    # A note typed further down makes the "table" taller: the append goes below it, like Google.
    sheets.set_cell(SHEET, "Chats", "E9", "follow up")
    res = chats_tab.append_rows([["k5", "e"]], value_input_option="RAW", table_range="A1")
    assert res["updates"]["updatedRange"] == "Chats!A10:B10"


def test_inserting_a_column_shifts_cells_right_and_deleting_it_shifts_them_back(chats_tab, sheets):
    sheets.set_rows(SHEET, "Chats", [["Key", "Value"], ["k1", "a"]])
    sheets.insert_columns(SHEET, "Chats", "A")
    sheets.set_cell(SHEET, "Chats", "A1", "Owner")
    assert sheets.rows(SHEET, "Chats") == [["Owner", "Key", "Value"], ["", "k1", "a"]]
    assert sheets.grid_size(SHEET, "Chats") == (100, 6)
    # gspread reads what a person would see after the insert.
    assert chats_tab.row_values(1) == ["Owner", "Key", "Value"]
    sheets.delete_columns(SHEET, "Chats", 0)
    assert sheets.rows(SHEET, "Chats") == [["Key", "Value"], ["k1", "a"]]
    assert sheets.grid_size(SHEET, "Chats") == (100, 5)


def test_reads_trim_like_google_and_accept_quoted_names(gc, sheets):
    book = gc.open_by_key(SHEET)
    ws = book.add_worksheet("Bob's chats", rows=20, cols=5)
    sheets.set_rows(SHEET, "Bob's chats", [["h1", "h2", "h3"], ["a", "", ""], [], ["b", "x"]])
    assert ws.col_values(1) == ["h1", "a", "", "b"]
    assert ws.col_values(3) == ["h3"]
    assert ws.row_values(2) == ["a"]
    raw = book.values_get("'Bob''s chats'!A1:C5")
    assert raw["range"] == "'Bob''s chats'!A1:C5"
    assert raw["values"] == [["h1", "h2", "h3"], ["a"], [], ["b", "x"]]
    cols = book.values_get("'Bob''s chats'!B:B", params={"majorDimension": "COLUMNS"})
    assert cols["values"] == [["h2", "", "", "x"]]
    assert "values" not in book.values_get("'Bob''s chats'!D1:E3")
    # A range without a sheet name means the first sheet.
    assert book.values_get("A1:B2")["range"] == "Sheet1!A1:B2"
    batch = book.values_batch_get(["'Bob''s chats'!A1", "Sheet1!A1"])
    assert [v.get("values") for v in batch["valueRanges"]] == [[["h1"]], None]


def test_reading_past_the_grid_or_an_unknown_tab_is_a_400(gc):
    book = gc.open_by_key(SHEET)
    with pytest.raises(gspread.exceptions.APIError) as err:
        book.values_get("Sheet1!A1:A1001")
    assert err.value.response.status_code == 400 and "exceeds grid limits" in str(err.value)
    with pytest.raises(gspread.exceptions.APIError) as err:
        book.values_get("Nope!A1")
    assert "Unable to parse range" in str(err.value)


def test_writes_grow_the_grid_and_insert_rows_adds_rows(chats_tab, sheets):
    assert sheets.grid_size(SHEET, "Chats") == (100, 5)
    chats_tab.append_rows([["k"] * 8] * 120, value_input_option="RAW", table_range="A1")
    assert sheets.grid_size(SHEET, "Chats") == (121, 8)
    chats_tab.append_rows([["k"]] * 3, value_input_option="RAW", insert_data_option="INSERT_ROWS", table_range="A1")
    assert sheets.grid_size(SHEET, "Chats") == (124, 8)
    assert len(sheets.rows(SHEET, "Chats")) == 124


def test_a_cell_over_50000_characters_fails_the_whole_request(chats_tab, sheets):
    with pytest.raises(gspread.exceptions.APIError) as err:
        chats_tab.append_rows([["ok", "fine"], ["k", "x" * 50_001]], value_input_option="RAW", table_range="A1")
    assert err.value.response.status_code == 400
    assert err.value.response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "maximum of 50000 characters" in str(err.value)
    assert sheets.rows(SHEET, "Chats") == [["Key", "Name", "Note"]]
    chats_tab.append_rows([["k", "x" * 50_000]], value_input_option="RAW", table_range="A1")
    assert len(sheets.rows(SHEET, "Chats")[1][1]) == 50_000


def test_a_body_over_10_mb_is_refused(sheets):
    url = f"{sheets.url}/v4/spreadsheets/{SHEET}/values/Sheet1!A1:append?valueInputOption=RAW"
    r = requests.post(url, data=b"x" * (10 * 1024 * 1024 + 1), timeout=10)
    assert r.status_code == 400 and "payload size" in r.json()["error"]["message"]


def test_forbidden_and_unknown_books_answer_like_google(gc, sheets):
    sheets.forbid(SHEET)
    with pytest.raises(PermissionError):
        gc.open_by_key(SHEET)
    r = requests.get(f"{sheets.url}/v4/spreadsheets/{SHEET}", timeout=5)
    assert r.json() == {"error": {"code": 403, "message": "The caller does not have permission",
                                  "status": "PERMISSION_DENIED"}}
    with pytest.raises(gspread.exceptions.SpreadsheetNotFound):
        gc.open_by_key("no-such-sheet")


def test_batch_update_is_all_or_nothing(gc, sheets):
    book = gc.open_by_key(SHEET)
    with pytest.raises(gspread.exceptions.APIError):
        book.batch_update({"requests": [
            {"addSheet": {"properties": {"title": "New"}}},
            {"deleteSheet": {"sheetId": 424242}},
        ]})
    assert sheets.tabs(SHEET) == ["Sheet1"]
    ws = book.add_worksheet("Chats", rows=10, cols=3)
    ws.resize(rows=5)
    assert sheets.grid_size(SHEET, "Chats") == (5, 3)
    book.del_worksheet(ws)
    assert sheets.tabs(SHEET) == ["Sheet1"]


def test_sheets_faults_counts_and_lost_append(chats_tab, sheets):
    sheets.reset_calls()
    sheets.inject("values.append", Status(429))
    with pytest.raises(gspread.exceptions.APIError) as err:
        chats_tab.append_rows([["k1"]], value_input_option="RAW", table_range="A1")
    assert err.value.response.status_code == 429
    assert err.value.response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    sheets.inject("values.append", LostResponse())
    with pytest.raises(requests.ConnectionError):
        chats_tab.append_rows([["k1"]], value_input_option="RAW", table_range="A1")
    # The row is there although the client never heard back: a blind retry would duplicate it.
    assert sheets.rows(SHEET, "Chats")[1:] == [["k1"]]
    chats_tab.col_values(1)
    assert sheets.count("values.append") == 2
    assert (sheets.count_reads(), sheets.count_writes()) == (1, 2)
    assert [c.status for c in sheets.calls("values.append")] == [429, None]
    assert [c.fault for c in sheets.calls("values.append")] == ["Status", "LostResponse"]


def test_sheets_write_quota_answers_429(chats_tab, sheets):
    sheets.write_quota = 2
    chats_tab.update([["a"]], "A2")
    chats_tab.update([["b"]], "A3")
    with pytest.raises(gspread.exceptions.APIError) as err:
        chats_tab.update([["c"]], "A4")
    assert err.value.response.status_code == 429
    chats_tab.col_values(1)  # reads have their own quota
    assert chats_tab.col_values(1) == ["Key", "a", "b"]  # the refused write did nothing


def test_sheets_quota_defaults_to_60_writes_a_minute_and_answers_like_google(sheets):
    sheets.set_quota()
    assert (sheets.write_quota, sheets.read_quota, sheets.quota_window) == (60, None, 60)
    url = f"{sheets.url}/v4/spreadsheets/{SHEET}/values/Sheet1!A1:append"
    answers = [requests.post(url, params={"valueInputOption": "RAW"}, json={"values": [[str(i)]]}, timeout=5)
               for i in range(61)]
    assert [a.status_code for a in answers[:60]] == [200] * 60
    refused = answers[60]
    assert refused.status_code == 429 and "Retry-After" not in refused.headers
    error = refused.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert "'Write requests per minute per user'" in error["message"]
    info = next(d for d in error["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "RATE_LIMIT_EXCEEDED"
    assert info["metadata"]["quota_limit"] == "WriteRequestsPerMinutePerUser"
    assert info["metadata"]["quota_limit_value"] == "60"
    assert len(sheets.rows(SHEET, "Sheet1")) == 60 and sheets.quota_refusals == 1


def test_sheets_quota_is_per_user_and_frees_up_as_the_window_rolls(sheets):
    sheets.set_quota(writes=2, window=1.0, retry_after=True)
    url = f"{sheets.url}/v4/spreadsheets/{SHEET}/values/Sheet1!A1:append"

    def append(user: str) -> requests.Response:
        return requests.post(url, params={"valueInputOption": "RAW"}, json={"values": [[user]]},
                             headers={"Authorization": f"Bearer {user}"}, timeout=5)

    assert [append("ann").status_code for _ in range(3)] == [200, 200, 429]
    assert append("bob").status_code == 200  # another user has a quota of their own
    refused = append("ann")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert append("ann").status_code == 200
    assert sorted(r[0] for r in sheets.rows(SHEET, "Sheet1")) == ["ann", "ann", "ann", "bob"]


def test_update_refuses_to_spill_out_of_a_bounded_range(chats_tab):
    with pytest.raises(gspread.exceptions.APIError) as err:
        chats_tab.update([["a", "b", "c"]], "A2:B2")
    assert "tried writing to column [C]" in str(err.value)


def test_csv_export(chats_tab, sheets, tmp_path):
    chats_tab.append_rows([["k1", "a, with comma"]], value_input_option="RAW", table_range="A1")
    path = tmp_path / "out.csv"
    sheets.to_csv(SHEET, "Chats", str(path))
    assert path.read_text().splitlines() == ["Key,Name,Note", 'k1,"a, with comma",']


# --------------------------------------------------------------------------- Slack


def test_post_with_blocks_is_stored_by_channel_id(web, slack):
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "3 new chats"}},
              {"type": "section", "text": {"type": "mrkdwn", "text": "*Ann* &lt;!channel&gt;"}},
              {"type": "divider"},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": "from Moneypenny"}]}]
    res = web.chat_postMessage(channel="#sales-chats", text="3 new chats", blocks=blocks)
    assert res["ok"] and res["channel"] == "C0DEMO" and res["ts"]
    [msg] = slack.messages("sales-chats")
    assert msg["channel"] == "C0DEMO" and msg["blocks"] == blocks and msg["text"] == "3 new chats"
    assert FakeSlack.message_live_entities(msg) == []
    assert FakeSlack.message_text(msg).splitlines()[0] == "3 NEW CHATS"
    assert web.auth_test()["user_id"] == "U0BOT"


def test_form_encoded_posts_are_accepted(slack):
    r = requests.post(slack.api_url + "chat.postMessage", timeout=5, data={
        "token": "xoxb-demo-token", "channel": "C0DEMO", "text": "hello",
        "blocks": json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}]),
    })
    assert r.json()["ok"] is True
    assert slack.messages()[0]["blocks"][0]["text"]["text"] == "hello"


def _slack_error(call) -> str:
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value.response["error"]


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_slack_block_limits(web, slack):
    post = lambda **kw: web.chat_postMessage(channel="C0DEMO", text="t", **kw)  # noqa: E731
    assert _slack_error(lambda: post(blocks=[_section("x")] * 51)) == "invalid_blocks"
    assert _slack_error(lambda: post(blocks=[_section("x" * 3001)])) == "invalid_blocks"
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    assert _slack_error(lambda: post(blocks=[header])) == "invalid_blocks"
    header = {"type": "header", "text": {"type": "mrkdwn", "text": "h"}}
    assert _slack_error(lambda: post(blocks=[header])) == "invalid_blocks"
    assert _slack_error(lambda: post(blocks=[_section("x" * 2900)] * 5)) == "msg_blocks_too_long"
    assert _slack_error(lambda: web.chat_postMessage(channel="C0DEMO", text="")) == "no_text"
    post(blocks=[_section("x" * 3000)] * 3 + [{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}])
    web.chat_postMessage(channel="C0DEMO", text="y" * 40_050)
    assert [len(m["text"]) for m in slack.messages()] == [1, 40_000]


def test_slack_limits_count_emoji_as_two_and_escaped_json_for_the_total(web, slack):
    post = lambda blocks: web.chat_postMessage(channel="C0DEMO", text="t", blocks=blocks)  # noqa: E731
    # 501 emoji and 1,999 letters are 2,500 code points but 3,001 UTF-16 units: over a
    # section's 3,000 "characters".
    assert _slack_error(lambda: post([_section("😀" * 501 + "x" * 1999)])) == "invalid_blocks"
    post([_section("😀" * 500 + "x" * 2000)])
    # 2,100 CJK letters fit a section, but as escaped JSON (6 each) the blocks pass 12,000.
    assert _slack_error(lambda: post([_section("中" * 2100)])) == "msg_blocks_too_long"
    assert FakeSlack.message_problem("t", [_section("中" * 2100)]) == "msg_blocks_too_long"
    assert FakeSlack.message_problem("t", [_section("中" * 1900)]) is None
    assert FakeSlack.message_problem("", []) == "no_text"
    assert len(slack.messages()) == 1


def test_slack_auth_and_channel_errors(web, slack):
    bad = WebClient(token="xoxb-wrong", base_url=slack.api_url)
    assert _slack_error(lambda: bad.chat_postMessage(channel="C0DEMO", text="x")) == "invalid_auth"
    assert _slack_error(lambda: bad.auth_test()) == "invalid_auth"
    anonymous = WebClient(base_url=slack.api_url)
    assert _slack_error(lambda: anonymous.auth_test()) == "not_authed"
    assert _slack_error(lambda: web.chat_postMessage(channel="#nowhere", text="x")) == "channel_not_found"
    assert _slack_error(lambda: web.chat_postMessage(channel="random", text="x")) == "not_in_channel"
    assert web.conversations_join(channel="C0OTHER")["ok"]
    web.chat_postMessage(channel="random", text="x")
    assert _slack_error(lambda: web.conversations_info(channel="random")) == "channel_not_found"
    assert web.conversations_info(channel="C0OTHER")["channel"]["is_member"] is True
    assert slack.messages() == [slack.messages("C0OTHER")[0]]


def test_slack_429_carries_retry_after(web, slack):
    slack.inject("chat.postMessage", Status(429, retry_after=1))
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel="C0DEMO", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "1"
    assert err.value.response["error"] == "ratelimited"
    assert slack.messages() == []
    web.chat_postMessage(channel="C0DEMO", text="x")
    assert slack.count("chat.postMessage") == 2 and slack.faults_pending() == 0


def test_live_entities_finds_unescaped_control_sequences():
    text = "hi <!channel> and <@U123> see <http://x.example|here> <mailto:a@b.c> <#C1> &lt;!here&gt; a < b > c"
    assert FakeSlack.live_entities(text) == [
        "<!channel>", "<@U123>", "<http://x.example|here>", "<mailto:a@b.c>", "<#C1>", "< b >",
    ]
    assert FakeSlack.live_entities("&lt;!channel&gt; &amp; safe") == []


# --------------------------------------------------------------------------- Moneypenny


def test_token_flow(mp):
    r = requests.post(mp.auth_url, json={"username": "demo@example.com", "password": "nope"}, timeout=5)
    assert r.status_code == 401
    first, second = login(mp), login(mp)
    assert first != second
    r = requests.post(mp.auth_url, json={"username": "demo@example.com", "password": "demo-password"}, timeout=5)
    assert r.json()["expires_in"] == 86400 and r.json()["token_type"] == "Bearer"
    assert requests.get(mp.chats_url, timeout=5).status_code == 401
    assert requests.get(mp.chats_url, headers={"Authorization": "Bearer junk"}, timeout=5).status_code == 401
    assert requests.get(mp.chats_url, headers=first, timeout=5).status_code == 200


def test_tokens_expire_with_the_clock_or_on_demand(mp, clock):
    headers = login(mp)
    clock.advance(hours=23, minutes=59)
    assert requests.get(mp.chats_url, headers=headers, timeout=5).status_code == 200
    clock.advance(minutes=2)
    assert requests.get(mp.chats_url, headers=headers, timeout=5).status_code == 401
    headers = login(mp)
    mp.expire_tokens()
    assert requests.get(mp.chats_url, headers=headers, timeout=5).status_code == 401


def test_plain_calls_move_the_cursor(mp):
    headers = login(mp)
    mp.add_chats(sample_chats(3, datetime(2024, 2, 6, 9, 0)))
    got = requests.get(mp.chats_url, headers=headers, timeout=5).json()
    assert [c["chatTime"] for c in got] == [c["chatTime"] for c in mp.all_chats()]
    assert requests.get(mp.chats_url, headers=headers, timeout=5).json() == []
    mp.add_chats(sample_chats(2, datetime(2024, 2, 7, 9, 0), seed=1))
    assert mp.pending_chats() == mp.all_chats()[3:]
    assert len(requests.get(mp.chats_url, headers=headers, timeout=5).json()) == 2
    assert mp.delivered_count() == 5


def test_date_windows_are_inclusive_and_leave_the_cursor(mp):
    headers = login(mp)
    for day in (5, 6, 7, 8):
        mp.add_chats(sample_chats(2, datetime(2024, 2, day, 23, 40), seed=day, spacing=timedelta(minutes=1)))
    r = requests.get(mp.chats_url, headers=headers, params={"startTime": "02/06/2024", "endTime": "02/07/2024"},
                     timeout=5)
    assert r.status_code == 200
    assert {c["chatTime"][:10] for c in r.json()} == {"2024-02-06", "2024-02-07"} and len(r.json()) == 4
    assert mp.delivered_count() == 0
    assert requests.get(mp.chats_url, headers=headers, params={"startTime": "02/06/2024"}, timeout=5).status_code == 400
    bad = {"startTime": "2024-02-06", "endTime": "2024-02-07"}
    assert requests.get(mp.chats_url, headers=headers, params=bad, timeout=5).status_code == 400
    assert len(requests.get(mp.chats_url, headers=headers, timeout=5).json()) == 8


def test_a_lost_response_still_moves_the_cursor_and_a_window_recovers(mp):
    headers = login(mp)
    mp.add_chats(sample_chats(3, datetime(2024, 2, 6, 9, 0)))
    mp.inject("log", LostResponse())
    with pytest.raises(requests.ConnectionError):
        requests.get(mp.chats_url, headers=headers, timeout=5)
    assert requests.get(mp.chats_url, headers=headers, timeout=5).json() == []
    window = {"startTime": "02/06/2024", "endTime": "02/06/2024"}
    assert len(requests.get(mp.chats_url, headers=headers, params=window, timeout=5).json()) == 3


def test_drop_status_malformed_and_delay_faults(mp):
    headers = login(mp)
    mp.add_chats(sample_chats(2, datetime(2024, 2, 6, 9, 0)))
    mp.inject("log", Drop())
    with pytest.raises(requests.ConnectionError):
        requests.get(mp.chats_url, headers=headers, timeout=5)
    assert mp.delivered_count() == 0  # a dropped request did nothing
    mp.inject("log", Status(503, retry_after=7))
    r = requests.get(mp.chats_url, headers=headers, timeout=5)
    assert (r.status_code, r.headers["Retry-After"]) == (503, "7")
    mp.inject("*", Malformed("<html>oops</html>"))
    r = requests.get(mp.chats_url, headers=headers, timeout=5)
    assert (r.status_code, r.text) == (200, "<html>oops</html>")
    mp.inject("log", Delay(0.5))
    with pytest.raises(requests.Timeout):
        requests.get(mp.chats_url, headers=headers, timeout=0.15)
    # The server went on and answered into the void: the cursor moved.
    deadline = time.monotonic() + 2
    while mp.delivered_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mp.delivered_count() == 2
    assert [c.fault for c in mp.calls("log")] == ["Drop", "Status", "Malformed", "Delay"]


def test_fault_queue_rules(mp):
    with pytest.raises(ValueError):
        mp.inject("logs", Drop())
    mp.inject("auth", Status(500), times=2)
    mp.inject("*", Status(502), times=None)
    assert mp.faults_pending() == 3
    codes = [requests.post(mp.auth_url, json={}, timeout=5).status_code for _ in range(4)]
    assert codes == [500, 500, 502, 502]
    assert mp.faults_pending() == 1
    mp.clear_faults()
    assert mp.faults_pending() == 0
    assert requests.post(mp.auth_url, json={}, timeout=5).status_code == 401


def _login_as(mp: FakeMoneypenny, username: str, password: str) -> dict[str, str]:
    r = requests.post(mp.auth_url, json={"username": username, "password": password}, timeout=5)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_each_user_reads_only_its_own_chats_and_calls_with_its_own_cursor(mp):
    mp.add_user("north@example.com", "north-pw")
    assert mp.users() == ["demo@example.com", "north@example.com"]
    demo, north = login(mp), _login_as(mp, "north@example.com", "north-pw")
    mp.add_chats(sample_chats(3, datetime(2024, 2, 6, 9, 0), seed=1))
    mp.add_chats(sample_chats(2, datetime(2024, 2, 6, 10, 0), seed=2), user="north@example.com")
    mp.add_calls([{"date": "2024-02-06T09:00:00+00:00", "caller": "For north", "callId": "N1"}],
                 user="north@example.com")
    # North's plain call hands out north's chats and moves north's cursor only.
    got = requests.get(mp.chats_url, headers=north, timeout=5).json()
    assert [c["chatTime"] for c in got] == [c["chatTime"] for c in mp.all_chats("north@example.com")]
    assert (mp.delivered_count("north@example.com"), mp.delivered_count()) == (2, 0)
    assert len(mp.pending_chats()) == 3
    assert [c["chatTime"] for c in requests.get(mp.chats_url, headers=demo, timeout=5).json()] == [
        c["chatTime"] for c in mp.all_chats()]
    window = {"startTime": "02/06/2024", "endTime": "02/06/2024"}
    assert len(requests.get(mp.chats_url, headers=north, params=window, timeout=5).json()) == 2
    days = {"from": "02/06/2024", "to": "02/06/2024"}
    assert requests.get(mp.calls_url, headers=demo, params=days, timeout=5).json() == []
    assert [c["callId"] for c in requests.get(mp.calls_url, headers=north, params=days, timeout=5).json()] == ["N1"]


def test_a_password_is_its_own_users_and_tokens_expire_per_user(mp):
    mp.add_user("north@example.com", "north-pw")
    with pytest.raises(ValueError):
        mp.add_user("north@example.com", "again")
    # Another user's password does not log in, nor does a user Moneypenny does not know.
    for username, password in (("north@example.com", "demo-password"), ("demo@example.com", "north-pw"),
                               ("south@example.com", "north-pw")):
        assert requests.post(mp.auth_url, json={"username": username, "password": password},
                             timeout=5).status_code == 401
    demo, north = login(mp), _login_as(mp, "north@example.com", "north-pw")
    assert (mp.tokens_issued(), mp.tokens_issued("north@example.com")) == (2, 1)
    mp.expire_tokens("north@example.com")
    assert requests.get(mp.chats_url, headers=north, timeout=5).status_code == 401
    assert requests.get(mp.chats_url, headers=demo, timeout=5).status_code == 200
    mp.set_password("changed", user="north@example.com")
    _login_as(mp, "north@example.com", "changed")


def test_calls_are_recorded_by_tenant_and_a_fault_for_one_tenant_passes_the_others_by(mp):
    mp.add_user("north@example.com", "north-pw")
    north = _login_as(mp, "north@example.com", "north-pw")
    mp.inject("log", Status(503), times=None, tenant="north@example.com")
    mp.inject("auth", Status(500), tenant="north@example.com")
    assert mp.queued_faults(reaching="demo@example.com") == []
    assert mp.queued_faults(reaching="north@example.com") == [Status(503), Status(500)]
    demo = login(mp)  # the demo user's login and reads pass north's faults by
    assert requests.get(mp.chats_url, headers=demo, timeout=5).status_code == 200
    assert requests.get(mp.chats_url, headers=north, timeout=5).status_code == 503
    assert requests.post(mp.auth_url, json={"username": "north@example.com", "password": "north-pw"},
                         timeout=5).status_code == 500
    assert [(c.endpoint, c.tenant, c.status) for c in mp.calls()] == [
        ("auth", "north@example.com", 200), ("auth", "demo@example.com", 200), ("log", "demo@example.com", 200),
        ("log", "north@example.com", 503), ("auth", "north@example.com", 500)]
    assert mp.count("log", tenant="north@example.com") == 1
    assert requests.get(mp.chats_url, headers={"Authorization": "Bearer junk"}, timeout=5).status_code == 401
    assert mp.calls()[-1].tenant is None


def test_an_account_of_the_stand_ins_has_its_own_login_sheet_token_and_channel():
    with StandIns() as stand:
        env = stand.accounts_env(["north", "east-london"])
        assert env["ACCOUNTS"] == "north,east-london"
        east = stand.accounts["east-london"]
        assert env["SHEET_ID__EAST_LONDON"] == east.sheet_id and env["SLACK_CHANNEL__EAST_LONDON"] == east.channel_id
        assert env["MONEYPENNY_USERNAME__NORTH"] == "north@example.com" != env["MONEYPENNY_USERNAME"]
        assert stand.sheets.tabs(east.sheet_id) == ["Sheet1"]
        web = WebClient(token=east.slack_token, base_url=stand.slack.api_url)
        web.chat_postMessage(channel=east.channel_id, text="hello east")
        assert [m["text"] for m in stand.slack.messages(east.channel_name)] == ["hello east"]
        assert stand.slack.calls("chat.postMessage", tenant=east.slack_token)
        _login_as(stand.moneypenny, east.username, east.password)
        requests.get(stand.sheets.url + f"/v4/spreadsheets/{east.sheet_id}", timeout=5)
        assert {name: stand_in.count(tenant=east.tenants[name]) for name, stand_in in
                (("moneypenny", stand.moneypenny), ("sheets", stand.sheets), ("slack", stand.slack))} == {
            "moneypenny": 1, "sheets": 1, "slack": 1}


# --------------------------------------------------------------------------- bundle, latency


def test_bundle_env_points_settings_at_the_stand_ins():
    with StandIns() as stand:
        settings = Settings.from_env({**stand.env(), "STATE_STORE": "sqlite:/tmp/x.sqlite3"})
        assert settings.sheets_api_url == stand.sheets.url and not settings.sheets_is_google
        assert settings.moneypenny_chats_url.endswith("/clientlivechat/V3/Log")
        assert stand.sheets.tabs(settings.sheet_id) == ["Sheet1"]
        web = WebClient(token=settings.slack_bot_token.reveal(), base_url=settings.slack_api_url)
        web.chat_postMessage(channel=settings.slack_channel, text="hello")
        login(stand.moneypenny)
        assert stand.total_calls() == {
            "moneypenny": 1, "sheets": 0, "sheets_reads": 0, "sheets_writes": 0, "slack": 1, "total": 2,
        }
        stand.reset_calls()
        assert stand.total_calls()["total"] == 0


def test_latency_is_added_to_every_answer():
    with StandIns(latency=0.2) as stand:
        started = time.monotonic()
        requests.get(stand.sheets.url + "/v4/spreadsheets/local-demo-sheet", timeout=5)
        assert time.monotonic() - started >= 0.2
        stand.set_latency(0)
        started = time.monotonic()
        requests.get(stand.sheets.url + "/v4/spreadsheets/local-demo-sheet", timeout=5)
        assert time.monotonic() - started < 0.2
        assert stand.sheets.count("metadata") == 2


def test_wait_idle_waits_for_a_request_the_client_gave_up_on_before_the_stand_in_read_it(mp):
    """A client that connected counts as a request in flight until the stand-in has carried it
    out, even when the client hung up before the stand-in read a byte (a starved server thread
    on a loaded machine): a log call given up on still moves the cursor, and idle means after."""
    headers = login(mp)
    mp.add_chats(sample_chats(2, datetime(2024, 2, 6, 9, 0)))
    path = mp.chats_url.removeprefix(mp.url)
    with socket.create_connection(("127.0.0.1", mp.port), timeout=5) as raw:
        assert not mp.wait_idle(timeout=0.3)  # connected, nothing sent yet: still to come
        raw.sendall(f"GET {path} HTTP/1.0\r\nAuthorization: {headers['Authorization']}\r\n\r\n".encode())
    # The client is gone without an answer; the stand-in reads and carries out the call anyway.
    assert mp.wait_idle(timeout=5)
    assert mp.delivered_count() == 2 and mp.pending_chats() == []


def test_stop_releases_the_port():
    fake = FakeSlack().start()
    url = fake.url
    fake.stop()
    with pytest.raises(requests.ConnectionError):
        requests.post(url + "/api/auth.test", timeout=1)


# --------------------------------------------------------------------------- samples


def test_sample_chats_are_deterministic_and_shaped_like_the_api():
    start = datetime(2024, 2, 6, 9, 0)
    chats = sample_chats(60, start, seed=3)
    assert chats == sample_chats(60, start, seed=3) and chats != sample_chats(60, start, seed=4)
    times = [c["chatTime"] for c in chats]
    assert len(set(times)) == 60 and times == sorted(times)
    for c in chats:
        assert {"chatTime", "name", "companyName", "email", "phone", "pageURL", "entryURL",
                "transcript", "variables", "tags"} <= set(c)
        assert "+" not in c["chatTime"] and "Z" not in c["chatTime"]
        datetime.fromisoformat(c["chatTime"].ljust(23, "0") if "." in c["chatTime"] else c["chatTime"])
        assert c["transcript"][0].startswith("1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: ")
        assert all(line.split(": [", 1)[0] == str(i) for i, line in enumerate(c["transcript"], 1))
    assert any(c["companyName"] == "" for c in chats) and any(c["phone"] is None for c in chats)
    assert any("utM_Source" not in c for c in chats) and any(c.get("utM_Source") for c in chats)
    assert len(sample_chats(3, start, spacing=timedelta(0))) == 3


def test_tricky_chats_cover_the_hazards():
    tricky = tricky_chats(datetime(2024, 2, 6, 9, 0))
    assert len({c["chatTime"] for c in tricky}) == len(tricky)
    assert any(c["name"] and c["name"].startswith("=") for c in tricky)
    assert any(FakeSlack.live_entities(c["name"] or "") for c in tricky)
    assert any(len("\n".join(c["transcript"] or [])) > 50_000 for c in tricky)
    assert any("." not in c["chatTime"] for c in tricky)


def test_the_undocumented_window_behaviours_can_be_switched(mp):
    headers = login(mp)
    mp.add_chats(sample_chats(2, datetime(2024, 2, 6, 9, 0)) + sample_chats(2, datetime(2024, 2, 7, 9, 0), seed=1))
    mp.add_chats(["not an object", None])
    mp.end_inclusive = False
    mp.window_moves_cursor = True
    window = {"startTime": "02/06/2024", "endTime": "02/07/2024"}
    got = requests.get(mp.chats_url, headers=headers, params=window, timeout=5).json()
    assert {c["chatTime"][:10] for c in got} == {"2024-02-06"}
    assert requests.get(mp.chats_url, headers=headers, timeout=5).json() == []


def test_busy_seconds_sum_the_time_spent_answering_and_reset_with_the_call_log(mp):
    mp.latency = 0.05
    login(mp)
    login(mp)
    busy = mp.busy_seconds
    assert 2 * 0.05 <= busy < 2 * 0.05 + 1.0  # the latency of each answer, and a little work
    mp.reset_calls()
    assert mp.busy_seconds == 0.0 and mp.count() == 0
