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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .errors import InvalidChat
from .records import Source

KEY_VERSION = "v1"

_LINE = re.compile(r"^\s*\d+\s*:\s*\[(?P<who>[^\]]*)\]\s*-\s*(?P<text>.*)$", re.S)
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
_NOT_DIGIT = re.compile(r"\D")
# Text no store, encoder or sheet can be trusted with: C0/C1 control characters (and DEL) other
# than newline and tab, and lone UTF-16 surrogates (valid JSON escapes that no UTF-8 encoder takes).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


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

    def row(self) -> list[str]:
        """The chat's sheet row (lib.sheet.chat_row)."""
        from .sheet import chat_row

        return chat_row(self)

    def summary_line(self, limit: int) -> str:
        """The chat's line in a Slack summary (lib.slack.chat_line)."""
        from .slack import chat_line

        return chat_line(self, limit)

    @property
    def first_visitor_message(self) -> str:
        """The visitor's first real message (not the "started a chat" system line), or ""."""
        if self.preview is not None:
            return self.preview
        for line in self.transcript:
            match = _LINE.match(line)
            if not match or match.group("who").strip().lower() != "visitor":
                continue
            text = match.group("text").strip()
            if text.startswith("[") and text.endswith("]"):
                continue  # a system note such as "[Visitor has started a chat. ...]"
            if text:
                return text
        return ""


def _unsafe_char(match: re.Match[str]) -> str:
    return _REPLACEMENT if match.group(0) >= "\ud800" else ""


