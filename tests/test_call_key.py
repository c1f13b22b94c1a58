"""Call messages read from Moneypenny's answer: the key recipe (pinned to values computed by hand
from docs/guarantees.md's wording), the rejections that name their field, and text made safe."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.errors import InvalidItem
from lib.sources.calls import CALLS, HEADER, parse_batch, parse_call
from lib.sources.chat_source import CHATS

UK = ZoneInfo("Europe/London")
GUARANTEES = Path(__file__).resolve().parent.parent / "docs" / "guarantees.md"  # the key recipes

# The sample message of Moneypenny's guide.
GUIDE_CALL = {
    "date": "2024-02-10T04:12:39.793+00:00",
    "caller": "A Person",
    "callerCompany": "",
    "callerNumber": "0123456789",
    "actionTaken": "SMS",
    "employee": "Ann Employee",
    "message": "This is a very important message",
    "callId": "M3VZkR",
}
NO_ID = {k: v for k, v in GUIDE_CALL.items() if k != "callId"}


def by_hand(*parts: str) -> str:
    """The documented content key: "call:#" and 32 hex digits of sha256 over "v1" and the parts."""
    return "call:#" + hashlib.sha256("\0".join(("v1",) + parts).encode("utf-8")).hexdigest()[:32]


def key_of(item: dict, tz: ZoneInfo = UK) -> str:
    return parse_call(item, tz).key


def test_a_message_with_a_call_id_is_keyed_by_it():
    assert key_of(GUIDE_CALL) == "call:M3VZkR"
    assert key_of({**GUIDE_CALL, "callId": "  M3VZkR\n"}) == "call:M3VZkR"
    assert key_of({**GUIDE_CALL, "callId": 4711}) == "call:4711"


def test_a_message_without_a_call_id_gets_the_documented_content_key():
    expected = by_hand("2024-02-10T04:12:39.793000+00:00", "A Person", "0123456789", "This is a very important message")
    assert key_of(NO_ID) == expected
    assert key_of({**NO_ID, "callId": None}) == expected
    assert key_of({**NO_ID, "callId": "  "}) == expected
    assert f"`{expected}`" in GUARANTEES.read_text(encoding="utf-8"), "docs/guarantees.md states this example key"


@pytest.mark.parametrize("written", [
    "2024-02-10T04:12:39.793+00:00",
    "2024-02-10T04:12:39.7930000Z",
    "2024-02-10T05:12:39.793+01:00",
    "2024-02-10T04:12:39.793",  # no offset: UTC
    " 2024-02-10t04:12:39.793z ".replace("t", "T"),
])
def test_every_spelling_of_the_same_instant_gives_the_same_content_key(written):
    assert key_of({**NO_ID, "date": written}) == key_of(NO_ID)


@pytest.mark.parametrize("field, value", [
    ("callerNumber", "01234 567-89"),
    ("caller", "  A Person\t"),
    ("message", "This is a very important message\nSecond line added later"),
    ("actionTaken", "Email"),
    ("employee", "Someone Else"),
    ("callerCompany", "Acme"),
])
def test_fields_outside_the_recipe_or_normalised_keep_the_content_key(field, value):
    assert key_of({**NO_ID, field: value}) == key_of(NO_ID)


@pytest.mark.parametrize("field, value", [
    ("date", "2024-02-10T04:12:39.794+00:00"),
    ("caller", "Another Person"),
    ("callerNumber", "0123456780"),
    ("message", "Another message"),
])
def test_each_part_of_the_recipe_changes_the_content_key(field, value):
    assert key_of({**NO_ID, field: value}) != key_of(NO_ID)


def test_call_keys_never_look_like_chat_keys():
    chat_key = re.compile(r"[0-9a-f]{32}")
    assert not chat_key.fullmatch(key_of(GUIDE_CALL))
    assert not chat_key.fullmatch(key_of(NO_ID))
    # An id that looks like a content key is not taken as one: another message keeps its own key.
    assert key_of({**GUIDE_CALL, "caller": "Other", "callId": key_of(NO_ID)[len("call:"):]}) != key_of(NO_ID)


def test_the_row_follows_the_calls_tab_header_in_local_time():
    call = parse_call({**GUIDE_CALL, "date": "2024-07-10T04:12:39.793+00:00"}, UK)
    row = dict(zip(HEADER, call.row()))
    assert row == {
        "Call time": "2024-07-10 05:12:39",  # London summer time
        "Caller": "A Person", "Company": "", "Number": "0123456789", "Action taken": "SMS",
        "Taken by": "Ann Employee", "Message": "This is a very important message", "Call id": "M3VZkR",
    }
    assert dict(zip(HEADER, parse_call(NO_ID, UK).row()))["Call id"] == key_of(NO_ID)[len("call:"):]


@pytest.mark.parametrize("item, reason", [
    ([GUIDE_CALL], "item is a JSON list, not an object"),
    ("text", "item is a JSON str, not an object"),
    ({**GUIDE_CALL, "date": None}, "date is missing"),
    ({k: v for k, v in GUIDE_CALL.items() if k != "date"}, "date is missing"),
    ({**GUIDE_CALL, "date": 1707538359}, "date is not a string"),
    ({**GUIDE_CALL, "date": "yesterday"}, "date is not an ISO 8601 date-time"),
    ({**GUIDE_CALL, "date": "9999-12-31T23:59:59-05:00"}, "date is outside the years 1 to 9999"),
    ({**GUIDE_CALL, "caller": {"name": "x"}}, "caller is a JSON object, not text"),
    ({**GUIDE_CALL, "message": ["a", "b"]}, "message is a JSON array, not text"),
    ({**GUIDE_CALL, "callId": {"id": 1}}, "callId is a JSON object, not text"),
    ({**GUIDE_CALL, "actionTaken": True}, "actionTaken is a JSON boolean, not text"),
])
def test_an_unreadable_message_is_rejected_naming_its_field(item, reason):
    with pytest.raises(InvalidItem) as exc:
        parse_call(item, UK)
    assert str(exc.value).startswith(reason)


def test_a_batch_keeps_the_readable_messages_in_time_order_once_each():
    later = {**GUIDE_CALL, "date": "2024-02-10T09:00:00+00:00", "callId": "B"}
    calls, rejected = parse_batch([later, GUIDE_CALL, "odd", GUIDE_CALL, {**GUIDE_CALL, "date": ""}], UK)
    assert [c.key for c in calls] == ["call:M3VZkR", "call:B"]
    assert [(r.index, r.reason) for r in rejected] == [(2, "item is a JSON str, not an object"), (4, "date is missing")]


def test_lone_surrogates_and_controls_are_made_safe_in_row_and_key():
    hostile = {**NO_ID, "caller": "A\x00 Per\ud800son\x85", "message": "Hi\x1b[31m there"}
    call = parse_call(hostile, UK)
    assert call.caller == "A Per\ufffdson"
    assert call.message == "Hi[31m there"
    assert call.key == by_hand("2024-02-10T04:12:39.793000+00:00", "A Per\ufffdson", "0123456789", "Hi[31m there")
    assert all(isinstance(c.encode("utf-8"), bytes) for c in call.row())


def test_the_summary_line_is_inert_and_names_the_action():
    call = parse_call({**GUIDE_CALL, "caller": "<!channel> *boss*", "message": "see www.evil.example now"}, UK)
    line = call.summary_line(400)
    assert "<!channel>" not in line and "&lt;!channel&gt;" in line
    assert "`www.evil.example`" in line
    assert line.startswith("*04:12*") and line.endswith("(SMS)")


def test_a_huge_message_is_journaled_cut_and_reads_back_with_its_key_and_row():
    big = {**GUIDE_CALL, "message": "é" * 1_200_000}
    call = parse_call(big, UK)
    item = CALLS.journal_item(call)
    assert item is not big
    back = CALLS.from_journal(item, UK)
    assert back.key == call.key and back.row() == call.row()
    no_id = CALLS.journal_item(parse_call({**NO_ID, "message": "x" * 1_000_000}, UK))
    assert CALLS.from_journal(no_id, UK).key == key_of({**NO_ID, "message": "x" * 1_000_000})


def test_a_chat_item_is_not_a_readable_call_and_a_call_not_a_chat():
    _, rejected = CHATS.parse_batch([GUIDE_CALL], UK)
    assert [r.reason for r in rejected] == ["chatTime is missing"]
    _, rejected = CALLS.parse_batch([{"chatTime": "2024-02-06T13:02:09.877"}], UK)
    assert [r.reason for r in rejected] == ["date is missing"]


TEXT = st.text(max_size=40)


@settings(max_examples=150, deadline=None)
@given(caller=TEXT, number=TEXT, message=TEXT, company=TEXT, call_id=st.one_of(st.none(), TEXT))
def test_any_text_reads_the_same_twice_and_gives_a_utf8_row(caller, number, message, company, call_id):
    item = {**NO_ID, "caller": caller, "callerNumber": number, "message": message, "callerCompany": company,
            "callId": call_id}
    first, again = parse_call(item, UK), parse_call(dict(item), UK)
    assert first.key == again.key and first.key.startswith("call:")
    for cell in first.row():
        cell.encode("utf-8")
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", cell)
    journal = CALLS.from_journal(CALLS.journal_item(first), UK)
    assert journal.key == first.key and journal.time == first.time == datetime.fromisoformat(NO_ID["date"])
