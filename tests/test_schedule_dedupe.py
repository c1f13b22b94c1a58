"""Scheduler-retry dedupe (lib/sync/schedule.py), as docs/guarantees.md's "One run at a time"
states it. A real SQLite store; the Syncer's own use is driven through the stand-ins."""

from __future__ import annotations

import pytest

from lib.errors import RunFailed
from lib.sync import SCHEDULES_KEPT, ScheduleLog, schedule_key
from sandbox.standins import Status

AT = "2026-11-20T03:15:00Z"


def test_a_scheduled_run_is_named_by_its_job_and_schedule_time_or_by_its_mode_without_a_job():
    """The sync and the daily reconcile fire with the same ScheduleTime: the job name tells them
    apart; without one, the mode stands in for it. No ScheduleTime: not a scheduled run."""
    assert schedule_key("moneypenny-sync", "new", AT) != schedule_key("moneypenny-reconcile", "reconcile", AT)
    assert schedule_key(None, "new", AT) != schedule_key(None, "reconcile", AT)
    assert schedule_key(" ", "new", AT) == schedule_key(None, "new", AT)
    assert schedule_key("moneypenny-sync", "new", None) is None


def test_a_run_noted_as_succeeded_is_known_and_others_are_not(sqlite_store):
    """Once noted, the same name is done; another job at the same time is not."""
    log = ScheduleLog(sqlite_store)
    sync, reconcile = schedule_key("sync", "new", AT), schedule_key("reconcile", "reconcile", AT)
    assert not log.done(sync)
    log.mark_done(sync)
    assert log.done(sync) and not log.done(reconcile)
    assert ScheduleLog(sqlite_store).done(sync)  # kept in the store, not in the object


def test_only_the_newest_names_are_kept(sqlite_store):
    """The store keeps the last SCHEDULES_KEPT successful runs; noting one again moves it to the end."""
    log = ScheduleLog(sqlite_store)
    names = [schedule_key("sync", "new", f"2026-11-20T{i // 60:02d}:{i % 60:02d}:00Z") for i in range(SCHEDULES_KEPT + 1)]
    for name in names:
        log.mark_done(name)
    assert not log.done(names[0]) and log.done(names[1]) and log.done(names[-1])
    log.mark_done(names[1])
    log.mark_done(schedule_key("sync", "new", "2026-11-21T00:00:00Z"))
    assert log.done(names[1]) and not log.done(names[2])


def test_a_scheduler_retry_of_a_succeeded_run_does_nothing_and_a_failed_one_runs_again(harness):
    """A retry of a scheduled run that already succeeded is skipped; one whose first try failed
    is not (it was never noted)."""
    harness.add_chats(2)
    harness.stand.sheets.inject("values.append", Status(403))
    with pytest.raises(RunFailed):
        harness.syncer().run(schedule_time=AT, schedule_job="sync")
    retry = harness.syncer().run(schedule_time=AT, schedule_job="sync")
    assert retry.outcome == "ok" and retry.appended == 2
    again = harness.syncer().run(schedule_time=AT, schedule_job="sync")
    assert again.outcome == "skipped" and again.skipped == "this scheduled run already succeeded"
