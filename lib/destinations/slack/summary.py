"""The run's Slack summary: Block Kit within Slack's limits (measured as escaped JSON), a
plain-text fallback, and visitor text made inert (no mention, link, formatting or reordering).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...records import Record

MAX_BLOCKS = 50
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
# Slack rejects messages whose blocks add up to about 12-13k characters (msg_blocks_too_long);
# stay clear of it whatever the chats hold.
BLOCKS_BUDGET = 10_000
# A chat's line, by slack_size: at most this, less when many chats share the message.
LINE_LIMIT = 400
MIN_LINE = 100
MESSAGE_PREVIEW = 120
ELLIPSIS = "…"

# Text that Slack clients would turn into a link: URLs, bare domains, e-mail addresses.
_LINKY = re.compile(
    r"(?:\b(?:https?|ftp|mailto|tel|sms|slack|file):(?://)?\S+)"
    r"|(?:\bwww\.\S+)"
    r"|(?:[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+)"
    r"|(?:\b(?:[a-z0-9\-]+\.)+[a-z]{2,}\b(?:/\S*)?)",
    re.IGNORECASE,
)
# Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the marks
# (LRM, RLM, ALM): in visitor text they would reorder the rest of the summary line.
_BIDI_CONTROLS = dict.fromkeys([0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
# mrkdwn's format markers, shown as look-alikes: a name holding `*` inside our own `*…*` would
# make `**` and bold (or unbold) the wrong text.
_MARKERS = str.maketrans({"*": "∗", "_": "ˍ", "~": "˜"})


def slack_size(text: str) -> int:
    """What a text counts against Slack's limits, measured as this module and the Slack stand-in
    both measure: its length as ASCII-escaped JSON (a CJK letter or a combining accent counts 6,
    an emoji 12). Never less than the characters, code points or UTF-16 units Slack may count."""
    return len(json.dumps(text)) - 2


def _json_size(obj: Any) -> int:
    return len(json.dumps(obj))


def inert(text: str) -> str:
    """Visitor text made safe for mrkdwn: no mention, no channel ping, no link, no formatting.

    `&`, `<`, `>` are escaped (so `<!channel>`, `<@U…>`, `<http://x|y>` cannot form), and
    anything Slack would auto-link is shown as inline code, which Slack never links. Bidi
    controls are removed, and `*`, `_`, `~` outside those code spans become look-alikes.
    """
    text = text.translate(_BIDI_CONTROLS)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("`", "ˋ")  # a backtick could close our code span early
    text = " ".join(text.split())  # newlines would break the one-line-per-chat layout
    out: list[str] = []
    pos = 0
    for match in _LINKY.finditer(text):
        out.append(text[pos:match.start()].translate(_MARKERS))
        out.append(f"`{match.group(0)}`")
        pos = match.end()
    out.append(text[pos:].translate(_MARKERS))
    return "".join(out)


def trim(text: str, limit: int) -> str:
    """The text on one line, cut with "…" to at most `limit` by slack_size."""
    text = " ".join(text.split())
    if slack_size(text) <= limit:
        return text
    room = limit - slack_size(ELLIPSIS)
    kept: list[str] = []
    for ch in text:
        room -= slack_size(ch)
        if room < 0:
            break
        kept.append(ch)
    return "".join(kept).rstrip() + ELLIPSIS


def line_time(moment: datetime, dated: bool = False) -> str:
    """A summary line's local time: "09:32", or "Tue 3 Dec 09:32" when the summary spans more
    than one local day (`dated`): a backfill's lines over 40 days would otherwise be bare times."""
    return f"{moment:%a} {moment.day} {moment:%b %H:%M}" if dated else f"{moment:%H:%M}"


def spans_days(records: Iterable[Record]) -> bool:
    """Whether the records' local times (each record's time is in CHAT_TIMEZONE) fall on more than one day."""
    return len({r.time.date() for r in records}) > 1


def _span(chats: Sequence[Record]) -> str:
    first, last = chats[0].time, chats[-1].time
    if first.date() == last.date():
        day = first.strftime("%a %d %b")
        return f"{day} {first:%H:%M}" if first == last else f"{day} {first:%H:%M}–{last:%H:%M}"
    return f"{first:%d %b %H:%M} – {last:%d %b %H:%M}"


@dataclass
class Summary:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    listed: int = 0
    total: int = 0
    # Posted instead when Slack refuses the summary: counts, time span and the sheet link only.
    fallback: str = ""


_SECTION_OVERHEAD = _json_size({"type": "section", "text": {"type": "mrkdwn", "text": ""}}) + 2  # + ", "
_NEWLINE = slack_size("\n")


def build_summary(
    chats: Sequence[Record],
    *,
    sheet_url: str,
    max_listed: int = 20,
    late: int = 0,
    title: str = "new chat",
    budget: int = BLOCKS_BUDGET,
    max_blocks: int = MAX_BLOCKS,
    link_text: str = "Open the sheet",
    dated: bool | None = None,
) -> Summary:
    """One message for the records (chats) of a run, always inside Slack's limits (measured by
    slack_size); each listed record gives its own line (Record.summary_line). `budget` and
    `max_blocks` are lower when the message is one part of a summary of several sources. Each
    line carries its day as well as its time when `dated` (None: when the records span more
    than one local day)."""
    chats = sorted(chats, key=lambda c: (c.time, c.key))
    if dated is None:
        dated = spans_days(chats)
    total = len(chats)
    noun = title if total == 1 else title + "s"
    span = _span(chats) if chats else ""
    header = trim(f"{total} {noun} · {span}" if span else f"{total} {noun}", HEADER_LIMIT)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    if late:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f":hourglass: {late} of these {'is' if late == 1 else 'are'} late: "
                        "an earlier run could not post them.",
                    }
                ],
            }
        )
    # Room for the closing context block and its link, whatever the sheet URL is.
    reserve = 400 + slack_size(sheet_url)
    used = _json_size(blocks)
    listed = 0
    section: list[str] = []
    section_size = 0  # slack_size of the section's text so far

    def flush() -> None:
        nonlocal used, section_size
        if section:
            block = {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(section)}}
            blocks.append(block)
            used += _json_size(block) + 2
            section.clear()
            section_size = 0

    # Each line gets an equal share of the room, so that heavy text shortens lines, not the list.
    room = budget - reserve - used - 3 * _SECTION_OVERHEAD
    line_limit = max(MIN_LINE, min(LINE_LIMIT, room // max(1, min(total, max_listed)) - _NEWLINE))
    for chat in chats[:max_listed]:
        line = chat.summary_line(line_limit, dated)
        size = slack_size(line)
        if section and section_size + _NEWLINE + size > SECTION_LIMIT - 100:
            flush()
        grown = section_size + (_NEWLINE if section else 0) + size
        if used + _SECTION_OVERHEAD + grown + reserve > budget:
            break
        if len(blocks) + (1 if section else 0) >= max_blocks - 2:
            break
        section.append(line)
        section_size = grown
        listed += 1
    flush()
    more = total - listed
    link = f"<{sheet_url}|{link_text}>"
    closing = f"…and {more} more. {link}" if more else link
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": closing}]})
    text = f"{total} {noun} from Moneypenny ({span}). Open the sheet: {sheet_url}"
    fallback = f"{total} {noun} from Moneypenny ({span}); the list could not be shown here. Open the sheet: {sheet_url}"
    return Summary(text=text, blocks=blocks, listed=listed, total=total, fallback=fallback)
