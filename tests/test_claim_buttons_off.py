"""SLACK_CLAIM_BUTTONS=off (a deployment without the public slack_actions function, Terraform's
slack_actions_enabled = false, or a local run without the Slack app's interactivity): the
summaries, the backfill summaries and the reminder carry no Claim button (a click would show the
person Slack's error), and every listed line keeps its short key linked to its own row. The
setting is per account and refused, naming itself, for anything but on or off. Real gspread and
slack-sdk against the stand-ins; the harness's SQLite store (the store plays no part in it)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lib.accounts import load_accounts
from lib.destinations.slack.summary import short_key
from lib.errors import SettingsError, cut
from lib.settings import Settings
from lib.sources.calls import CALLS_LAYOUT
from sandbox.standins.samples import sample_calls, sample_chats
from tests.harness import UK
from tests.test_row_links import ITEM, KEY_COLUMN, ROW_LINK, TAB, tab_ids
from tests.test_unclaimed_reminder import FRI, THU, expected_unclaimed, leads_on, reminders, run_at

UK_ZONE = ZoneInfo(UK)
REQUIRED = {"MONEYPENNY_USERNAME": "billing@example.com", "MONEYPENNY_PASSWORD": "pa55-word",
            "SHEET_ID": "1AbCdEfGh", "SLACK_BOT_TOKEN": "xoxb-0000-1111-secret", "SLACK_CHANNEL": "C0123456789"}


@pytest.fixture
def off(harness):
    harness.env_overrides.update(MONEYPENNY_SOURCES="chats,calls", SLACK_MAX_LISTED="40", SLACK_CLAIM_BUTTONS="off")
    return harness


def buttons(obj: Any) -> list[dict[str, Any]]:
    """Every button anywhere in a message's blocks (a section's accessory or an actions element)."""
    if isinstance(obj, list):
        return [b for o in obj for b in buttons(o)]
    if not isinstance(obj, dict):
        return []
    own = [obj] if obj.get("type") == "button" else []
    return own + [b for v in obj.values() if isinstance(v, dict | list) for b in buttons(v)]


def linked_rows(harness, message: dict[str, Any]) -> list[tuple[str, str]]:
    """(feed, key) of each listed line, read from the row its link names; its short key checked."""
    feeds = {gid: feed for feed, tab in TAB.items() for title, gid in tab_ids(harness).items() if title == tab}
    found = []
    for block in message["blocks"]:
        text = block.get("text", {}).get("text", "") if block["type"] == "section" else ""
        item = ITEM.search(text)
        if item is None:
            continue
        link = ROW_LINK.search(item[1])
        assert link and item[1].startswith(harness.settings().sheet_url), item[1]
        feed = feeds[int(link[1])]
        table = harness.stand.sheets.rows(harness.sheet_id, TAB[feed])
        cell = table[int(link[2]) - 1][table[0].index(KEY_COLUMN[feed])]
        key = cell if feed == "chats" else CALLS_LAYOUT.key_of_cell(cell)
        assert short_key(key) == item[2], (feed, link[2])
        found.append((feed, key))
    return found


def test_a_summary_has_no_claim_buttons_and_every_line_keeps_its_row_link(off):
    off.add_chats(5, seed=1)
    off.stand.moneypenny.add_calls(sample_calls(3, off.clock() - timedelta(minutes=50), seed=1))
    report = off.syncer().run()
    [message] = off.stand.slack.messages()
    assert buttons(message["blocks"]) == []
    lines = linked_rows(off, message)
    assert len(lines) == report.appended == 8 and len(set(lines)) == 8
    assert {feed for feed, _ in lines} == {"chats", "calls"}


def test_a_backfill_summary_has_no_claim_buttons_and_keeps_its_row_links(off):
    from lib.commands.cli import EXIT_OK, Context, main
    from tests.harness import move_cursor_elsewhere

    local = off.clock().astimezone(UK_ZONE)
    day = local.date() - timedelta(days=1)
    nine = datetime(day.year, day.month, day.day, 9, 0)
    off.stand.moneypenny.add_chats(sample_chats(3, start=nine, seed=30))
    off.stand.moneypenny.add_calls(sample_calls(2, nine.replace(tzinfo=UK_ZONE).astimezone(UTC), seed=40))
    move_cursor_elsewhere(off)
    out, err = io.StringIO(), io.StringIO()
    code = main(["backfill", "--from", str(day), "--to", str(day), "--notify"],
                Context(env=off.env(), clock=off.clock, out=out, err=err, sleep=lambda s: None, backoff=0.01))
    assert code == EXIT_OK, out.getvalue() + err.getvalue()
    [message] = off.stand.slack.messages()
    assert buttons(message["blocks"]) == []
    assert len(set(linked_rows(off, message))) == 5


def test_the_reminder_has_no_claim_buttons_and_lists_every_unclaimed_lead_by_its_row(harness):
    harness.env_overrides.update(MONEYPENNY_SOURCES="chats,calls", UNCLAIMED_REMINDER_AT="09:00",
                                 SLACK_CLAIM_BUTTONS="off")
    leads_on(harness, THU, 3, 2, seed=2)
    harness.stand.slack.clear_messages()
    run_at(harness, FRI, 9, 1)
    [message] = reminders(harness)
    assert buttons(message["blocks"]) == []
    expected = expected_unclaimed(harness, {THU})
    assert set(linked_rows(harness, message)) == expected and len(expected) == 5


def test_describe_shows_the_claim_buttons_as_on_or_off_and_a_value_of_any_length_is_cut():
    assert Settings.from_env({**REQUIRED, "SLACK_CLAIM_BUTTONS": "OFF"}).describe()["slack_claim_buttons"] == "off"
    assert Settings.from_env(REQUIRED).describe()["slack_claim_buttons"] == "on"
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**REQUIRED, "SLACK_CLAIM_BUTTONS": "o" * 300})
    assert repr(cut("o" * 300)) in str(caught.value) and "o" * 101 not in str(caught.value)


def test_each_account_may_turn_its_claim_buttons_off_and_a_bad_value_names_its_own_variable():
    env = {**REQUIRED, "ACCOUNTS": "north,east-london,west", "SLACK_CLAIM_BUTTONS__NORTH": "off",
           "SLACK_CLAIM_BUTTONS__WEST": "maybe", "MONEYPENNY_USERNAME__NORTH": "north@example.com",
           "MONEYPENNY_USERNAME__WEST": "west@example.com"}
    loaded = load_accounts(env)
    north, east, west = loaded["north"], loaded["east-london"], loaded["west"]
    assert isinstance(north, Settings) and north.slack_claim_buttons is False
    assert isinstance(east, Settings) and east.slack_claim_buttons is True
    assert isinstance(west, SettingsError) and "SLACK_CLAIM_BUTTONS__WEST must be on" in str(west)

