"""Chats: the typed record, how a raw Moneypenny item is read, and its stable key.

The chat key
------------
Moneypenny gives chats no id, so the key is derived from content that does not change when the
same chat is read again (by the "new since last call" cursor or by a date window)::

    sha256("v1" NUL chatTime NUL name NUL email NUL phone NUL entryURL NUL first transcript line)

truncated to 32 hex characters (128 bits). Each part is normalised first: `chatTime` parsed and
written back as ISO 8601 with microseconds (so "13:02:09.877" and "13:02:09.8770000" agree),
text stripped, the email lower-cased, the phone reduced to its digits. The rest of the
transcript is left out on purpose: a chat read while it is still going on would otherwise get a
second key once it has more lines.

Before visitor text was made safe (lib/text.py), the parts were hashed as sent: a chat whose key
parts hold a control character had another key then. That *former key* is kept on the record
(`former_keys`), so that a chat journaled or written under it is still known.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..destinations.sheet.cells import fit_cell
from ..destinations.sheet.writer import TabLayout
from ..destinations.slack.summary import LINE_LIMIT, MESSAGE_PREVIEW, inert, line_time, slack_size, trim
from ..errors import InvalidItem
from ..records import Rejected, parse_each, parse_time
from ..text import safe_text

KEY_VERSION = "v1"

# The chats tab's columns; the last holds the chat key.
HEADER = (
    "Chat time",
    "Name",
    "Company",
    "Email",
    "Phone",
    "Page URL",
    "Entry URL",
    "Transcript",
    "Variables",
    "Tags",
    "UTM source",
    "UTM medium",
    "UTM term",
    "Chat key",
)
CHATS_TAB = TabLayout(HEADER, "SHEET_TAB")

_LINE = re.compile(r"^\s*\d+\s*:\s*\[(?P<who>[^\]]*)\]\s*-\s*(?P<text>.*)$", re.S)
_NOT_DIGIT = re.compile(r"\D")


@dataclass(frozen=True)
class Chat:
    """One live chat as the rest of the system sees it."""

    key: str
    time: datetime  # timezone-aware, in CHAT_TIMEZONE
    name: str = field(default="", repr=False)
    company: str = field(default="", repr=False)
    email: str = field(default="", repr=False)
    phone: str = field(default="", repr=False)
    page_url: str = ""
    entry_url: str = ""
    transcript: tuple[str, ...] = field(default=(), repr=False)
    variables: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    tags: tuple[str, ...] = ()
    utm_source: str = ""
    utm_medium: str = ""
    utm_term: str = ""
    # The item as Moneypenny sent it, kept for the journal.
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)
    # The first visitor message, when the transcript no longer holds it (a cut journal item).
    preview: str | None = field(default=None, repr=False, compare=False, hash=False)
    # The key the recipe gave before text was made safe, when it differs (see the module docstring).
    former_keys: tuple[str, ...] = field(default=(), repr=False, compare=False, hash=False)

    def row(self) -> list[str]:
        """The chat's sheet row (chat_row)."""
        return chat_row(self)

    def summary_line(self, limit: int, dated: bool = False) -> str:
        """The chat's line in a Slack summary (chat_line)."""
        return chat_line(self, limit, dated)

    @property
    def first_visitor_message(self) -> str:
        """The visitor's first real message (not the "started a chat" system line), or ""."""
        if self.preview is not None:
            return self.preview
        return first_visitor_message(self.transcript)


# -- the chat's sheet row and Slack line ----------------------------------------------------

def chat_row(chat: Chat) -> list[str]:
    """The sheet row of a chat, in HEADER order; every cell is plain text."""
    cells = [
        # Not strftime("%Y"): it writes year 999 as "999", which sorts after "2026" as text.
        chat.time.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds"),
        chat.name,
        chat.company,
        chat.email,
        chat.phone,
        chat.page_url,
        chat.entry_url,
        "\n".join(chat.transcript),
        "\n".join(f"{name}: {value}" if name else value for name, value in chat.variables),
        ", ".join(chat.tags),
        chat.utm_source,
        chat.utm_medium,
        chat.utm_term,
        chat.key,
    ]
    return [fit_cell(c) for c in cells]


# Limits (by slack_size, before escaping) of name, company, page and first message in a line,
# tried in turn until the line fits its limit: escaping can make a short text long.
_LINE_LAYOUTS = ((60, 60, 80, MESSAGE_PREVIEW), (60, 0, 0, 60), (30, 0, 0, 30), (15, 0, 0, 0))


def chat_line(chat: Chat, limit: int = LINE_LIMIT, dated: bool = False) -> str:
    """One mrkdwn line for a chat (at most `limit` by slack_size): local time (with its day when
    `dated`), name, company, page, first message."""
    for layout in _LINE_LAYOUTS:
        line = _chat_line(chat, *layout, dated=dated)
        if slack_size(line) <= limit:
            return line
    return f"*{line_time(chat.time, dated)}*"


def _chat_line(chat: Chat, name: int, company: int, page: int, message: int, *, dated: bool) -> str:
    parts = [f"*{line_time(chat.time, dated)}*", f"*{inert(trim(chat.name, name)) or '(no name)'}*"]
    for text, limit in ((chat.company, company), (chat.page_url, page)):
        shown = inert(trim(text, limit)) if limit else ""
        if shown:
            parts.append(shown)
    line = " · ".join(parts)
    preview = inert(trim(chat.first_visitor_message, message)) if message else ""
    return line + f" — _{preview}_" if preview else line


