"""A stand-in for the Google Sheets API v4, enough for gspread 6 to work unmodified.

Cells keep the string Google would show and what the text became (text, number, bool or
formula), so tests can prove that visitor text was never turned into a formula. Formulas are
not evaluated: reads return their source text. Known Google behaviours are kept on purpose:
USER_ENTERED turns "0123" into the number 123 and "=..." into a formula; one cell over 50,000
characters fails the whole request; `values.append` finds the table under its anchor and
writes after its last non-empty row; reads past the grid fail, and so do `values.update` writes
(Google's "exceeds grid limits"); appends grow the grid.
"""

from __future__ import annotations

import copy
import csv
import math
import re
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from .a1 import Box, RangeError, box_text, col_index, col_letters, parse_box, split_sheet
from .server import Request, Response, StandIn

API_PREFIX = "/v4/spreadsheets/"
MAX_CELL_CHARS = 50_000
MAX_CELLS = 10_000_000
DEFAULT_ROWS = 1000
DEFAULT_COLS = 26

READ_ENDPOINTS = frozenset({"metadata", "values.get", "values.batchGet"})
WRITE_ENDPOINTS = frozenset(
    {"values.append", "values.update", "values.batchUpdate", "values.clear", "values.batchClear", "batchUpdate"}
)

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: (
        "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute "
        "per user' of service 'sheets.googleapis.com' for consumer 'project_number:000000000000'."
    ),
    500: "Internal error encountered.",
    502: "Bad Gateway",
    503: "The service is currently unavailable.",
    504: "The service is currently unavailable.",
}

# Google's per-user quota of the Sheets API (requests per minute per user per project).
DEFAULT_QUOTA_PER_MINUTE = 60
QUOTA_LIMITS = {"read": "ReadRequestsPerMinutePerUser", "write": "WriteRequestsPerMinutePerUser"}

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
# "+"/"-" openers that the Sheets UI turns into formulas (=+1+2, =-SUM(..), =-A1).
_SIGNED_FORMULA = re.compile(
    r"^[+-](\s*[A-Za-z_][A-Za-z0-9_.]*\(.*\)\s*|\$?[A-Za-z]{1,3}\$?\d+|[\d.]+(\s*[-+*/^&]\s*[\d.A-Za-z$]+)+)$",
    re.S,
)


@dataclass(frozen=True)
class Cell:
    """One cell: `value` is what Google would show, `kind` what the input became:
    "text", "number", "bool", "formula" or "empty"."""

    value: str
    kind: str = "text"

    @property
    def formula(self) -> bool:
        return self.kind == "formula"

    def unformatted(self) -> Any:
        if self.kind == "number":
            number = Decimal(self.value)
            return int(number) if number == number.to_integral_value() else float(number)
        if self.kind == "bool":
            return self.value == "TRUE"
        return self.value


EMPTY = Cell("", "empty")


@dataclass
class Sheet:
    sheet_id: int
    title: str
    index: int
    row_count: int = DEFAULT_ROWS
    col_count: int = DEFAULT_COLS
    rows: list[list[Cell | None]] = field(default_factory=list)

    def properties(self) -> dict[str, Any]:
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": self.index,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": self.row_count, "columnCount": self.col_count},
        }

    def get(self, r: int, c: int) -> Cell | None:
        if r < len(self.rows):
            row = self.rows[r]
            if c < len(row):
                return row[c]
        return None

    def put(self, r: int, c: int, cell: Cell | None) -> None:
        while len(self.rows) <= r:
            self.rows.append([])
        row = self.rows[r]
        if cell is None and c >= len(row):
            return
        while len(row) <= c:
            row.append(None)
        row[c] = cell

    def last_row(self, from_row: int = 0, from_col: int = 0) -> int:
        """Index of the last row at or below `from_row` holding a value at or right of
        `from_col`; -1 when there is none."""
        for r in range(len(self.rows) - 1, from_row - 1, -1):
            if any(cell is not None for cell in self.rows[r][from_col:]):
                return r
        return -1

    def used_cols(self, r0: int, r1: int, from_col: int = 0) -> int:
        width = from_col
        for row in self.rows[r0:r1]:
            for c in range(len(row) - 1, from_col - 1, -1):
                if row[c] is not None:
                    width = max(width, c + 1)
                    break
        return width

    def trimmed(self) -> list[list[Cell]]:
        out: list[list[Cell]] = []
        for row in self.rows:
            cells = [cell or EMPTY for cell in row]
            while cells and cells[-1] is EMPTY:
                cells.pop()
            out.append(cells)
        while out and not out[-1]:
            out.pop()
        return out


@dataclass
class Spreadsheet:
    spreadsheet_id: str
    title: str
    sheets: list[Sheet]
    forbidden: bool = False
    next_sheet_id: int = 1
    # Google's cell limit per spreadsheet (every tab's rowCount x columnCount, empty cells too);
    # a test sets a small one (FakeSheets.set_cell_limit) to fill a workbook cheaply.
    max_cells: int = MAX_CELLS

    def find(self, title: str) -> Sheet | None:
        for sheet in self.sheets:
            if sheet.title == title:
                return sheet
        # Google matches sheet names without regard to case.
        for sheet in self.sheets:
            if sheet.title.lower() == title.lower():
                return sheet
        return None

    def by_id(self, sheet_id: Any) -> Sheet | None:
        for sheet in self.sheets:
            if sheet.sheet_id == sheet_id:
                return sheet
        return None

    def reindex(self) -> None:
        for i, sheet in enumerate(self.sheets):
            sheet.index = i

    def total_cells(self) -> int:
        return sum(s.row_count * s.col_count for s in self.sheets)


