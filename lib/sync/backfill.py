"""The backfill (`python -m lib backfill`, lib/commands/backfill.py): read a past window from Moneypenny,
through the journal, then deliver once.

The window is read in spans of WINDOW_DAYS days (Moneypenny's startTime/endTime window call),
each span one ordinary window run (Syncer.run with RunOptions) that takes and releases the
lease and records itself in the run history. Every span but the last only journals what it
read (RunOptions.deliver=False); the last one delivers everything the backfill journaled in
one sheet delivery (appends split only by payload size) and one Slack summary. So a year costs
about 12 Moneypenny reads and a handful of Sheets writes, not one run per day.

Stopping at any point is safe, and so is running the same command again: spans already read
are read again and add nothing (the journal adds only keys it has not seen), and what a stopped
backfill journaled is delivered by the next run that delivers (the backfill's or a scheduled
one), exactly once.

Two things a plain window run would get wrong for old chats are handled through RunOptions:
- chats older than the journal's retention are unknown to it, though their rows may be in the
  sheet: keys found in the sheet's Chat key column are marked delivered, not written again;
- old chats would otherwise wait for Slack and be posted by the next scheduled run as "late":
  chats dated before today are marked as not to be announced. Today's chats are left to the
  usual announcement. With --notify, one summary of what the backfill delivered is posted at the
  end, as the scheduled run's: one message, a part per source (chats, call messages).

However a backfill stops (a failed span, Ctrl-C, an unexpected error), its note in the store
(`status`'s "Last backfill") says failed or interrupted, never running.

A span's read for days A..B asks for A to B+1 and keeps A..B (as every day window does,
lib/sync/options.py PAST_END): whether Moneypenny's endTime is inclusive is not documented.

Sheets' quota (60 writes a minute per user) is waited out by the Sheets session's retries
(lib/destinations/sheet/client.py); the backfill's session may wait longer than a scheduled run's
(BACKFILL_QUOTA_WAIT_SECONDS).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .. import logs
from ..destinations import SHEET
from ..destinations.sheet.writer import SheetWriter
from ..destinations.slack import combined as slack_combined
from ..errors import RunFailed, SyncError
from ..records import Record, sort_records
from ..settings import Settings
from ..sources import CHATS_FEED, feed_of_key, registered
from ..state.contract import StateStore
from ..state.documents import BackfillDoc
from ..state.models import DONE, JournalEntry
from . import Mode, RunOptions, RunReport, Syncer

log = logging.getLogger(__name__)

LEASE_POLL_SECONDS = 5.0
# Days per Moneypenny window read. Nothing documents a longest window (nor pagination) for the
# chat log's startTime/endTime: a month is a guess that keeps one answer to a month of chats
# and a year to 12 reads. Lower it if Moneypenny ever refuses or cuts a month.
WINDOW_DAYS = 31
# How long, in all, the backfill's Sheets session waits out 429 answers (quota) of one request:
# five rolling minutes of the 60 writes/min/user quota. A scheduled run waits less (lib/destinations/sheet/client.py),
# to end inside the function's timeout.
BACKFILL_QUOTA_WAIT_SECONDS = 300.0



@dataclass
class BackfillResult:
    """What a backfill did, summed over its reads."""

    start: date
    end: date
    days_total: int
    days_done: int = 0
    reads: int = 0
    fetched: int = 0
    new: int = 0
    skipped_invalid: int = 0
    appended: int = 0
    already_in_sheet: int = 0
    not_announced: int = 0
    posted: int = 0
    run_ids: list[str] = field(default_factory=list)
    read_keys: set[str] = field(default_factory=set, repr=False)  # each item read, once
    stopped: str | None = None  # None (finished) | "failed" | "lease" | "interrupted"
    failed_day: date | None = None
    error: SyncError | None = None
    summary_posted: bool = False
    summary_sources: list[str] = field(default_factory=list)
    summary_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.stopped is None and self.summary_error is None

    def counts(self) -> dict[str, int]:
        """The counts named so that they add up, each item counted once:
        read = already_known + new + set_aside (an item read by two reads, a span's edge day or a
        recovery read, is one item read); new = already_in_sheet + written_new + waiting;
        written = written_new + written_earlier (rows journaled by an earlier, stopped run);
        announced: posted to Slack (with --notify, the backfill's summary included)."""
        new_to_write = max(self.new - self.already_in_sheet, 0)
        written_new = min(self.appended, new_to_write)
        announced = self.posted + (self.not_announced if self.summary_posted else 0)
        return {
            "read": len(self.read_keys) + self.skipped_invalid,
            "already_known": max(len(self.read_keys) - self.new, 0),
            "new": self.new,
            "set_aside": self.skipped_invalid,
            "already_in_sheet": self.already_in_sheet,
            "written": self.appended,
            "written_new": written_new,
            "written_earlier": self.appended - written_new,
            "waiting": new_to_write - written_new,
            "announced": announced,
            "not_announced": self.not_announced - (self.not_announced if self.summary_posted else 0),
        }

    def as_dict(self) -> dict[str, Any]:
        out = {
            "ok": self.ok,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "days_total": self.days_total,
            "days_done": self.days_done,
            "reads": self.reads,
            "fetched": self.fetched,
            "new": self.new,
            "appended": self.appended,
            "already_in_sheet": self.already_in_sheet,
            "not_announced": self.not_announced,
            "posted": self.posted,
            "summary_posted": self.summary_posted,
            "counts": self.counts(),
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


def spans(start: date, end: date, days: int = WINDOW_DAYS) -> list[tuple[date, date]]:
    """start..end cut into spans of at most `days` whole days: (first, last), both included."""
    if days < 1:
        raise ValueError("a span has at least one day")
    out = []
    first = start
    while first <= end:
        last = min(first + timedelta(days=days - 1), end)
        out.append((first, last))
        first = last + timedelta(days=1)
    return out


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
    window_days: int = WINDOW_DAYS,
    on_rows: Callable[[int], None] | None = None,
) -> BackfillResult:
    """Backfill start..end (both included): read it span by span into the journal, then deliver once.

    `build()` returns a Syncer using `store`. Stops at the first failed run, or when another
    run holds the lease for longer than `lease_wait` seconds. `progress` is called after each
    read, `on_rows` with the rows of each append as it lands. However it stops (a failure, an
    interrupt, an unexpected error), the backfill's note in the store says so: never "running".
    """
    windows = spans(start, end, window_days)
    result = BackfillResult(start=start, end=end, days_total=(end - start).days + 1)
    today = clock().astimezone(settings.chat_timezone).date()
    quiet_keys: list[str] = []
    note = BackfillDoc(start=start, end=end, state="running", started_at=clock())
    _save(store, note)
    try:
        syncer = build()
        syncer.sheet.on_rows = on_rows
        sheet_keys: frozenset[str] = frozenset()
        try:
            sheet_keys = _sheet_keys(syncer)
        except SyncError as exc:
            result.stopped, result.failed_day, result.error = "failed", start, exc
            windows = []
        for number, (first, last) in enumerate(windows):
            options = RunOptions(
                mode=Mode.WINDOW,
                start=first,
                end=last,  # read to a day past it (lib/sync/options.py PAST_END)
                sheet_keys=sheet_keys,
                announce_before=today,
                # Past windows leave a fetch intent; settling it once (first read, and the next
                # scheduled run) is enough.
                recover=number == 0,
                # Only the last read delivers: everything the backfill journaled, at once.
                deliver=number == len(windows) - 1,
            )
            with logs.context(command="backfill", day=first.isoformat()):
                report = _run_leased(syncer, options, result=result, lease_wait=lease_wait, sleep=sleep)
            if report is None:
                break
            quiet_keys += report.new_keys
            result.days_done += (last - first).days + 1
            result.reads += 1
            note = dataclasses.replace(note, done_through=last)
            _save(store, dataclasses.replace(note, new=result.new, appended=result.appended))
            if progress:
                progress(result)
        if result.stopped is None and notify and result.not_announced:
            _post_summary(syncer, store, settings, quiet_keys, today, result)
    except BaseException as exc:
        # Whatever stopped it, the note says so; an interrupt is the person's, anything else a failure.
        result.stopped = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        _save(store, dataclasses.replace(note, state=result.stopped, new=result.new, appended=result.appended,
                                         finished_at=clock()))
        raise
    _save(store, dataclasses.replace(note, state=result.stopped or "done", new=result.new, appended=result.appended,
                                     finished_at=clock()))
    return result


def _sheet_keys(syncer: Syncer) -> frozenset[str]:
    # One read of the key column for the whole backfill: rows written since are in the journal.
    # Every tab's: the chats' and each other feed's that is on (each holds its own feed's keys).
    keys: frozenset[str] = frozenset()
    for name, writer in syncer.writers.items():
        if name == CHATS_FEED.name or syncer.settings.feed_on(name):
            keys |= frozenset(writer.keys_present())
    return keys


def _run_leased(syncer: Syncer, options: RunOptions, *, result: BackfillResult,
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
    result.read_keys |= report.read_keys
    result.new += report.new
    result.skipped_invalid += report.skipped_invalid
    result.appended += report.appended
    result.posted += report.posted
    result.already_in_sheet += report.already_in_sheet
    result.not_announced += report.not_announced


def _post_summary(syncer: Syncer, store: StateStore, settings: Settings, keys: list[str], today: date,
                  result: BackfillResult) -> None:
    """One summary of what the backfill journaled before today and delivered, a part per feed
    (chats, call messages, any other registered), as the scheduled run's summary; a failure is
    noted, never raised."""
    tz = settings.chat_timezone
    try:
        entries: list[JournalEntry] = [
            e for e in store.journal_get(keys).values() if e.state(SHEET.name) == DONE and e.item_time.astimezone(tz).date() < today
        ]
        if not entries:
            return
        parts = []
        feeds = registered()
        for feed in feeds:
            source, writer = feed.source, syncer.writers.get(feed.name)
            own = [e for e in entries if feed_of_key(e.key, feeds) is feed]
            title = "backfilled " + feed.summary_noun.split()[-1]
            records = sort_records(source.with_key(source.from_journal(e.item, tz), e.key) for e in own)
            parts.append(slack_combined.SummaryPart(
                records, title, feed.tab(settings), url=writer.tab_url(settings.sheet_url) if writer is not None else "",
                feed=feed.name, row_links=_row_links(writer, records, settings.sheet_url)))
        summary = slack_combined.build_combined(parts, sheet_url=settings.sheet_url,
                                                max_listed=settings.slack_max_listed, account=settings.account,
                                                claim_buttons=settings.slack_claim_buttons)
        syncer.slack.post_summary(summary)
        result.summary_posted = True
        result.summary_sources = [p.title.split()[-1] + "s" for p in parts if p.records]
    except Exception as exc:
        result.summary_error = str(exc) if isinstance(exc, SyncError) else f"unexpected {type(exc).__name__}"
        log.error("could not post the backfill summary", extra={"fields": {"error": type(exc).__name__}})


def _row_links(writer: SheetWriter | None, records: Sequence[Record], sheet_url: str) -> dict[str, str]:
    """The backfill summary's row links: its records' rows found by key (one read of the tab's
    key column); none when the tab has nothing to list or the read fails (the lines then show
    their short keys alone)."""
    if writer is None or not records:
        return {}
    try:
        rows = writer.key_rows(header_checked=True)
    except Exception as exc:  # a row link is no reason to lose the summary
        log.warning("could not read the key column for the row links", extra={"fields": {"error": type(exc).__name__}})
        return {}
    found = {r.key: next((rows[k] for k in (r.key, *r.former_keys) if k in rows), None) for r in records}
    return writer.row_urls(sheet_url, {key: row for key, row in found.items() if row is not None})


def _save(store: StateStore, note: BackfillDoc) -> None:
    try:
        store.write_doc(note)
    except Exception as exc:  # progress notes are for `status`; never stop a backfill for them
        log.warning("could not note the backfill's progress", extra={"fields": {"error": type(exc).__name__}})
