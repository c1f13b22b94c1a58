"""One sync run, as the README's data flow draws it: lease, fetch into the journal, deliver from
the journal to the sheet and Slack, record the run.

Each protocol lives in its own module: the fetch log (fetch.py), the journal (journal.py), the
exactly-once sheet delivery (sheet_delivery.py), the Slack summary (slack_delivery.py) and the
scheduler-retry dedupe (schedule.py). This module only sequences them, times the steps and
chooses the error a failed run answers with.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..chat_source import CHATS
from ..clock import utcnow
from ..errors import PermanentError, SyncError
from ..moneypenny import MoneypennyClient
from ..records import RunRecords, Source
from ..settings import Settings
from ..sheet import SheetWriter
from ..slack import SlackNotifier
from ..state.base import JournalEntry, StateStore
from .fetch import FetchLog
from .journal import Journal
from .options import Mode, RunFailed, RunOptions, RunReport, as_sync_error, error_info, first_error
from .record import check_health, run_record
from .schedule import ScheduleLog, schedule_key
from .sheet_delivery import SheetDelivery
from .slack_delivery import SlackDelivery

log = logging.getLogger(__name__)


@dataclass
class RunProtocols:
    """The protocols of one run, sharing the run's parsed records (made by Syncer.protocols)."""

    journal: Journal
    fetch: FetchLog
    sheet: SheetDelivery
    slack: SlackDelivery


