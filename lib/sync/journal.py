"""The journal side of a run: a fetched batch becomes journal entries (unreadable items go to
quarantine), quarantined items are read again, and delivery states are written back.

A run delivers what earlier runs left (read from the store before it fetches) and what it
journaled itself, from memory: an entry's document is written when it is journaled and once
more when it is delivered (`stage` then `write_staged`, one write per entry for every destination
together: its whole state mapping). In between, "in flight" is one batch document per write, not a mark on
each entry. Nothing here knows the records are chats: it reads them through a
`lib.records.Source`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..destinations import AT_LEAST_ONCE, EXACTLY_ONCE, SHEET, protocols
from ..records import Record, RunRecords, sort_records
from ..state.contract import StateStore
from ..state.models import DONE, INFLIGHT, PENDING, InflightBatch, JournalEntry, RejectedItem
from ..text import json_text
from .options import RunOptions, RunReport

log = logging.getLogger(__name__)

# A quarantined item is kept whole up to this many bytes of JSON (a Firestore document holds 1 MiB).
QUARANTINE_RAW_BYTES = 900_000
# The label of an entry journaled by a read that may meet rows an earlier run wrote and the journal
# forgot (a window, reconcile, recovery or first read; an item older than the journal's memory):
# held "in flight" on its own document, for each exactly-once destination, until its keys (the
# sheet's key column) are read (lib/sync/exactly_once.py).
UNCHECKED = "unchecked"
# How much sooner than RETENTION_DAYS the journal may have forgotten a delivered entry: clocks
# and CHAT_TIMEZONE differ by hours; a day covers both.
FORGET_MARGIN = timedelta(days=1)


def unchecked(entry: JournalEntry, destination: str) -> bool:
    """Whether the entry waits for an exactly-once destination's keys (the sheet's key column)
    to say whether it is there (journaled UNCHECKED, no write since)."""
    return (entry.state(destination) == INFLIGHT and entry.batch(destination) is None
            and (entry.label(destination) or "").endswith(f"@{UNCHECKED}"))


class Journal:
    """Writes fetched records to the journal first, and their delivery states after."""

    def __init__(self, store: StateStore, records: RunRecords, *, clock: Callable[[], datetime],
                 retention: timedelta, put_batch: Callable[[InflightBatch], None] | None = None,
                 destinations: Mapping[str, str] | None = None):
        self.store = store
        # The registered destinations this run delivers to (name -> protocol): every entry's
        # mapping is written for them, and an entry is delivered once each is done.
        self.destinations = dict(protocols() if destinations is None else destinations)
        self.exactly_once = [name for name, kind in self.destinations.items() if kind == EXACTLY_ONCE]
        self.at_least_once = [name for name, kind in self.destinations.items() if kind == AT_LEAST_ONCE]
        # How an in-flight batch document is stored before its append: in a run, fenced by the
        # lease (RunSession.put_batch: nothing stored, LeaseLost, once another run has it).
        self.put_batch = put_batch or store.batch_put
        self.records = records
        self.source = records.source
        self.clock = clock
        self.retention = retention
        self.fresh: dict[str, JournalEntry] = {}  # entries this run added to the journal, by key
        self._staged: dict[str, JournalEntry] = {}  # states changed here, written by write_staged
        self._ended: dict[str, InflightBatch] = {}  # batches whose rows are staged done
        self._unread: set[str] = set()  # digests of the unreadable items this run read (counted once)

    def forgotten_before(self, now: datetime) -> datetime:
        """Items dated before this may have been delivered and forgotten by the journal (a
        delivered entry expires RETENTION_DAYS after its delivery, which came after its time)."""
        return now - self.retention + FORGET_MARGIN

    def ingest(self, report: RunReport, items: list[Any], opts: RunOptions, *, check_sheet: bool = False,
               keep: Callable[[Record], bool] | None = None, set_aside: list[str] | None = None,
               again: bool = True) -> int:
        """Journal a fetched batch; set aside what does not read. Returns how many keys are new.

        `check_sheet`: the read may meet rows an earlier run wrote and the journal forgot, so
        every entry new to the journal waits for the key column's word (UNCHECKED); an item
        dated before `forgotten_before` does anyway. A run that read the key column itself
        (`opts.sheet_keys`, the backfill) presets instead. `keep`: the records to journal (a
        day window's own days); the others are left out, uncounted. `set_aside`: the digests
        (`item_digest`) of the unreadable items already set aside; with `again` (a read by date,
        which meets them again: a dropped one would come back) those are not set aside again.
        The digests of the ones set aside now are added to it once they are stored. A read of
        what is new (the cursor's) hands each item once: an item the same as one set aside
        before is a new arrival, set aside too.
        """
        fetched_at = self.clock()
        records, rejected = self.source.parse_batch(items, self.records.tz)
        if keep is not None:
            records = [r for r in records if keep(r)]  # the others are left out, uncounted
        # Counted per item, once a run: a run that reads by cursor and by date (the daily
        # reconcile, a recovery read) meets the same items twice.
        report.fetched += len({r.key for r in records} - report.read_keys)
        report.fetched += self._count_unread(rejected)
        report.read_keys.update(r.key for r in records)
        records = self._unknown_by_former_keys(records)
        expires = fetched_at + self.retention
        horizon = self.forgotten_before(fetched_at)
        entries = []
        whole: dict[str, Record] = {}
        for r in records:
            # Preset states apply only to entries new to the journal: journal_add leaves
            # existing ones exactly as they are.
            # A record too large for the store is kept cut to what its row and summary need.
            item = self.source.journal_item(r)
            if item is r.raw:
                whole[r.key] = r
            entry = JournalEntry(key=r.key, item=item, item_time=r.time.astimezone(UTC), fetched_at=fetched_at,
                                 states=dict.fromkeys(self.destinations, PENDING))
            self._preset(entry, r, opts, expires)
            if check_sheet or r.time < horizon:
                # Created so: a crash before the check leaves it for the next run's check (the
                # sheet's, unless the run read its key column itself and preset it).
                for name in self.exactly_once:
                    if entry.state(name) != DONE and not (name == SHEET.name and opts.sheet_keys is not None):
                        entry.set_state(name, INFLIGHT, f"{report.run_id}@{UNCHECKED}")
            entries.append(entry)
        new_keys = self.store.journal_add(entries) if entries else []
        self._remember(whole, new_keys)
        self._keep(entries, new_keys)
        if opts.announce_before is not None or opts.sheet_keys is not None:
            fresh = set(new_keys)
            report.already_in_sheet += sum(1 for e in entries if e.key in fresh and e.state(SHEET.name) == DONE)
            report.not_announced += sum(1 for e in entries if e.key in fresh and self.announced(e))
        report.new_keys.extend(new_keys)
        if rejected and set_aside is not None and again:
            rejected = _not_seen(rejected, set_aside)
        if rejected:
            self._set_aside(report, rejected, fetched_at, expires)
            if set_aside is not None:  # only once stored: a failed write leaves them to be set aside again
                known = set(set_aside)
                set_aside.extend(d for d in dict.fromkeys(item_digest(r.item) for r in rejected) if d not in known)
        report.new += len(new_keys)
        return len(new_keys)

    def _count_unread(self, rejected: Sequence[Any]) -> int:
        # The unreadable items of this run's reads not met before in it (by digest).
        digests = {item_digest(r.item) for r in rejected} - self._unread
        self._unread |= digests
        return len(digests)

    def _unknown_by_former_keys(self, records: Sequence[Record]) -> Sequence[Record]:
        # A record journaled under a key an earlier recipe gave it is known already: it is
        # delivered (or pending) under that key, never journaled and delivered a second time.
        # One read, and only when a record has a former key (almost never).
        former = {k for r in records for k in r.former_keys}
        if not former:
            return records
        known = self.store.journal_get(former)
        return [r for r in records if not any(k in known for k in r.former_keys)]

    def _preset(self, entry: JournalEntry, record: Record, opts: RunOptions, expires: datetime) -> None:
        keys = opts.sheet_keys or ()
        if record.key in keys or any(k in keys for k in record.former_keys):
            entry.set_state(SHEET.name, DONE)
        if opts.announce_before is not None and record.time.date() < opts.announce_before:
            self.take_as_announced(entry)
        if self.done(entry):
            entry.expires_at = expires

    def done(self, entry: JournalEntry) -> bool:
        """Whether every destination of this run has the entry."""
        return entry.delivered_to(self.destinations)

    def announced(self, entry: JournalEntry) -> bool:
        """Whether every at-least-once destination (Slack) has the entry."""
        return bool(self.at_least_once) and entry.delivered_to(self.at_least_once)

    def take_as_announced(self, entry: JournalEntry) -> None:
        """Mark the entry done for every at-least-once destination (here; written with its
        other states): it was announced when it was first written, or is not to be."""
        for name in self.at_least_once:
            entry.set_state(name, DONE)

    def awaiting_check(self, entry: JournalEntry) -> bool:
        """Whether an exactly-once destination has still to say whether it holds the entry
        (an at-least-once destination waits for that: it may have been announced already)."""
        return any(unchecked(entry, name) for name in self.exactly_once)

    def _keep(self, entries: list[JournalEntry], new_keys: list[str]) -> None:
        # The entries this run journaled are delivered from memory: no read back.
        fresh = set(new_keys)
        for entry in entries:
            if entry.key in fresh:
                self.fresh.setdefault(entry.key, entry)

    def pending(self, earlier: list[JournalEntry]) -> list[JournalEntry]:
        """The run's work: `earlier` (journal_pending read before this run journaled anything)
        and the undelivered entries this run journaled, in chat-time order (then key)."""
        known = {e.key for e in earlier}
        for entry in earlier:
            if self.done(entry):
                # Pending only for a destination no longer registered: written as delivered
                # (its states for the registered ones), so that it is not read again each run.
                self._staged[entry.key] = entry
        entries = earlier + [e for e in self.fresh.values() if e.key not in known and not self.done(e)]
        entries.sort(key=lambda e: (e.item_time, e.key))
        return entries

    def _remember(self, whole: dict[str, Record], new_keys: list[str]) -> None:
        # A new key's journal item is exactly the record's raw form: this run's delivery uses
        # the record already parsed instead of parsing the item read back from the store.
        for key in new_keys:
            if key in whole:
                self.records.remember(whole[key])

    def _set_aside(self, report: RunReport, rejected: Any, fetched_at: datetime, expires: datetime) -> None:
        self.store.quarantine(
            RejectedItem(raw=dump(r.item), reason=r.reason, fetched_at=fetched_at, expires_at=expires)
            for r in rejected
        )
        report.skipped_invalid += len(rejected)
        for r in rejected:
            log.warning(
                f"set aside an unreadable {self.source.name} item",
                extra={"fields": {"run_id": report.run_id, "index": r.index, "reason": r.reason}},
            )

    def retry_quarantine(self, report: RunReport, in_sheet: Callable[[], Collection[str]],
                         checkpoint: Callable[[str], None], items: list[RejectedItem] | None = None,
                         last: bool = True) -> list[RejectedItem]:
        """Parse the quarantined items again (after a parser fix) into the journal; return
        those this source still cannot read.

        An item that now reads is journaled by its key (a key already in the journal is left
        as it is; one already in the sheet, by `in_sheet()`, is marked delivered, not written
        again) and only then removed from quarantine; a crash in between leaves it to a later
        retry, which finds the key journaled. Items that still do not read stay.

        `items`: the quarantine as another source left it (default: read from the store). Each
        item is counted once over the sources: this one counts what it reads, and, when it is
        the `last` to try, what no source reads (`fetched`, `skipped_invalid`).
        """
        items = self.store.quarantine_list() if items is None else items
        readable: list[tuple[RejectedItem, Record]] = []
        unread: list[RejectedItem] = []
        for item in items:
            try:
                records, _ = self.source.parse_batch([json.loads(item.raw)], self.records.tz)
            except Exception:
                records = []
            if records:
                readable.append((item, records[0]))
            else:
                unread.append(item)
        report.fetched += len(readable) + (len(unread) if last else 0)
        report.skipped_invalid += len(unread) if last else 0
        if not readable:
            return unread
        present = in_sheet()
        expires = self.clock() + self.retention
        entries = []
        for item, record in readable:
            # Fetched when it was first read: Slack counts it as late.
            entry = JournalEntry(key=record.key, item=record.raw, item_time=record.time.astimezone(UTC),
                                 fetched_at=item.fetched_at, states=dict.fromkeys(self.destinations, PENDING))
            if record.key in present:
                # In the sheet: written (and announced) before; any other exactly-once
                # destination checks its own keys first.
                entry.set_state(SHEET.name, DONE)
                self.take_as_announced(entry)
                for name in self.exactly_once:
                    if entry.state(name) != DONE:
                        entry.set_state(name, INFLIGHT, f"{report.run_id}@{UNCHECKED}")
                if self.done(entry):
                    entry.expires_at = expires
            entries.append(entry)
        report.already_in_sheet += len({record.key for _, record in readable if record.key in present})
        new_keys = self.store.journal_add(entries)
        self._remember({record.key: record for _, record in readable}, new_keys)
        self._keep(entries, new_keys)
        report.new_keys.extend(new_keys)
        report.new += len(new_keys)
        checkpoint("after_quarantine_journal")
        self.store.quarantine_remove(item.id for item, _ in readable)
        report.recovered += len(readable)
        log.info("quarantined items read again", extra={"fields": {
            "run_id": report.run_id, "source": self.source.name, "items": len(items), "journaled": len(readable),
            "new": len(new_keys), "not_read": len(unread)}})
        return unread

    def open_batch(self, entries: list[JournalEntry], batch_id: str, label: str,
                   destination: str = SHEET.name) -> InflightBatch:
        """Store one in-flight batch of these entries for an exactly-once destination (one
        write; in a run, with the lease checked in the same transaction) and mark them so here."""
        batch = InflightBatch(id=batch_id, label=label, keys=tuple(e.key for e in entries),
                              expires_at=self.clock() + self.retention, destination=destination)
        self.put_batch(batch)
        self._hold(entries, batch)
        return batch

    def relabel(self, entries: list[JournalEntry], batch: InflightBatch, label: str) -> InflightBatch:
        """Store the batch again under a new label (one write), e.g. once Sheets answered."""
        batch = dataclasses.replace(batch, label=label)
        self.store.batch_put(batch)
        self._hold(entries, batch)
        return batch

    @staticmethod
    def _hold(entries: list[JournalEntry], batch: InflightBatch) -> None:
        for entry in entries:
            entry.set_state(batch.destination, INFLIGHT, batch.label)
            entry.inflight[batch.destination] = batch

    def release(self, destination: str, done: list[JournalEntry], again: list[JournalEntry]) -> None:
        """End in-flight entries of one exactly-once destination: `done` are there, `again`
        are to be written again.

        The done marks are written first and the batches deleted after, so that a crash in
        between leaves them in flight (checked again), never pending while written.
        """
        self.mark(done, destination, DONE)
        # Entries marked in flight on their own documents (journaled unchecked).
        self.mark([e for e in again if e.batch(destination) is None], destination, PENDING)
        batches = {b.id: b for e in done + again if (b := e.batch(destination)) is not None}
        for entry in done + again:
            entry.inflight.pop(destination, None)
        for entry in again:
            entry.set_state(destination, PENDING)
        if batches:
            self.store.batch_delete(batches.values())

    def stage(self, entries: list[JournalEntry], destination: str, state: str) -> None:
        """Set one destination's state on the entries here; `write_staged` writes them (a batch
        they were in flight in ends with that write)."""
        for entry in entries:
            entry.set_state(destination, state)
            self._staged[entry.key] = entry
            batch = entry.batch(destination)
            if state == DONE and batch is not None:
                self._ended[batch.id] = batch

    def has_staged(self) -> bool:
        """Whether `write_staged` has anything to write."""
        return bool(self._staged)

    def write_staged(self, held: bool = True) -> None:
        """Write every staged entry once (every destination's state together, with the expiry
        when delivered), then delete the batches whose rows are now done.

        `held` False: this run has lost its lease (paused past it, say, while another run took
        over and delivered the same entries). Its whole mapping of an entry it delivered only
        in part would put its stale "pending" over the other run's "done" (a row written
        again), so only the entries delivered everywhere are written; the others, and the
        batch documents that hold their rows in flight, are left for the next run (which
        checks the key column before writing any row again)."""
        staged, self._staged = list(self._staged.values()), {}
        ended, self._ended = list(self._ended.values()), {}
        if not held:
            staged = [e for e in staged if self.done(e)]
            kept = {e.key for e in staged}
            ended = [b for b in ended if all(k in kept for k in b.keys)]
        self._write(staged)
        for entry in staged:
            for name in list(entry.inflight):
                if entry.state(name) == DONE:
                    del entry.inflight[name]
        if ended:
            self.store.batch_delete(ended)

    def mark(self, entries: list[JournalEntry], destination: str, state: str) -> None:
        """Set one destination's state on the entries, here and in the store at once."""
        for entry in entries:
            entry.set_state(destination, state)
        self._write(entries)

    def stored_form(self, entry: JournalEntry) -> tuple[dict[str, str], dict[str, str]]:
        """The entry's mappings as its own document keeps them: every destination of this run
        (an in-flight mark held by a stored batch is the batch's: the document says pending;
        a mark of its own, journaled unchecked, keeps its label)."""
        states: dict[str, str] = {}
        labels: dict[str, str] = {}
        for name in self.destinations:
            state = entry.state(name)
            if state == INFLIGHT and entry.batch(name) is not None:
                state = PENDING
            label = entry.label(name)
            if state == INFLIGHT and label is not None:
                labels[name] = label
            states[name] = state
        return states, labels

    def _write(self, entries: list[JournalEntry]) -> None:
        # Each store update names the whole mapping, so the store can tell whether an entry is
        # delivered without reading it; delivered entries get their expiry.
        groups: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], dict[str, str], list[str]]] = {}
        for entry in entries:
            states, labels = self.stored_form(entry)
            group = (*sorted(states.items()), *sorted((f"@{k}", v) for k, v in labels.items()))
            groups.setdefault(group, (states, labels, []))[2].append(entry.key)
        for states, labels, keys in groups.values():
            fields: dict[str, Any] = {"states": states, "labels": labels}
            if all(state == DONE for state in states.values()):
                fields["expires_at"] = self.clock() + self.retention
            self.store.journal_update(keys, **fields)

    def records_of(self, entries: list[JournalEntry]) -> list[Record]:
        """The entries' records in time order (then key), each parsed at most once per run."""
        records = []
        for e in entries:
            record = self.records.of(e.key, e.item)
            # The same item either way (a remembered record's raw form is exactly what the
            # journal holds): keeping one copy keeps the run's memory what it was.
            e.item = record.raw
            records.append(record)
        return sort_records(records)


def item_digest(item: Any) -> str:
    """A fixed-width digest of an unreadable item (128 bits of SHA-256 of its JSON)."""
    return hashlib.sha256(dump(item).encode("utf-8")).hexdigest()[:32]


def _not_seen(rejected: Sequence[Any], seen: list[str]) -> list[Any]:
    """The rejections whose item's digest is not in `seen`, each once."""
    known, out = set(seen), []
    for r in rejected:
        digest = item_digest(r.item)
        if digest not in known:
            known.add(digest)
            out.append(r)
    return out


def dump(item: Any) -> str:
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
