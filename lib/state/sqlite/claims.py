"""The claims from Slack in SQLite: the table `claims` (id, due, the claim as JSON text)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from ..claims import Claim
from ..run_state import RunState
from .base import SqliteBase, _guard


class SqliteClaims(SqliteBase):
    """`Claims` (lib/state/contract.py) for SqliteStore."""

    def _legacy_state(self) -> RunState:
        raise NotImplementedError  # SqliteStore's (lib/state/sqlite/store.py)

    @_guard("claim_get")
    def claim_get(self, feed: str, key: str) -> Claim | None:
        rows = self._read("SELECT doc FROM claims WHERE id = ?", (f"{feed}:{key}",))
        return Claim.from_dict(json.loads(rows[0][0])) if rows else None

    @_guard("claims_of")
    def claims_of(self, items: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Claim]:
        ids = sorted({f"{feed}:{key}" for feed, key in items})
        if not ids:
            return {}
        rows = self._read(f"SELECT doc FROM claims WHERE id IN ({', '.join('?' * len(ids))})", ids)
        claims = [Claim.from_dict(json.loads(row[0])) for row in rows]
        return {(c.feed, c.key): c for c in claims}

    @_guard("claim_take")
    def claim_take(self, claim: Claim) -> tuple[Claim, bool]:
        with self._write() as conn:
            # BEGIN IMMEDIATE: the first writer decides; a click at the same moment waits, then
            # finds this claim.
            row = conn.execute("SELECT doc FROM claims WHERE id = ?", (claim.id,)).fetchone()
            self.counters.reads += 2
            if row is not None:
                return Claim.from_dict(json.loads(row[0])), False
            conn.execute("INSERT INTO claims (id, due, doc) VALUES (?, ?, ?)",
                         (claim.id, int(claim.due), json.dumps(claim.to_dict(), ensure_ascii=False)))
            held = conn.execute("SELECT version, state FROM run_state WHERE id = 1").fetchone()
            if held is None:
                state = self._legacy_state()  # a store no run has written the run state of yet
                state = dataclasses.replace(state, claims_due=state.claims_due + 1)
                conn.execute("INSERT INTO run_state (id, version, state) VALUES (1, 1, ?)",
                             (json.dumps(state.to_dict(), ensure_ascii=False),))
            else:
                state = RunState.from_dict(json.loads(held[1]))
                state = dataclasses.replace(state, claims_due=state.claims_due + 1)
                conn.execute("UPDATE run_state SET version = version + 1, state = ? WHERE id = 1",
                             (json.dumps(state.to_dict(), ensure_ascii=False),))
            self.counters.writes += 2
        return claim, True

    @_guard("claim_put")
    def claim_put(self, claim: Claim) -> None:
        with self._write() as conn:
            conn.execute("UPDATE claims SET due = ?, doc = ? WHERE id = ?",
                         (int(claim.due), json.dumps(claim.to_dict(), ensure_ascii=False), claim.id))
        self.counters.writes += 1

    @_guard("claims_due")
    def claims_due(self) -> list[Claim]:
        rows = self._read("SELECT doc FROM claims WHERE due = 1")
        claims = [Claim.from_dict(json.loads(row[0])) for row in rows]
        return sorted(claims, key=lambda c: (c.claimed_at, c.id))
