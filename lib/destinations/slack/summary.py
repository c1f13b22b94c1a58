"""The run's Slack summary: Block Kit within Slack's limits (measured as escaped JSON), a
plain-text fallback, and visitor text made inert (no mention, link, formatting or reordering).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...records import Record

MAX_BLOCKS = 50
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
# Slack rejects messages whose blocks hold more than about 12,000 characters of text
# (msg_blocks_too_long; blocks_size); stay clear of it whatever the chats hold.
BLOCKS_BUDGET = 10_000
# A chat's line, by slack_size: at most this, less when many chats share the message.
LINE_LIMIT = 400
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


# A listed item's own section: its line, its row link labelled with its short key, and its
# Claim button (#23). Slack counts a message's text, not its containers ("12,000 text
# characters with a buffer for block containers", Slack on bolt-js #2509): blocks_size.
CLAIM_ACTION = "claim"
CLAIM_LABEL = "Claim"
SHORT_KEY = 8
BUTTON_VALUE_LIMIT = 2000  # Slack's limit of a button's value
MIN_ITEM_LINE = 40  # an item's line (time and name at the least) when many share the message
_SEPARATOR = " · "
_NOT_SHOWN = re.compile(r"[^A-Za-z0-9-]")


def blocks_size(blocks: Any) -> int:
    """What blocks count against Slack's message limit, measured as the Slack stand-in measures
    it: the slack_size of every text object's text (sections, headers, context elements, button
    labels); block and element structure, action ids and button values not counted."""
    if isinstance(blocks, list):
        return sum(blocks_size(b) for b in blocks)
    if not isinstance(blocks, dict):
        return 0
    size = 0
    if blocks.get("type") in ("mrkdwn", "plain_text") and isinstance(blocks.get("text"), str):
        size += slack_size(blocks["text"])
    for value in blocks.values():
        if isinstance(value, (dict, list)):
            size += blocks_size(value)
    return size


def short_key(key: str) -> str:
    """The item's short key as a line shows it: the last 8 characters of its key (anything but
    letters, digits and `-` shown as `?`: a call id is Moneypenny's text)."""
    return _NOT_SHOWN.sub("?", key[-SHORT_KEY:])


def claim_value(account: str, feed: str, key: str) -> str:
    """A Claim button's value: compact JSON {"a": account, "f": feed, "k": key} ("" account
    without ACCOUNTS)."""
    return json.dumps({"a": account, "f": feed, "k": key}, separators=(",", ":"), ensure_ascii=False)


def url_safe(url: str) -> str:
    # A URL inside <url|label>: `|` and `>` would end it early, `<` open another.
    return url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")


def counted(n: int, noun: str) -> str:
    """"1 chat", "3 chats": a count and its noun."""
    return f"{n} {noun if n == 1 else noun + 's'}"


def link_safe(text: str) -> str:
    """A tab name (a setting) made safe inside <url|text>: `|` and `>` would end the link early."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "¦")


def share_lines(sizes: list[int], max_listed: int) -> list[int]:
    """How many of `max_listed` lines each part lists: the smaller parts take what they need
    (at least one line each), the largest the rest."""
    out = [0] * len(sizes)
    left = max_listed
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for done, i in enumerate(order):
        out[i] = max(1, min(sizes[i], left // (len(sizes) - done)))
        left -= out[i]
    return out


def item_reference(key: str, row_link: str | None) -> str:
    """The item's short key, linked to its row when the row is known."""
    short = short_key(key)
    return f"<{url_safe(row_link)}|{short}>" if row_link else f"`{short}`"


def item_block(line: str, key: str, *, row_link: str | None, feed: str, account: str,
               claim_button: bool = True) -> dict[str, Any]:
    """One listed item: its line with its short key (linked to its row) and its Claim button
    (left out when `claim_button` is False, SLACK_CLAIM_BUTTONS=off, or when the key is too long
    for a button's value)."""
    block: dict[str, Any] = {"type": "section", "text": {
        "type": "mrkdwn", "text": f"{line}{_SEPARATOR}{item_reference(key, row_link)}"}}
    value = claim_value(account, feed, key)
    if claim_button and len(value) <= BUTTON_VALUE_LIMIT:
        block["accessory"] = {"type": "button", "text": {"type": "plain_text", "text": CLAIM_LABEL},
                              "action_id": CLAIM_ACTION, "value": value}
    return block


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
    row_links: Mapping[str, str] | None = None,
    feed: str = "chats",
    account: str = "",
    claim_buttons: bool = True,
) -> Summary:
    """One message for the records (chats) of a run, always inside Slack's limits (measured by
    blocks_size); each listed record gives its own section: its line (Record.summary_line), its
    short key linked to its row (`row_links`, by key; the key alone when its row is not known)
    and its Claim button (`feed`, `account` in its value; none when not `claim_buttons`). `budget` and `max_blocks` are lower
    when the message is one part of a summary of several sources. Each line carries its day as
    well as its time when `dated` (None: when the records span more than one local day)."""
    chats = sorted(chats, key=lambda c: (c.time, c.key))
    links = row_links or {}
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
    used = blocks_size(blocks)
    listed = 0
    # Each item gets an equal share of the room, so that heavy text shortens lines, not the list.
    share = (budget - reserve - used) // max(1, min(total, max_listed))
    for chat in chats[:max_listed]:
        reference = slack_size(_SEPARATOR + item_reference(chat.key, links.get(chat.key))) + (
            slack_size(CLAIM_LABEL) if claim_buttons else 0)
        line_limit = max(MIN_ITEM_LINE, min(LINE_LIMIT, share - reference))
        block = item_block(chat.summary_line(line_limit, dated), chat.key, row_link=links.get(chat.key),
                           feed=feed, account=account, claim_button=claim_buttons)
        size = blocks_size(block)
        if used + size + reserve > budget or len(blocks) >= max_blocks - 1:
            break
        blocks.append(block)
        used += size
        listed += 1
    more = total - listed
    link = f"<{sheet_url}|{link_text}>"
    closing = f"…and {more} more. {link}" if more else link
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": closing}]})
    text = f"{total} {noun} from Moneypenny ({span}). Open the sheet: {sheet_url}"
    fallback = f"{total} {noun} from Moneypenny ({span}); the list could not be shown here. Open the sheet: {sheet_url}"
    return Summary(text=text, blocks=blocks, listed=listed, total=total, fallback=fallback)
