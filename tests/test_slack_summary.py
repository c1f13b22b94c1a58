"""The Slack summary: it fits Slack's limits whatever script the visitors write in, a refused
summary is replaced at once by a short one, and visitor text cannot reorder or format a line."""

from __future__ import annotations

import json
import random
from zoneinfo import ZoneInfo

import pytest

from lib.destinations.slack.summary import build_summary
from lib.sources.chats import chat_line, parse_chat
from sandbox.standins.server import Status
from sandbox.standins.slack import FakeSlack

UK = ZoneInfo("Europe/London")
SHEET_URL = "https://docs.google.com/spreadsheets/d/1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg/edit"

_MARKS = "\u0301\u0302\u0303\u0308\u0323\u0324\u0325\u0330\u0331\u0332\u0333\u0334"
# Long visitor text in scripts whose escaped JSON is many times their length in code points.
SCRIPTS = {
    "chinese": ("王小明先生", "北京未来科技有限公司上海分公司", "你好，我想了解一下你们的产品价格和交货时间，" * 8),
    # Vietnamese stacks two marks on a letter; "Zalgo" text stacks many.
    "combining accents": ("Nguye\u0302\u0303n Z" + f"o{_MARKS}e{_MARKS} " * 6,
                          "Co\u0302ng ty Thu\u031bo\u031b\u0300ng ma\u0323i " * 5,
                          f"a{_MARKS}{_MARKS} " * 20),
    "emoji": ("🙂 Sam 🎉🎉🎉" * 5, "🚀 Rockets 🚀 Ltd 🌍🌍" * 5, "Hi 👋😀😀 can you call me back 📞📞📞 " * 12),
}


def chat_item(i: int, name: str, company: str, message: str) -> dict:
    return {
        "chatTime": f"2026-11-20T{9 + i // 60:02d}:{i % 60:02d}:00.000",
        "name": f"{name} {i}",
        "companyName": company,
        "pageURL": "https://www.example.com/products/pricing?ref=chat",
        "email": f"visitor{i}@example.org",
        "transcript": ["1: [Visitor] - [Visitor has started a chat.]", f"2: [Visitor] - {message}"],
    }


def section_lines(message: dict) -> list[str]:
    return [line for b in message["blocks"] if b["type"] == "section" for line in b["text"]["text"].split("\n")]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_twenty_chats_in_any_script_are_posted_in_one_summary_listing_each(harness, script):
    harness.stand.moneypenny.add_chats([chat_item(i, *SCRIPTS[script]) for i in range(20)])
    report = harness.syncer().run()
    assert report.posted == 20
    [message] = harness.stand.slack.messages()
    assert len(section_lines(message)) == 20
    assert message["blocks"][0]["text"]["text"].startswith("20 new chats")


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_forty_listed_chats_in_any_script_fit_one_summary(harness, script):
    harness.env_overrides["SLACK_MAX_LISTED"] = "40"
    harness.stand.moneypenny.add_chats([chat_item(i, *SCRIPTS[script]) for i in range(45)])
    report = harness.syncer().run()
    assert report.posted == 45
    [message] = harness.stand.slack.messages()
    listed = len(section_lines(message))
    assert listed >= 20
    closing = message["blocks"][-1]["elements"][0]["text"]
    assert f"…and {45 - listed} more." in closing


_POOL = (
    "abcXYZ 019", "王小明北京", "é", "\u0301\u0308\u0323", "😀🚀👋🏽", "👨‍👩‍👧", "&<>", "*_~`", '"\\',
    "\u202e\u202a\u2066\u2069\u200f", "\n\t\r", "\x00\x1f", "http://x.io/a_b", "a@b.co", " ",
)


def _noise(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_POOL) for _ in range(n))


def test_any_summary_and_its_fallback_pass_the_stand_ins_validation():
    rng = random.Random(20261201)
    for case in range(300):
        total = rng.randint(1, 70)
        items = [
            {"chatTime": f"2026-11-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00",
             "name": _noise(rng, rng.randint(0, 80)), "companyName": _noise(rng, rng.randint(0, 80)),
             "pageURL": _noise(rng, rng.randint(0, 40)),
             "transcript": [f"1: [Visitor] - {_noise(rng, rng.randint(0, 200))}"]}
            for i in range(total)
        ]
        chats = [parse_chat(item, UK) for item in items]
        max_listed = rng.randint(1, 40)
        summary = build_summary(chats, sheet_url=SHEET_URL, max_listed=max_listed, late=rng.randint(0, total))
        assert FakeSlack.message_problem(summary.text, summary.blocks) is None, case
        assert FakeSlack.message_problem(summary.fallback, None) is None, case
        # However heavy the text, at least 20 chats (or all that may be listed) are listed.
        assert summary.listed >= min(total, max_listed, 20), case
        assert summary.listed == sum(len(b["text"]["text"].split("\n")) for b in summary.blocks if b["type"] == "section")


