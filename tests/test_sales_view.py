"""The Slack summary a sales team reads: each "Open the … tab" link opens its own tab (`#gid=`,
the tab's sheetId from the spreadsheet's metadata, read once), and each line carries its day
whenever the summary spans more than one local day."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lib.destinations.slack.combined import SummaryPart, build_combined
from lib.destinations.slack.summary import build_summary
from lib.errors import RunFailed
from lib.sources.calls import parse_call
from lib.sources.chats import parse_chat
from sandbox.standins.samples import sample_calls
from sandbox.standins.server import Status
from tests.harness import by_header

UK = ZoneInfo("Europe/London")
LINK = re.compile(r"<([^|>]+)\|Open the (?:(\w+) tab|sheet)>")


def tab_ids(harness) -> dict[str, int]:
    """Each tab's sheetId, as the Sheets stand-in's spreadsheets.get serves it."""
    import requests

    meta = requests.get(f"{harness.stand.sheets.url}/v4/spreadsheets/{harness.sheet_id}", timeout=10).json()
    return {s["properties"]["title"]: s["properties"]["sheetId"] for s in meta["sheets"]}


def links(message: dict) -> dict[str, str]:
    """The message's links by tab name ("sheet" for the one-source "Open the sheet")."""
    found = {}
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            for url, tab in LINK.findall(element.get("text", "")):
                found[tab or "sheet"] = url
    return found


def add_calls(harness, n: int, seed: int = 3) -> None:
    harness.stand.moneypenny.add_calls(sample_calls(n, harness.clock() - timedelta(minutes=30), seed=seed))


@pytest.fixture
def both(harness):
    harness.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    return harness


def test_each_tab_link_opens_its_own_tab_by_its_sheet_id(both):
    harness = both
    # The tabs exist before the first run: their ids can only come from the metadata.
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Sheet1", "Calls", "Chats"))
    ids = tab_ids(harness)
    harness.add_chats(3, start=(harness.clock() - timedelta(hours=1)).astimezone(UK).replace(tzinfo=None))
    add_calls(harness, 2)
    harness.syncer().run()
    [message] = harness.stand.slack.messages()
    found = links(message)
    sheet_url = harness.settings().sheet_url
    assert found == {"Chats": f"{sheet_url}#gid={ids['Chats']}", "Calls": f"{sheet_url}#gid={ids['Calls']}"}
    assert ids["Chats"] != ids["Calls"]


def test_the_tab_ids_are_read_once_then_kept_by_a_warm_instance(both):
    harness = both
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Sheet1", "Calls", "Chats"))
    syncer = harness.syncer()  # one Syncer: a warm instance's runs
    for seed in range(3):
        harness.add_chats(1, seed=seed, start=(harness.clock() - timedelta(minutes=2)).astimezone(UK).replace(
            tzinfo=None))
        add_calls(harness, 1, seed=10 + seed)
        syncer.run()
        harness.clock.advance(minutes=5)
    messages = harness.stand.slack.messages()
    assert len(messages) == 3
    assert harness.stand.sheets.count("metadata") == 1
    assert all(links(m) == links(messages[0]) for m in messages)


def test_the_one_source_link_opens_the_chats_tab_it_created(harness):
    harness.add_chats(2)
    harness.syncer().run()
    [message] = harness.stand.slack.messages()
    assert links(message) == {"sheet": f"{harness.settings().sheet_url}#gid={tab_ids(harness)['Chats']}"}


# -- dates on the lines ---------------------------------------------------------------------------


def chat_at(moment: datetime, i: int):
    return parse_chat({"chatTime": moment.isoformat(timespec="milliseconds"), "name": f"Visitor {i}",
                       "transcript": ["1: [Visitor] - [Visitor has started a chat.]", f"2: [Visitor] - question {i}"]},
                      UK)


def call_at(moment: datetime, i: int):
    return parse_call({"date": moment.astimezone(UTC).isoformat(), "caller": f"Caller {i}", "callerCompany": "",
                       "callerNumber": "07700 900123", "actionTaken": "Email", "employee": "Ann",
                       "message": f"please call back {i}", "callId": f"C{i}"}, UK)


def lines_of(summary) -> list[str]:
    return [line for b in summary.blocks if b["type"] == "section" for line in b["text"]["text"].split("\n")
            if line.startswith("*") and " — " in line]


def day_and_time(moment: datetime) -> str:
    local = moment.astimezone(UK)
    return f"*{local:%a} {local.day} {local:%b} {local:%H:%M}*"


