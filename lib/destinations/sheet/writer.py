"""The Google Sheet: header, rows (one per record) and the key column of a tab, through gspread.

A tab's columns are its `TabLayout`, given by the source whose records the tab holds
(lib/sources/chats.py's CHATS_TAB, lib/sources/calls.py's CALLS_LAYOUT). The key column is the
layout's last column.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from ...counters import SheetCounters
from ...errors import (
    HeaderMismatchError,
    PermanentError,
    SheetAccessError,
    SheetFullError,
    SheetNoAnswer,
    SheetUnavailable,
    SyncError,
    cut,
)
from ...http import check_fence
from ...records import Record
from .cells import chunk_rows, quote_tab
from .client import _api_error

if TYPE_CHECKING:
    import gspread
    from gspread.exceptions import APIError

log = logging.getLogger(__name__)

T = TypeVar("T")
# The sales team's two columns (#23): added to the right of a tab's managed columns when row 1
# lacks them, found by their header name (people move columns), never written by the sync.
SALES_COLUMNS = ("Owner", "Claimed at")
# The first row an A1 range names ("'Chats'!A12:N40" -> 12): an append's `updates.updatedRange`.
_FIRST_ROW = re.compile(r"^\$?[A-Za-z]{0,3}\$?(\d+)")
# Google's cell limit per spreadsheet, and its answer when a write would pass it.
MAX_CELLS = 10_000_000
FULL_WORKBOOK = re.compile(r"above the limit of (\d+) cells")
# Google's answer to a values.update past the tab's grid (it never grows the grid; appends do).
GRID_LIMIT = re.compile(r"exceeds grid limits.*max columns: (\d+)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class TabLayout:
    """A tab's columns: its header (the last column holds the record key, as `key_of_cell`
    reads it) and the setting that names the tab, for errors."""

    header: tuple[str, ...]
    setting: str
    key_of_cell: Callable[[str], str] = str

    @property
    def last_column(self) -> str:
        return chr(ord("A") + len(self.header) - 1)


def column_letters(index: int) -> str:
    """0 -> 'A', 26 -> 'AA' (a column a person's own columns pushed past Z)."""
    index += 1
    out = ""
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def first_row(updated_range: str) -> int | None:
    """The first row number of an A1 range as Sheets answers it (`'Tab'!A12:N13`, `Tab!A12`),
    None when it names no row."""
    a1 = updated_range.rsplit("!", 1)[-1]
    match = _FIRST_ROW.match(a1.strip())
    return int(match[1]) if match else None


def missing_sales_columns(header: Sequence[str]) -> list[tuple[int, str]]:
    """Where the sales columns row 1 lacks go ((0-based column, name)): after its last filled
    cell, so that a person's own columns to the right of ours are never written over. A header
    already there in any column, in any case, counts."""
    have = {cell.strip().casefold() for cell in header}
    missing = [name for name in SALES_COLUMNS if name.casefold() not in have]
    end = max((i + 1 for i, cell in enumerate(header) if cell.strip()), default=0)
    return [(end + n, name) for n, name in enumerate(missing)]



@dataclass(frozen=True)
class HeaderCheck:
    """What row 1 of the tab holds, as ensure_ready sees it."""

    tab_exists: bool
    blank: bool  # no cell of row 1 holds anything: the first run writes the header
    wrong_column: int | None = None  # 0-based: the first of columns A to N that is not ours

    @classmethod
    def of(cls, header: Sequence[str] | None, expected: Sequence[str]) -> HeaderCheck:
        """Judge row 1 (None: the tab does not exist) against the `expected` header. Extra
        columns to the right are fine."""
        if header is None:
            return cls(tab_exists=False, blank=True)
        if not any(cell.strip() for cell in header):
            return cls(tab_exists=True, blank=True)
        ours = [cell.strip() for cell in header[: len(expected)]]
        ours += [""] * (len(expected) - len(ours))
        wrong = next((i for i, (have, want) in enumerate(zip(ours, expected)) if have != want), None)
        return cls(tab_exists=True, blank=False, wrong_column=wrong)

    @property
    def ours(self) -> bool:
        """Row 1 holds this tool's header."""
        return not self.blank and self.wrong_column is None


class SheetWriter:
    """Appends chat rows to one worksheet and reads its Chat key column.

    Uses gspread's low-level calls so that a run costs one read (the header) and one write
    (the append), whatever the number of chats. Row 1 is read again by every ensure_ready:
    a person can insert or move a column between two runs of the same warm instance.
    `counters` (`lib.counters.SheetCounters`) counts the requests sent and the rows appended.
    """

    def __init__(
        self,
        client: gspread.Client | Callable[[], gspread.Client],
        sheet_id: str,
        tab: str,
        identity: str | Callable[[], str] = "",
        *,
        layout: TabLayout,
        tab_ids: dict[str, int] | None = None,
    ):
        # `client` may be a function that makes it: then gspread is loaded, and the client
        # made, only when the sheet is first used (a run with nothing new never uses it).
        # `identity` may be a function too; it is needed only to word an access error.
        self._client = client
        self._http: Any = None
        self.sheet_id = sheet_id
        self.tab = tab
        self.layout = layout
        self._identity = identity  # who must have access, named in the error when it has not
        self.counters = SheetCounters()
        # Each tab's sheetId (what a link's `#gid=` names) by title: read from the spreadsheet's
        # metadata once (with the header, when its read finds no tab), or taken from the answer
        # that created the tab, then kept while this writer lives (a warm instance's runs read it
        # no more). A person recreates a tab rarely; a link that then opens another is all it costs.
        # The writers of one spreadsheet may share it (`tab_ids`): one read serves every tab.
        self._tab_ids: dict[str, int] = {} if tab_ids is None else tab_ids
        # Told the number of rows of each append once it landed (the backfill's progress bar).
        self.on_rows: Callable[[int], None] | None = None

    @property
    def http(self) -> Any:
        """gspread's HTTP client (made on first use when a factory was given)."""
        if self._http is None:
            client = self._client
            if callable(client) and not hasattr(client, "http_client"):
                client = client()
            self._http = client.http_client
        return self._http

    @property
    def identity(self) -> str:
        if callable(self._identity):
            try:
                self._identity = self._identity() or ""
            except Exception:
                self._identity = ""
        return self._identity

    # -- errors --------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except _api_error() as exc:
            raise self._translate(what, exc) from None
        except requests.RequestException as exc:
            raise SheetNoAnswer(f"Sheets API did not answer while {what} ({type(exc).__name__})") from None

    def _translate(self, what: str, exc: APIError) -> Exception:
        code = exc.code if isinstance(exc.code, int) and exc.code > 0 else exc.response.status_code
        status = str(exc.error.get("status", "")) if isinstance(exc.error, dict) else ""
        label = f"Sheets API answered HTTP {code}{' ' + status if status else ''} while {what}"
        if code in (401, 403):
            who = f" ({self.identity})" if self.identity else ""
            return SheetAccessError(
                f"{label}: the sheet SHEET_ID={cut(self.sheet_id)} is not shared with this identity{who}",
                fix=f"Share the spreadsheet with {self.identity or 'the service account'} as Editor.",
            )
        if code == 404:
            return SheetAccessError(
                f"{label}: no spreadsheet with SHEET_ID={cut(self.sheet_id)}",
                fix="Check SHEET_ID: it is the long id in the sheet's URL, between /d/ and /edit.",
            )
        if code == 429 or code >= 500 or code in (408, -1):
            return SheetUnavailable(label)
        # Google's own reason is kept (one line, cut): "HTTP 400 INVALID_ARGUMENT" alone says nothing.
        reason = " ".join(str(exc.error.get("message", "") if isinstance(exc.error, dict) else "").split())[:300]
        limit = FULL_WORKBOOK.search(reason)
        if code == 400 and limit:
            return SheetFullError(
                f"{label}: the spreadsheet SHEET_ID={self.sheet_id} is full: Google allows {int(limit[1]):,} cells "
                f"per spreadsheet, counting every tab's rows x columns, empty cells too (Google: {reason})")
        return PermanentError(f"{label}: {reason}" if reason else label, cause="sheets_request")

    def cells_used(self) -> int:
        """The spreadsheet's cells as Google counts them against its limit: every tab's
        gridProperties rowCount x columnCount (one metadata read)."""
        self.counters.reads += 1
        meta = self._call("reading the spreadsheet", lambda: self.http.fetch_sheet_metadata(self.sheet_id))
        grids = [s.get("properties", {}).get("gridProperties", {}) for s in meta.get("sheets", [])]
        return sum(int(g.get("rowCount", 0)) * int(g.get("columnCount", 0)) for g in grids)

    # -- worksheet -----------------------------------------------------------------------------
    def _range(self, a1: str) -> str:
        return f"{quote_tab(self.tab)}!{a1}"

    def ensure_ready(self) -> None:
        """Make sure the tab exists and row 1 holds our header (creating both when missing), with
        the sales team's Owner and Claimed at columns somewhere in it (added when missing); the
        tab's sheetId is read once with it (kept while this writer lives, for the row links).

        Reads row 1 every time, never from an earlier call: the header is a person's to change.
        """
        header = self.read_header()
        found = HeaderCheck.of(header, self.layout.header)
        if not found.tab_exists:
            self._add_tab()
        if found.blank:
            try:
                self._write_header([*self.layout.header, *SALES_COLUMNS])
            except SheetFullError:
                # No room for the two columns' cells: the rows first, the columns once there is room.
                self._write_header(list(self.layout.header))
        elif not found.ours:
            raise HeaderMismatchError(
                f"Row 1 of tab {cut(self.tab)!r} ({self.layout.setting}) is not this tool's header: columns A to "
                f"{self.layout.last_column} must read {', '.join(self.layout.header)}",
                fix="Restore the header in row 1 (extra columns to the right are fine), "
                f"or point {self.layout.setting} at a new or empty tab.",
            )
        else:
            self._add_sales_columns(header or [])
        if self.tab not in self._tab_ids:
            self.tab_id()  # the tab's id for its links, read once with the header

    def _write_header(self, header: list[str]) -> None:
        self._write_row1(0, header, "writing the header")

    def _write_row1(self, first: int, values: list[str], what: str) -> None:
        """Write `values` into row 1 from the 0-based column `first` (RAW). A tab whose grid is
        narrower (one this tool made before the sales columns, or a person's) is widened first:
        Google's values.update never grows the grid, it answers "exceeds grid limits"."""
        a1 = self._range(f"{column_letters(first)}1:{column_letters(first + len(values) - 1)}1")

        def update() -> Any:
            return self.http.values_update(self.sheet_id, a1, params={"valueInputOption": "RAW"},
                                           body={"values": [values], "majorDimension": "ROWS"})

        self.counters.writes += 1
        try:
            update()
            return
        except _api_error() as exc:
            message = str(exc.error.get("message", "")) if isinstance(exc.error, dict) else ""
            narrow = GRID_LIMIT.search(message)
            if exc.code != 400 or narrow is None:
                raise self._translate(what, exc) from None
        except requests.RequestException as exc:
            raise SheetNoAnswer(f"Sheets API did not answer while {what} ({type(exc).__name__})") from None
        tab = self.tab_id()
        if tab is None:
            raise PermanentError(f"Sheets API refused {what}: the tab {cut(self.tab)!r} is narrower than its header "
                                 "and its id could not be read to widen it", cause="sheets_request")
        grow = {"appendDimension": {"sheetId": tab, "dimension": "COLUMNS",
                                    "length": max(1, first + len(values) - int(narrow[1]))}}
        self.counters.writes += 2
        self._call(f"{what} (adding columns)", lambda: self.http.batch_update(self.sheet_id, {"requests": [grow]}))
        self._call(what, update)

    def _add_sales_columns(self, header: Sequence[str]) -> None:
        """Write the headers of the sales columns row 1 lacks, after its last filled cell (one
        write, once per sheet). A sheet that cannot take them (full, say) still gets its rows:
        the failure is logged and the next run tries again."""
        missing = missing_sales_columns(header)
        if not missing:
            return
        try:
            self._write_row1(missing[0][0], [name for _, name in missing], "adding the Owner and Claimed at columns")
        except SyncError as exc:
            log.warning("could not add the Owner and Claimed at columns; the next run tries again",
                        extra={"fields": {"tab": self.layout.setting, "error": type(exc).__name__}})
            return
        log.info("added the sales columns", extra={"fields": {"tab": self.layout.setting,
                                                              "columns": [name for _, name in missing]}})

    def inspect_header(self) -> HeaderCheck:
        """Read row 1 and say what ensure_ready would do with it; writes nothing."""
        return HeaderCheck.of(self.read_header(), self.layout.header)

    def read_header(self) -> list[str] | None:
        """Row 1, or None when the tab does not exist."""
        self.counters.reads += 1
        try:
            result = self.http.values_get(self.sheet_id, self._range("1:1"))
        except _api_error() as exc:
            if exc.code == 400 and not self._tab_exists():
                return None
            raise self._translate("reading the header", exc) from None
        except requests.RequestException as exc:
            raise SheetUnavailable(f"Sheets API did not answer while reading the header ({type(exc).__name__})") from None
        values = result.get("values") or [[]]
        return [str(v) for v in values[0]]

    def _tab_exists(self) -> bool:
        return self._read_tab_ids() is not None

    def _read_tab_ids(self) -> int | None:
        """Read the spreadsheet's metadata, keep every tab's sheetId; this tab's (None: no such tab)."""
        self.counters.reads += 1
        meta = self._call("reading the spreadsheet", lambda: self.http.fetch_sheet_metadata(self.sheet_id))
        for tab in meta.get("sheets", []):
            properties = tab.get("properties", {})
            if isinstance(properties.get("sheetId"), int):
                self._tab_ids[str(properties.get("title"))] = properties["sheetId"]
        found = [t for t in meta.get("sheets", []) if t.get("properties", {}).get("title") == self.tab]
        if not found:
            self._tab_ids.pop(self.tab, None)
            return None
        return self._tab_ids.get(self.tab)

    def tab_id(self) -> int | None:
        """The tab's sheetId, what its link's `#gid=` names: from the metadata, read once and
        kept (self._tab_ids). None when it cannot be had: the link then opens the spreadsheet."""
        if self.tab not in self._tab_ids:
            try:
                self._read_tab_ids()
            except Exception as exc:  # a link without its tab is no reason to fail a post
                log.warning("could not read the tab's id for its link", extra={"fields": {
                    "tab": self.layout.setting, "error": type(exc).__name__}})
        return self._tab_ids.get(self.tab)

    def tab_url(self, sheet_url: str) -> str:
        """The spreadsheet's `sheet_url` opened at this tab (`#gid=`), when its id is known."""
        tab = self.tab_id()
        return sheet_url if tab is None else f"{sheet_url}#gid={tab}"

    def _add_tab(self) -> None:
        self.counters.writes += 1
        body = {
            "requests": [
                {
                    "addSheet": {
                        "properties": {
                            "title": self.tab,
                            "gridProperties": {"rowCount": 1000,
                                               "columnCount": len(self.layout.header) + len(SALES_COLUMNS),
                                               "frozenRowCount": 1},
                        }
                    }
                }
            ]
        }
        answer = self._call(f"adding the tab {cut(self.tab)!r}", lambda: self.http.batch_update(self.sheet_id, body))
        replies = (answer or {}).get("replies") or [{}]
        added = replies[0].get("addSheet", {}).get("properties", {}).get("sheetId")
        if isinstance(added, int):
            self._tab_ids[self.tab] = added
        log.info("created the worksheet tab", extra={"fields": {"tab": self.tab}})

    # -- rows ----------------------------------------------------------------------------------
    def append(self, records: Iterable[Record], *, header_checked: bool = False,
               rows: dict[str, int] | None = None) -> int:
        """Append one row per record (a chat), in the given order; one call unless the payload is huge.

        The header is checked first, unless the caller did so in this same run (header_checked).
        `rows`, when given, is told each record's row number (by key) as Sheets answered it
        (`updates.updatedRange`: the rows of an append are in the order sent): where the row was
        at that moment, for the summary's row links; a person may move it a minute later.
        """
        records = list(records)
        cells = [r.row() for r in records]
        if not cells:
            return 0
        if not header_checked:
            self.ensure_ready()
        done = 0
        for n, chunk in enumerate(chunk_rows(cells)):
            if n:
                check_fence()  # a later chunk: the run must still hold the lease (lib/http.fenced)
            self.counters.writes += 1
            self.counters.appends += 1
            answer = self._call(
                "appending rows",
                lambda: self.http.values_append(
                    self.sheet_id,
                    # Anchored at A1 so that Sheets' table detection finds our table, not a
                    # stray cell, and never shifts the columns.
                    self._range("A1"),
                    params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
                    body={"values": chunk, "majorDimension": "ROWS"},  # noqa: B023 (called at once)
                ),
            )
            if rows is not None:
                start = first_row(str(((answer or {}).get("updates") or {}).get("updatedRange", "")))
                if start is not None:
                    rows.update((r.key, start + i) for i, r in enumerate(records[done:done + len(chunk)]))
            done += len(chunk)
            self.counters.rows_written += len(chunk)
            if self.on_rows is not None:
                self.on_rows(len(chunk))
        return len(cells)

    def keys_present(self, *, header_checked: bool = False) -> set[str]:
        """Every key of the key column (the Chat key column on the chats tab; one read, after
        the header check unless the caller did it in this same run: header_checked)."""
        return set(self.key_rows(header_checked=header_checked))

    def key_rows(self, *, header_checked: bool = False) -> dict[str, int]:
        """Every key of the key column with its row number now (one read, after the header
        check unless the caller did it in this same run: header_checked). A key found twice
        keeps its first row."""
        if not header_checked:
            self.ensure_ready()
        self.counters.reads += 1
        result = self._call(
            f"reading the {self.layout.header[-1]} column",
            lambda: self.http.values_get(
                self.sheet_id,
                self._range(f"{self.layout.last_column}2:{self.layout.last_column}"),
                params={"majorDimension": "COLUMNS"},
            ),
        )
        columns: list[list[Any]] = result.get("values") or []
        key = self.layout.key_of_cell
        found: dict[str, int] = {}
        # Sheets keeps the empty cells between filled ones (as ""): the nth value is row n + 2.
        for n, value in enumerate(columns[0] if columns else []):
            if str(value).strip():
                found.setdefault(key(str(value).strip()), n + 2)
        return found

    def row_urls(self, sheet_url: str, rows: Mapping[str, int]) -> dict[str, str]:
        """By key, the link that opens this tab at each row (`#gid=<sheetId>&range=A<row>`);
        the tab's link alone when its id is not known (asked once)."""
        tab = self.tab_id() if rows else None
        return {key: sheet_url if tab is None else f"{sheet_url}#gid={tab}&range=A{row}" for key, row in rows.items()}

    def read_columns(self, a1_ranges: Sequence[str], what: str) -> list[list[list[str]]]:
        """The ranges of this tab (A1 notation without the tab), each as its columns of text
        (trailing empty cells left out, as Google sends them): one values.batchGet."""
        self.counters.reads += 1
        result = self._call(
            f"reading {what}",
            lambda: self.http.values_batch_get(
                self.sheet_id, [self._range(a1) for a1 in a1_ranges], params={"majorDimension": "COLUMNS"}),
        )
        ranges: list[dict[str, Any]] = (result or {}).get("valueRanges") or []
        return [[[str(v) for v in column] for column in (r.get("values") or [])] for r in ranges]
