"""Who owns each lead: the tab's `Owner` column, found by its header name, read by key.

The sales loop (issue #23) adds an `Owner` column to the right of each tab's managed columns; a
Claim in Slack writes the clicker's name there, and a name typed by hand counts the same. The
sync never writes it. The daily reminder of unclaimed leads (lib/sync/reminder.py) reads it
here: for each row whose time cell falls on the days asked, its key, its row number (as the tab
stands now: rows move when people sort, so the number is read, never remembered) and its Owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from .writer import SheetWriter

__all__ = ["OWNER_HEADER", "SheetItem", "column_letter", "unclaimed"]

OWNER_HEADER = "Owner"


@dataclass(frozen=True)
class SheetItem:
    """One row of a tab as the reminder lists it."""

    key: str
    row: int  # 1-based, as the tab stood when it was read
    when: str  # the time cell: local time, "YYYY-MM-DD HH:MM:SS"
    label: tuple[str, ...]  # the cells that name the lead (Name/Caller, Company)
    owner: str = ""

    @property
    def day(self) -> date | None:
        try:
            return date.fromisoformat(self.when[:10])
        except ValueError:
            return None


def column_letter(index: int) -> str:
    """The A1 letters of a 0-based column index (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def owner_column(header: Sequence[str]) -> int | None:
    """The 0-based index of the `Owner` column in row 1 (by name: people move columns), or None."""
    for i, cell in enumerate(header):
        if cell.strip().casefold() == OWNER_HEADER.casefold():
            return i
    return None


def items_of_days(writer: SheetWriter, first: date, end: date) -> list[SheetItem]:
    """Every row of the writer's tab whose time cell's day is from `first` to before `end`, with
    its Owner cell ("" when the tab has no Owner column yet: nobody can have claimed it). Two
    reads: row 1, then the time, name, key and Owner columns in one batch. A tab that does not
    exist has no rows."""
    header = writer.read_header()
    if header is None:
        return []
    key_index = len(writer.layout.header) - 1
    key_column = column_letter(key_index)
    owner_index = owner_column(header)
    ranges = ["A2:C", f"{key_column}2:{key_column}"]
    if owner_index is not None:
        ranges.append(f"{column_letter(owner_index)}2:{column_letter(owner_index)}")
    read = writer.read_columns(ranges, f"the {writer.layout.header[0]}, {writer.layout.header[-1]} and Owner columns")
    read += [[]] * (len(ranges) - len(read))
    named, keys, owners = read[0], read[1], (read[2] if owner_index is not None else [])
    times = named[0] if named else []
    labels = named[1:3]
    key_cells = keys[0] if keys else []
    owner_cells = owners[0] if owners else []

    def cell(column: Sequence[str], i: int) -> str:
        return column[i].strip() if i < len(column) else ""

    items: list[SheetItem] = []
    for i in range(max(len(times), len(key_cells))):
        key_cell = cell(key_cells, i)
        key = writer.layout.key_of_cell(key_cell) if key_cell else ""
        item = SheetItem(key=key, row=i + 2, when=cell(times, i), label=tuple(cell(c, i) for c in labels),
                         owner=cell(owner_cells, i))
        day = item.day
        if key and day is not None and first <= day < end:
            items.append(item)
    return items


def unclaimed(writer: SheetWriter, first: date, end: date) -> list[SheetItem]:
    """The rows of those days still without an Owner, in time order, one per key (a row pasted
    twice by hand is one lead, claimed when either copy has an Owner)."""
    items = sorted(items_of_days(writer, first, end), key=lambda it: (it.when, it.row))
    claimed = {item.key for item in items if item.owner}
    seen: set[str] = set()
    out: list[SheetItem] = []
    for item in items:
        if item.key not in claimed and item.key not in seen:
            seen.add(item.key)
            out.append(item)
    return out
