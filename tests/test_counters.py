"""The clients' public counters say what they sent: the stand-ins received exactly that."""

from __future__ import annotations

from datetime import timedelta

from lib.counters import SheetCounters, StoreCounters
from sandbox.standins.server import Status


def test_client_counters_match_the_requests_the_standins_received(harness):
    harness.add_chats(5, seed=3)
    syncer = harness.syncer()
    syncer.run()  # logs in, creates the tab and header, appends, posts
    day = harness.clock().date()
    harness.stand.moneypenny.inject("log", Status(401))  # token refused: a new login, the read again
    syncer.run(mode="window", start=day - timedelta(days=1), end=day)

    mp, sheets, slack = harness.stand.moneypenny, harness.stand.sheets, harness.stand.slack
    logs = mp.calls("log")
    assert syncer.moneypenny.counters.auth == mp.count("auth") == 2
    assert syncer.moneypenny.counters.log == sum("startTime" not in c.query for c in logs) == 1
    assert syncer.moneypenny.counters.window == sum("startTime" in c.query for c in logs) == 2
    counters = syncer.sheet.counters
    assert (counters.reads, counters.writes, counters.appends) == (
        sheets.count_reads(), sheets.count_writes(), sheets.count("values.append"))
    assert counters.rows_written == len(harness.data_rows()) == 5
    assert syncer.slack.counters.posts == slack.count("chat.postMessage") == 1


def test_a_snapshot_gives_what_was_counted_since_and_reset_starts_from_zero():
    counters = StoreCounters(round_trips=3, reads=10, writes=2)
    before = counters.snapshot()
    counters.round_trips += 2
    counters.reads += 7
    counters.deletes += 1
    assert counters.since(before) == StoreCounters(round_trips=2, reads=7, writes=0, deletes=1)
    assert before == StoreCounters(round_trips=3, reads=10, writes=2)  # the snapshot did not move
    assert counters.as_dict() == {"round_trips": 5, "reads": 17, "writes": 2, "deletes": 1, "offset_reads": 0}
    counters.reset()
    assert counters == StoreCounters()
    sheet = SheetCounters(reads=1, rows_written=4)
    assert sheet.since(SheetCounters(rows_written=1)) == SheetCounters(reads=1, rows_written=3)
