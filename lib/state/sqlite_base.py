"""SQLite plumbing shared by the store's parts: per-thread connections, the schema, write transactions."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from ..clock import Clock
from ..counters import StoreCounters
from ..errors import StateStoreAccessError, StateStoreError
from ..text import json_text
from .base import DONE, StoreBase
from .common import guard, stored_time
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
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, label TEXT NOT NULL, keys TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT, raw TEXT NOT NULL, reason TEXT NOT NULL,
    fetched_at TEXT NOT NULL, expires_at TEXT);
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at, id);
CREATE TABLE IF NOT EXISTS run_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, state TEXT NOT NULL);
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


class SqliteBase(StoreBase):
    """The file, its per-thread connections and the counted reads and writes every part makes."""

    def __init__(self, path: str, retention: int | None = None, *, clock: Clock | None = None) -> None:
        self.path = path
        self.retention = retention
        # The store's clock (the lease is judged by it): SQLite's own `now` unless a test moves time.
        self.clock = clock
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

    def _now(self, conn: sqlite3.Connection) -> datetime:
        """The store's time: SQLite's own clock (`now`, UTC), or the clock a test gave."""
        if self.clock is not None:
            return self.clock()
        return datetime.fromisoformat(conn.execute("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')").fetchone()[0])

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

    def _trim_runs(self, conn: sqlite3.Connection, keep: int) -> None:
        # The run history lives in the run state's ring; trimmed to `keep` only when longer.
        from .run_state import RunState

        row = conn.execute("SELECT version, state FROM run_state WHERE id = 1").fetchone()
        self.counters.reads += 1
        if row is None:
            return
        state = RunState.from_dict(json.loads(row[1]))
        if len(state.history) > max(keep, 0):
            conn.execute("UPDATE run_state SET version = version + 1, state = ? WHERE id = 1",
                         (json.dumps(state.trimmed(keep).to_dict(), ensure_ascii=False),))
            self.counters.writes += 1
