"""The chats feed as the sync core sees it (a `lib.records.Source`): how a chat is kept in the
journal (whole, or cut when it is too large for a store document) and read back.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from zoneinfo import ZoneInfo

from ..destinations.sheet.cells import CELL_LIMIT, fit_cell
from ..records import CUT_FIELD, JOURNAL_ITEM_BYTES, MIN_CELL, Source
from ..text import ascii_json, json_text, safe_text
from .chats import HEADER, Chat, _text, chat_key, chat_row, parse_batch, parse_chat, parse_chat_time

PREVIEW_CHARS = 1_000  # of the first visitor message, whitespace collapsed; Slack shows far less
# Sheet column → the item field that holds its cell in a cut journal item.
_CUT_COLUMNS = (
    ("Name", "name"), ("Company", "companyName"), ("Email", "email"), ("Phone", "phone"),
    ("Page URL", "pageURL"), ("Entry URL", "entryURL"), ("Transcript", "transcript"),
    ("Variables", "variables"), ("Tags", "tags"), ("UTM source", "utM_Source"),
    ("UTM medium", "utM_Medium"), ("UTM term", "utM_Term"),
)
def journal_item(chat: Chat, max_bytes: int = JOURNAL_ITEM_BYTES) -> dict[str, Any]:
    """What the journal keeps of a chat: the item as Moneypenny sent it, or, when that takes more
    than `max_bytes` as JSON, only what its sheet row and its summary line need.

    The cut item holds the row's cells (each already cut at the sheet's cell limit, so the row
    is the one the full chat gives), the first visitor message and the key of the full chat.
    `parse_journal_chat` reads both forms.
    """
    raw = chat.raw
    # ASCII-escaped JSON is never shorter than what a store writes, whatever the encoding.
    if CUT_FIELD not in raw and len(ascii_json(raw)) <= max_bytes:
        return raw
    return _cut_item(chat, max_bytes)


def _cut_item(chat: Chat, max_bytes: int) -> dict[str, Any]:
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
        if len(json_text(item).encode("utf-8")) <= max_bytes or limit <= MIN_CELL:
            return item
        # Only cells of wide characters at the limit get here: cut them further, row and all.
        limit = max(limit // 2, MIN_CELL)
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
