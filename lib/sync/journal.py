"""The journal side of a run: a fetched batch becomes journal entries (unreadable items go to
quarantine), quarantined items are read again, and delivery states are written back.

Nothing here knows the records are chats: it reads them through a `lib.records.Source`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from ..records import Record, RunRecords, sort_records
from ..state.base import DONE, JournalEntry, RejectedItem, StateStore, delivered
from ..text import json_text
from .options import RunOptions, RunReport

log = logging.getLogger(__name__)

# A quarantined item is kept whole up to this many bytes of JSON (a Firestore document holds 1 MiB).
QUARANTINE_RAW_BYTES = 900_000


class Journal:
    """Writes fetched records to the journal first, and their delivery states after."""

    def __init__(self, store: StateStore, records: RunRecords, *, clock: Callable[[], datetime],
                 retention: timedelta):
        self.store = store
        self.records = records
        self.source = records.source
        self.clock = clock
        self.retention = retention

    def ingest(self, report: RunReport, items: list[Any], opts: RunOptions) -> int:
        """Journal a fetched batch; set aside what does not read. Returns how many keys are new."""
        fetched_at = self.clock()
        records, rejected = self.source.parse_batch(items, self.records.tz)
        report.fetched += len(items)
        expires = fetched_at + self.retention
        entries = []
        whole: dict[str, Record] = {}
        for r in records:
            # Preset states apply only to entries new to the journal: journal_add leaves
            # existing ones exactly as they are.
            # A record too large for the store is kept cut to what its row and summary need.
            item = self.source.journal_item(r)
            if item is r.raw:
                whole[r.key] = r
            entry = JournalEntry(key=r.key, chat=item, chat_time=r.time.astimezone(UTC), fetched_at=fetched_at)
            self._preset(entry, r, opts, expires)
            entries.append(entry)
        new_keys = self.store.journal_add(entries) if entries else []
        self._remember(whole, new_keys)
        if opts.announce_before is not None or opts.sheet_keys:
            fresh = set(new_keys)
            report.already_in_sheet += sum(1 for e in entries if e.key in fresh and e.sheet == DONE)
            report.not_announced += sum(1 for e in entries if e.key in fresh and e.slack == DONE)
        report.new_keys.extend(new_keys)
        if rejected:
            self._set_aside(report, rejected, fetched_at, expires)
        report.new += len(new_keys)
        return len(new_keys)

    def _preset(self, entry: JournalEntry, record: Record, opts: RunOptions, expires: datetime) -> None:
        if record.key in opts.sheet_keys:
            entry.sheet = DONE
        if opts.announce_before is not None and record.time.date() < opts.announce_before:
            entry.slack = DONE
        if entry.delivered:
            entry.expires_at = expires

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
                "set aside an unreadable chat item",
                extra={"fields": {"run_id": report.run_id, "index": r.index, "reason": r.reason}},
            )

    def retry_quarantine(self, report: RunReport, in_sheet: Callable[[], Collection[str]],
                         checkpoint: Callable[[str], None]) -> None:
        """Parse the quarantined items again (after a parser fix) into the journal.

        An item that now reads is journaled by its key (a key already in the journal is left
        as it is; one already in the sheet, by `in_sheet()`, is marked delivered, not written
        again) and only then removed from quarantine; a crash in between leaves it to a later
        retry, which finds the key journaled. Items that still do not read stay.
        """
        items = self.store.quarantine_list()
        report.fetched = len(items)
        readable: list[tuple[RejectedItem, Record]] = []
        for item in items:
            try:
                records, _ = self.source.parse_batch([json.loads(item.raw)], self.records.tz)
            except Exception:
                records = []
            if records:
                readable.append((item, records[0]))
        report.skipped_invalid = len(items) - len(readable)
        if not readable:
            return
        present = in_sheet()
        expires = self.clock() + self.retention
        entries = []
        for item, record in readable:
            # Fetched when it was first read: Slack counts it as late.
            entry = JournalEntry(key=record.key, chat=record.raw, chat_time=record.time.astimezone(UTC),
                                 fetched_at=item.fetched_at)
            if record.key in present:
                entry.sheet, entry.slack, entry.expires_at = DONE, DONE, expires
            entries.append(entry)
        report.already_in_sheet += len({record.key for _, record in readable if record.key in present})
        new_keys = self.store.journal_add(entries)
        self._remember({record.key: record for _, record in readable}, new_keys)
        report.new_keys.extend(new_keys)
        report.new += len(new_keys)
        checkpoint("after_quarantine_journal")
        self.store.quarantine_remove(item.id for item, _ in readable)
        report.recovered = len(readable)
        log.info("quarantined items read again", extra={"fields": {
            "run_id": report.run_id, "items": len(items), "journaled": len(readable), "new": len(new_keys),
            "still_unreadable": report.skipped_invalid}})

    def mark(self, entries: list[JournalEntry], **changes: Any) -> None:
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
            if delivered(sheet, slack):
                fields["expires_at"] = self.clock() + self.retention
            self.store.journal_update(keys, **fields)

    def records_of(self, entries: list[JournalEntry]) -> list[Record]:
        """The entries' records in time order (then key), each parsed at most once per run."""
        records = []
        for e in entries:
            record = self.records.of(e.key, e.chat)
            # The same item either way (a remembered record's raw form is exactly what the
            # journal holds): keeping one copy keeps the run's memory what it was.
            e.chat = record.raw
            records.append(record)
        return sort_records(records)


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
