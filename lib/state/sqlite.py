"""`SqliteStore`: the state store in one SQLite file, for local runs and tests.

Several threads and processes may share the file: each thread gets its own connection, the
file is in WAL mode with a busy timeout, and every write runs in a `BEGIN IMMEDIATE`
transaction so that read-then-write sequences (the lease) are atomic.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from ..chats import json_text
from ..counters import StoreCounters
from ..errors import StateStoreAccessError, StateStoreError
from .base import DONE, CachedToken, JournalEntry, Lease, RejectedItem, StoreBase
from .common import chunks, first_of_each_key, guard, journal_changes, started_at_utc, stored_time, unique
from .common import utc_text as _ts

_BUSY_TIMEOUT_SECONDS = 30.0
_CHUNK = 500  # keys per `IN (...)`, well below SQLite's bound-variable limit
# The delivered rule (lib/state/base.delivered) in SQL, as literals so that the partial index applies.
_DELIVERED = f"(sheet = '{DONE}' AND slack = '{DONE}')"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS token (
    id INTEGER PRIMARY KEY CHECK (id = 1), value TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    key TEXT PRIMARY KEY, chat TEXT NOT NULL, chat_time TEXT NOT NULL, fetched_at TEXT NOT NULL,
    sheet TEXT NOT NULL, sheet_batch TEXT, slack TEXT NOT NULL, expires_at TEXT);
CREATE INDEX IF NOT EXISTS journal_pending ON journal (chat_time, key)
    WHERE NOT {_DELIVERED};
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT, raw TEXT NOT NULL, reason TEXT NOT NULL,
    fetched_at TEXT NOT NULL, expires_at TEXT);
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at, id);
"""


# One encoder for every chat (json.dumps with options builds a new one per call); a lone
# surrogate in the text falls back to ASCII escapes, so no item can fail the insert.
_json_text = json_text


def _dt(text: str | None) -> datetime:
    # Only for columns that are NOT NULL; `stored_time` for the others.
    value = stored_time(text)
    assert value is not None
    return value


def _ts_or_none(value: datetime | None) -> str | None:
    return None if value is None else _ts(value)


def _run_sort_key(started_at: Any) -> str:
    # Normalise parseable ISO times to UTC so that offsets do not disturb the order.
    parsed = started_at_utc(started_at)
    return str(started_at) if parsed is None else _ts(parsed)


def _translate(store: Any, operation: str, exc: Exception) -> None:
    """Raise StateStoreError naming the operation for a sqlite3 failure (no data)."""
    if not isinstance(exc, sqlite3.Error):
        return
    text = str(exc).lower()
    # SQLite messages name the failure, never bound values, so they are safe to show.
    message = f"SQLite state store failed during {operation}: {type(exc).__name__}: {exc}"
    if "readonly" in text or "unable to open" in text or "not authorized" in text:
        raise StateStoreAccessError(
            message, fix=f"Make {store.path} (and its folder) writable by this user."
        ) from exc
    raise StateStoreError(message) from exc


_guard = guard(_translate)


