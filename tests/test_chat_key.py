"""The Chat key recipe, as docs/guarantees.md documents it, pinned to fixed values.

The key is how the sync recognises a chat already in the sheet: if the recipe drifted, every
chat would be written again. So the expected keys here are computed by hand from the documented
wording with hashlib, never through lib's code, and its own example is checked too.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.sources.chats import chat_key, parse_chat, parse_chat_time

UK = ZoneInfo("Europe/London")
GUARANTEES = Path(__file__).resolve().parent.parent / "docs" / "guarantees.md"  # the key recipes

# The sample chat of Moneypenny's integration guide (chatTime in UK time, no offset).
GUIDE_CHAT = {
    "chatTime": "2024-02-06T13:02:09.877",
    "name": "A Gentleman",
    "companyName": "",
    "email": "someone@example.com",
    "phone": "0123456789",
    "pageURL": "https://a-gentleman.co.uk",
    "entryURL": "https://a-gentleman.co.uk",
    "transcript": [
        "1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: N/A]",
        "2: [Visitor] - Test",
    ],
    "variables": [{"name": "name", "value": "A Gentleman"}],
    "tags": [],
    "utM_Source": "",
    "utM_Medium": "",
    "utM_Term": "",
}
# docs/guarantees.md's example key of that chat.
GUIDE_KEY = "ee6cc594d3d8c3749117a2b5dcc12a03"


def by_hand(*parts: str) -> str:
    """The documented recipe: the first 32 hex digits of sha256 over "v1" and the parts, NUL-joined."""
    return hashlib.sha256("\0".join(("v1",) + parts).encode("utf-8")).hexdigest()[:32]


def key_of(item: dict, tz: ZoneInfo = UK) -> str:
    chat = parse_chat(item, tz)
    # The record's key and the stand-alone function agree.
    assert chat_key(item, parse_chat_time(item["chatTime"], tz)) == chat.key
    return chat.key


def with_fields(**changes) -> dict:
    return {**GUIDE_CHAT, **changes}


def test_the_guides_sample_chat_has_the_documented_example_key():
    expected = by_hand(
        "2024-02-06T13:02:09.877000+00:00",  # February: London is on GMT
        "A Gentleman",
        "someone@example.com",
        "0123456789",
        "https://a-gentleman.co.uk",
        "1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: N/A]",
    )
    assert expected == GUIDE_KEY
    assert key_of(GUIDE_CHAT) == GUIDE_KEY
    assert re.search(rf"`{GUIDE_KEY}`", GUARANTEES.read_text(encoding="utf-8")), "docs/guarantees.md states this example key"


def test_summer_time_is_written_with_its_utc_offset():
    item = with_fields(chatTime="2024-07-06T13:02:09.877")
    assert key_of(item) == by_hand(
        "2024-07-06T13:02:09.877000+01:00",
        "A Gentleman", "someone@example.com", "0123456789", "https://a-gentleman.co.uk",
        GUIDE_CHAT["transcript"][0],
    )


def test_a_naive_chat_time_is_read_in_the_configured_zone():
    # The same wall-clock time in another CHAT_TIMEZONE is another instant, so another key.
    item = with_fields(chatTime="2024-02-06T13:02:09.877")
    assert key_of(item, ZoneInfo("America/New_York")) == by_hand(
        "2024-02-06T13:02:09.877000-05:00",
        "A Gentleman", "someone@example.com", "0123456789", "https://a-gentleman.co.uk",
        GUIDE_CHAT["transcript"][0],
    )


@pytest.mark.parametrize("written", [
    "2024-02-06T13:02:09.877",
    "2024-02-06T13:02:09.877000",
    "2024-02-06T13:02:09.8770000",  # seven fractional digits, as .NET writes them
    "2024-02-06T13:02:09.87700009",
    " 2024-02-06T13:02:09.877 ",
    "2024-02-06T13:02:09.877Z",  # the same instant in UTC (London is on GMT in February)
    "2024-02-06T14:02:09.877+01:00",
])
def test_every_spelling_of_the_same_instant_gives_the_same_key(written):
    assert key_of(with_fields(chatTime=written)) == GUIDE_KEY


@pytest.mark.parametrize("field, value", [
    ("name", "  A Gentleman\t"),
    ("email", "SomeOne@Example.COM"),
    ("email", " someone@example.com "),
    ("phone", "01234 567 89"),
    ("phone", "(0123) 456-789"),
    ("entryURL", " https://a-gentleman.co.uk\n"),
    ("transcript", ["  1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: N/A]  ", "2: [Visitor] - Test"]),
])
def test_normalised_parts_give_the_same_key(field, value):
    assert key_of(with_fields(**{field: value})) == GUIDE_KEY


def test_more_transcript_lines_keep_the_key():
    longer = GUIDE_CHAT["transcript"] + ["3: [Agent] - Hello, how can I help?", "4: [Visitor] - A quote please"]
    assert key_of(with_fields(transcript=longer)) == GUIDE_KEY
    assert key_of(with_fields(transcript=GUIDE_CHAT["transcript"][:1])) == GUIDE_KEY


@pytest.mark.parametrize("field, value", [
    ("companyName", "Gentlemen Ltd"),
    ("pageURL", "https://a-gentleman.co.uk/pricing"),
    ("variables", [{"name": "budget", "value": "1000"}]),
    ("tags", ["sales"]),
    ("utM_Source", "newsletter"),
])
def test_fields_outside_the_recipe_do_not_change_the_key(field, value):
    assert key_of(with_fields(**{field: value})) == GUIDE_KEY


@pytest.mark.parametrize("field, value", [
    ("chatTime", "2024-02-06T13:02:09.878"),
    ("name", "A Lady"),
    ("email", "other@example.com"),
    ("phone", "0123456780"),
    ("entryURL", "https://a-gentleman.co.uk/other"),
    ("transcript", ["1: [Visitor] - Hello"]),
])
def test_each_part_of_the_recipe_changes_the_key(field, value):
    assert key_of(with_fields(**{field: value})) != GUIDE_KEY


def test_parts_are_separated_so_text_moved_between_them_changes_the_key():
    a = with_fields(name="A Gentleman", email="x@example.com")
    b = with_fields(name="A Gentlemanx", email="@example.com")
    assert key_of(a) != key_of(b)


def test_missing_and_null_parts_are_empty_text():
    bare = {"chatTime": "2024-02-06T13:02:09.877"}
    expected = by_hand("2024-02-06T13:02:09.877000+00:00", "", "", "", "", "")
    assert key_of(bare) == expected
    nulls = {**bare, "name": None, "email": None, "phone": None, "entryURL": None, "transcript": None}
    assert key_of(nulls) == expected
    assert key_of({**bare, "transcript": []}) == expected


def test_a_phone_without_digits_is_empty_and_non_ascii_text_is_hashed_as_utf8():
    item = {"chatTime": "2024-02-06T13:02:09.877", "name": "Zoë 王", "phone": "n/a",
            "transcript": ["1: [Visitor] - こんにちは 👋"]}
    assert key_of(item) == by_hand("2024-02-06T13:02:09.877000+00:00", "Zoë 王", "", "", "", "1: [Visitor] - こんにちは 👋")


def test_the_key_is_32_lower_case_hex_digits():
    assert re.fullmatch(r"[0-9a-f]{32}", key_of(GUIDE_CHAT))
    assert parse_chat_time(GUIDE_CHAT["chatTime"], UK) == datetime(2024, 2, 6, 13, 2, 9, 877000, tzinfo=UK)


# -- the normalisations, for any text -------------------------------------------------------------

ASCII = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30)
SPACE = st.text(alphabet=" \t\r\n", max_size=3)


@settings(max_examples=100, deadline=None)
@given(name=ASCII, before=SPACE, after=SPACE)
def test_surrounding_whitespace_never_changes_the_key(name, before, after):
    assert key_of(with_fields(name=before + name + after)) == key_of(with_fields(name=name))


@settings(max_examples=100, deadline=None)
@given(email=ASCII)
def test_the_emails_letter_case_never_changes_the_key(email):
    assert key_of(with_fields(email=email.upper())) == key_of(with_fields(email=email.lower()))


@settings(max_examples=100, deadline=None)
@given(digits=st.text(alphabet="0123456789", max_size=15), noise=st.lists(st.text(alphabet=" -()+./x", max_size=2)))
def test_only_the_phones_digits_count(digits, noise):
    mixed = "".join(d + (noise[i] if i < len(noise) else "") for i, d in enumerate(digits))
    assert key_of(with_fields(phone=mixed)) == key_of(with_fields(phone=digits))
    assert key_of(with_fields(phone=digits)) == by_hand(
        "2024-02-06T13:02:09.877000+00:00", "A Gentleman", "someone@example.com", digits,
        "https://a-gentleman.co.uk", GUIDE_CHAT["transcript"][0],
    )
