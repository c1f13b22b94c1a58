"""The SQLite store's journal and quarantine tables."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..common import chunks, first_of_each_key, journal_changes, stored_time, unique, with_batches
from ..common import utc_text as _ts
from ..models import InflightBatch, JournalEntry, RejectedItem, delivered, legacy_states
from ..run_state import PENDING_MARK
from .base import _CHUNK, SqliteBase, _dt, _guard, _json_text, _ts_or_none


def _mapping_text(mapping: dict[str, str]) -> str:
    return json.dumps(mapping, sort_keys=True, ensure_ascii=False)


class SqliteJournalStore(SqliteBase):
    """The journal and the quarantine (the store's per-item tables)."""

    # -- journal -------------------------------------------------------------------------------
    _INSERT = (
        "INSERT OR IGNORE INTO journal (key, chat, chat_time, fetched_at, states, labels, pending, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    # A migrated file keeps the old NOT NULL columns `sheet` and `slack`: new rows fill them
    # with '' (never read: `states` is set).
    _INSERT_MIGRATED = (
        "INSERT OR IGNORE INTO journal (key, chat, chat_time, fetched_at, states, labels, pending, expires_at,"
        " sheet, slack) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', '')"
    )

    def _insert_sql(self) -> str:
        return self._INSERT_MIGRATED if "slack" in self.columns("journal") else self._INSERT

    @_guard("journal_add")
    def journal_add(self, entries: Iterable[JournalEntry]) -> list[str]:
        first = first_of_each_key(entries)
        if not first:
            return []
        fetched: dict[datetime, str] = {}  # a batch shares one fetch time: its text is made once
        rows = [
            (e.key, _json_text(e.item), _ts(e.item_time),
             fetched.get(e.fetched_at) or fetched.setdefault(e.fetched_at, _ts(e.fetched_at)),
             _mapping_text(e.states), _mapping_text(e.labels), int(not e.delivered), _ts_or_none(e.expires_at))
            for e in first.values()
        ]
        with self._write() as conn:
            # Blind, as on Firestore: a normal run's keys are all new, so one statement inserts
            # them and the change count says so. Only when a key was present (a reconcile) is
            # the insert undone and the batch's keys looked up.
            conn.execute("SAVEPOINT journal_add")
            before = conn.total_changes
            insert = self._insert_sql()
            conn.executemany(insert, rows)
            if conn.total_changes - before == len(rows):
                conn.execute("RELEASE journal_add")
                added = list(first)
            else:
                conn.execute("ROLLBACK TO journal_add")
                conn.execute("RELEASE journal_add")
                present: set[str] = set()
                for chunk in chunks(list(first), _CHUNK):
                    marks = ",".join("?" * len(chunk))
                    present.update(row[0] for row in conn.execute(f"SELECT key FROM journal WHERE key IN ({marks})", chunk))
                self.counters.reads += len(first)  # each key looked up
                conn.executemany(insert, (row for row in rows if row[0] not in present))
                added = [key for key in first if key not in present]
            if any(not first[key].delivered for key in added):
                self._mark_pending(conn)
        self.counters.writes += len(added)
        return added

    def _mark_pending(self, conn: sqlite3.Connection) -> None:
        """The run state's `pending` set to true in this transaction (lib/state/run_state.py):
        a write that leaves an entry pending never commits without it. With no run state yet,
        a row of the mark alone (read as "not known", with the state built as before it)."""
        conn.execute(
            "INSERT INTO run_state (id, version, state) VALUES (1, 1, ?) ON CONFLICT (id) DO UPDATE SET"
            " version = version + 1, state = json_set(state, '$.pending', json('true'))",
            (json.dumps(PENDING_MARK),))
        self.counters.writes += 1

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> JournalEntry:
        key, chat, chat_time, fetched_at, expires_at, states, labels, sheet, sheet_batch, slack = row
        if states is not None:
            state_map, label_map = json.loads(states), json.loads(labels or "{}")
        else:  # a row written before destinations were plug-ins: its two fields are the mapping
            state_map, label_map = legacy_states(sheet, slack), ({"sheet": sheet_batch} if sheet_batch else {})
        return JournalEntry(
            key=key, item=json.loads(chat), item_time=_dt(chat_time), fetched_at=_dt(fetched_at),
            states=state_map, labels=label_map, expires_at=stored_time(expires_at),
        )

    def _select(self) -> str:
        # The new columns, and the old ones while the file has them (an old row has no `states`
        # until it is next written; a read-only store may open a file not yet migrated).
        columns = self.columns("journal")
        new = "states, labels" if "states" in columns else "NULL, NULL"
        old = "sheet, sheet_batch, slack" if "slack" in columns else "NULL, NULL, NULL"
        return f"SELECT key, chat, chat_time, fetched_at, expires_at, {new}, {old} FROM journal"

    def _waiting(self) -> str:
        if "pending" in self.columns("journal"):
            return "pending = 1"
        return "NOT (sheet = 'done' AND slack = 'done')"  # an unmigrated file, opened read-only

    @_guard("journal_pending")
    def journal_pending(self) -> list[JournalEntry]:
        rows = self._read(f"{self._select()} WHERE {self._waiting()} ORDER BY chat_time, key")
        entries = [self._entry(row) for row in rows]
        if entries:
            with_batches(entries, self.batch_list())
        return entries

    @_guard("journal_pending")
    def journal_any_pending(self) -> bool:
        return bool(self._read(f"SELECT 1 FROM journal WHERE {self._waiting()} LIMIT 1"))

    @_guard("journal_get")
    def journal_get(self, keys: Iterable[str]) -> dict[str, JournalEntry]:
        wanted = unique(keys)
        found: dict[str, JournalEntry] = {}
        if not wanted:
            return found
        self.counters.round_trips += 1
        self.counters.reads += len(wanted)  # each key looked up, found or not
        conn = self._conn()
        # One read transaction, so that the chunks see one snapshot.
        conn.execute("BEGIN")
        try:
            for chunk in chunks(wanted, _CHUNK):
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(f"{self._select()} WHERE key IN ({marks})", chunk):
                    found[row[0]] = self._entry(row)
        finally:
            conn.execute("COMMIT")
        return found

    @_guard("journal_update")
    def journal_update(self, keys: Iterable[str], **changes: Any) -> None:
        values = journal_changes(changes)
        if "expires_at" in values:
            values["expires_at"] = _ts_or_none(values["expires_at"])
        if "states" in values:
            values.setdefault("labels", {})  # a new mapping: the labels of the old one go with it
            values["pending"] = int(not delivered(values["states"]))
            values["states"] = _mapping_text(values["states"])
        if "labels" in values:
            values["labels"] = _mapping_text(values["labels"])
        wanted = unique(keys)
        if not values or not wanted:
            return
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._write() as conn:
            written = 0
            for chunk in chunks(wanted, _CHUNK):
                marks = ",".join("?" * len(chunk))
                written += conn.execute(
                    f"UPDATE journal SET {assignments} WHERE key IN ({marks})",
                    [*values.values(), *chunk],
                ).rowcount
            if written and values.get("pending") == 1:
                self._mark_pending(conn)
            self.counters.writes += written

    # -- in-flight batches ---------------------------------------------------------------------
    @_guard("batch_put")
    def batch_put(self, batch: InflightBatch) -> None:
        with self._write() as conn:
            self._insert_batch(conn, batch)

    def _insert_batch(self, conn: sqlite3.Connection, batch: InflightBatch) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO batches (id, label, keys, expires_at, destination) VALUES (?, ?, ?, ?, ?)",
            (batch.id, batch.label, json.dumps(list(batch.keys)), _ts(batch.expires_at), batch.destination),
        )
        self.counters.writes += 1

    @_guard("batch_list")
    def batch_list(self) -> list[InflightBatch]:
        destination = "destination" if "destination" in self.columns("batches") else "'sheet'"
        return [
            InflightBatch(id=bid, label=label, keys=tuple(json.loads(keys)), expires_at=_dt(expires_at),
                          destination=dest)
            for bid, label, keys, expires_at, dest in self._read(
                f"SELECT id, label, keys, expires_at, {destination} FROM batches ORDER BY id")
        ]

    @_guard("batch_delete")
    def batch_delete(self, batches: Iterable[InflightBatch]) -> None:
        ids = unique(batch.id for batch in batches)
        if not ids:
            return
        with self._write() as conn:
            for chunk in chunks(ids, _CHUNK):
                self.counters.deletes += conn.execute(
                    f"DELETE FROM batches WHERE id IN ({','.join('?' * len(chunk))})", chunk
                ).rowcount

    @_guard("journal_prune")
    def journal_prune(self, now: datetime) -> int:
        with self._write() as conn:
            # Only delivered entries go, even if expires_at was set early by mistake.
            deleted = conn.execute(
                "DELETE FROM journal WHERE expires_at IS NOT NULL AND expires_at < ? AND pending = 0",
                (_ts(now),),
            ).rowcount
            conn.execute("DELETE FROM quarantine WHERE expires_at IS NOT NULL AND expires_at < ?", (_ts(now),))
            conn.execute("DELETE FROM batches WHERE expires_at < ?", (_ts(now),))
            if self.retention is not None:
                self._trim_runs(conn, self.retention)
        self.counters.deletes += deleted
        return deleted

    # -- quarantine ----------------------------------------------------------------------------
    @_guard("quarantine")
    def quarantine(self, items: Iterable[RejectedItem]) -> None:
        rows = [
            (item.raw, item.reason, _ts(item.fetched_at), _ts_or_none(item.expires_at))
            for item in items
        ]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO quarantine (raw, reason, fetched_at, expires_at) VALUES (?, ?, ?, ?)", rows
            )
        self.counters.writes += len(rows)

    @_guard("quarantine_count")
    def quarantine_count(self, since: datetime | None = None) -> int:
        if since is None:
            count: int = self._read("SELECT COUNT(*) FROM quarantine")[0][0]
        else:
            count = self._read("SELECT COUNT(*) FROM quarantine WHERE fetched_at >= ?", (_ts(since),))[0][0]
        self.counters.reads += max(0, (count - 1) // 1000)  # as a Firestore count: 1 read per 1,000
        return count

    @_guard("quarantine_oldest")
    def quarantine_oldest(self) -> datetime | None:
        return stored_time(self._read("SELECT MIN(fetched_at) FROM quarantine")[0][0])

    @_guard("quarantine_list")
    def quarantine_list(self) -> list[RejectedItem]:
        rows = self._read("SELECT id, raw, reason, fetched_at, expires_at FROM quarantine ORDER BY fetched_at, id")
        return [
            RejectedItem(raw=raw, reason=reason, fetched_at=_dt(fetched_at), expires_at=stored_time(expires_at),
                         id=str(rid))
            for rid, raw, reason, fetched_at, expires_at in rows
        ]

    @_guard("quarantine_remove")
    def quarantine_remove(self, ids: Iterable[str]) -> None:
        numbers = [int(i) for i in unique(ids) if str(i).isdigit()]
        if not numbers:
            return
        with self._write() as conn:
            for chunk in chunks(numbers, _CHUNK):
                conn.execute(f"DELETE FROM quarantine WHERE id IN ({','.join('?' * len(chunk))})", chunk)
