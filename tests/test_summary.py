"""The Slack summary of a run: its counts, how many chats it lists by name, the late note, and
visitor text made inert (no mention, no link), within Slack's limits for ASCII text.

Slack's limits (platform facts): at most 50 blocks, a section's text at most 3,000 characters, a
header's at most 150, the blocks' text adding up to about 12,000 characters at most (as the Slack
stand-in counts it).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lib.destinations.slack.summary import build_summary, inert
from lib.sources.chats import parse_chat
from sandbox.standins.slack import FakeSlack
from tests.harness import UK

SHEET_URL = "https://docs.google.com/spreadsheets/d/1AbCdEfGh/edit"
START = datetime(2026, 11, 20, 9, 0)


def chats(n: int, **fields):
    """n chats a minute apart from 09:00 local time, with the given fields."""
    items = []
    for i in range(n):
        item = {"chatTime": (START + timedelta(minutes=i)).isoformat(timespec="milliseconds"),
                "name": f"Visitor {i}", "transcript": ["1: [Visitor] - [Visitor has started a chat.]",
                                                       f"2: [Visitor] - question {i}"]}
        item.update(fields)
        items.append(parse_chat(item, ZoneInfo(UK)))
    return items


def header(summary) -> str:
    return summary.blocks[0]["text"]["text"]


def closing(summary) -> str:
    return summary.blocks[-1]["elements"][0]["text"]


def listed_lines(summary) -> list[str]:
    return [line for b in summary.blocks if b["type"] == "section" for line in b["text"]["text"].split("\n")]


def mrkdwn(summary) -> str:
    return "\n".join(FakeSlack.mrkdwn_texts({"text": summary.text, "blocks": summary.blocks}))


def within_slack_limits(summary) -> None:
    assert len(summary.blocks) <= 50
    assert len(header(summary)) <= 150
    assert all(len(b["text"]["text"]) <= 3000 for b in summary.blocks if b["type"] == "section")
    assert FakeSlack.message_problem(summary.text, summary.blocks) is None


# -- counts ---------------------------------------------------------------------------------------


def test_one_chat_is_counted_in_the_singular_with_its_time():
    summary = build_summary(chats(1), sheet_url=SHEET_URL)
    assert header(summary) == "1 new chat · Fri 20 Nov 09:00"
    assert summary.total == summary.listed == 1
    assert summary.text == f"1 new chat from Moneypenny (Fri 20 Nov 09:00). Open the sheet: {SHEET_URL}"


def test_several_chats_are_counted_with_their_time_span():
    summary = build_summary(chats(3), sheet_url=SHEET_URL)
    assert header(summary) == "3 new chats · Fri 20 Nov 09:00–09:02"
    assert summary.total == summary.listed == 3
    assert summary.text.startswith("3 new chats from Moneypenny")


def test_chats_are_listed_in_chat_time_order_whatever_order_they_come_in():
    summary = build_summary(list(reversed(chats(4))), sheet_url=SHEET_URL)
    assert [line.split("*")[3] for line in listed_lines(summary)] == [f"Visitor {i}" for i in range(4)]


def test_each_line_shows_time_name_and_the_visitors_first_real_message():
    [chat] = chats(1, companyName="Acme")
    line = listed_lines(build_summary([chat], sheet_url=SHEET_URL))[0]
    assert line == f"*09:00* · *Visitor 0* · Acme — _question 0_ · `{chat.key[-8:]}`"


def test_a_chat_without_a_name_is_listed_as_no_name():
    assert "*(no name)*" in listed_lines(build_summary(chats(1, name=""), sheet_url=SHEET_URL))[0]


# -- max_listed -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n, max_listed, listed", [(30, 5, 5), (20, 20, 20), (3, 20, 3), (41, 40, 40), (2, 1, 1)])
def test_at_most_max_listed_chats_are_named_and_the_rest_are_and_n_more(n, max_listed, listed):
    summary = build_summary(chats(n), sheet_url=SHEET_URL, max_listed=max_listed)
    assert summary.total == n and summary.listed == listed
    assert len(listed_lines(summary)) == listed
    assert header(summary).startswith(f"{n} new chats")
    if n > listed:
        assert closing(summary) == f"…and {n - listed} more. <{SHEET_URL}|Open the sheet>"
    else:
        assert closing(summary) == f"<{SHEET_URL}|Open the sheet>"
    within_slack_limits(summary)


def test_long_ascii_lines_stay_inside_the_limits_and_every_chat_is_listed_or_counted():
    # Each field at its longest shown length, so that a line stays just under its own limit.
    many = chats(40, name="n" * 60, companyName="c" * 60, pageURL="https://example.com/" + "p" * 60,
                 transcript=["1: [Visitor] - " + "m" * 40])
    summary = build_summary(many, sheet_url=SHEET_URL, max_listed=40)
    within_slack_limits(summary)
    assert 0 < summary.listed <= 40 and len(listed_lines(summary)) == summary.listed
    if summary.listed < 40:
        assert closing(summary).startswith(f"…and {40 - summary.listed} more.")


# -- late note and title --------------------------------------------------------------------------


def test_late_chats_are_noted_in_the_singular_and_plural():
    assert "1 of these is late" in json.dumps(build_summary(chats(2), sheet_url=SHEET_URL, late=1).blocks)
    assert "2 of these are late" in json.dumps(build_summary(chats(2), sheet_url=SHEET_URL, late=2).blocks)
    assert "late" not in json.dumps(build_summary(chats(2), sheet_url=SHEET_URL).blocks)


def test_a_backfill_summary_has_its_own_title():
    assert header(build_summary(chats(6), sheet_url=SHEET_URL, title="backfilled chat")).startswith("6 backfilled chats")


# -- visitor text is inert ------------------------------------------------------------------------


@pytest.mark.parametrize("nasty, shown", [
    ("<!channel> call me", "&lt;!channel&gt; call me"),
    ("<!here|here>", "&lt;!here|here&gt;"),
    ("<@U123> hi", "&lt;@U123&gt; hi"),
    ("<#C0123>", "&lt;#C0123&gt;"),
    ("Tom & Jerry", "Tom &amp; Jerry"),
    ("`code` here", "ˋcodeˋ here"),
    ("line one\nline two", "line one line two"),
    ("see evil.example now", "see `evil.example` now"),
    ("mail ann@example.com", "mail `ann@example.com`"),
])
def test_inert_escapes_slacks_control_characters_and_codes_anything_linkable(nasty, shown):
    assert inert(nasty) == shown


@pytest.mark.parametrize("field", ["name", "companyName", "pageURL", "transcript"])
def test_no_visitor_field_can_mention_anyone_or_make_a_link(field):
    payload = "<!channel> <@U123> <http://evil.example|click> & www.evil.example"
    value = [f"1: [Visitor] - {payload}"] if field == "transcript" else payload
    summary = build_summary(chats(2, **{field: value}), sheet_url=SHEET_URL)
    live = FakeSlack.live_entities(mrkdwn(summary))
    assert live == [f"<{SHEET_URL}|Open the sheet>"]  # our own link, nothing of the visitor's
    assert "&lt;!channel&gt;" in mrkdwn(summary)
