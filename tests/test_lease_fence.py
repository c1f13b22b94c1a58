"""The fenced lease (issue #18, item 3): judged by the store's clock, checked just before every
write to the sheet and Slack, renewed while a long delivery waits, and fencing the in-flight
batch document. Duplicate cases 4 (a backfill waiting on Sheets past LEASE_SECONDS) and 5 (a
caller whose clock is 11 minutes fast) on SQLite and the Firestore emulator."""

from __future__ import annotations

import logging
import threading
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lib.app import build_syncer
from lib.clock import utcnow
from lib.errors import LeaseLost, RunFailed, SettingsError
from lib.settings import LEASE_MARGIN_SECONDS, Settings
from lib.state.models import InflightBatch
from lib.state.run_state import LeaseHold
from lib.sync.backfill import run_backfill
from sandbox.standins import Delay, Status
from sandbox.standins.samples import sample_chats
from tests.harness import move_cursor_elsewhere

UK = ZoneInfo("Europe/London")
MINUTE = timedelta(minutes=1)


def assert_each_row_once(harness, n: int) -> None:
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == n, sorted(keys)


def run(syncer, **kw):
    """The run's report, whether it succeeded or failed."""
    try:
        return syncer.run(**kw)
    except RunFailed as failed:
        return failed.report


# -- the store's clock ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "firestore"])
def own_clock_store(request, harness, tmp_path):
    """A store on its own clock (SQLite's `now`, Firestore's read time), as in production; the
    harness (the scheduled run's clock and Moneypenny's) starts at the same real time."""
    harness.clock.value = utcnow()
    if request.param == "firestore":
        from lib.state.firestore.store import FirestoreStore
        from tests.conftest import _emulator_client

        request.getfixturevalue("firestore_client")
        harness.store = FirestoreStore(_emulator_client(), "fence")
    else:
        from lib.state.sqlite.store import SqliteStore

        harness.store = SqliteStore(str(tmp_path / "own-clock.sqlite3"))
    return harness.store


def test_a_caller_whose_clock_is_11_minutes_fast_cannot_take_the_lease_of_a_run_delivering(harness, own_clock_store):
    """Duplicate case 5: `python -m lib run` from a laptop 11 minutes fast while a scheduled run
    is delivering. By its own clock the scheduled run's lease (LEASE_SECONDS, 10 minutes) ran
    out; by the store's it is held: the laptop's run is skipped and every row is written once."""
    harness.add_chats(3)
    laptop: list = []

    def fast() -> datetime:
        return harness.clock() + timedelta(minutes=11)

    def checkpoint(step: str) -> None:
        # The scheduled run has marked its rows in flight and is about to append them.
        if step == "after_mark_inflight" and not laptop:
            laptop.append(run(build_syncer(harness.settings(), store=own_clock_store, clock=fast, backoff=0.01)))

    scheduled = harness.syncer(checkpoint=checkpoint).run()
    assert_each_row_once(harness, 3)  # today: 6 rows, both runs appended the three
    assert laptop[0].outcome == "skipped" and laptop[0].skipped == "another run holds the lease"
    assert scheduled.outcome == "ok" and scheduled.appended == 3
    assert len(harness.stand.slack.messages()) == 1


def test_a_fast_caller_leaves_an_unanswered_append_alone_until_it_has_surely_ended(harness, own_clock_store):
    """Case 5 just after the scheduled run: its append got no answer (Google may still be
    carrying it out) and the run ended, giving the lease back. A laptop 11 minutes fast comes
    seconds later: by its own clock that append is long over, by the store's it is seconds old
    (batches are labelled and judged by the store's time), so it leaves the rows in flight and
    the late append lands once."""
    harness.add_chats(3)
    harness.stand.sheets.inject("values.append", Delay(4), times=1)  # lands after the 2 s timeout
    first = run(harness.syncer())
    assert first.outcome == "failed" and first.errors[0]["cause"] == "sheets"
    fast = build_syncer(harness.settings(), store=own_clock_store,
                        clock=lambda: harness.clock() + timedelta(minutes=11), backoff=0.01)
    laptop = run(fast)
    assert harness.stand.sheets.wait_idle(timeout=30)
    assert_each_row_once(harness, 3)  # without the store's time: 6 rows, the laptop wrote them again
    assert laptop.appended == 0 and laptop.waiting == 3


