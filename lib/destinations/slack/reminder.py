"""The daily reminder of unclaimed leads (issue #23 item 4) as one Slack message: a header that
says which days and how many, then a part per source (chats, calls) with a line per lead still
without an Owner (its time, who, its row link and short key) and a Claim button, within Slack's
limits (50 blocks; SLACK_MAX_LISTED lines, the rest "and N more" with the tab's link).

The line is this module's own small formatter (`reminder_line`); the summary's line with row
link and short key (lane sales-links) is meant to replace it once both are merged: only
`reminder_line` changes. The Claim button's value is the shared contract: compact JSON
`{"a": account, "f": feed, "k": key}`, `action_id` `claim`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..sheet.owners import SheetItem
from .summary import HEADER_LIMIT, LINE_LIMIT, MAX_BLOCKS, SECTION_LIMIT, Summary, inert, slack_size, trim

__all__ = ["CLAIM_ACTION", "ReminderPart", "build_reminder", "claim_value", "days_text", "reminder_line", "row_url"]

CLAIM_ACTION = "claim"
SHORT_KEY = 8  # the last characters of a key shown on its line
BUTTON_VALUE_LIMIT = 2000  # Slack's limit on a button's value
# Blocks besides the lines: the header, a heading and an "and N more" per source, one spare.
_FIXED_BLOCKS = 1 + 2 * 2 + 1


@dataclass(frozen=True)
class ReminderPart:
    """One source's unclaimed leads: its feed name (the button's "f"), its noun ("chat"), its
    tab and the link that opens the sheet at that tab (`#gid=`, or the sheet when unknown)."""

    feed: str
    noun: str
    tab: str
    tab_url: str
    items: Sequence[SheetItem]
    gid: int | None = None


def row_url(tab_url: str, gid: int | None, row: int) -> str:
    """The link to one row: `…/edit#gid=<sheetId>&range=A<row>` (the tab's link when its id is unknown)."""
    return tab_url if gid is None else f"{tab_url.split('#')[0]}#gid={gid}&range=A{row}"


def claim_value(account: str, feed: str, key: str) -> str:
    """The Claim button's value: compact JSON naming the account, the feed and the item's key."""
    return json.dumps({"a": account, "f": feed, "k": key}, separators=(",", ":"), ensure_ascii=False)


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun if n == 1 else noun + 's'}"


def _local(when: str, dated: bool) -> str:
    try:
        moment = datetime.strptime(when[:16], "%Y-%m-%d %H:%M")  # noqa: DTZ007 (local time as the sheet shows it)
    except ValueError:
        return inert(when[:16])
    return f"{moment:%a} {moment.day} {moment:%b %H:%M}" if dated else f"{moment:%a %H:%M}"


def reminder_line(item: SheetItem, url: str, dated: bool, limit: int = LINE_LIMIT) -> str:
    """One lead's line: local time, who (visitor text made inert), the row link and the short key."""
    who = " · ".join(inert(cell) for cell in item.label if cell) or "(no name)"
    link = f"<{url}|row {item.row}>"
    short = inert(item.key[-SHORT_KEY:])
    tail = f" · {link} · `{short}`"
    return trim(f"{_local(item.when, dated)} · {who}", max(40, limit - slack_size(tail))) + tail


def days_text(first: date, end: date) -> str:
    """The days a reminder covers, for its header: "Fri 4 Dec", or "Fri 4 Dec – Sun 6 Dec"."""
    last = date.fromordinal(end.toordinal() - 1)
    one = f"{first:%a} {first.day} {first:%b}"
    return one if first == last else f"{one} – {last:%a} {last.day} {last:%b}"


def _shares(sizes: list[int], max_listed: int) -> list[int]:
    # The smaller parts take what they need (at least one line each), the largest the rest.
    shares = [0] * len(sizes)
    left = max_listed
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for done, i in enumerate(order):
        shares[i] = max(1, min(sizes[i], left // (len(sizes) - done)))
        left -= shares[i]
    return shares


def build_reminder(parts: Sequence[ReminderPart], *, account: str, first: date, end: date,
                   max_listed: int = 20) -> Summary | None:
    """The reminder message for the unclaimed leads of the days `first` to before `end`; None
    when there are none (nothing is posted when every lead was claimed)."""
    parts = [p for p in parts if p.items]
    if not parts:
        return None
    total = sum(len(p.items) for p in parts)
    days = days_text(first, end)
    counts = " · ".join(_counted(len(p.items), p.noun) for p in parts)
    dated = (end - first).days > 1
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": trim(
        f"Still unclaimed from {days}: {counts}", HEADER_LIMIT)}}]
    room = min(max_listed, MAX_BLOCKS - _FIXED_BLOCKS)
    listed = 0
    for part, share in zip(parts, _shares([len(p.items) for p in parts], room)):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": trim(
            f"*{_counted(len(part.items), part.noun)}* · <{part.tab_url}|{_link_safe(part.tab)} tab>", SECTION_LIMIT)}})
        for item in part.items[:share]:
            block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": reminder_line(
                item, row_url(part.tab_url, part.gid, item.row), dated)}}
            value = claim_value(account, part.feed, item.key)
            if len(value) <= BUTTON_VALUE_LIMIT:
                block["accessory"] = {"type": "button", "action_id": CLAIM_ACTION, "value": value,
                                      "text": {"type": "plain_text", "text": "Claim"}}
            blocks.append(block)
            listed += 1
        more = len(part.items) - min(share, len(part.items))
        if more:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
                f"…and {more} more: <{part.tab_url}|open the {_link_safe(part.tab)} tab>")}]})
    text = f"Still unclaimed from {days}: {counts}. Open the sheet to claim them."
    return Summary(text=text, blocks=blocks, listed=listed, total=total, fallback=text)


def _link_safe(text: str) -> str:
    # A tab name (a setting) inside <url|text>: `|` and `>` would end the link early.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "¦")
