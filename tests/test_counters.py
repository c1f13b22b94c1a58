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


def test_a_runs_report_and_its_record_carry_what_the_store_billed_for_the_run(harness):
    """The JSON report's `store` is the store's counters across the whole run; a fresh
    instance's first record counts up to just before its own write (and the lease release)."""
    harness.add_chats(3)
    store = harness.open_store()
    harness.syncer().run()  # sets up: the run measured below is a plain one
    harness.add_chats(4, seed=9)
    harness.clock.advance(minutes=5)
    before = store.counters.snapshot()
    report = harness.syncer().run()
    billed = store.counters.since(before).as_dict()
    assert report.as_dict()["store"] == billed
    assert billed["writes"] >= 4 and billed["reads"] > 0  # the new chats were journaled, the lease read

    recorded = store.recent_runs(1)[0]["store"]
    assert recorded["writes"] < billed["writes"]  # its own write is after it
    assert all(recorded[k] <= billed[k] for k in billed)
    assert recorded["reads"] > 0


def test_a_warm_instances_records_carry_what_the_previous_record_left_out(harness):
    """On one Syncer each record counts from the previous record: its write, the trim and the
    lease release after it are in the next one, so two alike idle runs record what they billed."""
    harness.add_chats(2)
    syncer = harness.syncer()
    syncer.run()
    reports = []
    for _ in range(3):
        harness.clock.advance(minutes=5)
        reports.append(syncer.run())
    records = {r["run_id"]: r["store"] for r in harness.open_store().recent_runs(4)}
    for report in reports[1:]:
        assert records[report.run_id] == report.as_dict()["store"]


def test_status_shows_each_runs_billed_documents_and_a_days_share_of_the_free_tier(harness):
    """Within a day of history the cost is scaled to a day; once the history reaches back a
    day, only the last 24 hours are summed."""
    import io
    import json

    from lib.cli import Context, main

    def status(*extra: str) -> str:
        out = io.StringIO()
        main(["status", *extra], Context(env=harness.env(), clock=harness.clock, out=out, err=io.StringIO()))
        return out.getvalue()

    harness.add_chats(2)
    harness.syncer().run()
    harness.clock.advance(hours=23)
    harness.add_chats(2, seed=5)
    harness.syncer().run()
    harness.clock.advance(minutes=30)
    records = harness.open_store().recent_runs(10)
    data = json.loads(status("--json"))["store_cost"]
    assert data["whole_day"] is False and data["runs"] == 2
    assert data["reads"] == sum(r["store"]["reads"] for r in records)
    assert data["per_day"]["writes"] == round(sum(r["store"]["writes"] for r in records) * 24 / 23.5)
    assert data["free_tier_share"]["reads"] == round(100 * data["per_day"]["reads"] / 50_000, 1)
    text = status()
    newest = records[0]["store"]
    assert f"{newest['reads']}/{newest['writes']}/{newest['deletes']}" in text
    assert "a day at this rate" in text and "% of the free 50,000" in text

    harness.clock.advance(hours=1)  # the first run is now 24.5 h old: outside the day
    data = json.loads(status("--json"))["store_cost"]
    assert data["whole_day"] is True and data["runs"] == 1
    assert data["writes"] == data["per_day"]["writes"] == records[0]["store"]["writes"]
    assert "last 24 h (1 run)" in status()
