"""What the sheet holds: the chats tab's columns, one chat's row, cells cut to the Sheets limit,
rows grouped into appends by payload size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ...sources.chats import Chat

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
LAST_COLUMN = "N"

CELL_LIMIT = 50_000
CUT_MARKER = "\n… [cut: {n} more characters]"
# Google recommends request bodies of at most about 2 MB; stay well inside it.
MAX_APPEND_BYTES = 1_500_000


def fit_cell(text: str, limit: int = CELL_LIMIT) -> str:
    """Cut text that would exceed the Sheets cell limit, with a visible marker."""
    if len(text) <= limit:
        return text
    # Sized with the whole length's digits, the marker is never shorter than the one shown.
    keep = limit - len(CUT_MARKER.format(n=len(text)))
    return text[:keep] + CUT_MARKER.format(n=len(text) - keep)


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


def chunk_rows(rows: Sequence[list[str]], max_bytes: int = MAX_APPEND_BYTES) -> list[list[list[str]]]:
    """Split rows into as few appends as the payload guidance allows (one, nearly always)."""
    chunks: list[list[list[str]]] = []
    current: list[list[str]] = []
    size = 0
    for row in rows:
        row_size = len(json.dumps(row, ensure_ascii=False).encode("utf-8")) + 1
        if current and size + row_size > max_bytes:
            chunks.append(current)
            current, size = [], 0
        current.append(row)
        size += row_size
    if current:
        chunks.append(current)
    return chunks


def quote_tab(tab: str) -> str:
    return "'" + tab.replace("'", "''") + "'"
