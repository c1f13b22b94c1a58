"""One sync run: lease, fetch into the journal, deliver from the journal, record the run.

Why it cannot lose a chat
-------------------------
Moneypenny's plain log call moves its cursor when it answers. Before making it, the run writes a
*fetch intent* to the state store; only once every chat of the answer is in the journal is the
intent cleared. An intent that is still there at the start of a run (the answer was lost, the
body was bad, the run crashed) is settled first by a date-window read that covers everything
since the last read that reached the journal. A plain call that fails is not retried: the same
run makes that window read instead. Window reads are safe to repeat: the journal adds only keys
it has not seen.

Why it cannot write a row twice
-------------------------------
Rows are written from the journal. A batch is marked *in flight* before the append and *done*
after it. A run that finds entries still in flight (a crash or an ambiguous failure between the
two) reads the sheet's Chat key column once and marks the keys it finds as done before writing
anything, so only the missing rows are appended.

Slack is at-least-once: the summary is posted, then its chats are marked.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Collection

from .chats import Chat, journal_item, json_text, parse_batch, parse_journal_chat, sort_chats
from .errors import MoneypennyError, MoneypennyNoAnswer, PermanentError, SheetNoAnswer, SyncError, TransientError
from .moneypenny import REFRESH_MARGIN, MoneypennyClient
from .settings import Settings
from .sheet import SheetWriter
from .slack import SlackNotifier, build_summary
from .state.base import DONE, INFLIGHT, PENDING, JournalEntry, RejectedItem, StateStore

log = logging.getLogger(__name__)

CURSOR_DOC = "cursor"
SCHEDULE_DOC = "schedule_runs"
SCHEDULES_KEPT = 50
# A chat that started before a read can be handed out by the next one; look back a day more.
RECOVERY_MARGIN = timedelta(days=1)
# How long after an unanswered Sheets write its rows are left alone (at least twice the HTTP
# timeout): Google may still be carrying the write out.
SETTLE_SECONDS = 120
# A chat still undelivered this long after it was fetched makes a run unhealthy (the same grace
# the Slack alerts give a failure that usually passes).
ALERT_GRACE = timedelta(minutes=10)
# Ends the in-flight batch of an append that Sheets answered with an error (instead of the
# epoch seconds of an append that may still be running): its rows are checked at once.
ANSWERED = "answered"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RunOptions:
    """How a run reads and announces; the defaults are the scheduled run's."""

    mode: str = "new"  # new | window | reconcile | quarantine (read the quarantine again, not Moneypenny)
    start: date | None = None
    end: date | None = None
    notify: bool = True  # post the Slack summary (False leaves chats pending for Slack)
    # Keys already in the sheet: new journal entries with these keys are not written again
    # (a backfill past the journal's retention reads the Chat key column once and passes it).
    sheet_keys: Collection[str] = ()
    # New chats dated (in CHAT_TIMEZONE) before this day are entered as announced: a backfill
    # of old days should not flood the channel.
    announce_before: date | None = None
    # Settle a fetch intent left by an earlier read first. A backfill turns this off for all
    # but its first day: the intent stays, and one recovery read settles it afterwards.
    recover: bool = True


