"""A chat whose key parts hold a control character was keyed differently before text was made
safe at parse time: it keeps that former key, and a chat journaled or written under it is never
written or announced a second time. The former keys here are computed by hand with hashlib from
the recipe as it was (the same parts, not made safe), never through lib's code."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.sources.chats import HEADER, chat_row, parse_chat
from lib.state.models import DONE, PENDING, JournalEntry
from lib.sync import RunOptions
from tests.harness import move_cursor_elsewhere

UK = ZoneInfo("Europe/London")


def by_hand(*parts: str) -> str:
    """The recipe: the first 32 hex digits of sha256 over "v1" and the parts, NUL-joined."""
    return hashlib.sha256("\0".join(("v1",) + parts).encode("utf-8")).hexdigest()[:32]


# Control characters in every key part: a NUL, an ESC, a BEL and a C1 control.
ODD = {
    "chatTime": "2026-11-20T10:00:00",
    "name": " Zoë\x00 Smith ",
    "email": "Zoe\x1b@Example.com",
    "phone": "0123 456789",
    "entryURL": "https://example.com/\x9fin",
    "transcript": ["1: [Visitor] - [Visitor has started a chat.]\x07", "2: [Visitor] - Hi"],
}
ODD_KEY = by_hand("2026-11-20T10:00:00.000000+00:00", "Zoë Smith", "zoe@example.com", "0123456789",
                  "https://example.com/in", "1: [Visitor] - [Visitor has started a chat.]")
ODD_FORMER_KEY = by_hand("2026-11-20T10:00:00.000000+00:00", "Zoë\x00 Smith", "zoe\x1b@example.com", "0123456789",
                         "https://example.com/\x9fin", "1: [Visitor] - [Visitor has started a chat.]\x07")


def test_a_chat_with_control_characters_has_the_former_recipes_key_as_its_former_key():
    chat = parse_chat(ODD, UK)
    assert chat.key == ODD_KEY
    assert chat.former_keys == (ODD_FORMER_KEY,)
    # A transcript sent as one text: only its first line counts, split as before.
    as_text = {**ODD, "transcript": "1: [Visitor] - [Visitor has started a chat.]\x07\r\n2: [Visitor] - Hi\x00"}
    assert parse_chat(as_text, UK).former_keys == (ODD_FORMER_KEY,)


@pytest.mark.parametrize("changes", [
    {},  # nothing unsafe
    {"name": "Zoë\tSmith", "transcript": "1: [Visitor] - Hi\u00a0there\n2: [Visitor] - \x00"},  # kept as is
    {"phone": "0123\x00456789"},  # the phone's control character is no digit either way
    {"name": "Zoë\x00 \ud800"},  # a lone surrogate: the former recipe could not key it at all
], ids=["plain", "tab-and-later-lines", "phone", "lone-surrogate"])
def test_a_chat_whose_key_did_not_change_has_no_former_key(changes):
    plain = {**ODD, "name": "Zoë Smith", "email": "zoe@example.com", "entryURL": "https://example.com/in",
             "transcript": ["1: [Visitor] - [Visitor has started a chat.]", "2: [Visitor] - Hi\x00"]}
    assert parse_chat({**plain, **changes}, UK).former_keys == ()


_PART = st.text(alphabet="aZ9 \t\n\r\x00\x07\x1b\x0b\x7f\x85\x9f\u00a0\u2028", max_size=6)


@settings(max_examples=300, deadline=None)
@given(name=_PART, email=_PART, phone=_PART, entry_url=_PART, lines=st.lists(_PART, max_size=2),
       as_text=st.booleans())
def test_the_former_key_or_else_the_key_is_what_the_former_recipe_gave(name, email, phone, entry_url, lines,
                                                                        as_text):
    transcript = "\n".join(lines) if as_text else lines
    item = {"chatTime": "2026-11-20T10:00:00", "name": name, "email": email, "phone": phone,
            "entryURL": entry_url, "transcript": transcript}
    first = (transcript.splitlines() if as_text else lines)[:1] or [""]
    former = by_hand("2026-11-20T10:00:00.000000+00:00", name.strip(), email.strip().lower(),
                     re.sub(r"\D", "", phone), entry_url.strip(), first[0].strip())
    chat = parse_chat(item, UK)
    assert (chat.former_keys or (chat.key,)) == (former,)
    assert chat.key not in chat.former_keys


def odd_chat(harness) -> dict:
    local = (harness.clock().astimezone(UK) - timedelta(minutes=30)).replace(tzinfo=None)
    return {**ODD, "chatTime": local.isoformat()}


def former_key_of(item: dict) -> str:
    time = parse_chat(item, UK).time.isoformat(timespec="microseconds")
    return by_hand(time, "Zoë\x00 Smith", "zoe\x1b@example.com", "0123456789", "https://example.com/\x9fin",
                   "1: [Visitor] - [Visitor has started a chat.]\x07")


@pytest.mark.parametrize("delivered", [True, False], ids=["delivered", "pending"])
def test_a_chat_journaled_under_its_former_key_is_not_written_or_announced_again_by_a_reconcile(
        harness, store, delivered):
    """As the code before the upgrade left it: journaled under the former key, and either
    delivered (its row in the sheet, announced) or still pending. A reconcile reads the chat
    again: it is known by its former key, so the sheet has its one row, under that key."""
    harness.add_chats(1)
    assert harness.syncer().run().appended == 1  # the tab and its header, one other chat
    posts = len(harness.stand.slack.messages())
    item = odd_chat(harness)
    old_key = former_key_of(item)
    harness.stand.moneypenny.add_chats([item])
    move_cursor_elsewhere(harness)  # the old code's fetch took it
    now = harness.clock()
    state = DONE if delivered else PENDING
    store.journal_add([JournalEntry(key=old_key, item=item, item_time=parse_chat(item, UK).time.astimezone(UTC),
                                    fetched_at=now, states={"sheet": state, "slack": state},
                                    expires_at=now + timedelta(days=30) if delivered else None)])
    if delivered:
        row = chat_row(dataclasses.replace(parse_chat(item, UK), key=old_key))
        harness.stand.sheets.set_rows(harness.sheet_id, harness.settings().sheet_tab, harness.rows() + [row])
    assert harness.rows()[0] == [*HEADER, "Owner", "Claimed at"]

    harness.clock.advance(minutes=5)
    report = harness.syncer().run(mode="reconcile")

    assert report.fetched == 2 and report.new == 0
    assert harness.sheet_keys().count(old_key) == 1 and len(harness.data_rows()) == 2
    assert len(harness.stand.slack.messages()) == posts + (0 if delivered else 1)
    assert store.journal_get([parse_chat(item, UK).key]) == {}  # not journaled under its new key


def test_a_backfill_takes_a_row_under_the_former_key_as_in_the_sheet(harness):
    """The sheet-key preset of a backfill (the journal no longer holds the chat) knows a row
    written under the chat's former key: the chat is journaled as already in the sheet."""
    item = odd_chat(harness)
    journal, store = harness.protocols().journal, harness.open_store()
    report = harness.report()
    day = parse_chat(item, UK).time.date()
    journal.ingest(report, [item], RunOptions(mode="window", start=day, end=day, sheet_keys={former_key_of(item)}))
    key = parse_chat(item, UK).key
    assert report.new == 1 and report.already_in_sheet == 1
    assert store.journal_get([key])[key].state("sheet") == DONE


def test_only_a_batch_with_a_former_key_reads_the_journal_for_it(harness, store):
    """The common case costs nothing more: a batch of ordinary chats is journaled blind (no
    read); one with a chat that has a former key reads the journal once, for that key."""
    journal = harness.protocols().journal
    ordinary = harness.add_chats(3)
    before = store.counters.snapshot()
    journal.ingest(harness.report(), ordinary, RunOptions())
    plain = store.counters.since(before)
    assert plain.reads == 0

    before = store.counters.snapshot()
    journal.ingest(harness.report("odd"), harness.add_chats(3, seed=1) + [odd_chat(harness)], RunOptions())
    odd = store.counters.since(before)
    assert odd.reads == 1 and odd.round_trips == plain.round_trips + 1
