"""`SqliteStore`: the state store in one SQLite file, for local runs and tests.

Several threads and processes may share the file: each thread gets its own connection, the
file is in WAL mode with a busy timeout, and every write runs in a `BEGIN IMMEDIATE`
transaction so that read-then-write sequences (the lease) are atomic.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..documents import ALERTS_DOC, CURSOR_DOC, SCHEDULE_DOC
from ..models import CachedToken, InflightBatch, Lease
from ..run_state import RUNS_KEPT, LeaseHold, RunState, from_legacy, in_layout, with_old_parts
from ..run_store import RunStateStore
from .base import _dt, _guard
from .claims import SqliteClaims
from .journal import SqliteJournalStore


class SqliteStore(RunStateStore, SqliteJournalStore, SqliteClaims):
    """The state store in a SQLite file at `path` (parent folders are created).

    `retention`: when set, `journal_prune` also trims the run history to the newest
    `retention` records (record_run keeps its own ring of `keep`). `counters` counts rows as
    Firestore would bill documents (`lib.counters.StoreCounters`). The lease is judged by
    SQLite's own clock (`now`), or by `clock` when a test moves time by hand. The run state is one row of
    `run_state` (its JSON and a version counter), the token cache and the alert state among its
    parts; the tables `lease`, `runs` and `token` and the meta rows `cursor`, `schedule_runs`
    and `alerts` are read only to build it in a file made before it (or before its LAYOUT).
    """

    # -- token cache (a part of the run state) -------------------------------------------------
    def get_token(self) -> CachedToken | None:
        return self.read_run_state().token

    def put_token(self, token: CachedToken) -> None:
        self.update_run_state(lambda s: dataclasses.replace(s, token=token))

    def clear_token(self) -> None:
        self.update_run_state(lambda s: None if s.token is None else dataclasses.replace(s, token=None))

    # -- run state (lease, cursor, schedule log, quarantine hint, run history) -----------------
    @_guard("read_run_state")
    def read_run_state(self) -> RunState:
        rows = self._read("SELECT version, state FROM run_state WHERE id = 1")
        now = self._now(self._conn())  # the store's time of this read: the lease is judged by it
        data: dict[str, Any] = json.loads(rows[0][1]) if rows else {}
        if "seq" in data:
            state = RunState.from_dict(data, version=rows[0][0], read_at=now)
        else:  # none stored, or only a pending mark (a journal write before any run state)
            state = dataclasses.replace(self._legacy_state(), read_at=now, version=rows[0][0] if rows else None,
                                        pending=True if data.get("pending") else None, whole=bool(rows))
        if in_layout(data):
            return state
        return with_old_parts(state, *self._old_parts())

    def _legacy_state(self) -> RunState:
        # A file from before the run state: its parts were rows of their own (left in place).
        # Counted as Firestore's batch get of the same documents: each one asked for is a read.
        self.counters.round_trips += 1
        self.counters.reads += 3
        conn = self._conn()
        named = dict(conn.execute(
            "SELECT name, value FROM meta WHERE name IN (?, ?)", (CURSOR_DOC, SCHEDULE_DOC)).fetchall())
        held = conn.execute("SELECT owner, expires_at FROM lease WHERE id = 1").fetchall()
        lease = Lease(held[0][0], _dt(held[0][1])) if held else None
        rows = self._read("SELECT record FROM runs ORDER BY started_at DESC, id DESC LIMIT ?", (RUNS_KEPT,))
        parts = [json.loads(named[name]) if name in named else None for name in (CURSOR_DOC, SCHEDULE_DOC)]
        return from_legacy(parts[0], parts[1], lease, [json.loads(row[0]) for row in rows])

    def _old_parts(self) -> tuple[CachedToken | None, dict[str, Any] | None]:
        # A run state from before LAYOUT: the token and alert state were rows of their own (left
        # in place, never read again once the state is written). Two documents on Firestore.
        self.counters.round_trips += 1
        self.counters.reads += 2
        conn = self._conn()
        token = conn.execute("SELECT value, expires_at FROM token WHERE id = 1").fetchall()
        alerts = conn.execute("SELECT value FROM meta WHERE name = ?", (ALERTS_DOC,)).fetchall()
        return (CachedToken(token[0][0], _dt(token[0][1])) if token else None,
                json.loads(alerts[0][0]) if alerts else None)

    @_guard("write_run_state")
    def write_run_state(self, state: RunState, seen: RunState) -> RunState | None:
        text = json.dumps(state.to_dict(), ensure_ascii=False)
        with self._write() as conn:
            if seen.version is None:
                written = conn.execute(
                    "INSERT OR IGNORE INTO run_state (id, version, state) VALUES (1, 1, ?)", (text,)).rowcount
                version = 1
            else:
                written = conn.execute(
                    "UPDATE run_state SET version = version + 1, state = ? WHERE id = 1 AND version = ?",
                    (text, seen.version)).rowcount
                version = seen.version + 1
        if not written:
            return None
        self.counters.writes += 1
        return dataclasses.replace(state, version=version, whole=False)

    @_guard("batch_put")
    def batch_put_held(self, batch: InflightBatch, hold: LeaseHold) -> RunState | None:
        with self._write() as conn:
            # One transaction: the lease is read (and renewed) and the batch stored together,
            # so a run that lost the lease since it last looked stores nothing.
            row = conn.execute("SELECT version, state FROM run_state WHERE id = 1").fetchone()
            self.counters.reads += 1
            data = {} if row is None else json.loads(row[1])
            seen = RunState() if row is None else RunState.from_dict(data, version=row[0])
            seen = dataclasses.replace(seen, read_at=self._now(conn))
            if row is not None and not in_layout(data):
                seen = with_old_parts(seen, *self._old_parts())  # written whole below: keep them
            state = hold.applied(seen)  # raises LeaseLost: the transaction is rolled back
            if state is not None:
                conn.execute("UPDATE run_state SET version = version + 1, state = ? WHERE id = 1",
                             (json.dumps(state.to_dict(), ensure_ascii=False),))
                self.counters.writes += 1
                seen = dataclasses.replace(state, version=seen.version + 1)
            self._insert_batch(conn, batch)
        return seen

    # -- small named documents -----------------------------------------------------------------
    @_guard("get_meta")
    def _get_named(self, name: str) -> dict[str, Any] | None:
        rows = self._read("SELECT value FROM meta WHERE name = ?", (name,))
        value: dict[str, Any] | None = json.loads(rows[0][0]) if rows else None
        return value

    @_guard("put_meta")
    def _put_named(self, name: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, ensure_ascii=False)
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, text))
        self.counters.writes += 1

    @_guard("delete_meta")
    def _delete_named(self, name: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM meta WHERE name = ?", (name,))
        self.counters.deletes += 1
