"""The backfill: a long window read span by span into the journal, then delivered once, inside
Sheets' quota; safe to stop and run again."""

from __future__ import annotations

import io
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib.app import build_syncer
from lib.commands.cli import EXIT_OK, Context, main
from lib.errors import RunFailed
from lib.sync.backfill import WINDOW_DAYS, BackfillResult, run_backfill, spans
from sandbox.standins.samples import sample_chats
from tests.harness import days_read_by_window, move_cursor_elsewhere

UK = ZoneInfo("Europe/London")


def today(harness) -> date:
    return harness.clock().astimezone(UK).date()


def add_daily_chats(harness, first: date, days: int, per_day: int, seed: int = 0) -> int:
    """`per_day` chats on each of `days` days from `first`, from 09:00, ten minutes apart."""
    for i in range(days):
        day = first + timedelta(days=i)
        harness.stand.moneypenny.add_chats(sample_chats(
            per_day, start=datetime(day.year, day.month, day.day, 9, 0), seed=seed + i, spacing=timedelta(minutes=10)))
    return days * per_day


def backfill(harness, start: date, end: date, **kw) -> BackfillResult:
    settings = harness.settings()
    return run_backfill(settings, harness.open_store(), start, end, build=harness.syncer, clock=harness.clock,
                        sleep=lambda s: None, **kw)


def cli_backfill(harness, start: date, end: date, quota_wait: float) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(env=harness.env(), clock=harness.clock, out=out, err=err, sleep=lambda s: None, backoff=0.05,
                  sheets_quota_wait=quota_wait)
    code = main(["backfill", "--from", str(start), "--to", str(end)], ctx)
    return code, out.getvalue(), err.getvalue()


@given(start=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
       length=st.integers(min_value=1, max_value=800), window=st.integers(min_value=1, max_value=60))