@pytest.mark.parametrize("error", ["msg_blocks_too_long", "invalid_blocks", "msg_too_long"])
def test_a_refused_summary_is_replaced_at_once_by_a_short_one_and_nothing_stays_pending(harness, error):
    items = [chat_item(i, "Priya Secretname", "Hushhush Holdings", "my number is 07700 900123") for i in range(5)]
    harness.stand.moneypenny.add_chats(items)
    harness.stand.slack.inject("chat.postMessage", Status(200, body={"ok": False, "error": error}))
    report = harness.syncer().run()
    assert report.posted == 5 and report.pending == 0
    [message] = harness.stand.slack.messages()  # the refused summary was not stored
    assert harness.stand.slack.count("chat.postMessage") == 2  # in the same run
    text = message["text"] + json.dumps(message["blocks"], ensure_ascii=False)
    assert "5 new chats" in text and harness.settings().sheet_url in text and "09:00–09:04" in text
    for visitor_text in ("Priya", "Secretname", "Hushhush", "07700", "example.com", "visitor0"):
        assert visitor_text not in text
    assert FakeSlack.message_problem(message["text"], message["blocks"]) is None
    harness.clock.advance(minutes=5)
    after = harness.syncer().run()
    assert after.posted == 0 and after.late == 0
    assert harness.open_store().journal_pending() == []
    assert len(harness.stand.slack.messages()) == 1


BIDI_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


def visitor_chat(name: str = "Sam", company: str = "", page: str = "", message: str = "hello"):
    return parse_chat({"chatTime": "2026-11-20T09:30:00", "name": name, "companyName": company, "pageURL": page,
                       "transcript": [f"1: [Visitor] - {message}"]}, UK)


@pytest.mark.parametrize("control", BIDI_CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_bidi_controls_in_visitor_text_cannot_reorder_the_summary_line(control):
    chat = visitor_chat(name=f"Eve{control}lyn", company=f"{control}Acme Ltd", message=f"call me {control}today")
    line = chat_line(chat)
    assert not any(c in line for c in BIDI_CONTROLS)
    assert line == "*09:30* · *Evelyn* · Acme Ltd — _call me today_"


def test_a_name_of_bidi_controls_only_is_shown_as_no_name():
    assert chat_line(visitor_chat(name="\u202e\u2066\u2069", message="")) == "*09:30* · *(no name)*"


def test_bidi_controls_never_reach_slack(harness):
    harness.stand.moneypenny.add_chats([chat_item(i, f"\u202e{i} Ali\u2067", "\u202bCo\u202c", "\u2068hi\u2069")
                                        for i in range(3)])
    harness.syncer().run()
    [message] = harness.stand.slack.messages()
    texts = FakeSlack.mrkdwn_texts(message) + [message["blocks"][0]["text"]["text"]]
    assert not any(c in text for text in texts for c in BIDI_CONTROLS)


@pytest.mark.parametrize("marker", ["*", "_", "~"])
def test_format_markers_in_visitor_text_are_escaped_so_none_is_doubled(marker):
    m = marker
    line = chat_line(visitor_chat(name=f"{m}Bob{m}", company=f"{m}{m}Big{m}{m} Co", message=f"{m}urgent{m} please"))
    assert m * 2 not in line
    # Only our own markers are left: bold time and name, italic preview.
    assert line.count("*") == 4 and line.count("_") == 2 and "~" not in line
    assert "Bob" in line and "Big" in line and "urgent" in line


def test_markers_inside_links_shown_as_code_are_kept_as_typed():
    line = chat_line(visitor_chat(page="https://example.com/my_page*1", message="see www.example.com/a_b"))
    assert "`https://example.com/my_page*1`" in line and "`www.example.com/a_b`" in line
