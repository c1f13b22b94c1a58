"""Poison items: odd text, times at the edge of the calendar and chats of any size are delivered
or set aside in their own run, and never hold up the chats beside them."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from lib.destinations.slack.summary import build_summary
from lib.errors import InvalidItem
from lib.sources.chat_source import JOURNAL_ITEM_BYTES, journal_item, parse_journal_chat
from lib.sources.chats import chat_row, parse_chat, parse_chat_time
from lib.sync.options import RunOptions

UK = ZoneInfo("Europe/London")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def local_time(harness, minutes: int) -> str:
    return (harness.clock().astimezone(UK) - timedelta(minutes=minutes)).replace(tzinfo=None).isoformat()


def chat(harness, minutes: int, name: str, **fields) -> dict:
    return {
        "chatTime": local_time(harness, minutes),
        "name": name,
        "email": f"{name.split()[0].lower()}@example.com",
        "transcript": ["1: [Visitor] - [Visitor has started a chat.]", f"2: [Visitor] - Hello from {name}"],
        **fields,
    }


def slack_text(harness) -> str:
    return "\n".join(m.get("text", "") + json.dumps(m.get("blocks", []), ensure_ascii=False)
                     for m in harness.stand.slack.messages())


# -- text that cannot be encoded ----------------------------------------------------------------------


def test_a_chat_whose_text_holds_lone_surrogates_and_controls_is_delivered_with_its_neighbours(harness, store):
    odd = chat(harness, 20, "Sur\ud800rogate", companyName="Acme\x00\x85 Ltd", pageURL="https://x.example/\udfff",
               transcript=["1: [Visitor] - Hi \ud83d there\x07", "2: [Operator] - Hello\u200f"])
    harness.stand.moneypenny.add_chats([chat(harness, 30, "Ada Before"), odd, chat(harness, 10, "Bo After")])

    report = harness.syncer().run()

    assert report.appended == 3 and report.skipped_invalid == 0
    rows = harness.data_rows()
    assert [r[1] for r in rows] == ["Ada Before", "Sur\ufffdrogate", "Bo After"]
    assert rows[1][2] == "Acme Ltd" and rows[1][7].startswith("1: [Visitor] - Hi \ufffd there\n")
    assert not any(CONTROL.search(cell.replace("\n", "").replace("\t", "")) for row in rows for cell in row)
    assert "Sur\ufffdrogate" in slack_text(harness)
    json.dumps(report.as_dict()).encode("utf-8")  # the run report encodes too

    # Read again (a reconcile window): the same key, so nothing is written twice.
    harness.clock.advance(minutes=5)
    again = harness.syncer().run(mode="reconcile")
    assert again.fetched == 3 and again.new == 0 and len(harness.data_rows()) == 3


def test_items_that_are_not_objects_and_hold_lone_surrogates_are_quarantined(harness, store):
    harness.stand.moneypenny.add_chats(["bad \ud800 item", ["\udc00", {"k\ud800": 1}], chat(harness, 5, "Cy Good")])

    report = harness.syncer().run()

    assert report.skipped_invalid == 2 and report.appended == 1
    assert harness.open_store().quarantine_count() == 2


def test_text_is_made_safe_at_parse_time_and_the_key_stays_stable():
    item = {"chatTime": "2026-11-20T10:00:00", "name": " \x00Zoë\x9f \ud800\tX ", "email": "A@B.example\x1b",
            "transcript": "1: [Visitor] - line\x00 one\r\n2: [Visitor] - two\x0bthree"}
    chat = parse_chat(item, UK)
    assert chat.name == "Zoë \ufffd\tX" and chat.email == "A@B.example"
    assert chat.transcript == ("1: [Visitor] - line one", "2: [Visitor] - two", "three")
    # The key of the cleaned chat is the key of the chat with that clean text.
    clean = {**item, "name": "Zoë \ufffd\tX", "email": "A@B.example", "transcript": "1: [Visitor] - line one"}
    assert chat.key == parse_chat(clean, UK).key


def test_the_key_of_an_ordinary_chat_follows_the_documented_recipe():
    item = {"chatTime": "2026-11-20T13:02:09.8770000", "name": " Priya Patel ", "email": "Priya@Example.COM",
            "phone": "+44 (0)7700 900123", "entryURL": "https://example.com/?a=1",
            "transcript": ["  1: [Visitor] - [Visitor has started a chat.]  ", "2: [Visitor] - Hi"]}
    parts = ["v1", "2026-11-20T13:02:09.877000+00:00", "Priya Patel", "priya@example.com", "4407700900123",
             "https://example.com/?a=1", "1: [Visitor] - [Visitor has started a chat.]"]
    assert parse_chat(item, UK).key == hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


# -- times at the edge of the calendar ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
def test_a_time_that_overflows_utc_is_an_unreadable_item(value):
    with pytest.raises(InvalidItem, match="chatTime"):
        parse_chat_time(value, UK)


def test_a_time_that_fits_utc_but_not_chat_timezone_is_an_unreadable_item():
    with pytest.raises(InvalidItem, match="CHAT_TIMEZONE"):
        parse_chat_time("9999-12-31T23:00:00Z", ZoneInfo("Asia/Tokyo"))
    with pytest.raises(InvalidItem, match="chatTime"):
        parse_chat_time("9999-12-31T23:59:59", ZoneInfo("America/New_York"))  # local, so UTC overflows


def test_times_at_the_edge_of_the_calendar_are_quarantined_and_the_good_chat_goes_through(harness, store):
    harness.stand.moneypenny.add_chats([
        chat(harness, 5, "Di Good"),
        {**chat(harness, 1, "Late Edge"), "chatTime": "9999-12-31T23:59:59-05:00"},
        {**chat(harness, 1, "Early Edge"), "chatTime": "0001-01-01T00:00:00+01:00"},
    ])

    report = harness.syncer().run()

    assert report.appended == 1 and report.skipped_invalid == 2
    assert harness.open_store().quarantine_count() == 2
    assert [r[1] for r in harness.data_rows()] == ["Di Good"]


def test_an_unreadable_chat_dropped_from_quarantine_is_not_set_aside_again_by_later_reads_by_date(harness, store_kind):
    """A chat that does not read is set aside once: the daily reconcile and a window read meet
    it again (they read its day by date), and it stays dropped, so the runs stay healthy."""
    harness.add_chats(2)
    day = harness.clock().astimezone(UK).date()
    harness.stand.moneypenny.add_chats([{"chatTime": f"{day.isoformat()}T25:61:00", "name": "x", "transcript": ["hi"]}])
    store = harness.open_store()
    first = harness.syncer().run(options=RunOptions(daily_reconcile=True))
    assert first.skipped_invalid == 1 and store.quarantine_count() == 1
    store.quarantine_remove([i.id for i in store.quarantine_list()])  # the owner drops it, as status says
    harness.clock.advance(days=1)
    reconcile = harness.syncer().run(options=RunOptions(daily_reconcile=True))  # the next day's reconcile
    assert reconcile.skipped_invalid == 0 and store.quarantine_count() == 0 and reconcile.healthy
    window = harness.syncer().run(mode="window", start=day, end=day)
    assert window.skipped_invalid == 0 and store.quarantine_count() == 0 and window.healthy
    assert len(harness.sheet_keys()) == 2


def test_a_year_before_1000_sorts_as_text_and_a_lower_case_z_marks_utc(harness):
    harness.stand.moneypenny.add_chats([
        {**chat(harness, 1, "Old Chat"), "chatTime": "0999-06-01T12:00:00z"},
        chat(harness, 5, "New Chat"),
    ])

    report = harness.syncer().run()

    assert report.appended == 2 and report.skipped_invalid == 0
    times = [r[0] for r in harness.data_rows()]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", t) for t in times)
    assert times[0].startswith("0999-06-01 ") and sorted(times) == times
    assert parse_chat_time("2026-11-20T10:00:00z", UK) == parse_chat_time("2026-11-20T10:00:00Z", UK)


# -- the production store's limits -----------------------------------------------------------------------


def big_chat(harness, minutes: int, name: str, transcript_bytes: int) -> dict:
    """A chat whose first visitor message comes after more than a sheet cell of operator lines."""
    filler = [f"{i}: [Operator] - " + "lorem ipsum dolor sit amet " * 20 for i in range(3, 3 + transcript_bytes // 560)]
    return chat(harness, minutes, name, transcript=[
        "1: [Visitor] - [Visitor has started a chat.]",
        *filler,
        f"{len(filler) + 3}: [Visitor] - The question of {name}, at last",
    ], companyName="C" * 60_000)


def stored_chat_bytes(harness, store_kind) -> list[int]:
    store = harness.open_store()
    if store_kind == "sqlite":
        with sqlite3.connect(harness.tmp / "state.sqlite3") as conn:
            return [len(row[0].encode()) for row in conn.execute("SELECT chat FROM journal")]
    return [len(s.to_dict()["chat_json"].encode()) for s in store._journal.stream()]


def test_a_chat_of_5_mb_is_journaled_and_delivered_as_the_full_chat_would_be(harness, store_kind):
    full = big_chat(harness, 5, "Huge Transcript", 5_000_000)
    assert len(json.dumps(full)) > 5_000_000
    harness.stand.moneypenny.add_chats([full, chat(harness, 1, "Small Beside")])

    report = harness.syncer().run()

    assert report.appended == 2 and report.posted == 2
    expected = parse_chat(full, harness.settings().chat_timezone)
    assert harness.data_rows()[0] == chat_row(expected)  # cells cut as the sheet cuts them; key of the full chat
    assert "The question of Huge Transcript, at last" in slack_text(harness)
    assert max(stored_chat_bytes(harness, store_kind)) <= JOURNAL_ITEM_BYTES


def test_500_chats_of_25_kb_go_in_one_run(harness, store):
    items = [big_chat(harness, 600 - i, f"Chat {i:03}", 25_000) for i in range(500)]
    for item in items:
        item.pop("companyName")
    assert sum(len(json.dumps(i)) for i in items) > 12_000_000
    harness.stand.moneypenny.add_chats(items)

    report = harness.syncer().run()

    assert report.new == 500 and report.appended == 500
    assert sorted(harness.sheet_keys()) == sorted(parse_chat(i, UK).key for i in items)


def test_a_huge_item_that_is_not_an_object_is_quarantined(harness, store):
    harness.stand.moneypenny.add_chats([["x" * 3_000_000], chat(harness, 1, "Ed Good")])

    report = harness.syncer().run()

    assert report.skipped_invalid == 1 and report.appended == 1
    assert harness.open_store().quarantine_count() == 1


def test_the_cut_journal_item_gives_the_row_and_summary_of_the_full_chat():
    lines = ["  1: [Operator] - Welcome  ", "2: [Operator] - " + "é" * 70_000, "\u2028", "3: [Visitor]  -  Real   question ",
             "4: [Visitor] - " + "\U0001F600" * 30_000]
    full = {"chatTime": "2026-11-20T10:00:00.1234567", "name": "N" * 51_000, "companyName": " Co ",
            "transcript": "\n".join(lines), "variables": [{"name": "a", "value": "b" * 60_000}], "tags": ["t"],
            "utm_Source": "s", "other": ["x" * 500_000]}
    chat = parse_chat(full, UK)
    stored = journal_item(chat, max_bytes=400_000)
    assert len(json.dumps(stored, ensure_ascii=False).encode()) <= 400_000
    again = parse_journal_chat(json.loads(json.dumps(stored)), UK)
    assert chat_row(again) == chat_row(chat)
    summary = lambda c: build_summary([c], sheet_url="https://sheet.example").blocks  # noqa: E731
    assert summary(again) == summary(chat)
    # A chat that fits is kept exactly as Moneypenny sent it.
    small = parse_chat({"chatTime": "2026-11-20T10:00:00", "name": "Fits"}, UK)
    assert journal_item(small) is small.raw


# -- call messages ------------------------------------------------------------------------------------


def call(harness, minutes: int, caller: str, **fields) -> dict:
    return {"date": (harness.clock() - timedelta(minutes=minutes)).isoformat(), "caller": caller,
            "callerNumber": "0113 496 0000", "actionTaken": "Email", "employee": "Ann Employee",
            "message": f"Please call {caller} back", "callId": f"id-{caller.split()[0]}", **fields}


def call_rows(harness) -> list[list[str]]:
    return harness.stand.sheets.rows(harness.sheet_id, "Calls")[1:]


def test_odd_and_huge_call_messages_are_delivered_with_their_neighbours_and_read_again_safely(harness, store_kind):
    from lib.sources.calls import JOURNAL_ITEM_BYTES as CALL_ITEM_BYTES
    from lib.sources.calls import parse_call

    harness.env_overrides["MONEYPENNY_SOURCES"] = "calls"
    odd = call(harness, 20, "Sur\ud800rogate Caller", callerCompany="Acme\x00\x85 Ltd", message="Hi \ud83d there\x07",
               callId=None)
    huge = call(harness, 15, "Huge Message", message="電話してください。" * 400_000)
    assert len(json.dumps(huge)) > 5_000_000
    harness.stand.moneypenny.add_calls([call(harness, 30, "Ada Before"), odd, huge, call(harness, 10, "Bo After")])

    report = harness.syncer().run()

    assert report.appended == 4 and report.skipped_invalid == 0
    rows = call_rows(harness)
    assert [r[1] for r in rows] == ["Ada Before", "Sur\ufffdrogate Caller", "Huge Message", "Bo After"]
    assert rows[1][2] == "Acme Ltd" and rows[1][6] == "Hi \ufffd there"
    assert rows[2] == parse_call(huge, harness.settings().chat_timezone).row()  # the full message's row, cut
    assert not any(CONTROL.search(cell.replace("\n", "")) for row in rows for cell in row)
    if store_kind == "sqlite":
        with sqlite3.connect(harness.tmp / "state.sqlite3") as conn:
            sizes = [len(row[0].encode()) for row in conn.execute("SELECT chat FROM journal")]
    else:
        sizes = [len(s.to_dict()["chat_json"].encode()) for s in harness.open_store()._journal.stream()]
    assert max(sizes) <= CALL_ITEM_BYTES
    harness.clock.advance(minutes=5)
    again = harness.syncer().run()
    assert again.fetched == 4 and again.new == 0 and len(call_rows(harness)) == 4