def safe_text(text: str) -> str:
    """Text with lone surrogates replaced by U+FFFD and control characters other than newline
    and tab dropped: what every encoder, the sheet and Slack can take, the same on every read."""
    if text.isprintable():  # the common case, checked in C: nothing to replace
        return text
    return _UNSAFE.sub(_unsafe_char, text)


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
    if value is None or value == "":
        raise InvalidChat("chatTime is missing")
    if not isinstance(value, str):
        raise InvalidChat("chatTime is not a string")
    raw = value.strip()
    if raw.endswith(("Z", "z")):  # ISO 8601 takes either case for UTC
        raw = raw[:-1] + "+00:00"
    # Python 3.11 reads up to 6 fractional digits; .NET services send up to 7.
    if "." in raw:
        raw = _LONG_FRACTION.sub(r"\1", raw)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidChat("chatTime is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        # The journal keeps the time in UTC and the sheet shows it in `tz`: a time at the edge
        # of the calendar (9999-12-31 west of UTC, 0001-01-01 east of it) fits in only one.
        parsed.astimezone(UTC)
        return parsed.astimezone(tz)
    except (OverflowError, ValueError):
        raise InvalidChat("chatTime is outside the years 1 to 9999 in UTC or CHAT_TIMEZONE") from None


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


def parse_chat(item: Any, tz: ZoneInfo) -> Chat:
    """Turn one raw chat-log item into a Chat, or raise InvalidChat naming the field at fault."""
    if not isinstance(item, dict):
        raise InvalidChat(f"item is a JSON {type(item).__name__}, not an object")
    time = parse_chat_time(item.get("chatTime"), tz)
    # Each field is read once and shared by the key and the record.
    transcript = _lines(item.get("transcript"))
    name = _text(item.get("name"))
    email = _text(item.get("email"))
    phone = _text(item.get("phone"))
    entry_url = _text(item.get("entryURL"))
    return Chat(
        key=_key(time, name, email, phone, entry_url, transcript),
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
    )


@dataclass(frozen=True)
class Rejected:
    """An item that could not be read: where it stood in the batch and why (never its data)."""

    index: int
    reason: str
    item: Any = field(repr=False)


def parse_batch(items: Sequence[Any], tz: ZoneInfo) -> tuple[list[Chat], list[Rejected]]:
    """Read a whole batch: good chats (deduplicated by key, in chat-time order) and rejects."""
    chats: dict[str, Chat] = {}
    rejected: list[Rejected] = []
    for index, item in enumerate(items):
        try:
            chat = parse_chat(item, tz)
        except InvalidChat as exc:
            rejected.append(Rejected(index, str(exc), item))
            continue
        chats.setdefault(chat.key, chat)
    return sort_chats(chats.values()), rejected


def sort_chats(chats: Iterable[Chat]) -> list[Chat]:
    return sorted(chats, key=lambda c: (c.time, c.key))


# -- the journal's copy -------------------------------------------------------------------------

# A chat whose JSON takes more bytes than this is journaled cut (a Firestore document holds at
# most 1 MiB, key and states included).
JOURNAL_ITEM_BYTES = 900_000
# Marks a cut journal item; it holds the key of the full chat and its first visitor message.
CUT_FIELD = "__moneypenny_sync_cut__"
PREVIEW_CHARS = 1_000  # of the first visitor message, whitespace collapsed; Slack shows far less
_MIN_CELL = 1_000
# Sheet column → the item field that holds its cell in a cut journal item.
_CUT_COLUMNS = (
    ("Name", "name"), ("Company", "companyName"), ("Email", "email"), ("Phone", "phone"),
    ("Page URL", "pageURL"), ("Entry URL", "entryURL"), ("Transcript", "transcript"),
    ("Variables", "variables"), ("Tags", "tags"), ("UTM source", "utM_Source"),
    ("UTM medium", "utM_Medium"), ("UTM term", "utM_Term"),
)
_ascii_json = json.JSONEncoder(separators=(",", ":")).encode
_utf8_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_text(value: Any) -> str:
    """Compact JSON that any UTF-8 store takes: non-ASCII kept as is, unless a lone surrogate
    is there (then everything is escaped, which reads back the same)."""
    text = _utf8_json(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _ascii_json(value)
    return text


def journal_item(chat: Chat, max_bytes: int = JOURNAL_ITEM_BYTES) -> dict[str, Any]:
    """What the journal keeps of a chat: the item as Moneypenny sent it, or, when that takes more
    than `max_bytes` as JSON, only what its sheet row and its summary line need.

    The cut item holds the row's cells (each already cut at the sheet's cell limit, so the row
    is the one the full chat gives), the first visitor message and the key of the full chat.
    `parse_journal_chat` reads both forms.
    """
    raw = chat.raw
    # ASCII-escaped JSON is never shorter than what a store writes, whatever the encoding.
    if CUT_FIELD not in raw and len(_ascii_json(raw)) <= max_bytes:
        return raw
    return _cut_item(chat, max_bytes)


def _cut_item(chat: Chat, max_bytes: int) -> dict[str, Any]:
    from .sheet import CELL_LIMIT, HEADER, chat_row, fit_cell  # the sheet's own cell rules

    row = chat_row(chat)
    cells = {name: row[HEADER.index(column)] for column, name in _CUT_COLUMNS}
    preview = " ".join(chat.first_visitor_message.split())[:PREVIEW_CHARS]
    limit = CELL_LIMIT
    while True:
        item = {
            "chatTime": chat.time.isoformat(timespec="microseconds"),
            **cells,
            CUT_FIELD: {"key": chat.key, "visitorMessage": preview},
        }
        if len(json_text(item).encode("utf-8")) <= max_bytes or limit <= _MIN_CELL:
            return item
        # Only cells of wide characters at the limit get here: cut them further, row and all.
        limit = max(limit // 2, _MIN_CELL)
        cells = {name: fit_cell(text, limit) for name, text in cells.items()}


def parse_journal_chat(item: Any, tz: ZoneInfo) -> Chat:
    """A chat from the journal: a whole item as parse_chat reads it, or a cut one (journal_item)."""
    cut = item.get(CUT_FIELD) if isinstance(item, dict) else None
    if not isinstance(cut, dict):
        return parse_chat(item, tz)
    time = parse_chat_time(item.get("chatTime"), tz)

    def cell(name: str) -> str:
        value = item.get(name)
        return safe_text(value) if isinstance(value, str) else _text(value)

    transcript, variables, tags = cell("transcript"), cell("variables"), cell("tags")
    return Chat(
        key=_text(cut.get("key")) or chat_key(item, time),
        time=time,
        name=cell("name"),
        company=cell("companyName"),
        email=cell("email"),
        phone=cell("phone"),
        page_url=cell("pageURL"),
        entry_url=cell("entryURL"),
        transcript=(transcript,) if transcript else (),
        variables=(("", variables),) if variables else (),
        tags=(tags,) if tags else (),
        utm_source=cell("utM_Source"),
        utm_medium=cell("utM_Medium"),
        utm_term=cell("utM_Term"),
        raw=item,
        preview=safe_text(preview) if isinstance(preview := cut.get("visitorMessage"), str) else "",
    )


def _with_key(chat: Chat, key: str) -> Chat:
    return dataclasses.replace(chat, key=key)


# The live chats as the sync core sees them (lib/records.py).
CHATS = Source(
    name="chat",
    parse_batch=parse_batch,
    journal_item=journal_item,
    from_journal=parse_journal_chat,
    with_key=_with_key,
)