class Syncer:
    """Runs the sync against the services it is given (real or local stand-ins)."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        moneypenny: MoneypennyClient,
        sheet: SheetWriter,
        slack: SlackNotifier,
        *,
        clock: Callable[[], datetime] = utcnow,
        checkpoint: Callable[[str], None] | None = None,
        source: Source = CHATS,
    ):
        self.settings = settings
        self.store = store
        self.moneypenny = moneypenny
        self.sheet = sheet
        self.slack = slack
        self.clock = clock
        # A hook called between steps; the fault-injection suite raises from it to simulate
        # a crash at that point.
        self.checkpoint = checkpoint or (lambda step: None)
        self.tz = settings.chat_timezone
        self.source = source
        self.schedules = ScheduleLog(store)

    # -- the run -------------------------------------------------------------------------------
    def run(
        self,
        *,
        mode: str = "new",
        start: date | None = None,
        end: date | None = None,
        schedule_time: str | None = None,
        schedule_job: str | None = None,
        notify: bool = True,
        options: RunOptions | None = None,
    ) -> RunReport:
        """One run. Returns the report, or raises RunFailed (with the report) if a step failed.

        `options` (RunOptions) describes the run; without it, the keyword arguments make one
        (mode "new", "window" with start..end, or "reconcile"). Scheduler headers given as
        keywords name the scheduled run in either case: once it succeeded, a retry is skipped.
        A run that finds the lease held returns a skipped report.
        """
        opts = options or RunOptions(mode=Mode.parse(mode), start=start, end=end, notify=notify)
        if schedule_time or schedule_job:
            opts = dataclasses.replace(opts, schedule_time=schedule_time, schedule_job=schedule_job)
        started = self.clock()
        t0 = time.perf_counter()
        report = RunReport(run_id=uuid.uuid4().hex[:12], mode=opts.mode.value, started_at=started)
        opts = self._window(opts, started)

        lease_until = started + timedelta(seconds=self.settings.lease_seconds)
        try:
            got = self.store.acquire_lease(report.run_id, started, lease_until)
        except SyncError as exc:
            report.outcome = "failed"
            report.errors.append(error_info("lease", exc))
            raise RunFailed(report, exc) from None
        if not got:
            report.outcome = "skipped"
            report.skipped = "another run holds the lease"
            report.duration_ms = int((time.perf_counter() - t0) * 1000)
            log.info("run skipped: another run holds the lease", extra={"fields": {"run_id": report.run_id}})
            self._record(report)
            return report

        failure: SyncError | None = None
        schedule = schedule_key(opts.schedule_job, opts.mode.value, opts.schedule_time)
        try:
            if schedule and self.schedules.done(schedule):
                report.outcome = "skipped"
                report.skipped = "this scheduled run already succeeded"
                return report
            failure = self._run_steps(report, opts)
            if failure is None and schedule:
                self.schedules.mark_done(schedule)
        except Exception as exc:  # a failed step outside the delivery phase
            failure = as_sync_error("run", exc)
            if not report.errors:
                report.errors.append(error_info("run", exc))
        finally:
            report.duration_ms = int((time.perf_counter() - t0) * 1000)
            if failure is not None:
                report.outcome = "failed"
            self._finish(report)
        if failure is not None:
            raise RunFailed(report, failure)
        return report

    def _window(self, opts: RunOptions, started: datetime) -> RunOptions:
        """The options with a reconcile's window filled in; a bad window is refused."""
        if opts.mode == Mode.RECONCILE:
            today = started.astimezone(self.tz).date()
            # One day past today: whether endTime is inclusive is undocumented.
            opts = dataclasses.replace(opts, start=today - timedelta(days=self.settings.reconcile_days),
                                       end=today + timedelta(days=1))
        if opts.mode in (Mode.WINDOW, Mode.RECONCILE) and (opts.start is None or opts.end is None or opts.end < opts.start):
            raise PermanentError("A window run needs a start date on or before its end date", cause="bad_request")
        return opts

    def protocols(self) -> RunProtocols:
        """A fresh set of the run's protocols, wired to this Syncer's store, clients and clock.

        Made for each run: the records they parse are valid for that run only.
        """
        s = self.settings
        journal = Journal(self.store, RunRecords(self.source, self.tz), clock=self.clock,
                          retention=timedelta(days=s.retention_days))
        return RunProtocols(
            journal=journal,
            fetch=FetchLog(self.store, self.moneypenny, journal, clock=self.clock, tz=self.tz,
                           reconcile_days=s.reconcile_days, checkpoint=self.checkpoint),
            sheet=SheetDelivery(self.sheet, journal, clock=self.clock, http_timeout_seconds=s.http_timeout_seconds,
                                checkpoint=self.checkpoint),
            slack=SlackDelivery(self.slack, journal, sheet_url=s.sheet_url, max_listed=s.slack_max_listed,
                                checkpoint=self.checkpoint),
        )

    def _run_steps(self, report: RunReport, opts: RunOptions) -> SyncError | None:
        steps = self.protocols()
        now = self.clock()
        self._timed(report, "prune", lambda: self.store.journal_prune(now))
        # What earlier runs left, read before this run journals anything: what it journals
        # is delivered from memory (Journal.pending), never read back.
        earlier = self._timed(report, "pending", self.store.journal_pending)
        self.checkpoint("before_fetch")
        fetch_error: SyncError | None = None
        try:
            if opts.mode == Mode.QUARANTINE:
                self._timed(report, "fetch", lambda: steps.journal.retry_quarantine(
                    report, self.sheet.keys_present, self.checkpoint))
            else:
                self._timed(report, "fetch", lambda: steps.fetch.read(report, opts))
        except Exception as exc:
            # Deliver what earlier runs left behind anyway; the fetch failure still fails the run.
            report.errors.append(error_info("fetch", exc))
            fetch_error = as_sync_error("fetch", exc)
        self.checkpoint("after_journal")
        errors = self._deliver(report, steps, opts.notify, earlier)
        if fetch_error is not None:
            errors.insert(0, fetch_error)
        return first_error(errors)

    def _deliver(self, report: RunReport, steps: RunProtocols, notify: bool,
                 earlier: list[JournalEntry]) -> list[SyncError]:
        errors: list[SyncError] = []
        pending = steps.journal.pending(earlier)
        deliveries = [("sheet", steps.sheet.deliver)] + ([("slack", steps.slack.deliver)] if notify else [])
        # Last, whatever failed before it: each entry's one write for what this run delivered.
        deliveries.append(("journal", lambda report, pending: steps.journal.write_staged()))
        for step, deliver in deliveries:
            try:
                self._timed(report, step, lambda: deliver(report, pending))  # noqa: B023 (called at once)
            except Exception as exc:
                report.errors.append(error_info(step, exc))
                errors.append(as_sync_error(step, exc))
                log.warning(
                    f"{step} delivery failed; the chats stay in the journal",
                    extra={"fields": {"run_id": report.run_id, "cause": getattr(exc, "cause", "internal")}},
                )
        report.pending = sum(1 for e in pending if not e.delivered)
        return errors

    def _timed(self, report: RunReport, step: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        try:
            return fn()
        finally:
            report.steps_ms[step] = report.steps_ms.get(step, 0) + int((time.perf_counter() - t) * 1000)

    # -- bookkeeping ---------------------------------------------------------------------------
    def _record(self, report: RunReport) -> None:
        try:
            self.store.record_run(run_record(report))
        except Exception as exc:  # never let bookkeeping hide the run's own outcome
            log.warning("could not record the run", extra={"fields": {"run_id": report.run_id, "error": type(exc).__name__}})

    def _finish(self, report: RunReport) -> None:
        check_health(report, self.store, self.clock())
        self._record(report)
        try:
            self.store.release_lease(report.run_id)
        except Exception as exc:  # the lease expires by itself; the run's outcome stands
            log.warning("could not release the lease", extra={"fields": {"run_id": report.run_id, "error": type(exc).__name__}})
        level = logging.INFO if report.outcome != "failed" else logging.ERROR
        log.log(
            level,
            f"run {report.outcome}",
            extra={"fields": {"run_id": report.run_id, "mode": report.mode, "outcome": report.outcome,
                              "healthy": report.healthy, **report.counts(), "unhealthy": report.unhealthy,
                              "duration_ms": report.duration_ms, "steps_ms": report.steps_ms}},
        )
