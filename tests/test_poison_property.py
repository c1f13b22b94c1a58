"""Generated chat-log bodies: no item makes a run fail, every well-formed chat is in the sheet
exactly once, and every other item is in quarantine.

Bodies mix objects, nulls, numbers, strings and nested lists; every field takes any JSON type;
text is any Unicode, lone surrogates, bidi controls and NUL included; `chatTime` takes any shape.
Each item of a body is one of three kinds, known by construction (not by asking the parser):

- good: an object whose `chatTime` is a date-time in years 2 to 9998 in some ISO 8601 spelling,
  tagged with a unique id at the start of its name; it must be delivered exactly once;
- bad: not an object, no `chatTime`, a `chatTime` that is not a string or is text that cannot
  start a date; it must be in quarantine;
- either: an object whose `chatTime` is date-shaped but may not be a date, or lies at the edge of
  the calendar (years 1 and 9999); it must be delivered once or be in quarantine, never both.

The default run draws 1,000 bodies for the parser and 100 through the real run; `--hypothesis-more`
(or HYPOTHESIS_MORE=1) draws ten times as many.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.destinations.slack.summary import build_summary
from lib.sources.chat_source import journal_item, parse_journal_chat
from lib.sources.chats import HEADER, chat_row, parse_batch, parse_chat
from lib.state.sqlite.store import SqliteStore
from lib.sync.journal import dump
from lib.text import json_text

PARSER_BODIES = 1_000
RUN_BODIES = 100
ZONES = ("UTC", "Europe/London", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata")
FIELDS = ("name", "companyName", "email", "phone", "pageURL", "entryURL", "transcript", "variables", "tags",
          "utM_Source", "utM_Medium", "utM_Term", "utm_Source", "chatTime", "visitorId", "")
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
TAG = re.compile(r"#([geb])(\d+)#")

# -- strategies -------------------------------------------------------------------------------------

_SPECIAL = st.sampled_from([
    "\ud800", "\udfff", "\ud83d", "\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f", "\r", "\n", "\t", "\u2028",
    "\u202e", "\u2066", "\u200f", "\ufeff", "\ufffd", "=", "+", "<!channel>", "<@U123>", "@here", "`", "*",
    "https://evil.example", "a@b.example", "1: [Visitor] - ", "[Visitor has started a chat.]", "é", "\U0001F600",
])
text = st.lists(st.one_of(st.characters(exclude_categories=()), _SPECIAL), max_size=12).map("".join)
leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), text,
)
json_value = st.recursive(
    leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=6
)


@st.composite
def good_time(draw) -> str:
    moment = draw(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)))
    spelled = moment.isoformat(sep=draw(st.sampled_from("T ")), timespec=draw(st.sampled_from(
        ["auto", "seconds", "milliseconds", "microseconds", "minutes"])))
    if "." in spelled and draw(st.booleans()):
        spelled += "7"  # seven fractional digits, as .NET writes them
    zone = draw(st.sampled_from(["", "Z", "z", "offset"]))
    if zone == "offset":
        minutes = draw(st.integers(-14 * 60 + 1, 14 * 60 - 1))
        sign = "-" if minutes < 0 else "+"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    pad = draw(st.sampled_from(["", " ", "\t"]))
    return pad + spelled + zone + pad


edge_time = st.one_of(
    st.from_regex(r"\A\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?([Zz]|[+-]\d\d:?\d\d)?\Z"),
    st.builds(
        lambda day, offset: f"{day}{offset}",
        st.sampled_from(["0001-01-01T00:00:00", "0001-01-01T00:30:00", "9999-12-31T23:59:59",
                         "9999-12-31T12:00:00.9999999", "0001-01-01"]),
        st.sampled_from(["", "Z", "z", "+01:00", "-05:00", "+14:00", "-12:00", "+00:00"]),
    ),
)
bad_time = st.one_of(
    st.none(), st.just(""), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.lists(leaf, max_size=3), st.dictionaries(text, leaf, max_size=3),
    text.map(lambda s: "~" + s if s.strip()[:1].isdigit() else s),  # cannot start a date
)


# Strategies are built once: building them inside a draw costs more than the test itself.
_coin = st.booleans()
_field_dicts = st.dictionaries(st.sampled_from(FIELDS) | text, json_value, max_size=6)
_transcript_lines = st.lists(
    st.builds(lambda n, who, t: f"{n}: [{who}] - {t}", st.integers(0, 99),
              st.sampled_from(["Visitor", "Operator", "visitor", ""]), text),
    max_size=5,
)


@st.composite
def fields(draw) -> dict[str, Any]:
    item = draw(_field_dicts)
    if draw(_coin):  # a transcript shaped like Moneypenny's, with odd lines in it
        lines = draw(_transcript_lines)
        item["transcript"] = "\r\n".join(lines) if draw(_coin) else lines
    item.pop("chatTime", None)
    return item


_fields = fields()
_bad_items = st.one_of(
    leaf, st.lists(json_value, max_size=3),  # not an object
    _fields,  # no chatTime
    st.builds(lambda f, t: {**f, "chatTime": t}, _fields, bad_time),
)
_good_time = good_time()
_kinds = st.sampled_from("gggeb")
_one_in_ten = st.integers(0, 9)


def as_sent(item: Any) -> Any:
    """The item as it arrives from an HTTP body: json.loads makes a surrogate pair one character."""
    return json.loads(json.dumps(item))


@dataclass
class Body:
    items: list[Any] = field(default_factory=list)
    tags: list[str | None] = field(default_factory=list)  # per item: its tag, None for a bad one
    good: set[str] = field(default_factory=set)
    either: set[str] = field(default_factory=set)
    bad: int = 0

    def unread(self, read: set[str]) -> int:
        """How many items of the either kind must be in quarantine, given the tags read."""
        return sum(1 for tag in self.tags if tag in self.either and tag not in read)


@st.composite
def bodies(draw, max_items: int = 6) -> Body:
    body = Body()
    for n in range(draw(st.integers(0, max_items))):
        kind = draw(_kinds)
        if kind == "b":
            body.items.append(as_sent(draw(_bad_items)))
            body.tags.append(None)
            body.bad += 1
            continue
        item = draw(_fields)
        tag = f"#{kind}{n}#"
        item["name"] = tag + draw(text)
        item["chatTime"] = draw(_good_time if kind == "g" else edge_time)
        (body.good if kind == "g" else body.either).add(tag)
        item = as_sent(item)
        body.items.append(item)
        body.tags.append(tag)
        if draw(_one_in_ten) == 0:
            body.items.append(as_sent(item))  # the same chat twice in one body
            body.tags.append(tag)
    return body


def examples(request, base: int) -> int:
    return base * (10 if request.config.getoption("--hypothesis-more") else 1)


def tags_in(text: str) -> list[str]:
    return [m.group(0) for m in TAG.finditer(text)]


def assert_safe(cell: str) -> None:
    assert isinstance(cell, str)
    cell.encode("utf-8")
    assert not UNSAFE.search(cell)


# -- the parser -------------------------------------------------------------------------------------


def test_the_parser_delivers_every_well_formed_chat_once_and_sets_aside_the_rest(request):
    @settings(max_examples=examples(request, PARSER_BODIES), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=bodies(), zone=st.sampled_from(ZONES))
    def check(body: Body, zone: str) -> None:
        tz = ZoneInfo(zone)
        chats, rejected = parse_batch(body.items, tz)

        named = [tags_in(c.name)[0] for c in chats]
        assert len(named) == len(set(named)), "a chat came out twice"
        assert body.good <= set(named), "a well-formed chat was not read"
        assert set(named) <= body.good | body.either
        assert len(rejected) == body.bad + body.unread(set(named))
        assert all(body.tags[r.index] not in named for r in rejected)
        assert [(c.time, c.key) for c in chats] == sorted((c.time, c.key) for c in chats)

        for chat in chats:
            row = chat_row(chat)
            assert len(row) == len(HEADER)
            for cell in row:
                assert_safe(cell)
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[0])
            assert re.fullmatch(r"[0-9a-f]{32}", chat.key)
            chat.time.astimezone(UTC)
            # What the journal keeps reads back as the same row and key, in both forms.
            stored = json.loads(json_text(journal_item(chat)).encode("utf-8"))
            assert parse_chat(stored, tz).key == chat.key
            cut = json.loads(json_text(journal_item(chat, max_bytes=0)))
            assert chat_row(parse_journal_chat(cut, tz)) == row
        for reject in rejected:
            dump(reject.item).encode("utf-8")
            assert "chatTime" in reject.reason or "not an object" in reject.reason
        if chats:
            summary = build_summary(chats, sheet_url="https://docs.google.com/spreadsheets/d/x")
            json.dumps({"text": summary.text, "blocks": summary.blocks}, ensure_ascii=False).encode("utf-8")
            assert_safe(summary.text.replace("\n", ""))

    check()


# -- the whole run ----------------------------------------------------------------------------------


def test_no_item_makes_a_run_fail_and_each_is_delivered_once_or_quarantined(request, harness):
    runs = iter(range(10**9))

    @settings(max_examples=examples(request, RUN_BODIES), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=bodies(max_items=8), zone=st.sampled_from(ZONES))
    def check(body: Body, zone: str) -> None:
        n = next(runs)
        path = harness.tmp / f"state-{n}.sqlite3"
        if harness.store is not None:
            harness.store.close()
        harness.store = SqliteStore(str(path), clock=harness.clock)
        harness.env_overrides.update(SHEET_TAB=f"Run {n}", CHAT_TIMEZONE=zone)
        harness.stand.slack.clear_messages()
        harness.stand.moneypenny.add_chats(body.items)
        harness.clock.advance(minutes=5)

        report = harness.syncer().run()  # raises RunFailed if any step failed

        rows = harness.data_rows()
        in_sheet = [tags_in(r[1])[0] for r in rows]
        assert len(in_sheet) == len(set(in_sheet)), "a chat is in the sheet twice"
        assert body.good <= set(in_sheet), "a well-formed chat is missing from the sheet"
        assert set(in_sheet) <= body.good | body.either
        with sqlite3.connect(path) as conn:
            quarantined = [row[0] for row in conn.execute("SELECT raw FROM quarantine")]
        set_aside = {tag for raw in quarantined for tag in tags_in(raw)} & (body.good | body.either)
        assert not set_aside & set(in_sheet), "a chat is both in the sheet and in quarantine"
        assert set_aside | (set(in_sheet) & body.either) == body.either
        assert len(quarantined) == body.bad + body.unread(set(in_sheet)) == report.skipped_invalid
        assert report.appended == len(rows) and report.pending == 0
        if rows:
            assert report.posted == len(rows) and len(harness.stand.slack.messages()) == 1
        json.dumps(report.as_dict()).encode("utf-8")

    check()