@dataclass
class RunReport:
    """What one run did; the function answers with it as JSON."""

    run_id: str
    mode: str
    started_at: datetime
    fetched: int = 0
    new: int = 0
    recovered: int = 0
    appended: int = 0
    already_in_sheet: int = 0
    posted: int = 0
    late: int = 0
    skipped_invalid: int = 0
    pending: int = 0
    waiting: int = 0
    duration_ms: int = 0
    outcome: str = "ok"  # ok | failed | skipped
    skipped: str | None = None
    not_announced: int = 0
    new_keys: list[str] = field(default_factory=list, repr=False)
    errors: list[dict[str, Any]] = field(default_factory=list)
    steps_ms: dict[str, int] = field(default_factory=dict)
    # Healthy: the run did not fail and nothing is stuck (see Syncer._check_health). The outside
    # watcher counts only healthy `run ok` lines, so it also hears runs that "succeed" while
    # nothing reaches the sheet.
    healthy: bool = True
    unhealthy: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "new": self.new,
            "recovered": self.recovered,
            "appended": self.appended,
            "already_in_sheet": self.already_in_sheet,
            "posted": self.posted,
            "late": self.late,
            "skipped_invalid": self.skipped_invalid,
            "pending": self.pending,
            "waiting": self.waiting,
        }

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.outcome != "failed",
            "run_id": self.run_id,
            "mode": self.mode,
            "outcome": self.outcome,
            **self.counts(),
            "duration_ms": self.duration_ms,
            "duration_seconds": round(self.duration_ms / 1000, 3),
            "healthy": self.healthy,
        }
        if self.unhealthy:
            out["unhealthy"] = self.unhealthy
        if self.skipped:
            out["skipped"] = self.skipped
        if self.errors:
            out["errors"] = self.errors
        return out


class RunFailed(SyncError):
    """Raised by Syncer.run when a step failed; carries the report and the first error."""

    def __init__(self, report: RunReport, error: SyncError):
        super().__init__(str(error), cause=error.cause, fix=error.fix)
        self.report = report
        self.error = error
        self.transient = isinstance(error, TransientError)


def _error_info(step: str, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, SyncError):
        info = {"step": step, "cause": exc.cause, "message": str(exc), "retryable": isinstance(exc, TransientError)}
        if exc.fix:
            info["fix"] = exc.fix
        return info
    # An unexpected exception: its message may hold anything, so only its type is reported.
    return {"step": step, "cause": "internal", "message": f"unexpected {type(exc).__name__}", "retryable": True}


