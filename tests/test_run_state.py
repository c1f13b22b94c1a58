"""The per-run state: what an idle run costs in billed documents, and the state that each way a
run can end leaves behind (skipped for the lease, crashed, taken over, retried by the scheduler)."""

from __future__ import annotations

import pytest

from lib.runner import run_and_report
from lib.sync import RunOptions
from tests.conftest import _emulator_client

# The targets of an idle run (nothing new, nothing pending), in documents as Firestore bills them.
IDLE_READS, IDLE_WRITES, IDLE_DELETES = 4, 3, 0


@pytest.fixture(params=["sqlite", "firestore"])
def store_kind(request):
    return request.param


def _store(harness, kind, request):
    if kind == "sqlite":
        return harness.open_store()
    from lib.state.firestore import FirestoreStore

    request.getfixturevalue("firestore_client")
    store = FirestoreStore(_emulator_client(), "idle")
    request.addfinalizer(store.close)
    return store


def _scheduled_run(harness, store, minute: int):
    return run_and_report(harness.settings(), RunOptions(), lambda: harness.syncer(store=store),
                          schedule_time=f"2026-11-20T12:{minute:02d}:00Z", schedule_job="moneypenny-sync")


def test_an_idle_run_costs_at_most_the_target_reads_writes_and_deletes(harness, store_kind, request):
    store = _store(harness, store_kind, request)
    harness.add_chats(2)
    assert _scheduled_run(harness, store, 0).report.appended == 2
    for minute in (5, 10):
        harness.clock.advance(minutes=5)
        before = store.counters.snapshot()
        result = _scheduled_run(harness, store, minute)
        cost = store.counters.since(before)
        print(store_kind, cost)
        assert result.report.outcome == "ok" and result.report.fetched == 0
        assert cost.reads <= IDLE_READS and cost.writes <= IDLE_WRITES and cost.deletes <= IDLE_DELETES, cost
