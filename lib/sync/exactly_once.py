"""Exactly-once delivery for any exactly-once destination (the sheet, or any registered one that
offers append and keys_present, lib/destinations/base.py): in-flight marks, the key check,
settling unanswered writes, one retry. Below, "the sheet" and "the key column" stand for the
destination and its `keys_present`.

Rows are written from the journal. A batch is marked *in flight* before the append (one batch
document naming its keys, its time and, once Sheets answered with an error, "answered") and
*done* after it (staged: each entry's one delivery write, Journal.write_staged, which then
deletes the batch). A run that finds entries still in flight (a crash or an ambiguous failure
between the two) reads the sheet's Chat key column once and marks the keys it finds as done
before writing anything, so only the missing rows are appended. An append that got no answer
may still be running at Google: its rows are checked only once it has surely ended
(SETTLE_SECONDS). An append Sheets answered with an error has ended: its rows are checked by
the next pass at once.

In a run, the batch document is stored only while the run holds the lease (one transaction
with the lease's read: RunSession.put_batch), just before the append; a wait on a 429 and each
later chunk check it again (lib/http.fenced). A run that lost its lease appends nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..destinations import Writer
from ..errors import LeaseLost, NoAnswer, SyncError, TransientError
from ..state.models import DONE, INFLIGHT, PENDING, JournalEntry
from .journal import Journal, unchecked
from .options import RunReport

log = logging.getLogger(__name__)

# How long after an unanswered Sheets write its rows are left alone (at least twice the HTTP
# timeout): Google may still be carrying the write out.
SETTLE_SECONDS = 120
# Ends the in-flight batch of an append that Sheets answered with an error (instead of the
# epoch seconds of an append that may still be running): its rows are checked at once.
ANSWERED = "answered"
ATTEMPTS = 2  # passes of check-and-append in one run: the second follows an answered transient error


def settle_time(http_timeout_seconds: float) -> timedelta:
    """How long an unanswered append may still be running at Google."""
    return timedelta(seconds=max(SETTLE_SECONDS, 2 * http_timeout_seconds))


class ExactlyOnceDelivery:
    """Appends the journal's records not yet at one exactly-once destination (`destination`, by
    its registered name; for one feed, its `Writer`), each exactly once."""

    def __init__(self, sheet: Writer, journal: Journal, *, clock: Callable[[], datetime],
                 http_timeout_seconds: float, checkpoint: Callable[[str], None] = lambda step: None,
                 destination: str = "sheet"):
        self.sheet = sheet
        self.destination = destination
        self.journal = journal
        self.clock = clock
        self.settle = settle_time(http_timeout_seconds)
        self.checkpoint = checkpoint

    def deliver(self, report: RunReport, pending: list[JournalEntry]) -> None:
        """Write the rows of the entries not yet in the sheet (raises if Sheets fails)."""
        name = self.destination
        todo = self._settled([e for e in pending if e.state(name) != DONE], report)
        if not todo:
            return
        # A wrong header or an unshared sheet is found before anything is marked in flight.
        # Row 1 is read on every such run: a column inserted since the last one would put
        # every cell under the wrong heading and hide the Chat key column from the check below.
        self.sheet.ready()
        for attempt in range(1, ATTEMPTS + 1):
            todo = self._check_inflight(todo, report)
            if not todo:
                return
            # Unique per append (two deliveries of a run may share a second); the label keeps
            # the run and the time the settle rule reads.
            batch = self.journal.open_batch(todo, f"{report.run_id}-{uuid.uuid4().hex[:12]}",
                                            f"{report.run_id}@{int(self.clock().timestamp())}", name)
            self.checkpoint("after_mark_inflight")
            try:
                appended = self.sheet.append(self.journal.records_of(todo))
            except (NoAnswer, LeaseLost):
                # No answer: the request may still be running at Google and land after any
                # check made now. Or the run lost its lease while it waited out a 429 (the
                # request was not sent again) or between two chunks. Either way the rows stay
                # in flight for a later run to check.
                raise
            except SyncError as exc:
                # Sheets answered with an error: the append has ended, landed or not. The rows
                # stay in flight, marked so that the next pass (this run's or the very next
                # run's, a scheduler retry included) checks the key column without waiting.
                self.journal.relabel(todo, batch, f"{report.run_id}@{ANSWERED}")
                if attempt == ATTEMPTS or not isinstance(exc, TransientError):
                    raise
                log.info("append failed, checking the sheet before one more try", extra={"fields": {"run_id": report.run_id}})
                continue
            self.checkpoint("after_append")
            # Written with the Slack marks, one write per entry (Journal.write_staged): until
            # then the batch says in flight, so a crash here is checked, never written twice.
            self.journal.stage(todo, name, DONE)
            report.appended += appended
            return

    def _settled(self, todo: list[JournalEntry], report: RunReport) -> list[JournalEntry]:
        # A write that got no answer may still be running at Google. Rows another run left in
        # flight are checked only once that write has surely ended (a scheduler retry comes
        # sooner than that; the next scheduled run later).
        now = self.clock()
        name = self.destination
        young = {e.key for e in todo if not settled(e.state(name), e.label(name), now, self.settle)}
        if not young:
            return todo
        report.waiting = len(young)
        log.info(
            "rows from an unanswered write are left in flight until it has surely ended",
            extra={"fields": {"run_id": report.run_id, "rows": len(young)}},
        )
        return [e for e in todo if e.key not in young]

    def _check_inflight(self, todo: list[JournalEntry], report: RunReport) -> list[JournalEntry]:
        # Rows that may be in the sheet already: one read of the key column says. They are the
        # rows in flight, the rows journaled UNCHECKED (the journal may have forgotten an earlier
        # delivery), and rows pending since before the journal's memory (the batch document of
        # their append may have expired).
        name = self.destination
        old = self.journal.forgotten_before(self.clock())
        check = [e for e in todo if e.state(name) == INFLIGHT or (e.batch(name) is None and e.fetched_at < old)]
        if not check:
            return todo
        present = self.sheet.keys_present()
        found = [e for e in check if e.key in present]
        for entry in found:
            # Delivered before the journal forgot it: announced then. Unless the entry itself is
            # older than the journal's memory: then the batch document of its own append (a run
            # that died before its post) may have expired, and it was maybe never announced.
            if unchecked(entry, name) and entry.fetched_at >= old:
                self.journal.take_as_announced(entry)
        # Journaled unchecked and not in the sheet: written now, with no write of their own.
        # Their documents say "check first" until this run's done write, so a crash before it
        # has them checked again, never written twice.
        fresh = {e.key for e in check if e.key not in present and unchecked(e, name)}
        self.journal.release(name, found, [e for e in check if e.key not in present and e.key not in fresh])
        for entry in check:
            if entry.key in fresh:
                entry.set_state(name, PENDING)
        report.already_in_sheet += len(found)
        return [e for e in todo if e.state(name) != DONE]


def settled(state: str, label: str | None, now: datetime, settle: timedelta) -> bool:
    """The settle rule: whether an entry in this state, with this in-flight label, may be checked
    (and written again) `now`. Only a write that may still be running at the destination holds it
    back: in flight, not answered, and labelled less than `settle` before `now` (a label with no
    time, such as a first read's "unchecked", is long settled)."""
    if state != INFLIGHT or batch_answered(label):
        return True
    return now - batch_time(label, now) >= settle


def batch_answered(batch: str | None) -> bool:
    """Whether Sheets answered the batch's append (with an error): nothing of it still runs."""
    return (batch or "").endswith(f"@{ANSWERED}")


def batch_time(batch: str | None, default: datetime) -> datetime:
    """When an in-flight batch was written ("<run id>@<epoch seconds>"); `default` if unknown."""
    try:
        return datetime.fromtimestamp(int((batch or "").rsplit("@", 1)[1]), UTC)
    except (IndexError, ValueError, OverflowError, OSError):
        return default - timedelta(days=365)  # no time: treat as long settled