def test_the_fast_caller_takes_the_lease_for_its_length_by_the_store_clock(harness, own_clock_store):
    """A lease taken by a caller 11 minutes fast ends LEASE_SECONDS after the store's now, not
    after the caller's: a run on the right time takes it over only when it has really ended."""
    fast = harness.clock() + timedelta(minutes=11)
    before = utcnow()
    assert own_clock_store.acquire_lease("laptop", fast, fast + timedelta(minutes=10))
    lease = own_clock_store.get_lease()
    # Within a few seconds of ten minutes from the store's (real) now: not 21 minutes.
    assert before + timedelta(minutes=10) - timedelta(seconds=5) <= lease.expires_at <= utcnow() + timedelta(minutes=10)
    assert run(harness.syncer()).skipped == "another run holds the lease"


def test_python_m_lib_run_from_a_laptop_11_minutes_fast_exits_busy_while_a_scheduled_run_holds_the_lease(harness):
    """Duplicate case 5 from the command line: the scheduled run took the lease (ten minutes,
    by the store's clock) a moment ago; `python -m lib run` on a clock 11 minutes fast is told
    another run holds it (exit 3) and reads, writes and posts nothing."""
    import io

    from lib.commands.cli import EXIT_BUSY, Context, main
    from lib.state import open_store

    harness.clock.value = utcnow()
    harness.add_chats(2)
    store = open_store(harness.settings())  # as the function opens it: on the store's own clock
    try:
        now = harness.clock()
        assert store.acquire_lease("scheduled-run", now, now + timedelta(minutes=10))
    finally:
        store.close()
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(env=harness.env(), clock=lambda: harness.clock() + timedelta(minutes=11), out=out, err=err,
                  sleep=lambda s: None, backoff=0.01)
    assert main(["run"], ctx) == EXIT_BUSY, out.getvalue() + err.getvalue()
    assert harness.data_rows() == [] and harness.stand.slack.messages() == []
    assert harness.stand.moneypenny.count() == 0


# -- the fence -------------------------------------------------------------------------------------


def test_the_in_flight_batch_document_is_written_only_while_the_lease_is_held(harness, store):
    """One transaction: the lease read, renewed near its end, and the batch written; a run
    whose lease another run took stores no batch (LeaseLost)."""
    hold = LeaseHold("mine", timedelta(minutes=10), MINUTE)
    batch = InflightBatch("b1", "mine@1", ("k1", "k2"), harness.clock() + timedelta(days=30))
    assert store.acquire_lease("mine", harness.clock(), harness.clock() + timedelta(minutes=10))
    store.batch_put_held(batch, hold)
    assert [b.id for b in store.batch_list()] == ["b1"]
    assert store.get_lease().expires_at == harness.clock() + timedelta(minutes=10)  # not near its end: as it was

    harness.clock.advance(minutes=9, seconds=30)  # 30 s left, less than the margin: renewed first
    store.batch_put_held(InflightBatch("b2", "mine@2", ("k3",), batch.expires_at), hold)
    assert store.get_lease().expires_at == harness.clock() + timedelta(minutes=10)

    harness.clock.advance(minutes=11)  # expired, and another run took it
    assert store.acquire_lease("other", harness.clock(), harness.clock() + timedelta(minutes=10))
    with pytest.raises(LeaseLost):
        store.batch_put_held(InflightBatch("b3", "mine@3", ("k4",), batch.expires_at), hold)
    with pytest.raises(LeaseLost):
        store.hold_lease(hold)
    store.release_lease("other")  # taken and given back: still lost (that run may have delivered)
    with pytest.raises(LeaseLost):
        store.batch_put_held(InflightBatch("b3", "mine@3", ("k4",), batch.expires_at), hold)
    assert [b.id for b in store.batch_list()] == ["b1", "b2"]


def test_a_run_whose_lease_is_taken_after_its_append_posts_nothing_to_slack(harness, store):
    """Slack is fenced too: the lease taken over between the append and the post (this run
    outlived it), the run posts nothing, marks what it appended, and the next holder posts it once."""
    harness.add_chats(2)
    lease = timedelta(seconds=harness.settings().lease_seconds)

    def checkpoint(step: str) -> None:
        if step == "after_append":
            harness.clock.advance(seconds=lease.total_seconds() + 1)
            assert harness.open_store().acquire_lease("next-run", harness.clock(), harness.clock() + lease)

    report = run(harness.syncer(checkpoint=checkpoint))
    assert harness.stand.slack.messages() == []  # today: posted by a run that no longer holds the lease
    assert report.outcome == "failed" and [e["cause"] for e in report.errors] == ["lease_lost"]
    assert_each_row_once(harness, 2)
    harness.open_store().release_lease("next-run")
    again = harness.syncer().run()
    assert again.appended == 0 and again.posted == 2 and len(harness.stand.slack.messages()) == 1
    assert_each_row_once(harness, 2)


