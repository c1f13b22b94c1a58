"""The one text table of the commands (check, status, quarantine): columns line up under their
header, two spaces apart, and no line ends in a space."""

from __future__ import annotations

from lib.commands.command import table


def test_columns_line_up_under_their_header_with_no_trailing_space():
    lines = table(["NAME", "RESULT", "DETAIL"], [["sheet", "OK", "fine"], ["slack channel", "FAIL", ""]])
    assert lines == [
        "NAME           RESULT  DETAIL",
        "sheet          OK      fine",
        "slack channel  FAIL",
    ]
    assert {line.index("RESULT") for line in lines[:1]} == {line.index("OK") for line in lines[1:2]}


def test_a_header_without_rows_is_one_line():
    assert table(["TIME", "MODE"], []) == ["TIME  MODE"]