class SqliteStore(StoreBase):
    """The state store in a SQLite file at `path` (parent folders are created).

    `retention`: when set, `journal_prune` also trims the run history to the newest
    `retention` records (record_run already trims to its own `keep`). `counters` counts rows
    as Firestore would bill documents (`lib.counters.StoreCounters`).
    """

    def __init__(self, path: str, retention: int | None = None) -> None:
        self.path = path
        self.retention = retention
        self.counters = StoreCounters()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        try:
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise StateStoreAccessError(
                f"SQLite state store cannot create its folder: {type(exc).__name__}",
                fix=f"Make the folder of {path} creatable and writable by this user.",
            ) from exc
        self._init_schema()

    # -- plumbing ------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        # A connection must not cross a fork; a child process opens its own.
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front: no other writer can slip in
        # between our reads and writes, and lock waits go through the busy timeout.
        conn = self._conn()
        self.counters.round_trips += 1
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        self.counters.round_trips += 1
        rows = self._conn().execute(sql, tuple(params)).fetchall()
        self.counters.reads += max(1, len(rows))  # as a Firestore query: at least one read
        return rows

    @_guard("open")
    def _init_schema(self) -> None:
        with self._write() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            # Files made before quarantined items expired have no expires_at column.
            columns = {row[1] for row in conn.execute("PRAGMA table_info(quarantine)")}
            if "expires_at" not in columns:
                conn.execute("ALTER TABLE quarantine ADD COLUMN expires_at TEXT")

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    # -- token cache ---------------------------------------------------------------------------
    @_guard("get_token")
    def get_token(self) -> CachedToken | None:
        rows = self._read("SELECT value, expires_at FROM token WHERE id = 1")
        return CachedToken(rows[0][0], _dt(rows[0][1])) if rows else None

    @_guard("put_token")
    def put_token(self, token: CachedToken) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO token (id, value, expires_at) VALUES (1, ?, ?)",
                (token.value, _ts(token.expires_at)),
            )
        self.counters.writes += 1

    @_guard("clear_token")
    def clear_token(self) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM token")
        self.counters.deletes += 1

    # -- journal -------------------------------------------------------------------------------
    @_guard("journal_add")
    def journal_add(self, entries: Iterable[JournalEntry]) -> list[str]:
        first = first_of_each_key(entries)
        if not first:
            return []
        keys = list(first)
        with self._write() as conn:
            # One transaction holding the write lock: find the keys already present, then
            # insert the others in one statement (one row-by-row INSERT would cost a call each).
            present: set[str] = set()
            for chunk in chunks(keys, _CHUNK):
                marks = ",".join("?" * len(chunk))
                present.update(row[0] for row in conn.execute(f"SELECT key FROM journal WHERE key IN ({marks})", chunk))
            added = [key for key in keys if key not in present]
            conn.executemany(
                "INSERT OR IGNORE INTO journal (key, chat, chat_time, fetched_at, sheet,"
                " sheet_batch, slack, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        e.key, _json_text(e.chat), _ts(e.chat_time), _ts(e.fetched_at), e.sheet,
                        e.sheet_batch, e.slack, _ts_or_none(e.expires_at),
                    )
                    for e in (first[key] for key in added)
                ),
            )
        self.counters.reads += len(keys)  # each key looked up
        self.counters.writes += len(added)
        return added

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> JournalEntry:
        key, chat, chat_time, fetched_at, sheet, sheet_batch, slack, expires_at = row
        return JournalEntry(
            key=key, chat=json.loads(chat), chat_time=_dt(chat_time), fetched_at=_dt(fetched_at),
            sheet=sheet, sheet_batch=sheet_batch, slack=slack, expires_at=stored_time(expires_at),
        )

    _COLUMNS = "key, chat, chat_time, fetched_at, sheet, sheet_batch, slack, expires_at"

    @_guard("journal_pending")
    def journal_pending(self) -> list[JournalEntry]:
        rows = self._read(
            f"SELECT {self._COLUMNS} FROM journal WHERE NOT {_DELIVERED} ORDER BY chat_time, key"
        )
        return [self._entry(row) for row in rows]

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
                for row in conn.execute(
                    f"SELECT {self._COLUMNS} FROM journal WHERE key IN ({marks})", chunk
                ):
                    found[row[0]] = self._entry(row)
        finally:
            conn.execute("COMMIT")
        return found

    @_guard("journal_update")
    def journal_update(self, keys: Iterable[str], **changes: Any) -> None:
        values = journal_changes(changes)
        if "expires_at" in values:
            values["expires_at"] = _ts_or_none(values["expires_at"])
        wanted = unique(keys)
        if not values or not wanted:
            return
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._write() as conn:
            for chunk in chunks(wanted, _CHUNK):
                marks = ",".join("?" * len(chunk))
                self.counters.writes += conn.execute(
                    f"UPDATE journal SET {assignments} WHERE key IN ({marks})",
                    [*values.values(), *chunk],
                ).rowcount

    @_guard("journal_prune")
    def journal_prune(self, now: datetime) -> int:
        with self._write() as conn:
            # Only delivered entries go, even if expires_at was set early by mistake.
            deleted = conn.execute(
                f"DELETE FROM journal WHERE expires_at IS NOT NULL AND expires_at < ? AND {_DELIVERED}",
                (_ts(now),),
            ).rowcount
            conn.execute("DELETE FROM quarantine WHERE expires_at IS NOT NULL AND expires_at < ?", (_ts(now),))
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
    def quarantine_count(self) -> int:
        count: int = self._read("SELECT COUNT(*) FROM quarantine")[0][0]
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

    # -- lease ---------------------------------------------------------------------------------
    @_guard("acquire_lease")
    def acquire_lease(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        with self._write() as conn:
            row = conn.execute("SELECT owner, expires_at FROM lease WHERE id = 1").fetchone()
            self.counters.reads += 1
            if row is not None and row[0] != owner and _dt(row[1]) > now:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO lease (id, owner, expires_at) VALUES (1, ?, ?)",
                (owner, _ts(expires_at)),
            )
        self.counters.writes += 1
        return True

    @_guard("release_lease")
    def release_lease(self, owner: str) -> None:
        with self._write() as conn:
            deleted = conn.execute("DELETE FROM lease WHERE id = 1 AND owner = ?", (owner,)).rowcount
        self.counters.reads += 1  # the lease row, read to match its owner
        self.counters.deletes += deleted

    @_guard("get_lease")
    def get_lease(self) -> Lease | None:
        rows = self._read("SELECT owner, expires_at FROM lease WHERE id = 1")
        return Lease(rows[0][0], _dt(rows[0][1])) if rows else None

    # -- small named documents -----------------------------------------------------------------
    @_guard("get_meta")
    def get_meta(self, name: str) -> dict[str, Any] | None:
        rows = self._read("SELECT value FROM meta WHERE name = ?", (name,))
        value: dict[str, Any] | None = json.loads(rows[0][0]) if rows else None
        return value

    @_guard("put_meta")
    def put_meta(self, name: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, ensure_ascii=False)
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, text))
        self.counters.writes += 1

    @_guard("delete_meta")
    def delete_meta(self, name: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM meta WHERE name = ?", (name,))
        self.counters.deletes += 1

    # -- run history ---------------------------------------------------------------------------
    def _trim_runs(self, conn: sqlite3.Connection, keep: int) -> None:
        deleted = conn.execute(
            "DELETE FROM runs WHERE id NOT IN"
            " (SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT ?)",
            (max(keep, 0),),
        ).rowcount
        # Counted as Firestore's trim query is billed: the rows kept are skipped by its offset.
        self.counters.reads += max(1, max(keep, 0) + deleted)
        self.counters.deletes += deleted

    @_guard("record_run")
    def record_run(self, record: dict[str, Any], keep: int = 100) -> None:
        text = json.dumps(record, ensure_ascii=False)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (started_at, record) VALUES (?, ?)",
                (_run_sort_key(record.get("started_at", "")), text),
            )
            self.counters.writes += 1
            self._trim_runs(conn, keep)

    @_guard("recent_runs")
    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT record FROM runs ORDER BY started_at DESC, id DESC LIMIT ?", (max(limit, 0),)
        )
        records: list[dict[str, Any]] = [json.loads(row[0]) for row in rows]
        return records