def test_spans_cover_the_window_day_by_day_without_overlap(start, length, window):
    end = start + timedelta(days=length - 1)
    cut = spans(start, end, window)
    assert cut[0][0] == start and cut[-1][1] == end
    for (first, last), (after, _) in zip(cut, cut[1:]):
        assert after == last + timedelta(days=1)
    assert all(first <= last and (last - first).days < window for first, last in cut)
    assert len(cut) == -(-length // window)


def test_a_multi_week_backfill_journals_every_day_then_writes_the_sheet_once(harness):
    start = today(harness) - timedelta(days=70)
    end = today(harness) - timedelta(days=1)
    chats = add_daily_chats(harness, start, 70, 3)
    harness.stand.sheets.reset_calls()
    seen: list[tuple[int, int, int]] = []

    def progress(result: BackfillResult) -> None:
        # After each read: days read so far, window reads made, appends made.
        seen.append((result.days_done, harness.stand.moneypenny.count("log"),
                     harness.stand.sheets.count("values.append")))

    result = backfill(harness, start, end, progress=progress)
    assert result.ok and result.days_done == 70 and result.reads == 3 == len(spans(start, end))
    # Every read but the last only journaled; the last delivered everything in one append.
    assert [appends for *_, appends in seen] == [0, 0, 1]
    assert [days for days, *_ in seen] == [31, 62, 70]
    assert harness.stand.moneypenny.count("log") <= 3 + 1  # the reads, and at most one recovery read
    assert days_read_by_window(harness.stand.moneypenny.calls("log")) >= {start + timedelta(days=i) for i in range(70)}
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == chats == result.appended
    # A fresh sheet: the tab, its header and one append; reads: the header and the key column.
    assert harness.stand.sheets.count_writes() == 3
    assert harness.stand.slack.messages() == []  # old days are not announced
    assert harness.open_store().journal_pending() == []


def test_a_stopped_backfill_resumes_and_writes_nothing_twice(harness):
    start = today(harness) - timedelta(days=45)
    end = today(harness) - timedelta(days=1)
    chats = add_daily_chats(harness, start, 45, 2, seed=100)
    move_cursor_elsewhere(harness)  # only window reads find them

    def stop_after_the_first_read(result: BackfillResult) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backfill(harness, start, end, progress=stop_after_the_first_read)
    store = harness.open_store()
    assert harness.sheet_keys() == []  # stopped before the delivering read
    journaled = {e.key for e in store.journal_pending()}
    # The first span waits in the journal (its read reached a day past it; only its days are kept).
    assert len(journaled) == WINDOW_DAYS * 2

    # The next scheduled run delivers what the stopped backfill journaled (and the recent days its
    # recovery read finds), once.
    harness.syncer().run()
    written = set(harness.sheet_keys())
    assert journaled <= written and len(written) < chats

    again = backfill(harness, start, end)
    assert again.ok and again.appended == chats - len(written)
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == chats

    writes = harness.stand.sheets.count_writes()
    third = backfill(harness, start, end)
    assert third.ok and (third.new, third.appended) == (0, 0)
    assert harness.stand.sheets.count_writes() == writes
    assert len(harness.sheet_keys()) == chats


def test_rows_already_in_the_sheet_past_the_journals_retention_are_not_written_again(harness):
    start = today(harness) - timedelta(days=40)
    first_half = add_daily_chats(harness, start, 20, 2, seed=200)
    assert harness.syncer().run().appended == first_half
    harness.clock.advance(days=35)  # their journal entries expire
    harness.syncer().run()
    assert harness.open_store().journal_get(harness.sheet_keys()) == {}
    second_half = add_daily_chats(harness, start + timedelta(days=20), 20, 2, seed=300)
    move_cursor_elsewhere(harness)  # only window reads find the second half
    result = backfill(harness, start, start + timedelta(days=39))
    assert result.ok
    assert result.already_in_sheet == first_half
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == first_half + second_half


def test_a_sheets_429_is_waited_out_and_the_backfill_finishes(harness):
    start = today(harness) - timedelta(days=10)
    chats = add_daily_chats(harness, start, 10, 2, seed=400)
    # Two writes per second: the new tab and its header use them up, the append meets a 429.
    harness.stand.sheets.set_quota(writes=2, window=1.0)
    t0 = time.monotonic()
    code, out, err = cli_backfill(harness, start, today(harness) - timedelta(days=1), quota_wait=30)
    assert code == EXIT_OK, out + err
    assert harness.stand.sheets.quota_refusals >= 1
    statuses = [c.status for c in harness.stand.sheets.calls("values.append")]
    assert statuses[-1] == 200 and 429 in statuses
    assert time.monotonic() - t0 < 20
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == chats


def test_a_429_with_retry_after_is_waited_as_it_says(harness):
    start = today(harness) - timedelta(days=3)
    chats = add_daily_chats(harness, start, 3, 2, seed=500)
    harness.stand.sheets.set_quota(writes=2, window=2.0, retry_after=True)
    t0 = time.monotonic()
    code, out, err = cli_backfill(harness, start, today(harness) - timedelta(days=1), quota_wait=30)
    assert code == EXIT_OK, out + err
    assert 429 in [c.status for c in harness.stand.sheets.calls("values.append")]
    assert time.monotonic() - t0 >= 1.0  # the Retry-After second (the back-off alone is far shorter)
    assert len(harness.sheet_keys()) == chats


def test_a_scheduled_runs_wait_for_the_quota_is_bounded_and_the_next_run_writes_the_rows_once(harness):
    harness.add_chats(5, seed=600)
    harness.stand.sheets.set_quota(writes=2, window=3.0)
    syncer = build_syncer(harness.settings(), store=harness.open_store(), clock=harness.clock, backoff=0.05,
                          sheets_quota_wait=0.5)
    t0 = time.monotonic()
    with pytest.raises(RunFailed) as failed:
        syncer.run()
    assert failed.value.transient  # answered 503: the scheduler tries again
    assert time.monotonic() - t0 < 2.5  # gave up after its wait, long before the quota freed up
    assert harness.sheet_keys() == []
    time.sleep(3.0)
    harness.clock.advance(minutes=5)
    assert harness.syncer().run().outcome == "ok"
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == 5


def test_a_backfill_on_firestore_reads_every_span_then_writes_the_sheet_once_and_resumes(harness, firestore_client):
    from lib.state.firestore.store import FirestoreStore

    store = FirestoreStore(firestore_client, "backfill")
    start = today(harness) - timedelta(days=40)
    end = today(harness) - timedelta(days=1)
    chats = add_daily_chats(harness, start, 40, 2, seed=700)
    move_cursor_elsewhere(harness)
    appends_after_each_read: list[int] = []

    def run(**kw) -> BackfillResult:
        return run_backfill(harness.settings(), store, start, end, build=lambda: harness.syncer(store=store),
                            clock=harness.clock, sleep=lambda s: None, **kw)

    result = run(progress=lambda r: appends_after_each_read.append(harness.stand.sheets.count("values.append")))
    assert result.ok and result.reads == 2 and appends_after_each_read == [0, 1]
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == chats
    assert store.journal_pending() == []
    writes = harness.stand.sheets.count_writes()
    again = run()
    assert again.ok and (again.new, again.appended) == (0, 0)
    assert harness.stand.sheets.count_writes() == writes and len(harness.sheet_keys()) == chats


def test_the_year_benchmark_runs_small_and_reports_every_chat_once(tmp_path):
    """benchmarks/backfill_year.py on a small window: its figures come from the stand-ins and the store."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "backfill.json"
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "backfill_year.py"), "--days", "35", "--per-day", "2",
         "--latency-ms", "0", "--json", str(out)],
        capture_output=True, text=True, cwd=str(root), timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "met (every chat once)" in proc.stdout and "Sheets writes" in proc.stdout
    data = json.loads(out.read_text())
    assert data["ok"] and data["rows"] == data["unique_rows"] == data["chats"] == 70
    assert data["reads"] == 2 and data["calls"]["sheets_appends"] == 1 and data["quota_refusals"] == 0
    assert data["store_counts"]["round_trips"] > 0
