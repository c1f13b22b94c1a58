"""A1 notation as the Sheets API reads it: sheet names (quoted with '' escapes or bare),
single cells, boxes, whole rows ("1:1"), whole columns ("A:A") and open-ended boxes ("N2:N").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CELL = re.compile(r"^\$?([A-Za-z]{0,3})\$?([0-9]*)$")
_BARE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOOKS_LIKE_CELL = re.compile(r"^([A-Za-z]{1,3}[0-9]+|[Rr][0-9]*[Cc][0-9]*)$")


class RangeError(ValueError):
    """The text is not a range the API would accept."""


@dataclass(frozen=True)
class Box:
    """Zero-based, half-open bounds; an end of None means "to the edge of the grid"."""

    r0: int = 0
    r1: int | None = None
    c0: int = 0
    c1: int | None = None
    single: bool = False  # written as one cell ("B2"): a write may spill beyond it
    whole: bool = False  # no A1 part at all: the whole sheet


def col_index(letters: str) -> int:
    """'A' -> 0, 'Z' -> 25, 'AA' -> 26."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def col_letters(index: int) -> str:
    """0 -> 'A', 26 -> 'AA'."""
    index += 1
    out = ""
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def cell_name(row: int, col: int) -> str:
    """Zero-based (row, col) -> 'B3'."""
    return f"{col_letters(col)}{row + 1}"


def quote_sheet(title: str) -> str:
    """The sheet name as Google prints it in a range: bare when safe, else quoted."""
    if _BARE_NAME.match(title) and not _LOOKS_LIKE_CELL.match(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def split_sheet(text: str) -> tuple[str | None, str | None]:
    """('Sheet name' or None, 'A1 part' or None) for a range text."""
    text = text.strip()
    if text.startswith("'"):
        i, name = 1, []
        while True:
            j = text.find("'", i)
            if j < 0:
                raise RangeError(text)
            name.append(text[i:j])
            if text[j + 1:j + 2] == "'":
                name.append("'")
                i = j + 2
                continue
            rest = text[j + 1:]
            break
        if rest == "":
            return "".join(name), None
        if not rest.startswith("!"):
            raise RangeError(text)
        return "".join(name), rest[1:] or None
    if "!" in text:
        name, a1 = text.split("!", 1)
        return name, a1 or None
    return None, text


def parse_box(a1: str) -> Box:
    """Parse the part after '!' into a Box; raises RangeError."""
    a1 = a1.strip()
    if ":" not in a1:
        m = _CELL.match(a1)
        if not m or not m.group(1) or not m.group(2) or int(m.group(2)) < 1:
            raise RangeError(a1)
        r, c = int(m.group(2)) - 1, col_index(m.group(1))
        return Box(r, r + 1, c, c + 1, single=True)
    left, right = a1.split(":", 1)
    lm, rm = _CELL.match(left), _CELL.match(right)
    if not lm or not rm or not (lm.group(1) or lm.group(2)) or not (rm.group(1) or rm.group(2)):
        raise RangeError(a1)
    for digits in (lm.group(2), rm.group(2)):
        if digits and int(digits) < 1:
            raise RangeError(a1)
    # "1:1" is rows only, "A:A" columns only; an end without a row runs to the last row.
    c0 = col_index(lm.group(1)) if lm.group(1) else 0
    r0 = int(lm.group(2)) - 1 if lm.group(2) else 0
    c1 = col_index(rm.group(1)) + 1 if rm.group(1) else None
    r1 = int(rm.group(2)) if rm.group(2) else None
    if c1 is not None and c1 <= c0:
        c0, c1 = c1 - 1, c0 + 1
    if r1 is not None and r1 <= r0:
        r0, r1 = r1 - 1, r0 + 1
    return Box(r0, r1, c0, c1)


def box_text(title: str, r0: int, c0: int, r1: int, c1: int) -> str:
    """'Sheet1!A1:C4' for the half-open box [r0, r1) x [c0, c1)."""
    start = cell_name(r0, c0)
    end = cell_name(max(r1 - 1, r0), max(c1 - 1, c0))
    return f"{quote_sheet(title)}!{start}" + ("" if start == end else f":{end}")
