"""Smoke test of the click benchmark (benchmarks/claim_click.py): it answers every click on a
cold and a warm instance and counts each click's calls. No timing is asserted."""

from __future__ import annotations


def test_the_click_benchmark_answers_every_click_cold_and_warm():
    from benchmarks.claim_click import measure

    figures = measure(0.0, 2)
    assert figures["warm"]["clicks"] == 2 and figures["cold"]["first_click_ms"] > 0
    # Each click: users.info and chat.update in Slack; the key column, the Owner cell, one write in Sheets.
    assert (figures["calls_per_click"], figures["sheets_calls_per_click"]) == (2.0, 3.0)
