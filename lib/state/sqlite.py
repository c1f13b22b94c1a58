"""`SqliteStore`: the state store in one SQLite file, for local runs and tests.

Several threads and processes may share the file: each thread gets its own connection, the
file is in WAL mode with a busy timeout, and every write runs in a `BEGIN IMMEDIATE`
transaction so that read-then-write sequences (the lease) are atomic.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .base import CachedToken, Lease
from .common import utc_text as _ts
from .sqlite_base import _dt, _guard, _run_sort_key
from .sqlite_journal import SqliteJournalStore


class SqliteStore(SqliteJournalStore):
    """The state store in a SQLite file at `path` (parent folders are created).

    `retention`: when set, `journal_prune` also trims the run history to the newest
    `retention` records (record_run already trims to its own `keep`). `counters` counts rows
    as Firestore would bill documents (`lib.counters.StoreCounters`).
    """


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
