"""The clients' public counters say what they sent: the stand-ins received exactly that."""

from __future__ import annotations

from datetime import datetime, timedelta

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


def _status(harness, *extra: str) -> str:
    import io

    from lib.commands.cli import Context, main

    out = io.StringIO()
    main(["status", *extra], Context(env=harness.env(), clock=harness.clock, out=out, err=io.StringIO()))
    return out.getvalue()


def _cost(harness) -> dict:
    import json

    return json.loads(_status(harness, "--json"))["store_cost"]


def _summed(records, key: str) -> int:
    return sum(r["store"][key] for r in records)


def test_status_sums_the_days_recorded_runs_and_never_scales_one_run_up_to_a_day(harness):
    """After a demo's two runs five minutes apart, the day's cost is what those two runs billed
    (the store recorded every run it ever had: the whole day is known), not 288 times it."""
    harness.add_chats(8)
    harness.syncer().run()
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    records = harness.open_store().recent_runs(10)
    assert len(records) == 2
    cost = _cost(harness)
    assert cost["whole_day"] is True and cost["runs"] == 2
    for unit in ("reads", "writes", "deletes"):
        assert cost[unit] == _summed(records, unit)
    assert cost["free_tier_share"]["writes"] == round(100 * _summed(records, "writes") / 20_000, 1)
    text = _status(harness)
    assert f"last 24 h, from 2 scheduled runs: {_summed(records, 'reads'):,} reads" in text
    assert "a day at this rate" not in text and "estimate" not in text
    newest = records[0]["store"]
    assert f"{newest['reads']}/{newest['writes']}/{newest['deletes']}" in text

    harness.clock.advance(hours=25)  # both runs now outside the day
    harness.syncer().run()
    newest = harness.open_store().recent_runs(1)[0]
    cost = _cost(harness)
    assert cost["runs"] == 1 and cost["writes"] == newest["store"]["writes"]


def test_a_backfills_reads_are_counted_apart_from_the_days_runs(harness):
    from tests.test_backfill import add_daily_chats, backfill, today

    harness.add_chats(2)
    harness.syncer().run()
    scheduled = harness.open_store().recent_runs(10)
    start = today(harness) - timedelta(days=40)
    add_daily_chats(harness, start, 39, 5)
    harness.clock.advance(minutes=1)
    assert backfill(harness, start, today(harness) - timedelta(days=1)).ok
    windows = [r for r in harness.open_store().recent_runs(10) if r["mode"] == "window"]
    assert len(windows) == 2
    cost = _cost(harness)
    assert cost["runs"] == 1 and cost["writes"] == _summed(scheduled, "writes")
    assert cost["backfill"] == {"runs": 2, **{k: _summed(windows, k) for k in ("reads", "writes", "deletes",
                                                                                "offset_reads")}}
    text = _status(harness)
    assert f"backfill reads apart (2 runs): {_summed(windows, 'reads'):,} read" in text
    assert f"from 1 scheduled run: {_summed(scheduled, 'reads'):,} reads" in text


def _seed_runs(harness, hours_apart: float, count: int, keep: int) -> list[dict]:
    """`count` runs recorded `hours_apart` apart into a ring of `keep`, the newest a minute ago;
    the kept ones, newest first."""
    store = harness.open_store()
    now = harness.clock()
    for i in range(count):
        started = now - timedelta(minutes=1) - timedelta(hours=hours_apart * (count - 1 - i))
        store.record_run({"run_id": f"r{i}", "mode": "new", "outcome": "ok", "started_at": started.isoformat(),
                          "store": {"reads": 10 + i, "writes": 3 + i, "deletes": i, "offset_reads": 0}}, keep=keep)
    kept = store.recent_runs(keep)
    store.close()
    return kept


def test_status_says_from_how_many_runs_over_how_many_hours_when_the_kept_runs_reach_back_less_than_a_day(harness):
    kept = _seed_runs(harness, hours_apart=1, count=5, keep=3)  # two runs left the ring
    cost = _cost(harness)
    hours = round((harness.clock() - datetime.fromisoformat(kept[-1]["started_at"])).total_seconds() / 3600, 1)
    assert cost["whole_day"] is False and cost["runs"] == 3 and cost["hours"] == hours
    assert cost["writes"] == _summed(kept, "writes") and "estimate" not in cost
    text = _status(harness)
    assert f"from 3 scheduled runs over {hours:g} h" in text
    assert "no estimate for a day" in text


def test_a_days_estimate_is_given_from_six_hours_of_history_and_labelled_as_one(harness):
    kept = _seed_runs(harness, hours_apart=4, count=5, keep=3)  # the kept runs reach back 8 h
    cost = _cost(harness)
    span = harness.clock() - datetime.fromisoformat(kept[-1]["started_at"])
    assert cost["whole_day"] is False
    assert cost["estimate"]["per_day"]["writes"] == round(_summed(kept, "writes") * timedelta(days=1) / span)
    assert "estimate for a day at this rate: " in _status(harness)


