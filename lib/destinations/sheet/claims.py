"""A claim in the sheet: the item's row found by its key column at the moment of the click, and
its Owner and Claimed at cells (found by their header, wherever a person moved them) written as
plain text.

The sync never writes those two columns (lane sales-links adds them to the right of its own
when missing); a name typed there by hand counts as a claim, so a row whose Owner is not empty
is never written over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...errors import ClaimColumnsMissing, cut
from ...text import safe_text
from .cells import quote_tab
from .writer import SheetWriter

OWNER = "Owner"
CLAIMED_AT = "Claimed at"
NAME_LIMIT = 100  # a name in the Owner cell: one line, at most this many characters
_SPACES = re.compile(r"\s+")


def column_letter(index: int) -> str:
    """The A1 letters of the 0-based column `index` (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def cell_text(text: str, limit: int = NAME_LIMIT) -> str:
    """Text for a claim's cell: one line, no control character, cut to `limit`. Written RAW, so
    a name such as `=HYPERLINK(...)` stays text, never a formula."""
    return _SPACES.sub(" ", safe_text(text)).strip()[:limit]


@dataclass(frozen=True)
class ClaimRow:
    """Where the item's row is now (1-based `row`), what its Owner cell holds ("" when empty),
    and the 0-based columns of Owner and Claimed at (None when the tab has no such header, in
    any case)."""

    row: int
    owner: str
    owner_column: int | None
    claimed_column: int | None


class ClaimCells:
    """The Owner and Claimed at cells of one tab, through the tab's SheetWriter (its session,
    its layout and its error sorting)."""

    def __init__(self, writer: SheetWriter):
        self.writer = writer

    def find(self, key: str) -> ClaimRow | None:
        """The row whose key column holds `key` now (None: no such row, e.g. deleted). Two reads:
        row 1 with the key column, then the row's Owner cell. (Rows are addressed by number: a
        sort in the moment between this read and the write is not seen.)"""
        w = self.writer
        column = w.layout.last_column
        w.counters.reads += 1
        answer = w._call(
            "reading the key column for a claim",
            lambda: w.http.values_batch_get(
                w.sheet_id, [f"{quote_tab(w.tab)}!1:1", f"{quote_tab(w.tab)}!{column}2:{column}"],
                params={"majorDimension": "ROWS"}),
        )
        ranges: list[dict[str, Any]] = answer.get("valueRanges") or [{}, {}]
        # Any case, as the sync that adds them when missing finds them (people retype headers).
        header = [str(v).strip().casefold() for v in ((ranges[0].get("values") or [[]])[0])]
        keys = [str(r[0]).strip() if r else "" for r in (ranges[1].get("values") or [])]
        found = next((i for i, cell in enumerate(keys) if cell and w.layout.key_of_cell(cell) == key), None)
        if found is None:
            return None
        row = found + 2
        owner_column = header.index(OWNER.casefold()) if OWNER.casefold() in header else None
        claimed_column = header.index(CLAIMED_AT.casefold()) if CLAIMED_AT.casefold() in header else None
        owner = ""
        if owner_column is not None:
            w.counters.reads += 1
            cells = w._call(
                "reading the Owner cell for a claim",
                lambda: w.http.values_get(w.sheet_id, f"{quote_tab(w.tab)}!{column_letter(owner_column)}{row}"),
            ).get("values") or [[""]]
            owner = str(cells[0][0] if cells[0] else "").strip()
        return ClaimRow(row, owner, owner_column, claimed_column)

    def write(self, at: ClaimRow, owner: str, claimed_at: str) -> None:
        """Write `owner` and `claimed_at` into the row's Owner and Claimed at cells (one write,
        RAW: never a formula). ClaimColumnsMissing when the tab lacks either header."""
        w = self.writer
        if at.owner_column is None or at.claimed_column is None:
            missing = [name for name, col in ((OWNER, at.owner_column), (CLAIMED_AT, at.claimed_column)) if col is None]
            raise ClaimColumnsMissing(
                f"tab {cut(w.tab)!r} ({w.layout.setting}) has no {' or '.join(repr(m) for m in missing)} column in row 1",
                fix=f"Add the headers {OWNER!r} and {CLAIMED_AT!r} to row 1 (the next run adds them when missing); "
                    "the claim is written then.")
        body = {"valueInputOption": "RAW", "data": [
            {"range": f"{quote_tab(w.tab)}!{column_letter(at.owner_column)}{at.row}", "values": [[cell_text(owner)]]},
            {"range": f"{quote_tab(w.tab)}!{column_letter(at.claimed_column)}{at.row}", "values": [[claimed_at]]},
        ]}
        w.counters.writes += 1
        w._call("writing a claim's Owner and Claimed at", lambda: w.http.values_batch_update(w.sheet_id, body))
