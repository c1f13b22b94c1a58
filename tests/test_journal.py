"""The journal (lib/sync/journal.py): "Journal first", unreadable items set aside, retention, each
entry parsed once per run, the run's work from memory and "delivered once". Real SQLite store and
the harness's clock; the delivery tests use the stand-ins through the real clients."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lib.errors import SlackUnavailable
from lib.state.models import DONE, PENDING
from lib.sync import RunOptions
from sandbox.standins import Status
from sandbox.standins.samples import sample_chats


def items(harness, n: int, seed: int = 0) -> list[dict]:
    local = harness.clock().astimezone(harness.settings().chat_timezone).replace(tzinfo=None)
    return sample_chats(n, start=local - timedelta(hours=2), seed=seed)


def test_every_fetched_chat_is_one_journal_entry_by_key_and_fetching_it_again_changes_nothing(harness):
    """Journal first: one entry per chat key; a chat fetched again leaves its entry exactly as it is."""
    store, batch = harness.open_store(), items(harness, 3)
    journal = harness.protocols().journal
    report = harness.report()
    assert journal.ingest(report, batch + batch[:1], RunOptions()) == 3
    assert report.fetched == 3 and report.new == 3 and len(report.new_keys) == 3
    [first, *_] = store.journal_pending()
    journal.mark([first], "sheet", DONE)
    harness.clock.advance(minutes=5)
    again = harness.report("again")
    assert harness.protocols().journal.ingest(again, batch, RunOptions()) == 0
    kept = store.journal_get([first.key])[first.key]
    assert kept.state("sheet") == DONE and kept.fetched_at == first.fetched_at and again.new == 0


def test_unreadable_items_are_set_aside_counted_and_the_rest_of_the_batch_goes_on(harness):
    """An item that is not an object or has no usable chatTime is quarantined (its reason
    names the field, never its value); the readable ones are journaled."""
    store = harness.open_store()
    report = harness.report()
    harness.protocols().journal.ingest(report, ["not an object", {"name": "No Time"}, *items(harness, 2)], RunOptions())
    assert report.skipped_invalid == 2 and report.new == 2
    reasons = sorted(q.reason for q in store.quarantine_list())
    assert reasons == ["chatTime is missing", "item is a JSON str, not an object"]
    assert all(q.expires_at == harness.clock() + timedelta(days=harness.settings().retention_days)
               for q in store.quarantine_list())


def test_entries_delivered_to_both_destinations_get_their_expiry_and_others_none(harness):
    """Retention: an entry done in the sheet and Slack carries expires_at = now + RETENTION_DAYS."""
    store, journal = harness.open_store(), harness.protocols().journal
    journal.ingest(harness.report(), items(harness, 2), RunOptions())
    one, two = store.journal_pending()
    journal.mark([one, two], "sheet", DONE)
    assert all(e.expires_at is None for e in store.journal_get([one.key, two.key]).values())
    journal.mark([one], "slack", DONE)
    got = store.journal_get([one.key, two.key])
    assert got[one.key].expires_at == harness.clock() + timedelta(days=harness.settings().retention_days)
    assert got[two.key].expires_at is None and got[two.key].state("slack") == PENDING
    assert [e.key for e in store.journal_pending()] == [two.key]


def test_a_backfill_presets_keys_in_the_sheet_as_written_and_old_days_as_announced(harness):
    """sheet_keys and announce_before apply to entries new to the journal only."""
    store, batch = harness.open_store(), items(harness, 2)
    journal = harness.protocols().journal
    report = harness.report()
    local_day = harness.clock().astimezone(harness.settings().chat_timezone).date()
    first_key = harness.syncer().source.parse_batch(batch, harness.settings().chat_timezone)[0][0].key
    opts = RunOptions(mode="window", start=local_day, end=local_day, sheet_keys={first_key},
                      announce_before=local_day + timedelta(days=1))
    journal.ingest(report, batch, opts)
    assert report.already_in_sheet == 1 and report.not_announced == 2
    entry = store.journal_get([first_key])[first_key]
    assert entry.states == {"sheet": DONE, "slack": DONE} and entry.expires_at is not None


def test_a_chat_journaled_by_this_run_is_not_parsed_again_for_its_delivery(harness):
    """Parse once: the records of entries this run journaled are the ones parsed at fetch time."""
    store, journal = harness.open_store(), harness.protocols().journal
    journal.ingest(harness.report(), items(harness, 5), RunOptions())
    pending = store.journal_pending()
    records = journal.records_of(pending)
    assert journal.records.parsed == 0
    assert [r.key for r in records] == [e.key for e in pending]


def test_an_entry_read_back_from_an_earlier_run_is_parsed_once_for_both_destinations(harness):
    """Parse once: an entry an earlier run left is parsed on its first use; the sheet rows and
    the summary (two uses, two reads of the journal) share that one parse."""
    store = harness.open_store()
    harness.protocols().journal.ingest(harness.report(), items(harness, 4), RunOptions())
    journal = harness.protocols().journal  # the next run
    first = journal.records_of(store.journal_pending())
    second = journal.records_of(store.journal_pending())  # fresh objects from the store
    assert journal.records.parsed == 4
    assert [r.row() for r in first] == [r.row() for r in second]


def test_records_come_in_chat_time_order_whatever_the_order_of_the_entries(harness):
    """Rows and summary lines follow chat time (then key)."""
    store, journal = harness.open_store(), harness.protocols().journal
    journal.ingest(harness.report(), items(harness, 6, seed=3), RunOptions())
    records = journal.records_of(list(reversed(store.journal_pending())))
    assert [(r.time, r.key) for r in records] == sorted((r.time, r.key) for r in records)


def test_a_run_delivers_what_earlier_runs_left_and_what_it_journaled_without_reading_it_back(harness):
    """The run's work is the entries read before it journaled anything plus the ones it
    journaled, in chat-time order; the latter come from memory, not from the store."""
    store = harness.open_store()
    harness.protocols().journal.ingest(harness.report(), items(harness, 2, seed=1), RunOptions())
    journal = harness.protocols().journal  # the next run
    earlier = store.journal_pending()
    journal.ingest(harness.report("next"), items(harness, 3, seed=2), RunOptions())
    before = store.counters.snapshot()
    work = journal.pending(earlier)
    assert store.counters.since(before).reads == 0
    assert len(work) == 5 and {e.key for e in earlier} < {e.key for e in work}
    assert [(e.item_time, e.key) for e in work] == sorted((e.item_time, e.key) for e in work)
    assert {e.key for e in work} == {e.key for e in store.journal_pending()}


def test_an_entry_the_sheet_and_slack_both_took_is_written_once_and_its_batch_deleted(harness):
    """Delivered once: one write per entry for both destinations, with its expiry; the in-flight
    batch document goes after that write."""
    harness.add_chats(3)
    steps = harness.protocols()
    steps.fetch.read(harness.report("fetch"), RunOptions())
    store, report = harness.open_store(), harness.report()
    work = steps.journal.pending([])
    steps.sheet.deliver(report, work)
    steps.slack.deliver(report, work)
    assert len(store.batch_list()) == 1 and len(store.journal_pending()) == 3  # nothing marked yet
    before = store.counters.snapshot()
    steps.journal.write_staged()
    used = store.counters.since(before)
    assert (used.writes, used.deletes) == (3, 1)
    assert store.journal_pending() == [] and store.batch_list() == []
    expiry = harness.clock() + timedelta(days=harness.settings().retention_days)
    assert all(e.expires_at == expiry for e in store.journal_get(harness.sheet_keys()).values())


def test_when_only_the_sheet_took_the_entries_only_its_half_is_written(harness):
    """A failed Slack post: the sheet's done marks are written (the batch ends), Slack's stay pending."""
    harness.add_chats(2)
    steps = harness.protocols()
    steps.fetch.read(harness.report("fetch"), RunOptions())
    harness.stand.slack.inject("chat.postMessage", Status(500), times=None)
    report, work = harness.report(), steps.journal.pending([])
    steps.sheet.deliver(report, work)
    with pytest.raises(SlackUnavailable):
        steps.slack.deliver(report, work)
    steps.journal.write_staged()
    store = harness.open_store()
    assert [(e.state("sheet"), e.state("slack")) for e in store.journal_pending()] == [(DONE, PENDING)] * 2
    assert store.batch_list() == []