def test_lines_of_a_summary_over_several_days_carry_their_date():
    # A backfill's summary: chats over 40 days (UK local time, across the clock change).
    chats = [chat_at(datetime(2026, 10, 1, 9, 32) + timedelta(days=4 * i, minutes=7 * i), i) for i in range(10)]
    summary = build_summary(chats, sheet_url="https://example.invalid/s", max_listed=20)
    lines = lines_of(summary)
    assert len(lines) == 10
    for chat, line in zip(chats, lines):
        assert line.startswith(day_and_time(chat.time)), line


def test_lines_of_a_one_day_summary_show_the_time_only():
    chats = [chat_at(datetime(2026, 12, 3, 9, 32) + timedelta(minutes=9 * i), i) for i in range(4)]
    lines = lines_of(build_summary(chats, sheet_url="https://example.invalid/s"))
    assert [line.split("*")[1] for line in lines] == [f"{c.time:%H:%M}" for c in chats]


def test_a_combined_summary_dates_every_part_when_the_whole_spans_two_days():
    # The chats all fall on one day, the calls on the next: every line is dated all the same.
    chats = [chat_at(datetime(2026, 12, 3, 16, 0) + timedelta(minutes=i), i) for i in range(2)]
    calls = [call_at(datetime(2026, 12, 4, 9, 0, tzinfo=UK) + timedelta(minutes=i), i) for i in range(2)]
    summary = build_combined([SummaryPart(chats, "new chat", "Chats"), SummaryPart(calls, "new call", "Calls")],
                             sheet_url="https://example.invalid/s")
    lines = lines_of(summary)
    assert len(lines) == 4
    for record, line in zip([*chats, *calls], lines):
        assert line.startswith(day_and_time(record.time)), line


def test_a_run_that_delivers_chats_of_two_days_dates_its_lines(harness):
    # Slack was down past midnight: the next run's summary holds yesterday's and today's chats.
    yesterday = (harness.clock() - timedelta(days=1)).astimezone(UK).replace(tzinfo=None, hour=17, minute=40)
    harness.add_chats(2, start=yesterday)
    harness.stand.slack.inject("chat.postMessage", Status(500), times=None)
    with pytest.raises(RunFailed):
        harness.syncer().run()
    harness.stand.slack.clear_faults()
    harness.clock.advance(minutes=5)
    harness.add_chats(1, seed=9, start=harness.clock().astimezone(UK).replace(tzinfo=None) - timedelta(minutes=3))
    harness.syncer().run()
    [message] = harness.stand.slack.messages()
    lines = [line for b in message["blocks"] if b["type"] == "section" for line in b["text"]["text"].split("\n")
             if " — " in line]
    assert len(lines) == 3
    stamps = [re.match(r"\*(\w{3}) (\d{1,2}) (\w{3}) (\d\d:\d\d)\*", line) for line in lines]
    assert all(stamps), lines
    today = harness.clock().astimezone(UK)
    assert [int(m.group(2)) for m in stamps if m] == [yesterday.day, yesterday.day, today.day]


# -- the demo's samples and its table -------------------------------------------------------------


def test_the_samples_are_one_businesss_chats_and_calls_each_chat_opening_differently():
    from urllib.parse import urlsplit

    from lib.sources.chats import parse_chat
    from sandbox.standins.samples import BUSINESS, sample_chats

    start = datetime(2026, 12, 3, 9, 0)
    items = sample_chats(12, start, seed=7)
    chats = [parse_chat(item, UK) for item in items]
    assert len({urlsplit(c.page_url).hostname for c in chats}) == 1  # one website
    greetings = [line for item in items for line in item["transcript"][1:2]]
    assert all(BUSINESS in line for line in greetings)  # the agent answers for that business
    firsts = [c.first_visitor_message for c in chats]
    assert all(firsts) and len(set(firsts)) == len(firsts)  # each chat opens with its own question
    callers = sample_calls(12, datetime(2026, 12, 3, 9, 0, tzinfo=UTC), seed=7)
    # Callers are the business's customers, never another business of the samples.
    assert all(c["callerCompany"] in ("", None) or BUSINESS not in c["callerCompany"] for c in callers)
    assert len({c["message"] for c in callers}) > 3


def test_the_demos_table_shows_each_chats_first_visitor_message_not_the_pre_chat_line(harness):
    from lib.sources.chats import first_visitor_message
    from sandbox.demo import _table, with_first_message

    harness.add_chats(6, seed=7)
    harness.syncer().run()
    rows = harness.stand.sheets.rows(harness.sheet_id, "Chats")
    table = _table(with_first_message(rows))
    transcripts = [r["Transcript"] for r in by_header(rows)]
    assert len(transcripts) == 6
    for transcript in transcripts:
        first = first_visitor_message(transcript.split("\n"))
        assert first and first[:40] in table
    assert "Visitor has started a chat" not in table and "Pre-Chat Form" not in table