def test_a_run_that_lost_its_lease_after_its_post_never_writes_its_stale_pending_over_the_new_holders_done(
        harness, store):
    """A run whose append Sheets refused twice posts its chats to Slack, then is paused past its
    lease while another run takes over and appends them. Waking, it records what it did (the Slack
    half) and nothing it did not: its own memory says "pending" for the sheet, and writing that
    over the new holder's done mark would have the next run append the rows a second time."""
    harness.add_chats(2)
    lease = timedelta(seconds=harness.settings().lease_seconds)
    harness.stand.sheets.inject("values.append", Status(500), times=2)  # both passes of this run
    taken_over: list = []

    def checkpoint(step: str) -> None:
        if step == "after_post" and not taken_over:
            harness.clock.advance(seconds=lease.total_seconds() + 1)
            taken_over.append(run(harness.syncer()))

    paused = run(harness.syncer(checkpoint=checkpoint))
    assert paused.outcome == "failed" and paused.appended == 0 and paused.posted == 2
    assert taken_over[0].outcome == "ok" and taken_over[0].appended == 2
    harness.clock.advance(minutes=5)
    after = harness.syncer().run()
    assert after.appended == 0, "a row written twice: the paused run's stale pending mark won"
    assert_each_row_once(harness, 2)
    assert harness.open_store().journal_pending() == []
def test_slack_sdks_own_429_retry_that_outlasts_the_lease_does_not_post_the_summary_again(harness, store_kind):
    """The post is fenced once, and so is each of slack-sdk's re-sends: the run's post meets a
    429 and, while slack-sdk waits out its Retry-After (in its own thread here), the lease runs
    out (by the store's clock) and the next scheduled run takes it over and posts the summary.
    Waking, the first run's retry handler checks the lease before sending again: lost, so it
    posts nothing more."""
    harness.add_chats(2)
    lease = harness.settings().lease_seconds
    harness.stand.slack.inject("chat.postMessage", Status(429, retry_after=3), times=1)
    out: dict = {}
    first = threading.Thread(target=lambda: out.setdefault("first", run(harness.syncer())))
    first.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not [c for c in harness.stand.slack.calls("chat.postMessage") if c.status]:
        time.sleep(0.02)  # until the first run's post got its 429
    time.sleep(1.0)  # its retry handler now sleeps out the Retry-After (3 s and up to 1 s of jitter)
    assert first.is_alive(), "the first run should be waiting out the 429"
    harness.clock.advance(seconds=lease + 1)  # asleep for longer than the lease
    nxt = run(harness.syncer())
    first.join()
    assert len(harness.stand.slack.messages()) == 1  # before: the first run's re-send posted it twice
    assert nxt.outcome == "ok" and nxt.posted == 2
    assert out["first"].outcome == "failed" and [e["cause"] for e in out["first"].errors] == ["lease_lost"]
    assert_each_row_once(harness, 2)


def test_a_lease_shorter_than_its_margin_plus_the_http_timeout_is_refused():
    """A LEASE_SECONDS that one HTTP request (HTTP_TIMEOUT_SECONDS) after the lease margin could
    outlast is refused, naming both settings and the least lease that fits."""
    base = {"MONEYPENNY_USERNAME": "u", "MONEYPENNY_PASSWORD": "p", "SHEET_ID": "s", "SLACK_BOT_TOKEN": "t",
            "SLACK_CHANNEL": "c"}
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**base, "LEASE_SECONDS": "100", "HTTP_TIMEOUT_SECONDS": "60"})
    message = str(refused.value)
    assert "LEASE_SECONDS=100" in message and "HTTP_TIMEOUT_SECONDS=60" in message
    assert f"at least {LEASE_MARGIN_SECONDS + 60}" in message
    fits = Settings.from_env({**base, "LEASE_SECONDS": str(LEASE_MARGIN_SECONDS + 60), "HTTP_TIMEOUT_SECONDS": "60"})
    assert fits.lease_seconds == LEASE_MARGIN_SECONDS + 60


