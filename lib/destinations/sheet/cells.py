"""The sheet's cell rules, the same for every tab: cells cut to the Sheets limit, rows grouped
into appends by payload size, a tab's name quoted for a range. A source's columns and rows are
the source's own (lib/sources/chats.py, lib/sources/calls.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

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
