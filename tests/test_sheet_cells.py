"""Sheet cells and appends: a cell never exceeds Sheets' 50,000-character limit, and rows are
split into appends by their JSON size in UTF-8, never losing, splitting or reordering a row."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.destinations.sheet.cells import CELL_LIMIT, MAX_APPEND_BYTES, chunk_rows, fit_cell

MARKER = re.compile(r"\n… \[cut: (\d+) more characters\]$")


def cut_parts(cell: str) -> tuple[str, int]:
    """The kept text and the number the marker states."""
    match = MARKER.search(cell)
    assert match, f"no cut marker at the end of {cell[-60:]!r}"
    return cell[: match.start()], int(match.group(1))


# -- fit_cell -------------------------------------------------------------------------------------


def test_the_limit_is_sheets_50000_characters():
    assert CELL_LIMIT == 50_000


@pytest.mark.parametrize("text", ["", "a", "x" * (CELL_LIMIT - 1), "x" * CELL_LIMIT, "漢" * CELL_LIMIT])
def test_text_up_to_the_limit_is_kept_whole(text):
    assert fit_cell(text) == text


@pytest.mark.parametrize("length", [CELL_LIMIT + 1, CELL_LIMIT + 30, 99_999, 100_000, 1_000_000])
def test_longer_text_is_cut_to_the_limit_with_a_marker_that_counts_what_was_cut(length):
    text = "".join(chr(ord("a") + i % 26) for i in range(length))
    cell = fit_cell(text)
    assert len(cell) <= CELL_LIMIT
    kept, cut = cut_parts(cell)
    assert text.startswith(kept)
    assert len(kept) + cut == length
    # The marker is sized for the whole length's digits: at most that many characters go unused.
    assert len(cell) >= CELL_LIMIT - len(str(length))


def test_the_limit_counts_characters_not_bytes():
    text = "漢字" * 30_000  # 60,000 characters, 180,000 bytes in UTF-8
    kept, cut = cut_parts(fit_cell(text))
    assert len(fit_cell(text)) <= CELL_LIMIT and len(kept) > CELL_LIMIT - 100
    assert len(kept) + cut == 60_000 and text.startswith(kept)


def test_a_small_limit_is_respected_too():
    cell = fit_cell("y" * 200, limit=100)
    kept, cut = cut_parts(cell)
    assert len(cell) <= 100 and kept == "y" * len(kept) and len(kept) + cut == 200


# -- chunk_rows -----------------------------------------------------------------------------------

# A row costs its JSON (UTF-8, non-ASCII as is) plus one byte:
# ["ab"] is 6 bytes of JSON, so 7; ["漢"] is 7 bytes (漢 is 3 in UTF-8), so 8.
AB, HAN = ["ab"], ["漢"]


def test_the_payload_budget_is_1_5_mb():
    assert MAX_APPEND_BYTES == 1_500_000


def test_no_rows_make_no_appends():
    assert chunk_rows([]) == []
    assert chunk_rows([], max_bytes=1) == []


def test_rows_that_fill_the_budget_exactly_make_one_append():
    assert chunk_rows([AB, AB, AB], max_bytes=21) == [[AB, AB, AB]]


def test_one_byte_too_many_starts_a_second_append():
    assert chunk_rows([AB, AB, AB], max_bytes=20) == [[AB, AB], [AB]]


def test_multibyte_text_is_measured_in_utf8_bytes():
    assert chunk_rows([HAN, HAN], max_bytes=16) == [[HAN, HAN]]
    assert chunk_rows([HAN, HAN], max_bytes=15) == [[HAN], [HAN]]
    emoji = ["👋"]  # 4 bytes in UTF-8: 8 bytes of JSON, so 9
    assert chunk_rows([emoji, emoji], max_bytes=18) == [[emoji, emoji]]
    assert chunk_rows([emoji, emoji], max_bytes=17) == [[emoji], [emoji]]


def test_a_row_larger_than_the_budget_goes_alone_and_whole():
    big = ["z" * 100]
    assert chunk_rows([big], max_bytes=10) == [[big]]
    assert chunk_rows([AB, big, AB], max_bytes=10) == [[AB], [big], [AB]]


def test_every_row_is_kept_once_in_order():
    rows = [[f"row {i}", "é" * (i % 7), "x" * (i * 13 % 50)] for i in range(200)]
    chunks = chunk_rows(rows, max_bytes=500)
    assert len(chunks) > 1
    assert [row for chunk in chunks for row in chunk] == rows
    assert all(chunk for chunk in chunks)


def test_a_typical_run_is_one_append():
    rows = [["2026-11-20 09:00:00", "Ann", "", "ann@example.com", "", "", "", "1: [Visitor] - hi " * 20,
             "", "", "", "", "", "0" * 32]] * 1000
    assert len(chunk_rows(rows)) == 1


# -- the same, for any text -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400), limit=st.integers(min_value=64, max_value=300))
def test_any_text_fits_its_cell_and_the_marker_accounts_for_every_character(text, limit):
    cell = fit_cell(text, limit=limit)
    assert len(cell) <= limit
    if len(text) <= limit:
        assert cell == text
    else:
        kept, cut = cut_parts(cell)
        assert text.startswith(kept) and len(kept) + cut == len(text)


def utf8_json_size(row: list[str]) -> int:
    """What the README's 1.5 MB budget counts: the row's JSON in UTF-8, plus one byte."""
    return len(json.dumps(row, ensure_ascii=False).encode("utf-8")) + 1


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(st.text(max_size=30), max_size=4), max_size=30),
       max_bytes=st.integers(min_value=1, max_value=200))
def test_any_rows_are_kept_once_in_order_in_appends_within_the_budget(rows, max_bytes):
    chunks = chunk_rows(rows, max_bytes=max_bytes)
    assert [row for chunk in chunks for row in chunk] == rows
    for chunk in chunks:
        assert chunk and (len(chunk) == 1 or sum(utf8_json_size(r) for r in chunk) <= max_bytes)
    # As few appends as the budget allows: no two neighbours would have fitted together.
    for a, b in zip(chunks, chunks[1:]):
        assert sum(utf8_json_size(r) for r in a) + utf8_json_size(b[0]) > max_bytes