# -- duplicate case 4: a backfill waiting on Sheets past LEASE_SECONDS -----------------------------


def _backfill_days(harness, days: int = 3, per_day: int = 2) -> tuple[date, date]:
    today = harness.clock().astimezone(UK).date()
    start = today - timedelta(days=days)
    for i in range(days):
        day = start + timedelta(days=i)
        harness.stand.moneypenny.add_chats(sample_chats(
            per_day, start=datetime(day.year, day.month, day.day, 9, 0), seed=900 + i, spacing=timedelta(minutes=10)))
    move_cursor_elsewhere(harness)  # the scheduled run's own read finds nothing new
    return start, today - timedelta(days=1)


class WhileWaiting(logging.Handler):
    """Calls `act(n)` each time the Sheets client logs that it waits before a retry (the n-th
    wait): what happens meanwhile, in the store and at Sheets, during the backfill's 429 wait."""

    def __init__(self, act, message: str = "waiting before a retry"):
        super().__init__(logging.INFO)
        self.act, self.message, self.waits, self.failures = act, message, 0, []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() != self.message:
            return
        self.waits += 1
        try:
            self.act(self.waits)
        except Exception as exc:  # reported by the test, not swallowed by logging
            self.failures.append(exc)


def _backfill_with(harness, act, start: date, end: date):
    handler = WhileWaiting(act)
    logger = logging.getLogger("lib.http")
    logging.getLogger("lib").setLevel(logging.INFO)  # put back by the restore_logging fixture
    logger.addHandler(handler)
    try:
        result = run_backfill(harness.settings(), harness.open_store(), start, end, build=harness.syncer,
                              clock=harness.clock, sleep=lambda s: None)
    finally:
        logger.removeHandler(handler)
    assert handler.failures == []
    return result, handler


def test_a_backfill_that_sleeps_through_its_lease_on_a_429_never_appends_what_the_next_run_wrote(harness, store):
    """Duplicate case 4: the backfill's append meets a 429 and, while it waits, its lease runs
    out (by the store's clock) and the next scheduled run takes it over and appends the pending
    rows. Waking, the backfill checks the lease before sending the append again: lost, so it
    sends nothing; every row is in the sheet once, and the next run finds nothing to do."""
    start, end = _backfill_days(harness)
    lease = harness.settings().lease_seconds
    scheduled: list = []

    def meanwhile(wait: int) -> None:
        if wait == 1:
            harness.clock.advance(seconds=lease + 1)  # asleep for longer than the lease
            scheduled.append(run(harness.syncer()))

    harness.stand.sheets.inject("values.append", Status(429, retry_after=1), times=1)
    result, _ = _backfill_with(harness, meanwhile, start, end)
    assert_each_row_once(harness, 6)  # today: 12 rows, the backfill appended the six again
    assert scheduled[0].outcome == "ok" and scheduled[0].appended == 6
    assert result.stopped == "failed" and result.error is not None and result.error.cause == "lease_lost"
    nxt = harness.syncer().run()
    assert nxt.appended == 0 and nxt.pending == 0
    assert_each_row_once(harness, 6)


def test_a_backfill_whose_429_waits_outlast_the_lease_renews_it_as_it_goes(harness, store):
    """Duplicate case 4, the other way round: the waits add up past LEASE_SECONDS but each one
    checks the lease first and renews it near its end, so the scheduled run that comes in the
    middle finds it held and skips; the backfill's append then lands, every row once."""
    start, end = _backfill_days(harness)
    lease = harness.settings().lease_seconds
    scheduled: list = []

    def meanwhile(wait: int) -> None:
        if wait == 1:
            harness.clock.advance(seconds=lease - 30)  # the first wait: the lease nearly out
        elif wait == 2:
            harness.clock.advance(seconds=300)  # past the first lease's end: renewed before it
            scheduled.append(run(harness.syncer()))

    harness.stand.sheets.inject("values.append", Status(429, retry_after=1), times=2)
    result, handler = _backfill_with(harness, meanwhile, start, end)
    assert handler.waits == 2
    assert_each_row_once(harness, 6)  # today: 12 rows, both appended the six
    assert scheduled[0].outcome == "skipped" and scheduled[0].skipped == "another run holds the lease"
    assert result.ok and result.appended == 6
