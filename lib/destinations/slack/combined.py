"""One Slack summary for several sources (live chats and call messages): a header that counts
each ("3 new chats · 2 new calls"), then a part per source with its own lines and its own
"and N more" link to its tab, all inside the limits one summary has (lib/destinations/slack/summary.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...records import Record, sort_records
from .summary import (
    BLOCKS_BUDGET,
    HEADER_LIMIT,
    MAX_BLOCKS,
    Summary,
    _span,
    blocks_size,
    build_summary,
    counted,
    link_safe,
    share_lines,
    spans_days,
    trim,
)


@dataclass(frozen=True)
class SummaryPart:
    """One source's share of a summary: its records, its noun ("new call"), its tab and the
    link that opens the sheet at that tab ("": the summary's sheet_url); its feed (named in its
    Claim buttons) and, by key, the links that open its records' rows."""

    records: Sequence[Record]
    title: str
    tab: str
    url: str = ""
    feed: str = "chats"
    row_links: Mapping[str, str] = field(default_factory=dict)




def build_combined(parts: Sequence[SummaryPart], *, sheet_url: str, max_listed: int = 20, late: int = 0,
                   account: str = "", budget: int = BLOCKS_BUDGET, claim_buttons: bool = True) -> Summary:
    """One message for the records of every source of a run (parts without records left out);
    `account` goes into every Claim button's value (no buttons when not `claim_buttons`:
    SLACK_CLAIM_BUTTONS=off); `budget`: its blocks' size (blocks_size).

    A single part is the one-source summary itself (build_summary), word for word.
    """
    parts = [p for p in parts if p.records]
    if len(parts) <= 1:
        only = parts[0] if parts else SummaryPart((), "new chat", "")
        return build_summary(only.records, sheet_url=only.url or sheet_url, max_listed=max_listed, late=late,
                             title=only.title, row_links=only.row_links, feed=only.feed, account=account,
                             budget=budget, claim_buttons=claim_buttons)
    counts = " · ".join(counted(len(p.records), p.title) for p in parts)
    every = sort_records([r for p in parts for r in p.records])
    span = _span(every)
    dated = spans_days(every)  # one rule for every part: dated lines when the whole summary spans days
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": trim(f"{counts} · {span}", HEADER_LIMIT)}}]
    if late:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f":hourglass: {late} of these {'is' if late == 1 else 'are'} late: an earlier run could not post them.")}]})
    shares = share_lines([len(p.records) for p in parts], max_listed)
    # Each part's room and blocks in proportion to its share of the lines (an item is a block
    # of its own): a 40-line summary of 25 chats and 15 calls lists all 40.
    room = budget - blocks_size(blocks)
    spare = MAX_BLOCKS - len(blocks) - sum(share + 2 for share in shares)  # + its title and closing
    listed = 0
    for part, share in zip(parts, shares):
        own_budget = room * (share + 1) // sum(s + 1 for s in shares)
        max_blocks = share + 2 + max(0, spare) // len(parts)
        own = build_summary(part.records, sheet_url=part.url or sheet_url, max_listed=share, title=part.title,
                            budget=own_budget, max_blocks=max_blocks, dated=dated, link_text=f"Open the {link_safe(part.tab)} tab",
                            row_links=part.row_links, feed=part.feed, account=account, claim_buttons=claim_buttons)
        # The part's own header becomes its title line.
        title = {"type": "section", "text": {"type": "mrkdwn", "text": f"*{counted(len(part.records), part.title)}*"}}
        blocks += [title, *own.blocks[1:]]
        listed += own.listed
    total = sum(len(p.records) for p in parts)
    words = " and ".join(counted(len(p.records), p.title) for p in parts)
    return Summary(
        text=f"{words} from Moneypenny ({span}). Open the sheet: {sheet_url}",
        blocks=blocks, listed=listed, total=total,
        fallback=f"{words} from Moneypenny ({span}); the list could not be shown here. Open the sheet: {sheet_url}",
    )