def first_visitor_message(transcript: Sequence[str]) -> str:
    """The first line of a transcript the visitor wrote (not a system note such as the "started
    a chat" line with the pre-chat form), or ""."""
    for line in transcript:
        match = _LINE.match(line)
        if not match or match.group("who").strip().lower() != "visitor":
            continue
        text = match.group("text").strip()
        if text.startswith("[") and text.endswith("]"):
            continue  # a system note such as "[Visitor has started a chat. ...]"
        if text:
            return text
    return ""


def _text(value: Any) -> str:
    if type(value) is str:  # the common case first: a run reads tens of fields per chat
        return safe_text(value).strip()
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_text(value).strip()
    if isinstance(value, (int, float, bool)):
        return str(value)
    return safe_text(json.dumps(value, ensure_ascii=False, sort_keys=True))


def _lines(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        # Split first: "\r" and the other line breaks still separate lines, as they always did.
        return tuple([safe_text(line) for line in value.splitlines()])
    if isinstance(value, (list, tuple)):
        return tuple([safe_text(v).strip() if type(v) is str else _text(v) for v in value])
    return (_text(value),)


def _variables(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, (list, tuple)):
        return () if value in (None, "") else (("", _text(value)),)
    out = []
    for item in value:
        if isinstance(item, dict):
            out.append((_text(item.get("name")), _text(item.get("value"))))
        else:
            out.append(("", _text(item)))
    return tuple(out)


def _tags(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if not isinstance(value, (list, tuple)):
        return (_text(value),)
    out = []
    for item in value:
        if isinstance(item, dict):
            out.append(_text(item.get("name", item.get("value", item))))
        else:
            out.append(_text(item))
    return tuple(t for t in out if t)


def parse_chat_time(value: Any, tz: ZoneInfo) -> datetime:
    """Read `chatTime` as an aware datetime; a naive value is taken to be in `tz`."""
    return parse_time(value, "chatTime", tz, naive=tz)


def chat_key(item: dict[str, Any], time: datetime) -> str:
    """The stable key of a chat (see the module docstring for the recipe)."""
    return _key(
        time,
        _text(item.get("name")),
        _text(item.get("email")),
        _text(item.get("phone")),
        _text(item.get("entryURL")),
        _lines(item.get("transcript")),
    )


def _key(time: datetime, name: str, email: str, phone: str, entry_url: str, transcript: tuple[str, ...]) -> str:
    # The parts as the recipe names them, from fields already read by _text and _lines.
    parts = (
        KEY_VERSION,
        time.isoformat(timespec="microseconds"),
        name,
        email.lower(),
        _NOT_DIGIT.sub("", phone),
        entry_url,
        transcript[0].strip() if transcript else "",
    )
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]


def _former_keys(item: dict[str, Any], time: datetime, key: str, parts: tuple[str, ...]) -> tuple[str, ...]:
    # `parts`: this recipe's name, email, phone, entryURL and first transcript line (stripped).
    transcript = item.get("transcript")
    first: Any
    if isinstance(transcript, str):
        # Its first line as _lines splits it, without splitting the whole transcript again.
        first = next(iter(transcript.split("\n", 1)[0].splitlines()), "")
    elif isinstance(transcript, (list, tuple)):
        first = transcript[0] if transcript else None
    else:
        first = transcript
    name, email, phone, entry_url = item.get("name"), item.get("email"), item.get("phone"), item.get("entryURL")
    try:
        # Falsy parts ("", None, 0, []) read the same either way; text that is printable too.
        if "".join((name or "", email or "", phone or "", entry_url or "", first or "")).isprintable():
            return ()  # the common case: safe_text changed no part, so no second hash
    except TypeError:
        pass  # a part that is not text (a number, a list): compared below
    former = tuple(_former_text(v) for v in (name, email, phone, entry_url, first))
    if former == parts:
        return ()
    try:
        old = _key(time, former[0], former[1], former[2], former[3], former[4:])
    except UnicodeEncodeError:
        return ()  # a lone surrogate: the former recipe could not key (or journal) this chat at all
    return (old,) if old != key else ()  # a control character in the phone is no digit either way


def _former_text(value: Any) -> str:
    # _text as it was before safe_text.
    if isinstance(value, str):
        return value.strip()
    if value is None or isinstance(value, (int, float, bool)):
        return _text(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def parse_chat(item: Any, tz: ZoneInfo) -> Chat:
    """Turn one raw chat-log item into a Chat, or raise InvalidItem naming the field at fault."""
    if not isinstance(item, dict):
        raise InvalidItem(f"item is a JSON {type(item).__name__}, not an object")
    time = parse_chat_time(item.get("chatTime"), tz)
    # Each field is read once and shared by the key and the record.
    transcript = _lines(item.get("transcript"))
    name = _text(item.get("name"))
    email = _text(item.get("email"))
    phone = _text(item.get("phone"))
    entry_url = _text(item.get("entryURL"))
    key = _key(time, name, email, phone, entry_url, transcript)
    first = transcript[0].strip() if transcript else ""
    return Chat(
        key=key,
        time=time,
        name=name,
        company=_text(item.get("companyName")),
        email=email,
        phone=phone,
        page_url=_text(item.get("pageURL")),
        entry_url=entry_url,
        transcript=transcript,
        variables=_variables(item.get("variables")),
        tags=_tags(item.get("tags")),
        utm_source=_text(item.get("utM_Source", item.get("utm_Source"))),
        utm_medium=_text(item.get("utM_Medium", item.get("utm_Medium"))),
        utm_term=_text(item.get("utM_Term", item.get("utm_Term"))),
        raw=item,
        former_keys=_former_keys(item, time, key, (name, email, phone, entry_url, first)),
    )


def parse_batch(items: Sequence[Any], tz: ZoneInfo) -> tuple[list[Chat], list[Rejected]]:
    """Read a whole batch: good chats (deduplicated by key, in chat-time order) and rejects."""
    return parse_each(items, tz, parse_chat)
