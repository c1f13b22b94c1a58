"""`python -m lib backfill`: read a past window from Moneypenny day by day, through the journal.

Each day is one ordinary window run (Syncer.run(mode="window")), so it takes and releases the
lease, records itself in the run history, and writes only chats the journal has not seen.
Stopping at any point is safe, and so is running the same command again: days already done
are read again and add nothing.

Two things a plain window run would get wrong for old chats are handled through RunOptions:
- chats older than the journal's retention are unknown to it, though their rows may be in the
  sheet: keys found in the sheet's Chat key column are marked delivered, not written again;
- old chats would otherwise wait for Slack and be posted by the next scheduled run as "late":
  chats dated before today are marked as not to be announced. Today's chats are left to the
  usual announcement. With --notify, one summary of the backfilled chats is posted at the end.

The read for day D asks for D to D+1: whether Moneypenny's endTime is inclusive is not
documented, and the journal makes the overlap harmless.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import logs
from .chat_source import parse_journal_chat
from .chats import sort_chats
from .command import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Context,
    ProgressBar,
    build_syncer,
    print_json,
    setup,
)
from .errors import SyncError
from .settings import Settings
from .state.base import DONE, JournalEntry, StateStore
from .state.documents import BackfillDoc
from .sync import Mode, RunFailed, RunOptions, Syncer

log = logging.getLogger(__name__)

LEASE_POLL_SECONDS = 5.0

if TYPE_CHECKING:
    from .sync import RunReport


@dataclass
class BackfillResult:
    """What a backfill did, summed over its days."""

    start: date
    end: date
    days_total: int
    days_done: int = 0
    fetched: int = 0
    new: int = 0
    appended: int = 0
    already_in_sheet: int = 0
    not_announced: int = 0
    posted: int = 0
    run_ids: list[str] = field(default_factory=list)
    stopped: str | None = None  # None (finished) | "failed" | "lease" | "interrupted"
    failed_day: date | None = None
    error: SyncError | None = None
    summary_posted: bool = False
    summary_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.stopped is None and self.summary_error is None

    def as_dict(self) -> dict[str, Any]:
        out = {
            "ok": self.ok,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "days_total": self.days_total,
            "days_done": self.days_done,
            "fetched": self.fetched,
            "new": self.new,
            "appended": self.appended,
            "already_in_sheet": self.already_in_sheet,
            "not_announced": self.not_announced,
            "posted": self.posted,
            "summary_posted": self.summary_posted,
            "stopped": self.stopped,
            "run_ids": self.run_ids,
        }
        if self.failed_day:
            out["failed_day"] = self.failed_day.isoformat()
        if self.error is not None:
            out.update(error=str(self.error), cause=self.error.cause, fix=self.error.fix)
        if self.summary_error:
            out["summary_error"] = self.summary_error
        return out


def days_between(start: date, end: date) -> list[date]:
    """Every day from start to end, both included."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def run_backfill(
    settings: Settings,
    store: StateStore,
    start: date,
    end: date,
    *,
    build: Callable[..., Syncer],
    clock: Callable[[], datetime],
    notify: bool = False,
    progress: Callable[[BackfillResult], None] | None = None,
    lease_wait: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
) -> BackfillResult:
    """Backfill start..end (both included), one window run per day.

    `build()` returns a Syncer using `store`. Stops at the first failed day, or
    when another run holds the lease for longer than `lease_wait` seconds.
    """
    days = days_between(start, end)
    result = BackfillResult(start=start, end=end, days_total=len(days))
    syncer = build()
    today = clock().astimezone(settings.chat_timezone).date()
    # One read of the key column for the whole backfill: rows written since are in the journal.
    sheet_keys = frozenset(syncer.sheet.keys_present())
    if syncer.calls_sheet is not None:  # and the Calls tab's, its keys are call keys
        sheet_keys |= syncer.calls_sheet.keys_present()
    quiet_keys: list[str] = []
    note = BackfillDoc(start=start, end=end, state="running", started_at=clock())
    _save(store, note)
    try:
        for number, day in enumerate(days):
            options = RunOptions(
                mode=Mode.WINDOW,
                start=day,
                end=day + timedelta(days=1),
                sheet_keys=sheet_keys,
                announce_before=today,
                # Past windows leave a fetch intent; settling it once (first day, and the next
                # scheduled run) is enough.
                recover=number == 0,
            )
            with logs.context(command="backfill", day=day.isoformat()):
                report = _run_day(syncer, options, result=result, lease_wait=lease_wait, sleep=sleep)
            if report is None:
                break
            quiet_keys += report.new_keys
            result.days_done += 1
            note = dataclasses.replace(note, done_through=day)
            _save(store, dataclasses.replace(note, new=result.new, appended=result.appended))
            if progress:
                progress(result)
    except KeyboardInterrupt:
        result.stopped = "interrupted"
        _save(store, dataclasses.replace(note, state="interrupted"))
        raise
    if result.stopped is None and notify and result.not_announced:
        _post_summary(syncer, store, settings, quiet_keys, today, result)
    _save(store, dataclasses.replace(note, state=result.stopped or "done", new=result.new, appended=result.appended,
                                     finished_at=clock()))
    return result


