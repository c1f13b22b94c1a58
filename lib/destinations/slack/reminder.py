"""The daily reminder of unclaimed leads (issue #23 item 4) as one Slack message: a header that
says which days and how many, then a part per source (chats, calls) with a section per lead still
without an Owner (its line, its short key linked to its row, a Claim button), within Slack's
limits (50 blocks, BLOCKS_BUDGET of blocks; SLACK_MAX_LISTED lines, the rest "…and N more" with
the tab's link).

The reminder is read from the sheet (the tab's rows have the last word), not from the journal,
so a lead's line is made from its row's cells (`reminder_line`: local time, name, company); each
lead's section is the summary's own (summary.item_block: the line, its short key linked to its
row, the Claim button), so a click on a reminder's button is handled as a summary's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..sheet.owners import SheetItem
from .summary import (
    BLOCKS_BUDGET,
    CLAIM_ACTION,
    HEADER_LIMIT,
    MAX_BLOCKS,
    Summary,
    claim_value,
    counted,
    inert,
    item_block,
    link_safe,
    share_lines,
    short_key,
    trim,
    url_safe,
)

__all__ = ["CLAIM_ACTION", "ReminderPart", "build_reminder", "claim_value", "days_text", "item_block", "reminder_line",
           "row_url", "short_key"]

LINE_LIMIT = 160  # a lead's line (time, name, company), by slack_size
MIN_LINE = 40  # ... when many share the message
_SEPARATOR = " · "


@dataclass(frozen=True)
class ReminderPart:
    """One source's unclaimed leads: its feed name (the button's "f"), its noun ("chat"), its
    tab, the link that opens the sheet at that tab and the tab's sheetId (None: unknown, the
    lines then link the tab)."""

    feed: str
    noun: str
    tab: str
    tab_url: str
    items: Sequence[SheetItem]
    gid: int | None = None


def row_url(tab_url: str, gid: int | None, row: int) -> str:
    """The link to one row: `…/edit#gid=<sheetId>&range=A<row>` (the tab's link when its id is unknown)."""
    return tab_url if gid is None else f"{tab_url.split('#')[0]}#gid={gid}&range=A{row}"


def reminder_line(item: SheetItem, dated: bool, limit: int = LINE_LIMIT) -> str:
    """One lead's line from its row: local time (with its day when the reminder spans days), then
    who (name and company, visitor text made inert), cut to `limit` by slack_size."""
    who = _SEPARATOR.join(inert(cell) for cell in item.label if cell.strip()) or "(no name)"
    return trim(f"*{_local(item.when, dated)}*{_SEPARATOR}{who}", limit)


def days_text(first: date, end: date) -> str:
    """The days a reminder covers, for its header: "Fri 4 Dec", or "Fri 4 Dec – Sun 6 Dec"."""
    last = date.fromordinal(end.toordinal() - 1)
    one = f"{first:%a} {first.day} {first:%b}"
    return one if first == last else f"{one} – {last:%a} {last.day} {last:%b}"


def build_reminder(parts: Sequence[ReminderPart], *, account: str, first: date, end: date,
                   max_listed: int = 20, claim_buttons: bool = True) -> Summary | None:
    """The reminder message for the unclaimed leads of the days `first` to before `end`; None
    when there are none (nothing is posted when every lead was claimed). No Claim buttons when
    not `claim_buttons` (SLACK_CLAIM_BUTTONS=off): the lines keep their short keys and row links."""
    parts = [p for p in parts if p.items]
    if not parts:
        return None
    total = sum(len(p.items) for p in parts)
    days = days_text(first, end)
    counts = _SEPARATOR.join(counted(len(p.items), p.noun) for p in parts)
    dated = (end - first).days > 1
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": trim(
        f"Still unclaimed from {days}: {counts}", HEADER_LIMIT)}}]
    # Blocks: the header, and a title and an "…and N more" a part; the rest are lines.
    shares = share_lines([len(p.items) for p in parts], min(max_listed, MAX_BLOCKS - 1 - 2 * len(parts)))
    # Room: the budget less what the titles and closings take, shared by the lines in proportion.
    reserve = sum(600 + 2 * _size({"u": p.tab_url, "t": p.tab}) for p in parts)
    room = BLOCKS_BUDGET - _size(blocks) - reserve
    per_line = room // max(1, sum(shares))
    listed = 0
    for part, share in zip(parts, shares):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*{counted(len(part.items), part.noun)}*{_SEPARATOR}<{url_safe(part.tab_url)}|{link_safe(part.tab)} tab>")}})
        budget = per_line * share
        shown = 0
        for item in part.items[:share]:
            link = row_url(part.tab_url, part.gid, item.row)
            bare = _size(item_block("", item.key, row_link=link, feed=part.feed, account=account,
                                    claim_button=claim_buttons))
            limit = max(MIN_LINE, min(LINE_LIMIT, per_line - bare))
            block = item_block(reminder_line(item, dated, limit), item.key, row_link=link, feed=part.feed,
                               account=account, claim_button=claim_buttons)
            if _size(block) > budget:
                break
            budget -= _size(block)
            blocks.append(block)
            shown += 1
        listed += shown
        more = len(part.items) - shown
        if more:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
                f"…and {more} more: <{url_safe(part.tab_url)}|open the {link_safe(part.tab)} tab>")}]})
    text = f"Still unclaimed from {days}: {counts}. Open the sheet to claim them."
    return Summary(text=text, blocks=blocks, listed=listed, total=total, fallback=text)



def _local(when: str, dated: bool) -> str:
    try:
        moment = datetime.strptime(when[:16], "%Y-%m-%d %H:%M")  # noqa: DTZ007 (local time, as the sheet shows it)
    except ValueError:
        return inert(when[:16])
    return f"{moment:%a} {moment.day} {moment:%b %H:%M}" if dated else f"{moment:%a %H:%M}"



def _size(obj: Any) -> int:
    # Measured as Slack's limit is, strictly: the blocks' JSON (text, structure, values and all).
    return len(json.dumps(obj)) + 2
