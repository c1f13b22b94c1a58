"""Scheduler-retry dedupe: a retry of a scheduled run that already succeeded does nothing.

A scheduled run is named by Cloud Scheduler's job name and ScheduleTime (the sync and the daily
reconcile both fire at 03:15 with the same ScheduleTime), or by the mode and the ScheduleTime
when the job name is missing. The names of the last SCHEDULES_KEPT successful runs are kept, in
the run state (lib/state/run_state.py): a run reads them when it takes the lease and notes its
own name in its last write (lib/sync/session.py), so the dedupe costs no read of its own.
`ScheduleLog` reads and notes names on their own (one read; one read and one write).
"""

from __future__ import annotations

from ..state.contract import StateStore
from ..state.documents import SCHEDULE_DOC, SCHEDULES_KEPT, ScheduleDoc

__all__ = ["SCHEDULES_KEPT", "SCHEDULE_DOC", "ScheduleLog", "schedule_key"]


def schedule_key(job: str | None, mode: str, schedule_time: str | None) -> str | None:
    """The name of one scheduled run, or None for a run the scheduler did not start."""
    if not schedule_time:
        return None
    job = (job or "").strip()
    return f"{job or 'mode=' + mode} {schedule_time}"


class ScheduleLog:
    """Which scheduled runs already succeeded."""

    def __init__(self, store: StateStore):
        self.store = store

    def done(self, key: str) -> bool:
        """Whether the scheduled run named `key` already succeeded."""
        return (self.store.read_doc(ScheduleDoc) or ScheduleDoc()).has(key)

    def mark_done(self, key: str) -> None:
        """Note that the scheduled run named `key` succeeded (the newest SCHEDULES_KEPT are kept)."""
        doc = self.store.read_doc(ScheduleDoc) or ScheduleDoc()
        self.store.write_doc(doc.with_done(key))
