"""SQLite plumbing shared by the store's parts: per-thread connections, the schema, write transactions."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import urllib.request
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from ...clock import Clock
from ...counters import StoreCounters
from ...errors import StateStoreAccessError, StateStoreMissing, StateStoreUnavailable, cut
from ...text import json_text
from ..base import StoreBase
from ..common import guard, stored_time
from ..common import utc_text as _ts
from ..models import DONE
from ..run_state import RunState

_BUSY_TIMEOUT_SECONDS = 30.0
# A read-only connection never waits for a writer (WAL readers see the last commit); only a
# checkpoint's or recovery's brief exclusive moment can make it wait, this long at most.
_READ_ONLY_TIMEOUT_SECONDS = 2.0
# What a file must hold to be read as a state store (older files lack `run_state`: read as before it).
_TABLES = frozenset({"token", "journal", "quarantine", "meta"})
_CHUNK = 500  # keys per `IN (...)`, well below SQLite's bound-variable limit
# The journal keeps each entry's delivery state per destination as JSON text (`states`, and the
# in-flight labels in `labels`), with `pending` (1 while a destination the run wrote is not done;
# lib/state/models.delivered) for the cheap pending query and its partial index.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS token (
    id INTEGER PRIMARY KEY CHECK (id = 1), value TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    key TEXT PRIMARY KEY, chat TEXT NOT NULL, chat_time TEXT NOT NULL, fetched_at TEXT NOT NULL,
    states TEXT, labels TEXT, pending INTEGER NOT NULL DEFAULT 1, expires_at TEXT);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, label TEXT NOT NULL, keys TEXT NOT NULL, expires_at TEXT NOT NULL,
    destination TEXT NOT NULL DEFAULT 'sheet');
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT, raw TEXT NOT NULL, reason TEXT NOT NULL,
    fetched_at TEXT NOT NULL, expires_at TEXT);
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at, id);
CREATE TABLE IF NOT EXISTS claims (id TEXT PRIMARY KEY, due INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS run_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, state TEXT NOT NULL);
"""
# Made after the migration below (an old file has no `pending` column before it).
_INDEXES = """
CREATE INDEX IF NOT EXISTS journal_waiting ON journal (chat_time, key) WHERE pending = 1;
"""
# A file made before destinations were plug-ins has the two fields `sheet`, `sheet_batch` and
# `slack` instead of `states`/`labels`/`pending`. The migration adds the new columns and sets
# `pending` from the old ones (one statement); each row is read from the old columns until it
# is next written, in the new shape (lib/state/sqlite/journal.py). The old columns stay, unread
# once `states` is set.
_MIGRATE_JOURNAL = (
    "ALTER TABLE journal ADD COLUMN states TEXT",
    "ALTER TABLE journal ADD COLUMN labels TEXT",
    "ALTER TABLE journal ADD COLUMN pending INTEGER NOT NULL DEFAULT 1",
    f"UPDATE journal SET pending = NOT (sheet = '{DONE}' AND slack = '{DONE}')",
    "DROP INDEX IF EXISTS journal_pending",
)


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
    """Raise StateStoreUnavailable naming the operation for a sqlite3 failure (no data)."""
    if not isinstance(exc, sqlite3.Error):
        return
    text = str(exc).lower()
    # SQLite messages name the failure, never bound values, so they are safe to show.
    message = f"SQLite state store failed during {operation}: {type(exc).__name__}: {exc}"
    if "readonly" in text or "unable to open" in text or "not authorized" in text:
        raise StateStoreAccessError(
            message, fix=f"Make {cut(store.path)} (and its folder) writable by this user."
        ) from exc
    if "not a database" in text or "malformed" in text:
        # A damaged file, or another file STATE_STORE names: as a read-only command says it.
        raise StateStoreAccessError(
            f"STATE_STORE=sqlite:{cut(store.path)} is not a SQLite state store (during {operation}: "
            f"{type(exc).__name__}: {exc})", fix=NOT_A_STORE_FIX) from exc
    if "locked" in text:
        raise StateStoreUnavailable(message, fix=f"Another process is writing to {cut(store.path)}: run the "
                                    "same command again once it is done.") from exc
    raise StateStoreUnavailable(message) from exc


NOT_A_STORE_FIX = "Check STATE_STORE: it must name the state store's file (sqlite:PATH)."