def _as_sync_error(step: str, exc: BaseException) -> SyncError:
    if isinstance(exc, SyncError):
        return exc
    return TransientError(f"unexpected {type(exc).__name__} during {step}", cause="internal")


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
        # Chats parsed during one delivery, by key: the sheet and the summary read the same entries.
        self._parsed: dict[str, Chat] = {}

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

        mode: "new" (chats since the last call), "window" (start..end), "reconcile" (the last
        RECONCILE_DAYS days). `options` (RunOptions) overrides mode, start, end and notify.
        A run that finds the lease held returns a skipped report. `schedule_time` and
        `schedule_job` (Cloud Scheduler's headers) name one scheduled run: once it succeeded,
        a retry of it is skipped.
        """
        opts = options or RunOptions(mode=mode, start=start, end=end, notify=notify)
        mode, start, end = opts.mode, opts.start, opts.end
        started = self.clock()
        t0 = time.perf_counter()
        report = RunReport(run_id=uuid.uuid4().hex[:12], mode=mode, started_at=started)
        if mode == "reconcile":
            today = started.astimezone(self.tz).date()
            # One day past today: whether endTime is inclusive is undocumented.
            start, end = today - timedelta(days=self.settings.reconcile_days), today + timedelta(days=1)
            opts = dataclasses.replace(opts, start=start, end=end)
        if mode in ("window", "reconcile") and (start is None or end is None or end < start):
            raise PermanentError("A window run needs a start date on or before its end date", cause="bad_request")

        lease_until = started + timedelta(seconds=self.settings.lease_seconds)
        try:
            got = self.store.acquire_lease(report.run_id, started, lease_until)
        except SyncError as exc:
            report.outcome = "failed"
            report.errors.append(_error_info("lease", exc))
            raise RunFailed(report, exc) from None
        if not got:
            report.outcome = "skipped"
            report.skipped = "another run holds the lease"
            report.duration_ms = int((time.perf_counter() - t0) * 1000)
            log.info("run skipped: another run holds the lease", extra={"fields": {"run_id": report.run_id}})
            self._record(report)
            return report

        failure: SyncError | None = None
        schedule = _schedule_key(schedule_job, mode, schedule_time)
        try:
            if schedule and self._schedule_done(schedule):
                report.outcome = "skipped"
                report.skipped = "this scheduled run already succeeded"
                return report
            failure = self._run_steps(report, opts)
            if failure is None and schedule:
                self._mark_schedule_done(schedule)
        except Exception as exc:  # a failed step outside the delivery phase
            failure = _as_sync_error("run", exc)
            if not report.errors:
                report.errors.append(_error_info("run", exc))
        finally:
            report.duration_ms = int((time.perf_counter() - t0) * 1000)
            if failure is not None:
                report.outcome = "failed"
            self._finish(report)
        if failure is not None:
            raise RunFailed(report, failure)
        return report

    def _run_steps(self, report: RunReport, opts: RunOptions) -> SyncError | None:
        now = self.clock()
        self._timed(report, "prune", lambda: self.store.journal_prune(now))
        self.checkpoint("before_fetch")
        fetch_error: SyncError | None = None
        fetch = self._retry_quarantine if opts.mode == "quarantine" else self._fetch
        try:
            self._timed(report, "fetch", lambda: fetch(report, opts))
        except Exception as exc:
            # Deliver what earlier runs left behind anyway; the fetch failure still fails the run.
            report.errors.append(_error_info("fetch", exc))
            fetch_error = _as_sync_error("fetch", exc)
        self.checkpoint("after_journal")
        errors = self._deliver(report, opts.notify)
        if fetch_error is not None:
            errors.insert(0, fetch_error)
        if not errors:
            return None
        permanent = [e for e in errors if not isinstance(e, TransientError)]
        return (permanent or errors)[0]

    def _timed(self, report: RunReport, step: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        try:
            return fn()
        finally:
            report.steps_ms[step] = report.steps_ms.get(step, 0) + int((time.perf_counter() - t) * 1000)

    # -- fetch ---------------------------------------------------------------------------------
    def _fetch(self, report: RunReport, opts: RunOptions) -> None:
        mode, start, end = opts.mode, opts.start, opts.end
        cursor = self.store.get_meta(CURSOR_DOC) or {}
        today = self.clock().astimezone(self.tz).date()
        if cursor.get("intent") and opts.recover:
            # An earlier plain read may have moved Moneypenny's cursor without reaching the
            # journal: read its whole possible span again by date.
            since = date.fromisoformat(cursor["intent"]["since"])
            items = self.moneypenny.fetch_window(since, today + timedelta(days=1))
            report.recovered += self._ingest(report, items, opts)
            # Settled; the store keeps the old intent until the next write below replaces it,
            # which is safe (it only reaches further back).
            cursor = {"last_read": self.clock().isoformat()}
            log.info(
                "recovered a read that had not reached the journal",
                extra={"fields": {"run_id": report.run_id, "since": since.isoformat(), "new": report.recovered}},
            )

        # Whether a window read moves the cursor is undocumented, so every read is guarded.
        read_started = self.clock()
        last_read = cursor.get("last_read")
        since_dt = (
            datetime.fromisoformat(last_read) if last_read else read_started - timedelta(days=max(self.settings.reconcile_days, 1))
        )
        since = (since_dt.astimezone(self.tz) - RECOVERY_MARGIN).date()
        intent = cursor.get("intent")
        if not intent:
            intent = {"since": since.isoformat(), "run_id": report.run_id, "at": read_started.isoformat()}
            self.store.put_meta(CURSOR_DOC, {**cursor, "intent": intent})

        if mode == "new":
            try:
                items = self.moneypenny.fetch_new()
            except MoneypennyError as exc:
                self._read_instead(report, opts, exc, date.fromisoformat(intent["since"]), today, read_started)
                return
        else:
            assert start is not None and end is not None
            items = self.moneypenny.fetch_window(start, end)
        self.checkpoint("after_fetch")
        self._ingest(report, items, opts)
        if _read_settles(intent, opts, today, carried=bool(cursor.get("intent"))):
            self.store.put_meta(CURSOR_DOC, {"last_read": read_started.isoformat()})
        # Otherwise the intent stays: if this read moved the cursor, the next run's recovery
        # read fetches what it skipped.

    def _read_instead(
        self, report: RunReport, opts: RunOptions, failed: MoneypennyError, since: date, today: date, read_started: datetime
    ) -> None:
        # The plain call failed, and may have moved the cursor. The window read that the fetch
        # intent allows fetches the same chats in this run, so one blip costs no failed run.
        log.warning(
            "the chat log call failed; reading the fetch intent's window instead",
            extra={"fields": {"run_id": report.run_id, "cause": failed.cause, "error": str(failed), "since": since.isoformat()}},
        )
        items = self.moneypenny.fetch_window(since, today + timedelta(days=1))
        self.checkpoint("after_fetch")
        report.recovered += self._ingest(report, items, opts)
        if not isinstance(failed, MoneypennyNoAnswer):
            # Answered: the call has ended, whatever it did to the cursor, and the window read
            # covers its whole span.
            self.store.put_meta(CURSOR_DOC, {"last_read": read_started.isoformat()})
        # Unanswered, it may still be running at Moneypenny and move the cursor after the window
        # read: the intent stays, and the next run reads its span again.

    def _ingest(self, report: RunReport, items: list[Any], opts: RunOptions) -> int:
        fetched_at = self.clock()
        chats, rejected = parse_batch(items, self.tz)
        report.fetched += len(items)
        expires = fetched_at + timedelta(days=self.settings.retention_days)
        entries = []
        for c in chats:
            # Preset states apply only to entries new to the journal: journal_add leaves
            # existing ones exactly as they are.
            # A chat too large for the store is kept cut to what its row and summary need.
            entry = JournalEntry(
                key=c.key, chat=journal_item(c), chat_time=c.time.astimezone(timezone.utc), fetched_at=fetched_at
            )
            if c.key in opts.sheet_keys:
                entry.sheet = DONE
            if opts.announce_before is not None and c.time.date() < opts.announce_before:
                entry.slack = DONE
            if entry.delivered:
                entry.expires_at = expires
            entries.append(entry)
        new_keys = self.store.journal_add(entries) if entries else []
        if opts.announce_before is not None or opts.sheet_keys:
            fresh = set(new_keys)
            report.already_in_sheet += sum(1 for e in entries if e.key in fresh and e.sheet == DONE)
            report.not_announced += sum(1 for e in entries if e.key in fresh and e.slack == DONE)
        report.new_keys.extend(new_keys)
        if rejected:
            self.store.quarantine(
                RejectedItem(raw=_dump(r.item), reason=r.reason, fetched_at=fetched_at, expires_at=expires)
                for r in rejected
            )
            report.skipped_invalid += len(rejected)
            for r in rejected:
                log.warning(
                    "set aside an unreadable chat item",
                    extra={"fields": {"run_id": report.run_id, "index": r.index, "reason": r.reason}},
                )
        report.new += len(new_keys)
        return len(new_keys)

    def _retry_quarantine(self, report: RunReport, opts: RunOptions) -> None:
        """Parse the quarantined items again (after a parser fix) into the journal.

        An item that now reads is journaled by its key (a key already in the journal is left
        as it is; one already in the sheet is marked delivered, not written again) and only
        then removed from quarantine; a crash in between leaves it to a later retry, which
        finds the key journaled. Items that still do not read stay. Moneypenny is not called.
        """
        items = self.store.quarantine_list()
        report.fetched = len(items)
        readable: list[tuple[RejectedItem, Chat]] = []
        for item in items:
            try:
                chats, _ = parse_batch([json.loads(item.raw)], self.tz)
            except Exception:  # noqa: BLE001  an item that still cannot be read stays where it is
                chats = []
            if chats:
                readable.append((item, chats[0]))
        report.skipped_invalid = len(items) - len(readable)
        if not readable:
            return
        in_sheet = self.sheet.keys_present()
        now = self.clock()
        expires = now + timedelta(days=self.settings.retention_days)
        entries = []
        for item, chat in readable:
            # Fetched when it was first read: Slack counts it as late.
            entry = JournalEntry(key=chat.key, chat=chat.raw, chat_time=chat.time.astimezone(timezone.utc),
                                 fetched_at=item.fetched_at)
            if chat.key in in_sheet:
                entry.sheet, entry.slack, entry.expires_at = DONE, DONE, expires
            entries.append(entry)
        report.already_in_sheet += len({chat.key for _, chat in readable if chat.key in in_sheet})
        new_keys = self.store.journal_add(entries)
        report.new_keys.extend(new_keys)
        report.new += len(new_keys)
        self.checkpoint("after_quarantine_journal")
        self.store.quarantine_remove(item.id for item, _ in readable)
        report.recovered = len(readable)
        log.info("quarantined items read again", extra={"fields": {
            "run_id": report.run_id, "items": len(items), "journaled": len(readable), "new": len(new_keys),
            "still_unreadable": report.skipped_invalid}})

    # -- deliver -------------------------------------------------------------------------------
    def _deliver(self, report: RunReport, notify: bool) -> list[SyncError]:
        errors: list[SyncError] = []
        pending = self.store.journal_pending()
        self._parsed = {}
        for step, fn in (("sheet", self._deliver_sheet), ("slack", self._deliver_slack)):
            if step == "slack" and not notify:
                continue
            try:
                self._timed(report, step, lambda: fn(report, pending))
            except Exception as exc:
                report.errors.append(_error_info(step, exc))
                errors.append(_as_sync_error(step, exc))
                log.warning(
                    f"{step} delivery failed; the chats stay in the journal",
                    extra={"fields": {"run_id": report.run_id, "cause": getattr(exc, "cause", "internal")}},
                )
        report.pending = sum(1 for e in pending if not e.delivered)
        self._parsed = {}
        return errors

    def _update(self, entries: list[JournalEntry], **changes: Any) -> None:
        """Apply changes to entries here and in the store.

        Each store update names both destination states, so the store can tell whether an
        entry is delivered without reading it; delivered entries get their expiry.
        """
        if not entries:
            return
        groups: dict[tuple[str, str], list[str]] = {}
        for entry in entries:
            for name, value in changes.items():
                setattr(entry, name, value)
            groups.setdefault((entry.sheet, entry.slack), []).append(entry.key)
        for (sheet, slack), keys in groups.items():
            fields = {**changes, "sheet": sheet, "slack": slack}
            if sheet == DONE and slack == DONE:
                fields["expires_at"] = self.clock() + timedelta(days=self.settings.retention_days)
            self.store.journal_update(keys, **fields)

    def _chats(self, entries: list[JournalEntry]) -> list[Chat]:
        chats = []
        for e in entries:
            chat = self._parsed.get(e.key)
            if chat is None or chat.raw is not e.chat:
                chat = parse_journal_chat(e.chat, self.tz)
                if chat.key != e.key:
                    # The journal's key wins: it is the one already in the sheet.
                    chat = dataclasses.replace(chat, key=e.key)
                self._parsed[e.key] = chat
            chats.append(chat)
        return sort_chats(chats)

    def _settle_time(self) -> timedelta:
        return timedelta(seconds=max(SETTLE_SECONDS, 2 * self.settings.http_timeout_seconds))

    def _deliver_sheet(self, report: RunReport, pending: list[JournalEntry]) -> None:
        todo = [e for e in pending if e.sheet != DONE]
        if not todo:
            return
        # A write that got no answer may still be running at Google. Rows another run left in
        # flight are checked only once that write has surely ended (a scheduler retry comes
        # sooner than that; the next scheduled run later).
        now = self.clock()
        young = {
            e.key
            for e in todo
            if e.sheet == INFLIGHT
            and not _batch_answered(e.sheet_batch)
            and now - _batch_time(e.sheet_batch, now) < self._settle_time()
        }
        if young:
            report.waiting = len(young)
            todo = [e for e in todo if e.key not in young]
            log.info(
                "rows from an unanswered write are left in flight until it has surely ended",
                extra={"fields": {"run_id": report.run_id, "rows": len(young)}},
            )
        if not todo:
            return
        # A wrong header or an unshared sheet is found before anything is marked in flight.
        # Row 1 is read on every such run: a column inserted since the last one would put
        # every cell under the wrong heading and hide the Chat key column from the check below.
        self.sheet.ensure_ready()
        attempts = 2
        for attempt in range(1, attempts + 1):
            inflight = [e for e in todo if e.sheet == INFLIGHT]
            if inflight:
                present = self.sheet.keys_present(header_checked=True)
                found = [e for e in inflight if e.key in present]
                self._update(found, sheet=DONE)
                self._update([e for e in inflight if e.key not in present], sheet=PENDING, sheet_batch=None)
                report.already_in_sheet += len(found)
                todo = [e for e in todo if e.sheet != DONE]
                if not todo:
                    return
            self._update(todo, sheet=INFLIGHT, sheet_batch=f"{report.run_id}@{int(self.clock().timestamp())}")
            self.checkpoint("after_mark_inflight")
            try:
                appended = self.sheet.append(self._chats(todo), header_checked=True)
            except SheetNoAnswer:
                # No answer: the request may still be running at Google and land after any
                # check made now. The rows stay in flight for a later run to check.
                raise
            except SyncError as exc:
                # Sheets answered with an error: the append has ended, landed or not. The rows
                # stay in flight, marked so that the next pass (this run's or the very next
                # run's, a scheduler retry included) checks the key column without waiting.
                self._update(todo, sheet_batch=f"{report.run_id}@{ANSWERED}")
                if attempt == attempts or not isinstance(exc, TransientError):
                    raise
                log.info("append failed, checking the sheet before one more try", extra={"fields": {"run_id": report.run_id}})
                continue
            self.checkpoint("after_append")
            self._update(todo, sheet=DONE)
            report.appended += appended
            return

    def _deliver_slack(self, report: RunReport, pending: list[JournalEntry]) -> None:
        todo = [e for e in pending if e.slack != DONE]
        if not todo:
            return
        late = sum(1 for e in todo if e.fetched_at < report.started_at)
        summary = build_summary(
            self._chats(todo),
            sheet_url=self.settings.sheet_url,
            max_listed=self.settings.slack_max_listed,
            late=late,
        )
        # A summary Slack refuses for its size or shape is replaced at once by a short one:
        # otherwise it would be refused again, with more chats, on every later run.
        self.slack.post_summary(summary)
        self.checkpoint("after_post")
        self._update(todo, slack=DONE)
        report.posted += len(todo)
        report.late += late

    # -- bookkeeping ---------------------------------------------------------------------------
    def _schedule_done(self, schedule_time: str) -> bool:
        doc = self.store.get_meta(SCHEDULE_DOC) or {}
        return schedule_time in (doc.get("done") or [])

    def _mark_schedule_done(self, schedule_time: str) -> None:
        doc = self.store.get_meta(SCHEDULE_DOC) or {}
        done = [t for t in (doc.get("done") or []) if t != schedule_time] + [schedule_time]
        self.store.put_meta(SCHEDULE_DOC, {"done": done[-SCHEDULES_KEPT:]})

    def _record(self, report: RunReport) -> None:
        try:
            self.store.record_run(self._record_of(report))
        except Exception as exc:  # never let bookkeeping hide the run's own outcome
            log.warning("could not record the run", extra={"fields": {"run_id": report.run_id, "error": type(exc).__name__}})

    def _record_of(self, report: RunReport) -> dict[str, Any]:
        record = {
            "run_id": report.run_id,
            "mode": report.mode,
            "started_at": report.started_at.isoformat(),
            "duration_ms": report.duration_ms,
            "outcome": report.outcome,
            **report.counts(),
            "healthy": report.healthy,
        }
        if report.unhealthy:
            record["unhealthy"] = report.unhealthy
        if report.skipped:
            record["skipped"] = report.skipped
        if report.errors:
            record["errors"] = [{k: v for k, v in e.items() if k != "fix"} for e in report.errors]
        return record

    def _check_health(self, report: RunReport) -> None:
        """Mark the run unhealthy if it failed or something is stuck (counts only, no chat data)."""
        now = self.clock()
        problems: list[str] = []
        try:
            if report.pending:
                stale = [e for e in self.store.journal_pending()
                         if not e.delivered and now - e.fetched_at > ALERT_GRACE]
                if stale:
                    minutes = int(ALERT_GRACE.total_seconds() // 60)
                    problems.append(f"{len(stale)} chat(s) undelivered for over {minutes} min")
            quarantined = self.store.quarantine_count()
            if quarantined:
                problems.append(f"{quarantined} item(s) waiting in quarantine")
            # The token this run used must still serve the next one: one that is gone, or that
            # lives less than the refresh margin, means every run logs in again.
            token = self.store.get_token()
            if token is None or token.expires_at - REFRESH_MARGIN <= now:
                problems.append("no Moneypenny token cached for the next run (token renewal is not working)")
        except Exception as exc:
            problems.append(f"the state store could not be read ({type(exc).__name__})")
        report.unhealthy = problems
        report.healthy = report.outcome != "failed" and not problems

    def _finish(self, report: RunReport) -> None:
        self._check_health(report)
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


def _read_settles(intent: dict[str, Any], opts: RunOptions, today: date, *, carried: bool) -> bool:
    """Whether a read that reached the journal settles the fetch intent."""
    if opts.mode == "new":
        # A plain call returns everything since the previous plain call: it settles the intent
        # written just before it, not one an earlier read left (whose answer it cannot return).
        return not carried
    # A window read settles only an intent it covers, from its `since` through today. Whether
    # endTime is inclusive is undocumented, so only a window ending after today covers today.
    assert opts.start is not None and opts.end is not None
    return opts.start <= date.fromisoformat(intent["since"]) and opts.end > today


def _schedule_key(job: str | None, mode: str, schedule_time: str | None) -> str | None:
    """The name of one scheduled run. Two jobs that fire in the same minute (the sync and the
    daily reconcile) send the same ScheduleTime, so the job name is part of it; without one,
    the mode stands in for it."""
    if not schedule_time:
        return None
    job = (job or "").strip()
    return f"{job or 'mode=' + mode} {schedule_time}"


def _batch_answered(batch: str | None) -> bool:
    """Whether Sheets answered the batch's append (with an error): nothing of it still runs."""
    return (batch or "").endswith(f"@{ANSWERED}")


def _batch_time(batch: str | None, default: datetime) -> datetime:
    """When an in-flight batch was written ("<run id>@<epoch seconds>"); `default` if unknown."""
    try:
        return datetime.fromtimestamp(int((batch or "").rsplit("@", 1)[1]), timezone.utc)
    except (IndexError, ValueError, OverflowError, OSError):
        return default - timedelta(days=365)  # no time: treat as long settled


# A quarantined item is kept whole up to this many bytes of JSON (a Firestore document holds 1 MiB).
QUARANTINE_RAW_BYTES = 900_000


def _dump(item: Any) -> str:
    """The item as JSON text that every store can write, cut to QUARANTINE_RAW_BYTES."""
    try:
        text = json_text(item)
    except (TypeError, ValueError, RecursionError):
        text = ascii(item)  # never raised for what json.loads made; ascii() encodes anywhere
    data = text.encode("utf-8")
    if len(data) <= QUARANTINE_RAW_BYTES:
        return text
    kept = data[:QUARANTINE_RAW_BYTES].decode("utf-8", "ignore")
    return f"{kept}\n… [cut: {len(data) - len(kept.encode('utf-8'))} more bytes]"