class SheetsError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


_SKIP = object()  # a null in the request: leave the cell as it is


class FakeSheets(StandIn):
    """Google Sheets API v4 under /v4/spreadsheets. Endpoints: "metadata", "values.get",
    "values.batchGet" (reads); "values.append", "values.update", "values.batchUpdate",
    "values.clear", "values.batchClear", "batchUpdate" (writes).

    Quotas, like Google's per-user ones (`set_quota`, off by default): `write_quota` and
    `read_quota` requests per user (the Authorization header; anonymous callers are one user)
    in any rolling `quota_window` seconds (60), None = unlimited. Past one, the request is
    answered 429 RESOURCE_EXHAUSTED with Google's error body (an ErrorInfo naming the quota
    limit) and does nothing; it does not count against the quota. Google sends no Retry-After
    with it; `quota_retry_after = True` adds one (the seconds until a request frees up)."""

    ENDPOINTS = READ_ENDPOINTS | WRITE_ENDPOINTS

    def __init__(self, port: int = 0, latency: float = 0.0):
        super().__init__(port=port, latency=latency)
        self._books: dict[str, Spreadsheet] = {}
        self.read_quota: int | None = None
        self.write_quota: int | None = None
        self.quota_window = 60.0
        self.quota_retry_after = False
        self._recent: dict[tuple[str, str], deque[float]] = {}
        #: requests answered 429 by the quota (not by injected faults)
        self.quota_refusals = 0

    def set_quota(self, writes: int | None = DEFAULT_QUOTA_PER_MINUTE, reads: int | None = None, *,
                  window: float = 60.0, retry_after: bool = False) -> None:
        """Enforce a per-user quota: `writes` (and `reads`) requests per `window` seconds."""
        with self._lock:
            self.write_quota, self.read_quota = writes, reads
            self.quota_window, self.quota_retry_after = window, retry_after
            self._recent.clear()

    @property
    def api_root(self) -> str:
        """What replaces https://sheets.googleapis.com in gspread's URLs."""
        return self.url

    def count_reads(self) -> int:
        """Requests to read endpoints (metadata, values.get, values.batchGet)."""
        return sum(1 for c in self.calls() if c.endpoint in READ_ENDPOINTS)

    def count_writes(self) -> int:
        """Requests to write endpoints (append, update, clear, batch updates)."""
        return sum(1 for c in self.calls() if c.endpoint in WRITE_ENDPOINTS)

    # ----------------------------------------------------------------- test helpers

    def create_spreadsheet(
        self,
        spreadsheet_id: str,
        tabs: Sequence[str] = ("Sheet1",),
        title: str | None = None,
        rows: int = DEFAULT_ROWS,
        cols: int = DEFAULT_COLS,
    ) -> None:
        """Create (or replace) a spreadsheet with empty tabs; the first tab has sheetId 0."""
        with self._lock:
            sheets = [Sheet(sheet_id=i * 1_000_003 if i else 0, title=t, index=i, row_count=rows, col_count=cols)
                      for i, t in enumerate(tabs)]
            self._books[spreadsheet_id] = Spreadsheet(
                spreadsheet_id, title or f"Spreadsheet {spreadsheet_id}", sheets, next_sheet_id=len(tabs)
            )

    def set_cell_limit(self, spreadsheet_id: str, cells: int = MAX_CELLS) -> None:
        """Set the spreadsheet's cell limit (Google's is 10,000,000): past it, a write that grows
        the grid, or adds a tab, is answered as Google answers, 400 INVALID_ARGUMENT."""
        with self._lock:
            self._book(spreadsheet_id).max_cells = cells

    def forbid(self, spreadsheet_id: str, forbidden: bool = True) -> None:
        """Answer 403 PERMISSION_DENIED for this spreadsheet (as when it is not shared)."""
        with self._lock:
            self._book(spreadsheet_id).forbidden = forbidden

    def delete_spreadsheet(self, spreadsheet_id: str) -> None:
        """Remove a spreadsheet: later calls get 404 NOT_FOUND."""
        with self._lock:
            self._books.pop(spreadsheet_id, None)

    def tabs(self, spreadsheet_id: str) -> list[str]:
        """Tab titles in order."""
        with self._lock:
            return [s.title for s in self._book(spreadsheet_id).sheets]

    def grid_size(self, spreadsheet_id: str, tab: str) -> tuple[int, int]:
        """(rowCount, columnCount) of a tab."""
        with self._lock:
            sheet = self._tab(spreadsheet_id, tab)
            return sheet.row_count, sheet.col_count

    def rows(self, spreadsheet_id: str, tab: str) -> list[list[str]]:
        """The tab's values as Google would show them, trailing empties trimmed ([] when
        the tab does not exist)."""
        return [[cell.value for cell in row] for row in self.cells(spreadsheet_id, tab)]

    def cells(self, spreadsheet_id: str, tab: str) -> list[list[Cell]]:
        """The tab's cells (value + kind, `.formula`), trailing empties trimmed; empty
        cells inside a row are `EMPTY`. A tab that does not exist (yet) has no cells."""
        with self._lock:
            sheet = self._book(spreadsheet_id).find(tab)
            return sheet.trimmed() if sheet is not None else []

    def formulas(self, spreadsheet_id: str, tab: str) -> list[str]:
        """A1 names of every cell that became a formula."""
        out = []
        for r, row in enumerate(self.cells(spreadsheet_id, tab)):
            for c, cell in enumerate(row):
                if cell.formula:
                    out.append(f"{col_letters(c)}{r + 1}")
        return out

    def set_rows(
        self, spreadsheet_id: str, tab: str, rows: Iterable[Sequence[Any]], user_entered: bool = False
    ) -> None:
        """Replace the tab's content with `rows` (as RAW, or as if typed with user_entered)."""
        option = "USER_ENTERED" if user_entered else "RAW"
        with self._lock:
            sheet = self._tab(spreadsheet_id, tab)
            sheet.rows = []
            matrix = [[_parse_value(v, option) for v in row] for row in rows]
            self._write(self._book(spreadsheet_id), sheet, 0, 0, matrix)

    def set_cell(self, spreadsheet_id: str, tab: str, a1: str, value: Any, user_entered: bool = True) -> None:
        """Type one value into a cell, e.g. set_cell(id, "Chats", "P7", "called back")."""
        box = parse_box(a1)
        with self._lock:
            option = "USER_ENTERED" if user_entered else "RAW"
            self._write(self._book(spreadsheet_id), self._tab(spreadsheet_id, tab), box.r0, box.c0,
                        [[_parse_value(value, option)]])

    def add_column_values(
        self, spreadsheet_id: str, tab: str, column: int | str, values: Iterable[Any], start_row: int = 2
    ) -> None:
        """Type values down one column (0-based index or letters) from `start_row` (1-based),
        as a sales team adding notes to the right of the synced columns would."""
        c = col_index(column) if isinstance(column, str) else column
        with self._lock:
            matrix = [[*([_SKIP] * c), _parse_value(v, "USER_ENTERED")] for v in values]
            self._write(self._book(spreadsheet_id), self._tab(spreadsheet_id, tab), start_row - 1, 0, matrix)

    def sort_rows(
        self, spreadsheet_id: str, tab: str, key_column_index: int, skip_header: bool = True, reverse: bool = False
    ) -> None:
        """Sort the data rows by one column (0-based), as a person would with Data > Sort
        range: numbers before text, empty keys last either way. Whole rows move together."""
        with self._lock:
            sheet = self._tab(spreadsheet_id, tab)
            start = 1 if skip_header else 0
            last = sheet.last_row()
            body = sheet.rows[start:last + 1]
            filled = [r for r in body if _key(r, key_column_index) is not None]
            empty = [r for r in body if _key(r, key_column_index) is None]
            filled.sort(key=lambda r: _key(r, key_column_index), reverse=reverse)
            sheet.rows[start:last + 1] = filled + empty

    def delete_rows(self, spreadsheet_id: str, tab: str, start_row: int, count: int = 1) -> None:
        """Delete rows (1-based), shifting the rest up, as a person might."""
        with self._lock:
            sheet = self._tab(spreadsheet_id, tab)
            del sheet.rows[start_row - 1:start_row - 1 + count]
            sheet.row_count = max(1, sheet.row_count - count)

    def insert_columns(self, spreadsheet_id: str, tab: str, before: int | str, count: int = 1) -> None:
        """Insert empty columns before one column (0-based index or letters), shifting the rest
        right, as a person might (Insert > Column left)."""
        c = col_index(before) if isinstance(before, str) else before
        with self._lock:
            sheet = self._tab(spreadsheet_id, tab)
            self._req_insertDimension(self._book(spreadsheet_id), {"range": {
                "sheetId": sheet.sheet_id, "dimension": "COLUMNS", "startIndex": c, "endIndex": c + count}}, 0)

    def delete_columns(self, spreadsheet_id: str, tab: str, start: int | str, count: int = 1) -> None:
        """Delete columns (0-based index or letters), shifting the rest left, as a person might."""
        c = col_index(start) if isinstance(start, str) else start
        with self._lock:
            sheet = self._tab(spreadsheet_id, tab)
            self._req_deleteDimension(self._book(spreadsheet_id), {"range": {
                "sheetId": sheet.sheet_id, "dimension": "COLUMNS", "startIndex": c, "endIndex": c + count}}, 0)

    def to_csv(self, spreadsheet_id: str, tab: str, path: str) -> None:
        """Write the tab's shown values to a CSV file."""
        rows = self.rows(spreadsheet_id, tab)
        width = max((len(r) for r in rows), default=0)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(r + [""] * (width - len(r)) for r in rows)

    def _book(self, spreadsheet_id: str) -> Spreadsheet:
        try:
            return self._books[spreadsheet_id]
        except KeyError:
            raise KeyError(f"no spreadsheet {spreadsheet_id!r} in the stand-in") from None

    def _tab(self, spreadsheet_id: str, tab: str) -> Sheet:
        sheet = self._book(spreadsheet_id).find(tab)
        if sheet is None:
            raise KeyError(f"no tab {tab!r} in spreadsheet {spreadsheet_id!r}")
        return sheet

    # ----------------------------------------------------------------- HTTP

    def route(self, method: str, path: str) -> str:
        if not path.startswith(API_PREFIX):
            return "unknown"
        rest = path[len(API_PREFIX):]
        sid, _, tail = rest.partition("/")
        if not tail:
            if sid.endswith(":batchUpdate"):
                return "batchUpdate" if method == "POST" else "unknown"
            return "metadata" if method == "GET" else "unknown"
        fixed = {
            ("GET", "values:batchGet"): "values.batchGet",
            ("POST", "values:batchUpdate"): "values.batchUpdate",
            ("POST", "values:batchClear"): "values.batchClear",
        }
        if (method, tail) in fixed:
            return fixed[(method, tail)]
        if not tail.startswith("values/"):
            return "unknown"
        if tail.endswith(":append"):
            return "values.append" if method == "POST" else "unknown"
        if tail.endswith(":clear"):
            return "values.clear" if method == "POST" else "unknown"
        return {"GET": "values.get", "PUT": "values.update"}.get(method, "unknown")

    def tenant(self, request: Request) -> str | None:
        """A request's tenant is its spreadsheet (each account writes its own)."""
        if not request.path.startswith(API_PREFIX):
            return None
        sid = request.path[len(API_PREFIX):].partition("/")[0].partition(":")[0]
        return sid or None

    def error_response(self, code: int, retry_after: float | None = None) -> Response:
        return _error(code, _MESSAGES.get(code, "Injected error."))

    def handle(self, request: Request) -> Response:
        try:
            refused = self._check_quota(request)
            return refused or self._handle(request)
        except SheetsError as e:
            return _error(e.code, e.message)

    def _handle(self, request: Request) -> Response:
        if request.endpoint == "unknown":
            raise SheetsError(404, "Requested entity was not found.")
        if request.too_large:
            raise SheetsError(400, f"Request payload size exceeds the limit: {self.MAX_BODY} bytes.")
        rest = request.path[len(API_PREFIX):]
        sid_part, _, tail = rest.partition("/")
        sid = unquote(sid_part.split(":", 1)[0])
        book = self._books.get(sid)
        if book is None:
            raise SheetsError(404, "Requested entity was not found.")
        if book.forbidden:
            raise SheetsError(403, "The caller does not have permission")
        body = {}
        if request.method in ("POST", "PUT") and request.body:
            try:
                body = request.json()
            except ValueError:
                raise SheetsError(400, "Invalid JSON payload received.") from None
            if not isinstance(body, dict):
                raise SheetsError(400, "Invalid JSON payload received. Expected an object.")
        range_text = None
        if tail.startswith("values/"):
            raw = tail[len("values/"):]
            for suffix in (":append", ":clear"):
                if raw.endswith(suffix):
                    raw = raw[: -len(suffix)]
            range_text = unquote(raw)
        handler = {
            "metadata": lambda: self._metadata(book),
            "values.get": lambda: self._values_get(book, range_text, request),
            "values.batchGet": lambda: self._values_batch_get(book, request),
            "values.update": lambda: self._values_update(book, range_text, request, body),
            "values.batchUpdate": lambda: self._values_batch_update(book, body),
            "values.append": lambda: self._values_append(book, range_text, request, body),
            "values.clear": lambda: self._values_clear(book, range_text),
            "values.batchClear": lambda: self._values_batch_clear(book, body),
            "batchUpdate": lambda: self._batch_update(book, body),
        }[request.endpoint]
        return Response(200, handler())

    def _check_quota(self, request: Request) -> Response | None:
        if request.endpoint == "unknown":
            return None
        kind = "read" if request.endpoint in READ_ENDPOINTS else "write"
        limit = self.read_quota if kind == "read" else self.write_quota
        if limit is None:
            return None
        user = request.header("Authorization") or "anonymous"
        now, recent = time.monotonic(), self._recent.setdefault((kind, user), deque())
        while recent and now - recent[0] >= self.quota_window:
            recent.popleft()
        if len(recent) < limit:
            recent.append(now)
            return None
        self.quota_refusals += 1
        response = _quota_error(kind, limit, self.quota_window)
        if self.quota_retry_after:
            wait = recent[0] + self.quota_window - now if recent else self.quota_window
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response

    # ----------------------------------------------------------------- reads

    def _metadata(self, book: Spreadsheet) -> dict[str, Any]:
        return {
            "spreadsheetId": book.spreadsheet_id,
            "properties": {
                "title": book.title,
                "locale": "en_GB",
                "autoRecalc": "ON_CHANGE",
                "timeZone": "Europe/London",
            },
            "sheets": [{"properties": s.properties()} for s in book.sheets],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{book.spreadsheet_id}/edit",
        }

    def _resolve(self, book: Spreadsheet, text: str | None) -> tuple[Sheet, Box]:
        if not text:
            raise SheetsError(400, "Unable to parse range: ")
        try:
            name, a1 = split_sheet(text)
            if name is None:
                # Without '!', a bare word is a sheet name if one matches, else A1 on the first sheet.
                sheet = book.find(a1 or "")
                if sheet is not None:
                    return sheet, Box(whole=True)
                return book.sheets[0], parse_box(a1 or "")
            sheet = book.find(name)
            if sheet is None:
                raise RangeError(text)
            return sheet, (parse_box(a1) if a1 else Box(whole=True))
        except RangeError:
            raise SheetsError(400, f"Unable to parse range: {text}") from None

    def _read_bounds(self, sheet: Sheet, box: Box, text: str) -> tuple[int, int, int, int]:
        r1 = sheet.row_count if box.r1 is None else box.r1
        c1 = sheet.col_count if box.c1 is None else box.c1
        if box.r0 >= sheet.row_count or box.c0 >= sheet.col_count or r1 > sheet.row_count or c1 > sheet.col_count:
            raise SheetsError(
                400,
                f"Range ({text}) exceeds grid limits. Max rows: {sheet.row_count}, "
                f"max columns: {sheet.col_count}",
            )
        return box.r0, r1, box.c0, c1

    def _value_range(self, book: Spreadsheet, text: str | None, major: str, render: str) -> dict[str, Any]:
        sheet, box = self._resolve(book, text)
        r0, r1, c0, c1 = self._read_bounds(sheet, box, text or "")
        matrix = []
        for r in range(r0, min(r1, len(sheet.rows))):
            matrix.append([sheet.get(r, c) for c in range(c0, c1)])
        if major == "COLUMNS":
            width = c1 - c0
            matrix = [[row[c] for row in matrix] for c in range(width)] if matrix else []
        values = [_render_row(row, render) for row in matrix]
        while values and not values[-1]:
            values.pop()
        out: dict[str, Any] = {"range": box_text(sheet.title, r0, c0, r1, c1), "majorDimension": major}
        if values:
            out["values"] = values
        return out

    def _values_get(self, book: Spreadsheet, text: str | None, request: Request) -> dict[str, Any]:
        major = _major(request.param("majorDimension"))
        render = request.param("valueRenderOption") or "FORMATTED_VALUE"
        return self._value_range(book, text, major, render)

    def _values_batch_get(self, book: Spreadsheet, request: Request) -> dict[str, Any]:
        ranges = request.query.get("ranges", [])
        ranges = [ranges] if isinstance(ranges, str) else ranges
        major = _major(request.param("majorDimension"))
        render = request.param("valueRenderOption") or "FORMATTED_VALUE"
        return {
            "spreadsheetId": book.spreadsheet_id,
            "valueRanges": [self._value_range(book, r, major, render) for r in ranges],
        }

    # ----------------------------------------------------------------- writes

    def _write(self, book: Spreadsheet, sheet: Sheet, r0: int, c0: int, matrix: list[list[Any]]) -> int:
        """Write parsed values at (r0, c0), growing the grid; returns cells written."""
        height = len(matrix)
        width = max((len(row) for row in matrix), default=0)
        sheet.row_count, sheet.col_count = _grown(book, sheet, r0 + height, c0 + width)
        written = 0
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                if value is _SKIP:
                    continue
                sheet.put(r0 + i, c0 + j, value)
                written += 1
        return written

    def _prepare(self, body: dict[str, Any], option: str | None) -> list[list[Any]]:
        if option not in ("RAW", "USER_ENTERED"):
            if option:
                raise SheetsError(400, f"Invalid value at 'value_input_option' ({option})")
            raise SheetsError(400, "'valueInputOption' is required but not specified")
        values = body.get("values") or []
        if not isinstance(values, list) or any(not isinstance(row, list) for row in values):
            raise SheetsError(400, "Invalid values: expected a list of lists.")
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                    raise SheetsError(
                        400,
                        f"Your input contains more than the maximum of {MAX_CELL_CHARS} characters in a single cell.",
                    )
                if isinstance(value, (dict, list)):
                    raise SheetsError(400, f"Invalid values[{i}][{j}]: struct_value")
        matrix = [[_parse_value(v, option) for v in row] for row in values]
        if _major(body.get("majorDimension")) == "COLUMNS" and matrix:
            height = max(len(col) for col in matrix)
            matrix = [[col[r] if r < len(col) else _SKIP for col in matrix] for r in range(height)]
        return matrix

    def _update_into(
        self, book: Spreadsheet, text: str | None, body: dict[str, Any], option: str | None
    ) -> dict[str, Any]:
        sheet, box = self._resolve(book, text)
        matrix = self._prepare(body, option)
        height = len(matrix)
        width = max((len(row) for row in matrix), default=0)
        if not box.single and not box.whole:
            if box.r1 is not None and box.r0 + height > box.r1:
                raise SheetsError(
                    400,
                    f"Requested writing within range [{text}], but tried writing to row [{box.r0 + height}]",
                )
            if box.c1 is not None and box.c0 + width > box.c1:
                raise SheetsError(
                    400,
                    f"Requested writing within range [{text}], but tried writing to column "
                    f"[{col_letters(box.c0 + width - 1)}]",
                )
        if box.r0 + height > sheet.row_count or box.c0 + width > sheet.col_count:
            # Unlike values.append, values.update never grows the grid (Google answers this).
            where = box_text(sheet.title, box.r0, box.c0, box.r0 + max(height, 1), box.c0 + max(width, 1))
            raise SheetsError(400, f"Range ({where}) exceeds grid limits. Max rows: {sheet.row_count}, "
                                   f"max columns: {sheet.col_count}")
        written = self._write(book, sheet, box.r0, box.c0, matrix)
        out: dict[str, Any] = {
            "spreadsheetId": book.spreadsheet_id,
            "updatedRange": box_text(sheet.title, box.r0, box.c0, box.r0 + max(height, 1), box.c0 + max(width, 1)),
        }
        if written:
            out.update(updatedRows=height, updatedColumns=width, updatedCells=written)
        return out

    def _values_update(
        self, book: Spreadsheet, text: str | None, request: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        out = self._update_into(book, text, body, request.param("valueInputOption"))
        if request.param("includeValuesInResponse") in ("true", "True", "1"):
            out["updatedData"] = self._value_range(book, out["updatedRange"], "ROWS", "FORMATTED_VALUE")
        return out

    def _values_batch_update(self, book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        option = body.get("valueInputOption")
        data = body.get("data") or []
        # Validate every range before writing any, so a bad entry leaves the sheet untouched.
        staged = copy.deepcopy(book)
        responses = [self._update_into(staged, item.get("range"), item, option) for item in data]
        self._books[book.spreadsheet_id] = staged
        return {
            "spreadsheetId": book.spreadsheet_id,
            "totalUpdatedRows": sum(r.get("updatedRows", 0) for r in responses),
            "totalUpdatedColumns": sum(r.get("updatedColumns", 0) for r in responses),
            "totalUpdatedCells": sum(r.get("updatedCells", 0) for r in responses),
            "totalUpdatedSheets": len({r["updatedRange"].rsplit("!", 1)[0] for r in responses}),
            "responses": responses,
        }

    def _values_append(
        self, book: Spreadsheet, text: str | None, request: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        sheet, box = self._resolve(book, text)
        matrix = self._prepare(body, request.param("valueInputOption"))
        insert = (request.param("insertDataOption") or "OVERWRITE").upper()
        if insert not in ("OVERWRITE", "INSERT_ROWS"):
            raise SheetsError(400, f"Invalid value at 'insert_data_option' ({insert})")
        if box.whole:
            # No anchor given: the table starts at the top-left of whatever data there is.
            anchor_r = next((r for r, row in enumerate(sheet.rows) if any(row)), 0)
            filled_cols = [c for row in sheet.rows for c, cell in enumerate(row) if cell is not None]
            anchor_c = min(filled_cols, default=0)
        else:
            anchor_r, anchor_c = box.r0, box.c0
        last = sheet.last_row(anchor_r, anchor_c)
        height = len(matrix)
        width = max((len(row) for row in matrix), default=0)
        out: dict[str, Any] = {"spreadsheetId": book.spreadsheet_id}
        if last >= anchor_r:
            table_cols = sheet.used_cols(anchor_r, last + 1, anchor_c)
            out["tableRange"] = box_text(sheet.title, anchor_r, anchor_c, last + 1, max(table_cols, anchor_c + 1))
            start = last + 1
        else:
            start = anchor_r
        inserted = height if insert == "INSERT_ROWS" else 0
        # Check the cell limit before moving anything, so a refusal leaves the sheet as it was.
        _grown(book, sheet, max(sheet.row_count + inserted, start + height), anchor_c + width)
        if inserted:
            sheet.rows[start:start] = [[] for _ in range(height)] if start < len(sheet.rows) else []
            sheet.row_count += height
        written = self._write(book, sheet, start, anchor_c, matrix)
        updates: dict[str, Any] = {
            "spreadsheetId": book.spreadsheet_id,
            "updatedRange": box_text(sheet.title, start, anchor_c, start + max(height, 1), anchor_c + max(width, 1)),
        }
        if written:
            updates.update(updatedRows=height, updatedColumns=width, updatedCells=written)
        if request.param("includeValuesInResponse") in ("true", "True", "1"):
            updates["updatedData"] = self._value_range(book, updates["updatedRange"], "ROWS", "FORMATTED_VALUE")
        out["updates"] = updates
        return out

    def _clear(self, book: Spreadsheet, text: str | None) -> str:
        sheet, box = self._resolve(book, text)
        r1 = sheet.row_count if box.r1 is None else min(box.r1, sheet.row_count)
        c1 = sheet.col_count if box.c1 is None else min(box.c1, sheet.col_count)
        for r in range(box.r0, min(r1, len(sheet.rows))):
            row = sheet.rows[r]
            for c in range(box.c0, min(c1, len(row))):
                row[c] = None
        return box_text(sheet.title, box.r0, box.c0, r1, c1)

    def _values_clear(self, book: Spreadsheet, text: str | None) -> dict[str, Any]:
        return {"spreadsheetId": book.spreadsheet_id, "clearedRange": self._clear(book, text)}

    def _values_batch_clear(self, book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        ranges = body.get("ranges") or []
        for text in ranges:
            self._resolve(book, text)
        return {"spreadsheetId": book.spreadsheet_id, "clearedRanges": [self._clear(book, t) for t in ranges]}

    # ----------------------------------------------------------------- batchUpdate

    def _batch_update(self, book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise SheetsError(400, "Invalid requests: at least one request is required.")
        # All or nothing, like Google: apply to a copy and keep it only if every request works.
        staged = copy.deepcopy(book)
        replies = []
        for i, req in enumerate(requests):
            if not isinstance(req, dict) or len(req) != 1:
                raise SheetsError(400, f"Invalid requests[{i}]: exactly one kind of request must be set.")
            kind, args = next(iter(req.items()))
            apply = getattr(self, f"_req_{kind}", None)
            replies.append(apply(staged, args or {}, i) if apply else {})
        self._books[book.spreadsheet_id] = staged
        return {"spreadsheetId": book.spreadsheet_id, "replies": replies}

    def _req_addSheet(self, book: Spreadsheet, args: dict[str, Any], i: int) -> dict[str, Any]:
        props = args.get("properties") or {}
        title = props.get("title") or f"Sheet{len(book.sheets) + 1}"
        if book.find(title) is not None:
            raise SheetsError(
                400,
                f'Invalid requests[{i}].addSheet: A sheet with the name "{title}" already exists. '
                "Please enter another name.",
            )
        grid = props.get("gridProperties") or {}
        sheet_id = props.get("sheetId")
        if sheet_id is None:
            sheet_id = book.next_sheet_id * 1_000_003
            book.next_sheet_id += 1
        elif book.by_id(sheet_id) is not None:
            raise SheetsError(400, f"Invalid requests[{i}].addSheet: A sheet with id {sheet_id} already exists.")
        sheet = Sheet(
            sheet_id=sheet_id,
            title=title,
            index=0,
            row_count=int(grid.get("rowCount", DEFAULT_ROWS)),
            col_count=int(grid.get("columnCount", DEFAULT_COLS)),
        )
        if book.total_cells() + sheet.row_count * sheet.col_count > book.max_cells:
            raise SheetsError(
                400,
                f"Invalid requests[{i}].addSheet: This action would increase the number of cells in the "
                f"workbook above the limit of {book.max_cells} cells.",
            )
        index = props.get("index")
        book.sheets.insert(len(book.sheets) if index is None else int(index), sheet)
        book.reindex()
        return {"addSheet": {"properties": sheet.properties()}}

    def _req_deleteSheet(self, book: Spreadsheet, args: dict[str, Any], i: int) -> dict[str, Any]:
        sheet = book.by_id(args.get("sheetId"))
        if sheet is None:
            raise SheetsError(400, f"Invalid requests[{i}].deleteSheet: No grid with id: {args.get('sheetId')}")
        if len(book.sheets) == 1:
            raise SheetsError(400, f"Invalid requests[{i}].deleteSheet: You can't remove all the sheets in a document.")
        book.sheets.remove(sheet)
        book.reindex()
        return {}

    def _req_updateSheetProperties(self, book: Spreadsheet, args: dict[str, Any], i: int) -> dict[str, Any]:
        props = args.get("properties") or {}
        sheet = book.by_id(props.get("sheetId", 0))
        if sheet is None:
            raise SheetsError(
                400, f"Invalid requests[{i}].updateSheetProperties: No grid with id: {props.get('sheetId')}"
            )
        fields = {f.strip() for f in str(args.get("fields", "")).split(",")}
        wanted = lambda name: "*" in fields or name in fields or name.split("/")[0] in fields  # noqa: E731
        grid = props.get("gridProperties") or {}
        if wanted("title") and "title" in props:
            sheet.title = props["title"]
        if wanted("gridProperties/rowCount") and "rowCount" in grid:
            sheet.row_count = int(grid["rowCount"])
            del sheet.rows[sheet.row_count:]
        if wanted("gridProperties/columnCount") and "columnCount" in grid:
            sheet.col_count = int(grid["columnCount"])
            for row in sheet.rows:
                del row[sheet.col_count:]
        if wanted("index") and "index" in props:
            book.sheets.remove(sheet)
            book.sheets.insert(int(props["index"]), sheet)
            book.reindex()
        return {}

    def _dimension(self, book: Spreadsheet, rng: dict[str, Any], i: int, kind: str) -> tuple[Sheet, bool, int, int]:
        sheet = book.by_id(rng.get("sheetId", 0))
        if sheet is None:
            raise SheetsError(400, f"Invalid requests[{i}].{kind}: No grid with id: {rng.get('sheetId')}")
        rows = rng.get("dimension", "ROWS") == "ROWS"
        return sheet, rows, int(rng.get("startIndex", 0)), int(rng.get("endIndex", 0))

    def _req_insertDimension(self, book: Spreadsheet, args: dict[str, Any], i: int) -> dict[str, Any]:
        sheet, rows, start, end = self._dimension(book, args.get("range") or {}, i, "insertDimension")
        n = max(0, end - start)
        if rows:
            if start < len(sheet.rows):
                sheet.rows[start:start] = [[] for _ in range(n)]
            sheet.row_count += n
        else:
            for row in sheet.rows:
                if start < len(row):
                    row[start:start] = [None] * n
            sheet.col_count += n
        return {}

    def _req_deleteDimension(self, book: Spreadsheet, args: dict[str, Any], i: int) -> dict[str, Any]:
        sheet, rows, start, end = self._dimension(book, args.get("range") or {}, i, "deleteDimension")
        n = max(0, end - start)
        if rows:
            del sheet.rows[start:end]
            sheet.row_count = max(1, sheet.row_count - n)
        else:
            for row in sheet.rows:
                del row[start:end]
            sheet.col_count = max(1, sheet.col_count - n)
        return {}

    def _req_appendDimension(self, book: Spreadsheet, args: dict[str, Any], i: int) -> dict[str, Any]:
        sheet = book.by_id(args.get("sheetId", 0))
        if sheet is None:
            raise SheetsError(400, f"Invalid requests[{i}].appendDimension: No grid with id: {args.get('sheetId')}")
        rows = args.get("dimension", "ROWS") == "ROWS"
        length = int(args.get("length", 0))
        grown = (sheet.row_count + length, sheet.col_count) if rows else (sheet.row_count, sheet.col_count + length)
        if book.total_cells() - sheet.row_count * sheet.col_count + grown[0] * grown[1] > book.max_cells:
            raise SheetsError(400, f"Invalid requests[{i}].appendDimension: This action would increase the number of "
                                   f"cells in the workbook above the limit of {book.max_cells} cells.")
        sheet.row_count, sheet.col_count = grown
        return {}


# --------------------------------------------------------------------------- values


def _error(code: int, message: str) -> Response:
    return Response(code, {"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}})


def _quota_error(kind: str, limit: int, window: float) -> Response:
    """Google's answer past a per-user quota: 429 RESOURCE_EXHAUSTED with an ErrorInfo."""
    metric = "Write requests" if kind == "write" else "Read requests"
    per = "minute" if window == 60 else f"{window:g} seconds"
    message = (f"Quota exceeded for quota metric '{metric}' and limit '{metric} per {per} per user' of service "
               "'sheets.googleapis.com' for consumer 'project_number:000000000000'.")
    response = _error(429, message)
    response.body["error"]["details"] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {
                "service": "sheets.googleapis.com",
                "consumer": "projects/000000000000",
                "quota_metric": f"sheets.googleapis.com/{kind}_requests",
                "quota_limit": QUOTA_LIMITS[kind],
                "quota_limit_value": str(limit),
                "quota_location": "global",
            },
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Request a higher quota limit.",
                       "url": "https://cloud.google.com/docs/quotas/help/request_increase"}],
        },
    ]
    return response


def _grown(book: Spreadsheet, sheet: Sheet, rows: int, cols: int) -> tuple[int, int]:
    """The sheet's grid size once it holds `rows` x `cols`; refuses to pass the cell limit."""
    new_rows, new_cols = max(sheet.row_count, rows), max(sheet.col_count, cols)
    if book.total_cells() - sheet.row_count * sheet.col_count + new_rows * new_cols > book.max_cells:
        raise SheetsError(
            400,
            f"This action would increase the number of cells in the workbook above the limit of {book.max_cells} cells.",
        )
    return new_rows, new_cols


def _major(value: Any) -> str:
    return "COLUMNS" if str(value or "").upper() == "COLUMNS" else "ROWS"


def _format_number(number: Decimal) -> str:
    if number == number.to_integral_value() and abs(number) < Decimal(10) ** 15:
        return str(int(number))
    return f"{float(number):.15g}".upper()


def _parse_value(value: Any, option: str) -> Any:
    """A request value -> Cell, None (clear) or _SKIP (leave as is)."""
    if value is None or value is _SKIP:
        return _SKIP
    if isinstance(value, bool):
        return Cell("TRUE" if value else "FALSE", "bool")
    if isinstance(value, (int, float)):
        return Cell(_format_number(Decimal(repr(value)) if isinstance(value, float) else Decimal(value)), "number")
    text = str(value)
    if text == "":
        return None
    if option == "RAW":
        return Cell(text, "text")
    if text.startswith("'"):
        # The UI's quote prefix: keep the rest as text, the apostrophe is not shown.
        return Cell(text[1:], "text") if len(text) > 1 else None
    if text.startswith("="):
        return Cell(text, "formula")
    stripped = text.strip()
    if _NUMBER.match(stripped):
        try:
            return Cell(_format_number(Decimal(stripped)), "number")
        except InvalidOperation:
            pass
    if _SIGNED_FORMULA.match(stripped):
        return Cell("=" + stripped, "formula")
    if stripped.upper() in ("TRUE", "FALSE"):
        return Cell(stripped.upper(), "bool")
    return Cell(text, "text")


def _render_row(row: list[Cell | None], render: str) -> list[Any]:
    out: list[Any] = []
    for cell in row:
        if cell is None:
            out.append("")
        elif render == "FORMATTED_VALUE" or cell.kind in ("text", "formula"):
            out.append(cell.value)
        else:
            out.append(cell.unformatted())
    while out and out[-1] == "":
        out.pop()
    return out


def _key(row: list[Cell | None], c: int) -> tuple[int, Any] | None:
    cell = row[c] if c < len(row) else None
    if cell is None:
        return None
    if cell.kind == "number":
        return (0, Decimal(cell.value))
    if cell.kind == "bool":
        return (2, cell.value)
    return (1, cell.value.lower())
