"""One sync run, as the README's data flow draws it: lease, fetch into the journal, deliver from
the journal to every registered destination (the sheet, Slack, any other), record the run.

Each protocol lives in its own module: the fetch log (fetch.py), the journal (journal.py), the
exactly-once delivery (exactly_once.py: the sheet's rows), the at-least-once delivery
(at_least_once.py: the Slack summary) and the scheduler-retry dedupe (schedule.py). This module only sequences them, times the steps and
chooses the error a failed run answers with.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from ..clock import utcnow
from ..counters import StoreCounters
from ..destinations import SHEET, SLACK, BuiltDestination
from ..destinations.sheet.destination import SheetTabs
from ..destinations.sheet.writer import SheetWriter
from ..destinations.slack.client import SlackNotifier
from ..destinations.slack.destination import SlackSummary
from ..errors import LeaseLost, RunFailed, SyncError, TransientError
from ..http import fenced
from ..records import Source
from ..settings import Settings
from ..sources import CHATS_FEED, CursorRead, Feed, enabled, registered
from ..sources.moneypenny import MoneypennyClient
from ..state.contract import StateStore
from ..state.documents import CursorDoc
from ..state.models import JournalEntry, RejectedItem
from ..state.run_state import RunState
from .at_least_once import Part
from .claims import ClaimDesk, write_claims_due
from .fetch import plan_intent
from .options import Mode, RunOptions, RunReport, as_sync_error, error_info, first_error
from .protocols import RunProtocols, wire
from .reconcile import window_options, with_daily_reconcile
from .record import check_health, run_record
from .reminder import due_day, post_reminder, reminder_days
from .schedule import schedule_key
from .session import LEASE_MARGIN, RunSession
from .sources import FeedSteps, merge, split_pending, sub_report

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
        writers: Mapping[str, SheetWriter],
        slack: SlackNotifier,
        *,
        clock: Callable[[], datetime] = utcnow,
        checkpoint: Callable[[str], None] | None = None,
        destinations: Sequence[BuiltDestination] | None = None,
    ):
        self.settings = settings
        self.store = store
        self.moneypenny = moneypenny
        # Each tab's writer by feed name: the chats' always (SHEET_TAB), every other feed's when it is on.
        self.writers = dict(writers)
        self.sheet = self.writers[CHATS_FEED.name]
        # The feeds MONEYPENNY_SOURCES turns on (lib/sources), in registry order.
        self.feeds: list[Feed] = enabled(settings)
        missing = [f.name for f in self.feeds if f.name not in self.writers]
        if missing:
            raise ValueError(f"no sheet writer for the feed(s) {', '.join(missing)}")
        self.slack = slack
        # The claims from Slack (lib/sync/claims.py), set by lib/app.py: a run writes those still due.
        self.claims: ClaimDesk | None = None
        # Every registered destination as built for this Syncer (lib/destinations), exactly-once
        # ones first: the sheet (whose writers are `writers`) and Slack (`slack`) unless given.
        self.destinations: list[BuiltDestination] = list(destinations) if destinations is not None else [
            BuiltDestination(SHEET.name, SHEET.protocol, SheetTabs(self.writers)),
            BuiltDestination(SLACK.name, SLACK.protocol, SlackSummary(
                slack, sheet_url=settings.sheet_url, max_listed=settings.slack_max_listed,
                account=settings.account, claim_buttons=settings.slack_claim_buttons))]
        self.clock = clock
        # A hook called between steps; the fault-injection suite raises from it to simulate
        # a crash at that point.
        self.checkpoint = checkpoint or (lambda step: None)
        self.tz = settings.chat_timezone
        self._recorded_at: StoreCounters | None = None  # the store's counters at this Syncer's last record
        # The run state as the last run left it (its alert state spares the alerter a read).
        self.last_state: RunState | None = None

    @property
    def source(self) -> Source:
        """The chats' source (lib.records.Source)."""
        return CHATS_FEED.source

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
                           store_from=self.store.counters.snapshot(), account=self.settings.account)
        opts = window_options(opts, started, self.settings, self.tz)

        schedule = schedule_key(opts.schedule_job, opts.mode.value, opts.schedule_time)
        session = RunSession(self.store, report.run_id, clock=self.clock)
        plan: Callable[[CursorDoc], CursorDoc] = functools.partial(
            plan_intent, opts=opts, run_id=report.run_id, at=started, tz=self.tz,
            reconcile_days=self.settings.reconcile_days)
        if not any(isinstance(feed.read, CursorRead) for feed in self.feeds):
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
        if got:
            # The token cache is part of the run state just read: the client needs no read of its own.
            self.moneypenny.use_token(session.seen.token)
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
        settled = False
        try:
            if session.already_done:
                report.outcome = "skipped"
                report.skipped = "this scheduled run already succeeded"
                return report
            # Claims first: the reminder of unclaimed leads reads the Owner cells they fill.
            write_claims_due(session, self.store, self.claims)
            failure = self._run_steps(report, with_daily_reconcile(opts, session, started, self.settings, self.tz), session)
            if failure is None:
                done = schedule
                # Everything this run knew of (what earlier runs left, what it read) is delivered:
                # the run state may then promise that nothing is pending. Only a run that reached
                # the end of its delivery knows (a crash in between leaves `pending` at 0).
                settled = opts.deliver and not report.errors and not report.pending and not report.off_waiting
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
            self._finish(report, session, done, settled and report.outcome == "ok")
            report.count_store(self.store.counters)  # the whole run's, record and release included
        if failure is not None:
            raise RunFailed(report, failure)
        return report

    def protocols(self, session: RunSession | None = None, report: RunReport | None = None) -> RunProtocols:
        """A fresh set of the run's protocols, wired to this Syncer's store, clients and clock.

        Made for each run: the records they parse are valid for that run only. `session`, the
        run's state, is what the fetch log reads and settles (without one, a read is a session
        of its own). Each feed that is on has its steps; every feed but the chats counts into
        its own share of `report`. The chats' steps are there even while the chats are off (a
        test or tool may drive them), but a run uses only the feeds that are on.
        """
        feeds = self.feeds if CHATS_FEED in self.feeds else [CHATS_FEED, *self.feeds]
        return wire(self.settings, self.store, self.moneypenny, writers=self.writers, destinations=self.destinations,
                    feeds=feeds,
                    clock=self.clock, checkpoint=self.checkpoint, session=session,
                    report=report or RunReport(run_id="", mode="new", started_at=self.clock()))

    def _run_steps(self, report: RunReport, opts: RunOptions, session: RunSession | None = None) -> SyncError | None:
        steps = self.protocols(session, report)
        now = self.clock()
        self._timed(report, "prune", lambda: self.store.journal_prune(now))
        # What earlier runs left, read before this run journals anything: what it journals
        # is delivered from memory (Journal.pending), never read back. A journal-only run (a
        # backfill's span) delivers nothing and reads nothing back.
        # The run state may promise that nothing is pending: then the journal is not asked.
        earlier: list[JournalEntry] = []
        if opts.deliver and (session is None or session.may_be_pending()):
            earlier = self._timed(report, "pending", self.store.journal_pending)
            if session is not None:
                session.queried()
        self.checkpoint("before_fetch")
        errors: list[SyncError] = []
        on = self._on(steps)
        # A retry reads the quarantine once: what one feed cannot read is the next one's to try
        # (each feed sets aside its own), so every item is counted once.
        left: list[list[RejectedItem]] = []
        for i, feed in enumerate(on):
            step = "fetch" if feed.feed.name == CHATS_FEED.name else f"{feed.feed.name} fetch"
            if opts.mode == Mode.QUARANTINE:
                read = functools.partial(self._retry, feed, left, i == len(on) - 1)
            else:
                read = functools.partial(feed.fetch.read, feed.report, opts)
            # One feed failing never stops another, and what earlier runs left behind is
            # delivered anyway; the failure still fails the run.
            self._step(report, step, read, errors)
        # A reconcile is done once every feed's read reached the journal; else the next run
        # makes it again (the run state keeps the time of the last one done).
        report.reconciled = (opts.mode == Mode.RECONCILE or opts.reconcile_start is not None) and not errors
        self.checkpoint("after_journal")
        if opts.deliver:
            errors += self._deliver(report, steps, opts.notify, earlier, session)
        if session is not None and opts.daily_reconcile and opts.mode == Mode.NEW and opts.notify \
                and not any(isinstance(e, LeaseLost) for e in errors):
            self._remind(report, session, on, errors)
        # (A journal-only read leaves what it journaled for a delivering run.)
        if any(f.feed.name != CHATS_FEED.name for f in on):
            merge(report, {CHATS_FEED.name: report, **{f.feed.name: f.report for f in on}})
        return first_error(errors)

    def _remind(self, report: RunReport, session: RunSession, on: list[FeedSteps], errors: list[SyncError]) -> None:
        """The daily reminder of unclaimed leads, when the run state just read says it is due
        (lib/sync/reminder.py): decided on what the run read with its lease, so a run when it
        is not due costs nothing more."""
        today = due_day(session.seen.reminded_on, report.started_at, self.settings.unclaimed_reminder_at, self.tz)
        if today is None:
            return
        first, end = reminder_days(session.seen.reminded_on, today)

        def remind() -> None:
            session.hold()  # still this run's lease: no two runs post the day's reminder
            # A claim from Slack whose sheet write is still due (it failed again just now, or
            # came during this run) is a claim all the same: one query, once a day.
            claimed = {(c.feed, c.key) for c in self.store.claims_due()}
            report.reminded = post_reminder(self.settings, [f.feed for f in on], self.writers, self.slack, first, end,
                                            claimed)
            report.reminded_on = today  # noted by the run's last write (_finish)

        with fenced(session.hold):
            self._step(report, "remind", remind, errors)

    def _on(self, steps: RunProtocols) -> list[FeedSteps]:
        """The run's steps of the feeds that are on."""
        return [f for f in steps.feeds if f.feed in self.feeds]

    def _retry(self, feed: FeedSteps, left: list[list[RejectedItem]], last: bool) -> None:
        # The first feed reads the quarantine; each next one tries what the one before it left.
        unread = feed.journal.retry_quarantine(feed.report, feed.writer.keys_present, self.checkpoint,
                                               items=left[-1] if left else None, last=last)
        left.append(unread)

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
        on = self._on(steps)
        by_feed = split_pending(earlier, registered())
        # Each feed's work: what earlier runs left and what this run journaled (from memory).
        work = {f.feed.name: f.journal.pending(by_feed.get(f.feed.name, [])) if own_memory
                else by_feed.get(f.feed.name, []) for f in on}
        deliveries: list[tuple[str, Callable[[], None]]] = []
        # Each exactly-once destination (the sheet first), feed by feed; then each at-least-once
        # one with every feed's part at once (it waits for their key checks).
        for f in on:
            for name, delivery in f.exactly_once.items():
                step = name if f.feed.name == CHATS_FEED.name else f"{f.feed.name} {name}"
                # Only the sheet's counts are the report's (appended, already_in_sheet, waiting).
                share = f.report if name == SHEET.name else sub_report(f.report)
                deliveries.append((step, functools.partial(delivery.deliver, share, work[f.feed.name])))
        if notify and on:
            parts = [Part(f.journal, f.report, work[f.feed.name], f.feed.summary_noun, f.tab, f.feed.name) for f in on]
            for at_least_once in steps.at_least_once:
                deliveries.append((at_least_once.destination, functools.partial(at_least_once.deliver, parts)))
        for step, deliver in deliveries:
            if any(isinstance(e, LeaseLost) for e in errors):
                break  # the lease is lost: nothing more is written to the sheet or Slack
            if session is not None:
                # Every retry wait and later chunk of a Sheets write checks (or renews) the lease.
                with fenced(session.hold):
                    self._step(report, step, deliver, errors)
            else:
                self._step(report, step, deliver, errors)
        # Last, whatever failed before it: each entry's one write for what this run delivered,
        # whole only while this run still holds the lease (Journal.write_staged).
        lost = any(isinstance(e, LeaseLost) for e in errors)
        still_held = not lost and (not any(f.journal.has_staged() for f in on) or self._still_held(session))
        for f in on:
            step = "journal" if f.feed.name == CHATS_FEED.name else f"{f.feed.name} journal"
            self._step(report, step, functools.partial(f.journal.write_staged, still_held), errors)
        report.pending = sum(1 for f in on for e in work[f.feed.name] if not f.journal.done(e))
        for name, entries in by_feed.items():
            if name not in work and entries:
                # A feed that is off: its entries wait, reported as its own, counted toward no health reason.
                report.off_waiting[name] = len(entries)
        return errors

    @staticmethod
    def _still_held(session: RunSession | None) -> bool:
        # Checked once more just before the journal's writes: a run paused after its last post
        # (past its lease, while another run took over) finds out here.
        if session is None:
            return True
        try:
            session.hold()
        except LeaseLost:
            return False
        except Exception:  # the store did not answer: write as before; the fence of the writes stands
            return True
        return True

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

    def _finish(self, report: RunReport, session: RunSession, done: str | None, settled: bool) -> None:
        now = self.clock()
        counted = check_health(report, self.store, now, token=self.moneypenny.held_token,
                               quarantine=session.quarantine_hint(now), on=self.settings.moneypenny_sources)
        # What this run set aside expires RETENTION_DAYS from when it was set aside, before now.
        until = now + timedelta(days=self.settings.retention_days) if report.skipped_invalid else None
        self._count_for_record(report)
        self.last_state = None
        try:
            # One write: cursor settled, lease given back, scheduled run noted, the record.
            session.finish(run_record(report), schedule_done=done, quarantined_until=until,
                           quarantine_empty=counted == 0,
                           reconciled_at=report.started_at if report.reconciled else None,
                           reminded_on=report.reminded_on, settled=settled)
            self.last_state = session.seen
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
