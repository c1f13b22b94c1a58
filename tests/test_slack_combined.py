"""One summary of chats and call messages: a header counting each, a part per source with its
own "and N more" link to its tab, inside Slack's limits whatever the text, escaped like chats."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from lib.destinations.slack.combined import SummaryPart, build_combined
from lib.destinations.slack.summary import build_summary
from lib.sources.calls import parse_call
from lib.sources.chats import parse_chat
from sandbox.standins.slack import FakeSlack

UK = ZoneInfo("Europe/London")
SHEET_URL = "https://docs.google.com/spreadsheets/d/1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg/edit"


HEAVY_CHINESE = ("王小明先生", "北京未来科技有限公司上海分公司", "你好，我想了解一下你们的产品价格和交货时间，" * 8)
HEAVY_EMOJI = ("🙂 Sam 🎉🎉🎉" * 5, "🚀 Rockets 🚀 Ltd 🌍🌍" * 5, "Hi 👋😀😀 can you call me back 📞📞📞 " * 12)
_POOL = ("abcXYZ 019", "王小明北京", "é", "\u0301\u0308\u0323", "😀🚀👋🏽", "&<>", "*_~`", '"\\',
         "\u202e\u2066\u200f", "\n\t\r", "\x00\x1f", "http://x.io/a_b", "a@b.co", "<!channel>", " ")


def _noise(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_POOL) for _ in range(n))


def chat_item(i: int, name: str, company: str, message: str) -> dict:
    return {"chatTime": f"2026-11-20T{9 + i // 60:02d}:{i % 60:02d}:00.000", "name": f"{name} {i}",
            "companyName": company, "transcript": ["1: [Visitor] - [Visitor has started a chat.]",
                                                   f"2: [Visitor] - {message}"]}


def call_item(i: int, caller: str, company: str, message: str) -> dict:
    moment = datetime(2026, 11, 20, 9, 0, tzinfo=UTC) + timedelta(minutes=i)
    return {"date": moment.isoformat(), "caller": f"{caller} {i}", "callerCompany": company,
            "callerNumber": "07700 900123", "actionTaken": "Email", "employee": "Ann Employee",
            "message": message, "callId": f"C{i}"}


def parts(chats: list, calls: list) -> list[SummaryPart]:
    return [SummaryPart(chats, "new chat", "Chats"), SummaryPart(calls, "new call", "Calls")]


def test_the_header_counts_each_source_and_each_part_links_to_its_tab():
    chats = [parse_chat(chat_item(i, "Visitor", "Acme", "Hello"), UK) for i in range(3)]
    calls = [parse_call(call_item(i, "Caller", "Bramble Vets", "Please call back"), UK) for i in range(2)]
    summary = build_combined(parts(chats, calls), sheet_url=SHEET_URL, max_listed=20, late=1)
    header = summary.blocks[0]["text"]["text"]
    assert header.startswith("3 new chats · 2 new calls · ")
    assert summary.total == 5 and summary.listed == 5
    links = [b["elements"][0]["text"] for b in summary.blocks if b["type"] == "context"]
    assert "late" in links[0]
    assert links[1:] == [f"<{SHEET_URL}|Open the Chats tab>", f"<{SHEET_URL}|Open the Calls tab>"]
    assert summary.fallback.startswith("3 new chats and 2 new calls from Moneypenny")
    assert "Caller" not in summary.fallback and "Visitor" not in summary.fallback


def test_one_source_alone_is_the_one_source_summary_word_for_word():
    chats = [parse_chat(chat_item(i, "Visitor", "Acme", "Hello"), UK) for i in range(4)]
    alone = build_combined(parts(chats, []), sheet_url=SHEET_URL, max_listed=20, late=2)
    assert alone == build_summary(chats, sheet_url=SHEET_URL, max_listed=20, late=2)
    calls = [parse_call(call_item(i, "Caller", "", "Hi"), UK) for i in range(2)]
    only_calls = build_combined(parts([], calls), sheet_url=SHEET_URL)
    assert only_calls.blocks[0]["text"]["text"].startswith("2 new calls")


def test_the_listed_lines_are_shared_and_the_rest_are_and_n_more_per_tab():
    chats = [parse_chat(chat_item(i, *HEAVY_CHINESE), UK) for i in range(45)]
    calls = [parse_call(call_item(i, *HEAVY_EMOJI), UK) for i in range(3)]
    summary = build_combined(parts(chats, calls), sheet_url=SHEET_URL, max_listed=20)
    assert summary.listed <= 20
    closings = [b["elements"][0]["text"] for b in summary.blocks if b["type"] == "context"]
    chats_more, calls_link = closings
    assert chats_more.startswith(f"…and {45 - (summary.listed - 3)} more.") and "Chats tab" in chats_more
    assert calls_link == f"<{SHEET_URL}|Open the Calls tab>"  # its 3 calls are all listed
    assert FakeSlack.message_problem(summary.text, summary.blocks) is None


def test_a_tab_name_cannot_break_the_link():
    calls = [parse_call(call_item(0, "A", "", "m"), UK)]
    chats = [parse_chat(chat_item(0, "B", "", "m"), UK)]
    summary = build_combined([SummaryPart(chats, "new chat", "Chats"), SummaryPart(calls, "new call", "x|<!here>")],
                             sheet_url=SHEET_URL)
    assert "<!here>" not in str(summary.blocks) and "|Open the x¦&lt;!here&gt; tab>" in str(summary.blocks)


def test_any_combined_summary_and_its_fallback_pass_the_stand_ins_validation():
    rng = random.Random(20261202)
    for case in range(200):
        chats = [parse_chat({"chatTime": f"2026-11-20T{i // 60 % 24:02d}:{i % 60:02d}:00",
                             "name": _noise(rng, rng.randint(0, 80)), "companyName": _noise(rng, rng.randint(0, 80)),
                             "transcript": [f"1: [Visitor] - {_noise(rng, rng.randint(0, 200))}"]}, UK)
                 for i in range(rng.randint(0, 60))]
        calls = [parse_call(call_item(i, _noise(rng, rng.randint(0, 80)), _noise(rng, rng.randint(0, 80)),
                                      _noise(rng, rng.randint(0, 300))), UK)
                 for i in range(rng.randint(0 if chats else 1, 60))]
        max_listed = rng.randint(1, 40)
        summary = build_combined(parts(chats, calls), sheet_url=SHEET_URL, max_listed=max_listed,
                                 late=rng.randint(0, 5))
        assert FakeSlack.message_problem(summary.text, summary.blocks) is None, case
        assert FakeSlack.message_problem(summary.fallback, None) is None, case
        assert summary.total == len(chats) + len(calls), case
        assert summary.listed <= max(max_listed, 2), case
        assert summary.listed >= min(len(chats) + len(calls), max_listed, 2), case
        assert "<!channel>" not in str(summary.blocks), case