def _run_day(syncer: Syncer, options: RunOptions, *, result: BackfillResult,
             lease_wait: float, sleep: Callable[[float], None]) -> RunReport | None:
    day = options.start
    waited = 0.0
    while True:
        try:
            report = syncer.run(options=options)
        except RunFailed as failed:
            _add(result, failed.report)
            result.stopped, result.failed_day, result.error = "failed", day, failed.error
            return None
        if report.outcome != "skipped":
            _add(result, report)
            return report
        if waited >= lease_wait:
            result.stopped, result.failed_day = "lease", day
            return None
        pause = min(LEASE_POLL_SECONDS, lease_wait - waited) if lease_wait > 0 else 0
        log.info("another run holds the lease; waiting", extra={"fields": {"seconds": pause}})
        sleep(pause)
        waited += max(pause, 0.001)


def _add(result: BackfillResult, report: RunReport) -> None:
    result.run_ids.append(report.run_id)
    result.fetched += report.fetched
    result.new += report.new
    result.appended += report.appended
    result.posted += report.posted
    result.already_in_sheet += report.already_in_sheet
    result.not_announced += report.not_announced


def _post_summary(syncer: Syncer, store: StateStore, settings: Settings, keys: list[str], today: date,
                  result: BackfillResult) -> None:
    from .slack_summary import build_summary

    tz = settings.chat_timezone
    entries: list[JournalEntry] = [
        e for e in store.journal_get(keys).values() if e.sheet == DONE and e.chat_time.astimezone(tz).date() < today
    ]
    if not entries:
        return
    chats = sort_chats(
        dataclasses.replace(parse_journal_chat(e.chat, settings.chat_timezone), key=e.key) for e in entries
    )
    summary = build_summary(chats, sheet_url=settings.sheet_url, max_listed=settings.slack_max_listed,
                            title="backfilled chat")
    try:
        syncer.slack.post_summary(summary)
        result.summary_posted = True
    except Exception as exc:
        result.summary_error = str(exc) if isinstance(exc, SyncError) else type(exc).__name__
        log.error("could not post the backfill summary", extra={"fields": {"error": type(exc).__name__}})


def _save(store: StateStore, note: BackfillDoc) -> None:
    try:
        store.write_doc(note)
    except Exception as exc:  # progress notes are for `status`; never stop a backfill for them
        log.warning("could not note the backfill's progress", extra={"fields": {"error": type(exc).__name__}})


# -- `python -m lib backfill` -------------------------------------------------------------------


def command(args: argparse.Namespace, ctx: Context) -> int:
    """Backfill --from..--to with a progress bar on stderr; the result as lines or JSON."""
    if args.start > args.end:
        ctx.warn("error: --from is after --to")
        return EXIT_USAGE
    settings, store, code = setup(args, ctx)
    if settings is None or store is None:
        return code
    try:
        today = ctx.clock().astimezone(settings.chat_timezone).date()
        if args.end > today:
            ctx.warn(f"error: --to {args.end} is in the future (today is {today} in {settings.chat_timezone.key})")
            return EXIT_USAGE
        bar = None if args.json else ProgressBar(ctx.stderr, len(days_between(args.start, args.end)), "days")
        if bar:
            bar.show(0, 0, 0)
        try:
            result = run_backfill(
                settings, store, args.start, args.end,
                build=lambda: build_syncer(settings, store, ctx),
                clock=ctx.clock, notify=args.notify, lease_wait=args.wait, sleep=ctx.sleep,
                progress=(lambda r: bar.show(r.days_done, r.new, r.appended)) if bar else None,
            )
        except KeyboardInterrupt:
            if bar:
                bar.done()
            ctx.warn("Interrupted. Days already done are in place; run the same command again to finish "
                     "(done days are read again and add nothing).")
            return EXIT_INTERRUPTED
        if bar:
            bar.done()
        if args.json:
            print_json(ctx, result.as_dict())
        else:
            ctx.say(*_lines(result, store))
        if result.stopped == "lease":
            return EXIT_BUSY
        return EXIT_OK if result.ok else EXIT_FAILED
    finally:
        store.close()


def _lines(result: BackfillResult, store: StateStore) -> list[str]:
    out = [
        f"backfill {result.start} to {result.end}: {result.days_done} of {result.days_total} days done; "
        f"fetched {result.fetched}, new {result.new}, written {result.appended}, "
        f"already in the sheet {result.already_in_sheet}, not announced {result.not_announced}"
    ]
    if result.summary_posted:
        out.append("one summary of the backfilled chats was posted to Slack")
    if result.summary_error:
        out.append(f"error: the Slack summary could not be posted: {result.summary_error}")
    if result.stopped == "failed":
        out.append(f"stopped at {result.failed_day}: {result.error}")
        if result.error is not None and result.error.fix:
            out.append(f"fix: {result.error.fix}")
        out.append("Days before it are done; fix the cause and run the same command again.")
    elif result.stopped == "lease":
        lease = store.get_lease()
        holder = f" (run {lease.owner}, until {lease.expires_at:%H:%M:%S} UTC)" if lease else ""
        out.append(f"stopped at {result.failed_day}: another run holds the lease{holder}. "
                   "Run the same command again later, or raise --wait.")
    return out
