"""The sales loop's summary side (#23 items 1 and 2): each listed Slack line links to its own row
(`#gid=<the tab's sheetId>&range=A<row>`, the row from the append's `updates.updatedRange`, or
found again by its key), shows the item's short key and carries a Claim button; both tabs get
the Owner and Claimed at columns, which the sync never writes; a 40-line summary over two tabs
posts whole. Real gspread and slack-sdk against the stand-ins."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest

from lib.destinations.sheet.writer import first_row, missing_sales_columns
from lib.destinations.slack.combined import SummaryPart, build_combined
from lib.errors import RunFailed
from lib.sources.calls import HEADER as CALLS_HEADER
from lib.sources.calls import parse_call
from lib.sources.chats import HEADER as CHATS_HEADER
from lib.sources.chats import parse_chat
from sandbox.standins.samples import sample_calls, sample_chats
from sandbox.standins.server import Status
from sandbox.standins.slack import FakeSlack
from tests.harness import UK, by_header

LOCAL = ZoneInfo(UK)

ITEM = re.compile(r" · <([^|>]+)\|([A-Za-z0-9?-]{1,8})>$")
ROW_LINK = re.compile(r"#gid=(\d+)&range=A(\d+)$")
KEY_COLUMN = {"chats": "Chat key", "calls": "Call id"}
TAB = {"chats": "Chats", "calls": "Calls"}


@pytest.fixture
def both(harness):
    harness.env_overrides.update(MONEYPENNY_SOURCES="chats,calls", SLACK_MAX_LISTED="40")
    return harness


def tab_ids(harness) -> dict[str, int]:
    import requests

    meta = requests.get(f"{harness.stand.sheets.url}/v4/spreadsheets/{harness.sheet_id}", timeout=10).json()
    return {s["properties"]["title"]: s["properties"]["sheetId"] for s in meta["sheets"]}


def add_calls(harness, n: int, seed: int = 3) -> list[dict]:
    calls = sample_calls(n, harness.clock() - timedelta(minutes=50), seed=seed)
    harness.stand.moneypenny.add_calls(calls)
    return calls


def items(message: dict) -> list[dict]:
    """Each listed item of a posted summary: its line, link, short key and Claim button."""
    found = []
    for block in message["blocks"]:
        if block["type"] == "section" and "accessory" in block:
            text = block["text"]["text"]
            match = ITEM.search(text)
            assert match, text
            found.append({"line": text, "url": match[1], "short": match[2], "button": block["accessory"]})
    return found


def row_named(harness, url: str) -> tuple[int, int]:
    """(gid, row) of a row link."""
    match = ROW_LINK.search(url)
    assert match and url.startswith(harness.settings().sheet_url), url
    return int(match[1]), int(match[2])


def assert_links_name_their_rows(harness, listed: list[dict]) -> None:
    ids = tab_ids(harness)
    for item in listed:
        button = item["button"]
        assert button["type"] == "button" and button["action_id"] == "claim" and button["text"]["text"] == "Claim"
        value = json.loads(button["value"])
        assert set(value) == {"a", "f", "k"} and value["a"] == ""
        assert button["value"] == json.dumps(value, separators=(",", ":"), ensure_ascii=False)  # compact
        feed, key = value["f"], value["k"]
        assert item["short"] == key[-8:]
        gid, row = row_named(harness, item["url"])
        assert gid == ids[TAB[feed]]
        rows = harness.stand.sheets.rows(harness.sheet_id, TAB[feed])
        header = rows[0]
        cell = rows[row - 1][header.index(KEY_COLUMN[feed])]
        assert (cell if feed == "chats" else "call:" + cell) == key, (feed, row)


def test_every_line_of_a_40_item_summary_over_two_tabs_links_its_own_row(both, store):
    harness = both
    # Rows already there, sorted by hand, and a person's own column: the new rows land below.
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Sheet1", "Calls", "Chats"))
    harness.add_chats(4, seed=1, start=(harness.clock() - timedelta(hours=3)).astimezone(LOCAL).replace(tzinfo=None))
    add_calls(harness, 3, seed=1)
    harness.syncer().run()
    harness.stand.sheets.sort_rows(harness.sheet_id, "Chats", 1, reverse=True)
    harness.clock.advance(minutes=5)
    harness.add_chats(25, seed=2, start=(harness.clock() - timedelta(hours=1)).astimezone(LOCAL).replace(tzinfo=None))
    add_calls(harness, 15, seed=2)
    report = harness.syncer().run()
    assert report.appended == 40
    message = harness.stand.slack.messages()[-1]
    listed = items(message)
    assert len(listed) == 40
    assert "more" not in message["blocks"][-1]["elements"][0]["text"]
    assert FakeSlack.message_problem(message["text"], message["blocks"]) is None
    assert_links_name_their_rows(harness, listed)
    feeds = [json.loads(i["button"]["value"])["f"] for i in listed]
    assert feeds.count("chats") == 25 and feeds.count("calls") == 15
    # Each row once: the first run's 4 + 3 rows are above them.
    rows = {row_named(harness, i["url"]) for i in listed}
    assert len(rows) == 40 and min(r for _, r in rows) >= 5


def test_a_late_line_finds_its_row_by_key_after_rows_above_it_were_sorted(harness, store):
    harness.add_chats(6, seed=4)
    harness.stand.slack.inject("chat.postMessage", Status(500), times=None)
    with pytest.raises(RunFailed):
        harness.syncer().run()
    harness.stand.slack.clear_faults()
    # A person sorts the tab (newest first) between the two runs: every row moves.
    harness.stand.sheets.sort_rows(harness.sheet_id, "Chats", 0, reverse=True)
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    [message] = harness.stand.slack.messages()
    listed = items(message)
    assert len(listed) == 6
    assert_links_name_their_rows(harness, listed)
    # Sorted newest first: the lines (oldest first) name rows from the bottom up.
    assert [row_named(harness, i["url"])[1] for i in listed] == list(range(7, 1, -1))


def test_a_line_whose_row_is_gone_shows_its_short_key_without_a_link(harness):
    harness.add_chats(2, seed=5)
    harness.stand.slack.inject("chat.postMessage", Status(500), times=None)
    with pytest.raises(RunFailed):
        harness.syncer().run()
    harness.stand.slack.clear_faults()
    harness.stand.sheets.delete_rows(harness.sheet_id, "Chats", 2)  # the earlier chat's row
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    [message] = harness.stand.slack.messages()
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    keys = [json.loads(b["accessory"]["value"])["k"] for b in message["blocks"] if "accessory" in b]
    assert texts[0].endswith(f" · `{keys[0][-8:]}`")  # no row to link to
    assert ITEM.search(texts[1])


# -- the Owner and Claimed at columns -------------------------------------------------------------


def test_both_new_tabs_get_owner_and_claimed_at_right_of_their_columns_never_written(both):
    harness = both
    harness.add_chats(3, seed=6)
    add_calls(harness, 2, seed=6)
    harness.syncer().run()
    for tab, header in (("Chats", CHATS_HEADER), ("Calls", CALLS_HEADER)):
        rows = harness.stand.sheets.rows(harness.sheet_id, tab)
        assert rows[0] == [*header, "Owner", "Claimed at"]
        assert len(rows) > 1 and all(len(row) <= len(header) for row in rows[1:])


def test_an_existing_sheet_gets_them_after_a_persons_own_column_and_keeps_working(harness):
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Chats",))
    harness.stand.sheets.set_rows(harness.sheet_id, "Chats", [[*CHATS_HEADER, "Notes"]])
    harness.add_chats(2, seed=7)
    first = harness.syncer().run()
    assert first.appended == 2
    rows = harness.rows()
    assert rows[0] == [*CHATS_HEADER, "Notes", "Owner", "Claimed at"]
    # A name typed by hand is a claim: the sync leaves it, and adds no column again.
    harness.stand.sheets.set_cell(harness.sheet_id, "Chats", "P2", "Ann")
    writes = harness.stand.sheets.count("values.update")
    harness.clock.advance(minutes=5)
    harness.add_chats(1, seed=8, start=(harness.clock() - timedelta(minutes=3)).astimezone(LOCAL).replace(tzinfo=None))
    assert harness.syncer().run().appended == 1
    assert harness.stand.sheets.count("values.update") == writes
    records = by_header(harness.rows())
    assert [r.get("Owner", "") for r in records] == ["Ann", "", ""]


def test_owner_moved_by_a_person_is_found_by_name_and_only_the_missing_one_added(harness):
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Chats",))
    harness.stand.sheets.set_rows(harness.sheet_id, "Chats", [[*CHATS_HEADER, "", "", "owner "]])
    harness.add_chats(1, seed=9)
    harness.syncer().run()
    assert harness.rows()[0] == [*CHATS_HEADER, "", "", "owner ", "Claimed at"]


def test_a_sheet_that_cannot_take_the_columns_still_gets_its_rows(harness):
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Chats",))
    harness.stand.sheets.set_rows(harness.sheet_id, "Chats", [list(CHATS_HEADER)])
    harness.add_chats(2, seed=10)
    harness.stand.sheets.inject("values.update", Status(400))
    report = harness.syncer().run()
    assert report.appended == 2 and report.posted == 2
    assert harness.rows()[0] == list(CHATS_HEADER)
    harness.clock.advance(minutes=5)
    harness.syncer().run()  # nothing new: no header is read, nothing added
    harness.add_chats(1, seed=11, start=(harness.clock() - timedelta(minutes=3)).astimezone(LOCAL).replace(tzinfo=None))
    harness.syncer().run()
    assert harness.rows()[0] == [*CHATS_HEADER, "Owner", "Claimed at"]


@pytest.mark.parametrize("header, expected", [
    ([], [(0, "Owner"), (1, "Claimed at")]),
    (["A", "B"], [(2, "Owner"), (3, "Claimed at")]),
    (["A", "B", "", "Notes", ""], [(4, "Owner"), (5, "Claimed at")]),
    (["A", "Claimed at", "B"], [(3, "Owner")]),
    (["A", " OWNER", "claimed AT"], []),
])
def test_missing_sales_columns_go_after_the_last_filled_header_cell(header, expected):
    assert missing_sales_columns(header) == expected


# -- the append's answer --------------------------------------------------------------------------


@pytest.mark.parametrize("answer, row", [
    ("Chats!A12:N13", 12), ("'Call log'!A5:H5", 5), ("'It''s!mine'!A7", 7), ("Sheet1!$A$3:$N$4", 3),
    ("Chats!A:N", None), ("", None),
])
def test_the_first_row_is_read_from_updated_range_as_google_writes_it(answer, row):
    assert first_row(answer) == row


def test_the_sheets_stand_in_answers_updated_range_as_google_does(harness):
    import gspread

    from lib.destinations.sheet.client import build_client

    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Call log", "Chats"))
    client: gspread.Client = build_client(harness.settings())
    harness.stand.sheets.set_rows(harness.sheet_id, "Call log", [["h1", "h2"], ["a", "b"], ["", ""], ["c", "d"]])
    answer = client.http_client.values_append(
        harness.sheet_id, "'Call log'!A1", params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
        body={"values": [["e", "f"], ["g", "h"]]})
    # Quoted where the name needs it, the rows after the table's last filled row, in the order sent.
    assert answer["updates"]["updatedRange"] == "'Call log'!A5:B6"
    assert answer["tableRange"] == "'Call log'!A1:B4"
    assert harness.stand.sheets.rows(harness.sheet_id, "Call log")[4:6] == [["e", "f"], ["g", "h"]]
    bare = client.http_client.values_append(
        harness.sheet_id, "Chats!A1", params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
        body={"values": [["x"]]})
    assert bare["updates"]["updatedRange"] == "Chats!A1"


# -- within Slack's limits ------------------------------------------------------------------------


def test_a_40_line_summary_with_the_longest_links_and_heavy_text_fits_slack_whole():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(UK)
    start = datetime(2026, 12, 3, 9, 0)
    chats = [parse_chat(c, tz) for c in sample_chats(25, start, seed=12)]
    chats = [parse_chat({**c.raw, "name": "名前" * 40, "companyName": "会社" * 40}, tz) for c in chats]
    calls = [parse_call(c, tz) for c in sample_calls(15, start.replace(tzinfo=tz), seed=12)]
    sheet = "https://docs.google.com/spreadsheets/d/" + "x" * 44 + "/edit"
    rows = {r.key: f"{sheet}#gid=2147483647&range=A{999_000 + i}" for i, r in enumerate([*chats, *calls])}
    summary = build_combined(
        [SummaryPart(chats, "new chat", "Chats", f"{sheet}#gid=1", feed="chats", row_links=rows),
         SummaryPart(calls, "new call", "Calls", f"{sheet}#gid=2", feed="calls", row_links=rows)],
        sheet_url=sheet, max_listed=40, account="east-london")
    assert summary.listed == 40
    assert FakeSlack.message_problem(summary.text, summary.blocks) is None
    values = [json.loads(b["accessory"]["value"]) for b in summary.blocks if "accessory" in b]
    assert len(values) == 40 and {v["a"] for v in values} == {"east-london"}
    assert [unquote(v["k"]) for v in values] == [r.key for r in sorted(chats, key=lambda r: (r.time, r.key))] + [
        r.key for r in sorted(calls, key=lambda r: (r.time, r.key))]


def test_slack_counts_the_text_of_blocks_not_their_structure_and_checks_each_button():
    line = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 150}, "accessory": {
        "type": "button", "text": {"type": "plain_text", "text": "Claim"}, "action_id": "claim", "value": "v" * 300}}
    message = [line] * 45  # 45 x 155 text characters; its JSON is over 20,000
    assert len(json.dumps(message)) > 20_000
    assert FakeSlack.message_problem("t", message) is None
    assert FakeSlack.message_problem("t", [{**line, "text": {"type": "mrkdwn", "text": "x" * 2500}}] * 5) == (
        "msg_blocks_too_long")
    too_long = {**line, "accessory": {**line["accessory"], "value": "v" * 2001}}
    assert FakeSlack.message_problem("t", [too_long]) == "invalid_blocks"
    mrkdwn_label = {**line, "accessory": {**line["accessory"], "text": {"type": "mrkdwn", "text": "Claim"}}}
    assert FakeSlack.message_problem("t", [mrkdwn_label]) == "invalid_blocks"


def test_a_backfill_summary_links_each_line_to_its_row_on_both_tabs(both):
    import io
    from datetime import UTC, datetime

    from lib.commands.cli import EXIT_OK, Context, main
    from tests.harness import move_cursor_elsewhere

    harness = both
    first = harness.clock().astimezone(LOCAL).date() - timedelta(days=2)
    for i in range(2):
        day = first + timedelta(days=i)
        nine = datetime(day.year, day.month, day.day, 9, 0)
        harness.stand.moneypenny.add_chats(sample_chats(2, start=nine, seed=30 + i))
        harness.stand.moneypenny.add_calls(sample_calls(2, nine.replace(tzinfo=LOCAL).astimezone(UTC), seed=40 + i))
    move_cursor_elsewhere(harness)
    out, err = io.StringIO(), io.StringIO()
    code = main(["backfill", "--from", str(first), "--to", str(first + timedelta(days=1)), "--notify"],
                Context(env=harness.env(), clock=harness.clock, out=out, err=err, sleep=lambda s: None, backoff=0.01))
    assert code == EXIT_OK, out.getvalue() + err.getvalue()
    [message] = harness.stand.slack.messages()
    listed = items(message)
    assert len(listed) == 8
    assert_links_name_their_rows(harness, listed)


def test_a_long_list_slack_refuses_is_posted_again_with_20_lines_that_fit_even_as_json(harness):
    harness.env_overrides["SLACK_MAX_LISTED"] = "40"
    heavy = {"name": "名前" * 30, "companyName": "会社" * 30}
    chats = sample_chats(30, (harness.clock() - timedelta(hours=2)).astimezone(LOCAL).replace(tzinfo=None), seed=50)
    harness.stand.moneypenny.add_chats([{**c, **heavy} for c in chats])
    harness.stand.slack.inject("chat.postMessage", Status(200, body={"ok": False, "error": "msg_blocks_too_long"}))
    report = harness.syncer().run()
    assert report.posted == 30 and report.pending == 0
    assert harness.stand.slack.count("chat.postMessage") == 2  # the 30 lines refused, then 20
    [message] = harness.stand.slack.messages()
    listed = items(message)
    assert len(listed) == 20 and "…and 10 more." in message["blocks"][-1]["elements"][0]["text"]
    assert len(json.dumps(message["blocks"])) <= 12_000
    assert_links_name_their_rows(harness, listed)


def test_a_tab_as_narrow_as_its_header_is_widened_for_the_two_columns(harness):
    # A tab the sync made before the sales columns: its grid is exactly A to N. Google's
    # values.update never widens a grid ("exceeds grid limits"), so the columns are added first.
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Chats",), cols=len(CHATS_HEADER))
    harness.stand.sheets.set_rows(harness.sheet_id, "Chats", [list(CHATS_HEADER)])
    harness.add_chats(2, seed=13)
    assert harness.syncer().run().appended == 2
    assert harness.rows()[0] == [*CHATS_HEADER, "Owner", "Claimed at"]
    assert harness.stand.sheets.grid_size(harness.sheet_id, "Chats")[1] == len(CHATS_HEADER) + 2
