"""One sync run, as the README's data flow draws it: lease, fetch into the journal, deliver from
the journal to the sheet and Slack, record the run.

Each protocol lives in its own module: the fetch log (fetch.py), the journal (journal.py), the
exactly-once sheet delivery (sheet_delivery.py), the Slack summary (slack_delivery.py) and the
scheduler-retry dedupe (schedule.py). This module only sequences them, times the steps and
chooses the error a failed run answers with.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from ..chat_source import CHATS
from ..clock import utcnow
from ..counters import StoreCounters
from ..errors import LeaseLost, PermanentError, SyncError, TransientError
from ..http import fenced
from ..moneypenny import MoneypennyClient
from ..records import Source
from ..settings import Settings
from ..sheet import SheetWriter
from ..slack import SlackNotifier
from ..state.base import JournalEntry, RejectedItem, StateStore
from ..state.documents import CursorDoc
from .fetch import plan_intent
from .options import Mode, RunFailed, RunOptions, RunReport, as_sync_error, error_info, first_error
from .protocols import RunProtocols, wire
from .reconcile import due, reconcile_window
from .record import check_health, run_record
from .schedule import schedule_key
from .session import LEASE_MARGIN, RunSession
from .sources import merge, split_pending

log = logging.getLogger(__name__)


def _unchanged(cursor: CursorDoc) -> CursorDoc:
    return cursor


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
        calls_sheet: SheetWriter | None = None,
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
        self._recorded_at: StoreCounters | None = None  # the store's counters at this Syncer's last record
        # The Calls tab's writer: given only when MONEYPENNY_SOURCES includes calls.
        self.calls_sheet = calls_sheet

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
        report = RunReport(run_id=uuid.uuid4().hex[:12], mode=opts.mode.value, started_at=started,
                           store_from=self.store.counters.snapshot())
        opts = self._window(opts, started)

        schedule = schedule_key(opts.schedule_job, opts.mode.value, opts.schedule_time)
        session = RunSession(self.store, report.run_id, clock=self.clock)
        plan: Callable[[CursorDoc], CursorDoc] = functools.partial(
            plan_intent, opts=opts, run_id=report.run_id, at=started, tz=self.tz,
            reconcile_days=self.settings.reconcile_days)
        if not self.settings.chats_on:
            plan = _unchanged  # chats off: no chat read, so no fetch intent (one left stays for later)
        self.moneypenny.forget_token()  # what another instance did to it since is not known here
        try:
            # One read and one write: the lease, the scheduled-run names and the fetch intent.
            # The lease is judged, and ends, by the store's clock: only its length is ours.
            got = session.begin(timedelta(seconds=self.settings.lease_seconds), schedule=schedule, plan=plan)
        except SyncError as exc:
            report.outcome = "failed"
            report.errors.append(error_info("lease", exc))
            report.count_store(self.store.counters)
            raise RunFailed(report, exc) from None
        if not got:
            report.outcome = "skipped"
            report.skipped = "another run holds the lease"
            report.duration_ms = int((time.perf_counter() - t0) * 1000)
            log.info("run skipped: another run holds the lease", extra={"fields": {"run_id": report.run_id}})
            self._record(report)
            report.count_store(self.store.counters)
            return report

        failure: SyncError | None = None
        done: str | None = None
        try:
            if session.already_done:
                report.outcome = "skipped"
                report.skipped = "this scheduled run already succeeded"
                return report
            failure = self._run_steps(report, self._daily_reconcile(opts, session, started), session)
            if failure is None:
                done = schedule
        except Exception as exc:  # a failed step outside the delivery phase
            failure = as_sync_error("run", exc)
            if not report.errors:
                report.errors.append(error_info("run", exc))
        except KeyboardInterrupt:
            # Recorded as what it is (a person stopped it), never as `ok` with what it had counted so far.
            report.outcome = "interrupted"
            report.healthy = False
            report.errors.append({"step": "run", "cause": "interrupted", "retryable": True,
                                  "message": "interrupted before the run ended (what it read is in the journal)"})
            raise
        finally:
            report.duration_ms = int((time.perf_counter() - t0) * 1000)
            if failure is not None:
                report.outcome = "failed"
            self._finish(report, session, done)
            report.count_store(self.store.counters)  # the whole run's, record and release included
        if failure is not None:
            raise RunFailed(report, failure)
        return report

    def _window(self, opts: RunOptions, started: datetime) -> RunOptions:
        """The options with a reconcile's window filled in; a bad window is refused."""
        if opts.mode == Mode.RECONCILE:
            start, end = reconcile_window(started, self.settings.reconcile_days, self.tz)
            opts = dataclasses.replace(opts, start=start, end=end)
        if opts.mode in (Mode.WINDOW, Mode.RECONCILE) and (opts.start is None or opts.end is None or opts.end < opts.start):
            raise PermanentError("A window run needs a start date on or before its end date", cause="bad_request")
        return opts

    def _daily_reconcile(self, opts: RunOptions, session: RunSession, started: datetime) -> RunOptions:
        """The options with the daily reconcile's read added, for a scheduled sync that finds it
        due in the run state it just read (lib/sync/reconcile.py)."""
        if not opts.daily_reconcile or opts.mode != Mode.NEW:
            return opts
        # The chats' first read (no cursor: a new or emptied store) reconciles too, even if a run
        # with chats off noted the day's reconcile: what an emptied journal held is found by date.
        first_chats = self.settings.chats_on and session.seen.cursor.last_read is None
        if not due(session.seen.reconciled_at, started, self.settings.reconcile_at, self.tz) and not (
                first_chats and self.settings.reconcile_at is not None):
            return opts
        start, _ = reconcile_window(started, self.settings.reconcile_days, self.tz)
        log.info("the daily reconcile is due: this run also reads by date",
                 extra={"fields": {"run_id": session.owner, "from": start.isoformat()}})
        return dataclasses.replace(opts, reconcile_start=start)

    def protocols(self, session: RunSession | None = None, report: RunReport | None = None) -> RunProtocols:
        """A fresh set of the run's protocols, wired to this Syncer's store, clients and clock.

        Made for each run: the records they parse are valid for that run only. `session`, the
        run's state, is what the fetch log reads and settles (without one, a read is a session
        of its own). The calls' protocols (when calls are on) count into their own share of
        `report`.
        """
        return wire(self.settings, self.store, self.moneypenny, self.sheet, self.slack, calls_sheet=self.calls_sheet,
                    clock=self.clock, checkpoint=self.checkpoint, source=self.source, session=session,
                    report=report or RunReport(run_id="", mode="new", started_at=self.clock()))

    def _run_steps(self, report: RunReport, opts: RunOptions, session: RunSession | None = None) -> SyncError | None:
        steps = self.protocols(session, report)
        now = self.clock()
        self._timed(report, "prune", lambda: self.store.journal_prune(now))
        # What earlier runs left, read before this run journals anything: what it journals
        # is delivered from memory (Journal.pending), never read back. A journal-only run (a
        # backfill's span) delivers nothing and reads nothing back.
        earlier = self._timed(report, "pending", self.store.journal_pending) if opts.deliver else []
        self.checkpoint("before_fetch")
        errors: list[SyncError] = []
        reads: list[tuple[str, Callable[[], Any]]] = []
        calls_on = steps.calls is not None and self.calls_sheet is not None
        # A retry reads the quarantine once: what the chats cannot read is the calls' to try
        # (each source sets aside its own), so every item is counted once.
        left: list[list[RejectedItem]] = []
        if opts.mode == Mode.QUARANTINE:
            reads.append(("fetch", lambda: left.append(steps.journal.retry_quarantine(
                report, self.sheet.keys_present, self.checkpoint, last=not calls_on))))
        elif self.settings.chats_on:
            reads.append(("fetch", lambda: steps.fetch.read(report, opts)))
        if steps.calls is not None and self.calls_sheet is not None:
            calls, calls_sheet = steps.calls, self.calls_sheet
            if opts.mode == Mode.QUARANTINE:
                reads.append(("calls fetch", lambda: calls.journal.retry_quarantine(
                    calls.report, calls_sheet.keys_present, self.checkpoint, items=left[0] if left else None)))
            else:
                reads.append(("calls fetch", lambda: calls.fetch.read(calls.report, opts)))
        for step, read in reads:
            # One feed failing never stops the other, and what earlier runs left behind is
            # delivered anyway; the failure still fails the run.
            self._step(report, step, read, errors)
        # A reconcile is done once every feed's read reached the journal; else the next run
        # makes it again (the run state keeps the time of the last one done).
        report.reconciled = (opts.mode == Mode.RECONCILE or opts.reconcile_start is not None) and not errors
        self.checkpoint("after_journal")
        if opts.deliver:
            errors += self._deliver(report, steps, opts.notify, earlier, session)
        # (A journal-only read leaves what it journaled for a delivering run.)
        if steps.calls is not None:
            merge(report, report, steps.calls.report)
        return first_error(errors)

    def _step(self, report: RunReport, step: str, fn: Callable[[], Any], errors: list[SyncError]) -> None:
        try:
            self._timed(report, step, fn)
        except Exception as exc:
            report.errors.append(error_info(step, exc))
            errors.append(as_sync_error(step, exc))
            if step != "fetch":
                log.warning(f"{step} failed; what it carries stays in the journal",
                            extra={"fields": {"run_id": report.run_id, "cause": getattr(exc, "cause", "internal")}})

    def _deliver(self, report: RunReport, steps: RunProtocols, notify: bool,
                 earlier: list[JournalEntry], session: RunSession | None = None) -> list[SyncError]:
        errors: list[SyncError] = []
        own_memory = True
        lease = timedelta(seconds=self.settings.lease_seconds)
        if session is not None and self.clock() >= report.started_at + lease - LEASE_MARGIN:
            # A run this slow (a backfill waiting out the Sheets quota) may have outlived its
            # lease, and a run that took it over may have delivered what this one journaled.
            # (Only the time elapsed is read from this run's clock; the lease is judged by the store's.)
            held = session.renew()
            if held == "lost":
                exc = TransientError("another run took over the lease before this run delivered", cause="lease_lost")
                report.errors.append(error_info("deliver", exc))
                return [exc]
            if held == "retaken":
                earlier, own_memory = self.store.journal_pending(), False  # the store's word, not memory's
        earlier_chats, earlier_calls = split_pending(earlier)
        chats = steps.journal.pending(earlier_chats) if own_memory else earlier_chats
        # Entries of a source that is off (call keys with calls off) wait in the journal.
        calls = earlier_calls
        if steps.calls is not None and own_memory:
            calls = steps.calls.journal.pending(earlier_calls)
        deliveries: list[tuple[str, Callable[[], None]]] = [("sheet", lambda: steps.sheet.deliver(report, chats))]
        if steps.calls is not None:
            call_steps = steps.calls
            deliveries.append(("calls sheet", lambda: call_steps.sheet.deliver(call_steps.report, calls)))
        if notify and steps.summary is not None and steps.calls is not None:
            summary, call_steps = steps.summary, steps.calls
            deliveries.append(("slack", lambda: summary.deliver([
                (steps.journal, report, chats, "new chat", self.settings.sheet_tab),
                (call_steps.journal, call_steps.report, calls, "new call", self.settings.calls_tab)])))
        elif notify:
            deliveries.append(("slack", lambda: steps.slack.deliver(report, chats)))
        # Last, whatever failed before it: each entry's one write for what this run delivered.
        deliveries.append(("journal", steps.journal.write_staged))
        if steps.calls is not None:
            deliveries.append(("calls journal", steps.calls.journal.write_staged))
        for step, deliver in deliveries:
            if step not in ("journal", "calls journal") and any(isinstance(e, LeaseLost) for e in errors):
                continue  # the lease is lost: nothing more is written to the sheet or Slack
            if session is not None:
                # Every retry wait and later chunk of a Sheets write checks (or renews) the lease.
                with fenced(session.hold):
                    self._step(report, step, deliver, errors)
            else:
                self._step(report, step, deliver, errors)
        report.pending = sum(1 for e in chats if not e.delivered)
        if steps.calls is not None:
            report.pending += sum(1 for e in calls if not e.delivered)
        elif calls:
            # Calls are off: theirs wait, reported as the calls', counted toward no health reason.
            report.off_waiting["calls"] = len(calls)
        return errors

    def _timed(self, report: RunReport, step: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        try:
            return fn()
        finally:
            report.steps_ms[step] = report.steps_ms.get(step, 0) + int((time.perf_counter() - t) * 1000)

    # -- bookkeeping ---------------------------------------------------------------------------
    def _record(self, report: RunReport) -> None:
        # A run that did not get the lease: its record only (one read, one write by version).
        self._count_for_record(report)
        try:
            self.store.record_run(run_record(report))
        except Exception as exc:  # never let bookkeeping hide the run's own outcome
            log.warning("could not record the run", extra={"fields": {"run_id": report.run_id, "error": type(exc).__name__}})

    def _count_for_record(self, report: RunReport) -> None:
        # The record's `store`: billed since this Syncer's previous record (whose own write,
        # release and alert bookkeeping it so includes), else since this run began.
        counted = self.store.counters.snapshot()
        report.store_recorded = counted.since(self._recorded_at or report.store_from or counted).as_dict()
        self._recorded_at = counted

    def _finish(self, report: RunReport, session: RunSession, done: str | None) -> None:
        now = self.clock()
        counted = check_health(report, self.store, now, token=self.moneypenny.held_token,
                               quarantine=session.quarantine_hint(now), calls_on=self.settings.calls_on)
        # What this run set aside expires RETENTION_DAYS from when it was set aside, before now.
        until = now + timedelta(days=self.settings.retention_days) if report.skipped_invalid else None
        self._count_for_record(report)
        try:
            # One write: cursor settled, lease given back, scheduled run noted, the record.
            session.finish(run_record(report), schedule_done=done, quarantined_until=until,
                           quarantine_empty=counted == 0,
                           reconciled_at=report.started_at if report.reconciled else None)
        except Exception as exc:  # the lease expires by itself; an intent left is read again
            log.warning("could not record the run and release the lease",
                        extra={"fields": {"run_id": report.run_id, "error": type(exc).__name__}})
        level = logging.INFO if report.outcome != "failed" else logging.ERROR
        log.log(
            level,
            f"run {report.outcome}",
            extra={"fields": {"run_id": report.run_id, "mode": report.mode, "outcome": report.outcome,
                              "healthy": report.healthy, **report.counts(), "unhealthy": report.unhealthy,
                              "duration_ms": report.duration_ms, "steps_ms": report.steps_ms}},
        )
