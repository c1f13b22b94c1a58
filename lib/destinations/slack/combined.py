"""One Slack summary for several sources (live chats and call messages): a header that counts
each ("3 new chats · 2 new calls"), then a part per source with its own lines and its own
"and N more" link to its tab, all inside the limits one summary has (lib/destinations/slack/summary.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...records import Record, sort_records
from .summary import (
    BLOCKS_BUDGET,
    HEADER_LIMIT,
    MAX_BLOCKS,
    Summary,
    _json_size,
    _span,
    build_summary,
    spans_days,
    trim,
)


@dataclass(frozen=True)
class SummaryPart:
    """One source's share of a summary: its records, its noun ("new call"), its tab and the
    link that opens the sheet at that tab ("": the summary's sheet_url)."""

    records: Sequence[Record]
    title: str
    tab: str
    url: str = ""


def _counted(n: int, title: str) -> str:
    return f"{n} {title if n == 1 else title + 's'}"


def _link_safe(text: str) -> str:
    # A tab name (a setting) inside <url|text>: `|` and `>` would end the link early.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "¦")


def _shares(sizes: list[int], max_listed: int) -> list[int]:
    # The smaller parts take what they need (at least one line each), the largest the rest.
    shares = [0] * len(sizes)
    left = max_listed
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for done, i in enumerate(order):
        shares[i] = max(1, min(sizes[i], left // (len(sizes) - done)))
        left -= shares[i]
    return shares


def build_combined(parts: Sequence[SummaryPart], *, sheet_url: str, max_listed: int = 20, late: int = 0) -> Summary:
    """One message for the records of every source of a run (parts without records left out).

    A single part is the one-source summary itself (build_summary), word for word.
    """
    parts = [p for p in parts if p.records]
    if len(parts) <= 1:
        only = parts[0] if parts else SummaryPart((), "new chat", "")
        return build_summary(only.records, sheet_url=only.url or sheet_url, max_listed=max_listed, late=late,
                             title=only.title)
    counts = " · ".join(_counted(len(p.records), p.title) for p in parts)
    every = sort_records([r for p in parts for r in p.records])
    span = _span(every)
    dated = spans_days(every)  # one rule for every part: dated lines when the whole summary spans days
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": trim(f"{counts} · {span}", HEADER_LIMIT)}}]
    if late:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f":hourglass: {late} of these {'is' if late == 1 else 'are'} late: an earlier run could not post them.")}]})
    budget = (BLOCKS_BUDGET - _json_size(blocks)) // len(parts)
    max_blocks = (MAX_BLOCKS - len(blocks)) // len(parts)
    listed = 0
    for part, share in zip(parts, _shares([len(p.records) for p in parts], max_listed)):
        own = build_summary(part.records, sheet_url=part.url or sheet_url, max_listed=share, title=part.title,
                            budget=budget, max_blocks=max_blocks, dated=dated, link_text=f"Open the {_link_safe(part.tab)} tab")
        # The part's own header becomes its title line.
        title = {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_counted(len(part.records), part.title)}*"}}
        blocks += [title, *own.blocks[1:]]
        listed += own.listed
    total = sum(len(p.records) for p in parts)
    words = " and ".join(_counted(len(p.records), p.title) for p in parts)
    return Summary(
        text=f"{words} from Moneypenny ({span}). Open the sheet: {sheet_url}",
        blocks=blocks, listed=listed, total=total,
        fallback=f"{words} from Moneypenny ({span}); the list could not be shown here. Open the sheet: {sheet_url}",
    )