_guard = guard(_translate)


class SqliteBase(StoreBase):
    """The file, its per-thread connections and the counted reads and writes every part makes.

    `read_only`: open an existing file for reading only (`status`, `check`, the quarantine's
    listing): nothing is created or migrated, no lock is taken, and a writer busy in another
    process is not waited for. A missing file, or one that is not a state store, is a
    StateStoreMissing that names STATE_STORE. `create` False: the same for a missing file, but
    the store is opened for writing."""

    def __init__(self, path: str, retention: int | None = None, *, read_only: bool = False,
                 create: bool = True, clock: Clock | None = None) -> None:
        self.path = path
        self.retention = retention
        # The store's clock (the lease is judged by it): SQLite's own `now` unless a test moves time.
        self.clock = clock
        self.read_only = read_only
        self.counters = StoreCounters()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._columns: dict[str, frozenset[str]] = {}
        if read_only or not create:  # create=False: a command that changes a store it must not make
            self._check_readable()
        if read_only:
            return
        try:
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise StateStoreAccessError(
                f"SQLite state store cannot create its folder: {type(exc).__name__}",
                fix=f"Make the folder of {cut(path)} creatable and writable by this user.",
            ) from exc
        self._init_schema()

    # -- plumbing ------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        # A connection must not cross a fork; a child process opens its own.
        if conn is None or self._local.pid != os.getpid():
            if self.read_only:
                return self._connect_read_only()
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

    def _connect_read_only(self) -> sqlite3.Connection:
        # mode=ro: SQLite never creates the file, never writes, never changes the journal mode.
        uri = f"file:{urllib.request.pathname2url(os.path.abspath(self.path))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=_READ_ONLY_TIMEOUT_SECONDS, isolation_level=None,
                               check_same_thread=False)
        self._local.conn, self._local.pid = conn, os.getpid()
        with self._lock:
            self._connections.append(conn)
        return conn

    def _check_readable(self) -> None:
        folder = "" if os.path.isabs(self.path) else f" in {os.getcwd()}"
        where = f"STATE_STORE=sqlite:{self.path}"
        if not os.path.isfile(self.path):
            raise StateStoreMissing(
                f"no state store at {where} (no such file{folder})",
                fix="Check STATE_STORE (a relative path is read from the current folder); the first run "
                    "(`python -m lib run`) creates the store.")
        try:
            tables = {row[0] for row in self._conn().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as exc:
            raise StateStoreMissing(
                f"{where} is not a SQLite state store ({type(exc).__name__}: {exc})",
                fix=NOT_A_STORE_FIX) from exc
        if not _TABLES.issubset(tables):
            raise StateStoreMissing(
                f"{where} is a SQLite file but not a state store of this tool (no {', '.join(sorted(_TABLES - tables))} table)",
                fix=NOT_A_STORE_FIX)

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
            if "expires_at" not in self._table_columns(conn, "quarantine"):
                conn.execute("ALTER TABLE quarantine ADD COLUMN expires_at TEXT")
            if "states" not in self._table_columns(conn, "journal"):
                for statement in _MIGRATE_JOURNAL:
                    conn.execute(statement)
            if "destination" not in self._table_columns(conn, "batches"):
                conn.execute("ALTER TABLE batches ADD COLUMN destination TEXT NOT NULL DEFAULT 'sheet'")
            for statement in _INDEXES.split(";"):
                if statement.strip():
                    conn.execute(statement)
        self._columns = {}  # read again: the migration may have added some

    @staticmethod
    def _table_columns(conn: sqlite3.Connection, table: str) -> frozenset[str]:
        return frozenset(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))

    def columns(self, table: str) -> frozenset[str]:
        """The columns a table of this file has (a read-only store may open an unmigrated file)."""
        found = self._columns.get(table)
        if found is None:
            found = self._columns[table] = self._table_columns(self._conn(), table)
        return found

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


        row = conn.execute("SELECT version, state FROM run_state WHERE id = 1").fetchone()
        self.counters.reads += 1
        if row is None:
            return
        state = RunState.from_dict(json.loads(row[1]))
        if len(state.history) > max(keep, 0):
            conn.execute("UPDATE run_state SET version = version + 1, state = ? WHERE id = 1",
                         (json.dumps(state.trimmed(keep).to_dict(), ensure_ascii=False),))
            self.counters.writes += 1
