"""`FirestoreStore`: the state store in Firestore (Native mode), for the cloud.

Layout, with `P` the collection prefix (with ACCOUNTS, each account has the same collections
under the document `P_accounts/<account>`: `P_accounts/north/P_journal/...`; without, they are at
the top, as before):

- `P_state`: documents `token`, `run` and `meta_<name>`. `run` is the run state
  (lib/state/run_state.py), read once and written once per run: `lease` {owner, expires_at},
  `cursor` {last_read, intent}, `schedule_runs` {done}, `quarantine_until`, `seq` and `runs`, a
  map of the RUNS_KEPT slots `r00`..`r99` to run records as JSON text (a write sends only the
  slot it fills). Writes to it are guarded by its update time (a precondition), so a run never
  overwrites what another wrote since it read. The lease in it is judged by Firestore's time
  (the read time of the read that judges it), never by the caller's clock; an in-flight batch
  document is written in a transaction that reads the lease first (`batch_put_held`). A store from before it also holds `lease`,
  `meta_cursor`, `meta_schedule_runs` and the `P_runs` collection: they are read once to build
  `run`, then never again (they may be deleted by hand).
- `P_journal`: one document per chat, id = chat key (hashed when Firestore cannot take the key
  as an id; then the `key` field holds it). Fields: chat_json (the item as JSON text; an item
  too large for a document is journaled cut, see lib/sources/chat_source.journal_item), chat_time,
  fetched_at, states (a map: destination name -> pending/inflight/done), labels (a map:
  destination name -> the in-flight label kept on the entry), pending (true while a destination
  in `states` is not done), expires_at (absent until set). A document of the old shape (`sheet`,
  `slack`, `sheet_batch`, `pending: false` alone meaning both done) is read into the maps and
  written in the new shape the next time its states are written. A TTL policy on `expires_at` of collection group
  `P_journal` deletes delivered entries.
- `P_batches`: one document per in-flight append (more, `<id>.<n>`, for over 20,000 keys):
  batch, label, keys_json, destination (absent: the sheet), expires_at (TTL policy on collection group `P_batches`). Read by
  `journal_pending` only when some entry is pending.
- `P_quarantine`: one document per unreadable item (auto id): raw, reason, fetched_at and
  expires_at, which a TTL policy on collection group `P_quarantine` honours.

`journal_pending` is the single-field query `pending == True`, sorted on the client, so
production needs no composite index.

Commits hold at most 500 writes and about 3 MB of documents (Firestore takes 10 MiB a request,
its emulator 4 MiB).

How values become fields, ids and batches, and which errors mean "no access", is in
`layout`.

`counters` (`lib.counters.StoreCounters`) counts server calls (one per get, get_all, commit,
query, count, transaction attempt and write by version) and the documents read, written and
deleted as billed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from ..common import guard, stored_time
from ..common import utc as _ts
from ..models import CachedToken, InflightBatch, Lease
from ..run_state import PARTS, RUN_STATE_DOC, RUNS_KEPT, LeaseHold, RunState, from_legacy
from ..run_store import RunStateStore
from .journal import FirestoreJournalStore
from .layout import dt as _dt
from .layout import get_json as _get_json
from .layout import put_json as _put_json
from .layout import translate as _translate

_guard = guard(_translate)


class FirestoreStore(RunStateStore, FirestoreJournalStore):
    """The state store in Firestore collections named `{prefix}_…`.

    `timeout` and `retry` are passed to every call that takes them (library defaults if unset).
    """

    # -- token cache ---------------------------------------------------------------------------
    @_guard("get_token")
    def get_token(self) -> CachedToken | None:
        snap = self._get(self._state.document("token"))
        if not snap.exists:
            return None
        doc = snap.to_dict()
        return CachedToken(doc["value"], _dt(doc["expires_at"]))

    @_guard("put_token")
    def put_token(self, token: CachedToken) -> None:
        batch = self.client.batch()
        batch.set(self._state.document("token"), {
            "value": token.value, "expires_at": _ts(token.expires_at),
        })
        self._commit(batch, writes=1)

    @_guard("clear_token")
    def clear_token(self) -> None:
        batch = self.client.batch()
        batch.delete(self._state.document("token"))
        self._commit(batch, deletes=1)

    # -- run state (lease, cursor, schedule log, quarantine hint, run history) -----------------
    @_guard("read_run_state")
    def read_run_state(self) -> RunState:
        snap = self._get(self._state.document(RUN_STATE_DOC))
        if snap.exists:
            return RunState.from_dict(snap.to_dict() or {}, version=snap.update_time, read_at=self._read_at(snap))
        return self._legacy_state()

    def _read_at(self, snap: Any) -> Any:
        # Firestore's time of the read: the lease is judged by it, not by the caller's clock.
        return self.clock() if self.clock is not None else stored_time(snap.read_time)

    def _legacy_state(self) -> RunState:
        # A store from before the run state: its parts were documents of their own (left in
        # place, never read again once the run state is written).
        refs = [self._state.document(f"meta_{name}") for name in PARTS] + [self._state.document("lease")]
        snaps = self._get_all(refs)
        found = {snap.reference.id: snap.to_dict() or {} for snap in snaps if snap.exists}
        held = found.get("lease")
        lease = Lease(held["owner"], _dt(held["expires_at"])) if held else None
        parts = [_get_json(found[f"meta_{name}"], "value") if f"meta_{name}" in found else None for name in PARTS]
        query = self._runs.order_by("sort_key", direction=firestore.Query.DESCENDING).limit(RUNS_KEPT)
        records = [_get_json(snap.to_dict(), "record") for snap in self._stream(query)]
        return dataclasses.replace(from_legacy(parts[0], parts[1], lease, records), read_at=self._read_at(snaps[0]))

    @_guard("write_run_state")
    def write_run_state(self, state: RunState, seen: RunState) -> RunState | None:
        ref = self._state.document(RUN_STATE_DOC)
        self.counters.round_trips += 1
        try:
            if seen.version is None:
                result = ref.create(state.to_dict(), **self._rpc)
            else:
                changes = _changes(seen.to_dict(), state.to_dict())
                if not changes:
                    return dataclasses.replace(state, version=seen.version)
                option = self.client.write_option(last_update_time=seen.version)
                result = ref.update(changes, option=option, **self._rpc)
        except (gexc.FailedPrecondition, gexc.Conflict, gexc.NotFound):
            return None  # written (or created) by another run since `seen` was read
        self.counters.writes += 1
        return dataclasses.replace(state, version=result.update_time)

    @_guard("batch_put")
    def batch_put_held(self, batch: InflightBatch, hold: LeaseHold) -> RunState | None:
        ref = self._state.document(RUN_STATE_DOC)
        parts = self._batch_docs(batch)
        outcome: list[RunState | None] = [None]

        @firestore.transactional
        def put(transaction: Any) -> None:
            # The lease read and the batch written in one transaction: when another run has
            # taken the lease since, nothing is written (LeaseLost rolls it back).
            self.counters.round_trips += 1
            self.counters.reads += 1
            snap = next(iter(transaction.get(ref, **self._rpc)))
            data = (snap.to_dict() or {}) if snap.exists else {}
            seen = RunState.from_dict(data, version=snap.update_time, read_at=self._read_at(snap))
            state = hold.applied(seen)
            if state is not None:
                transaction.update(ref, {"lease": state.to_dict()["lease"]})
            transaction.set(*parts[0])
            # Renewed: the new version is known only after the commit (None: read it again).
            outcome[0] = seen if state is None else None

        put(self.client.transaction())
        self.counters.writes += 1 if outcome[0] is not None else 2
        if len(parts) > 1:
            self._put_docs(parts[1:])  # a batch of more than KEYS_PER_PART keys: its other parts
        return outcome[0]

    # -- small named documents -----------------------------------------------------------------
    def _meta_ref(self, name: str) -> Any:
        if not name or "/" in name:
            raise ValueError("meta names must be non-empty and free of '/'")
        return self._state.document(f"meta_{name}")

    @_guard("get_meta")
    def _get_named(self, name: str) -> dict[str, Any] | None:
        snap = self._get(self._meta_ref(name))
        return _get_json(snap.to_dict(), "value") if snap.exists else None

    @_guard("put_meta")
    def _put_named(self, name: str, value: dict[str, Any]) -> None:
        doc: dict[str, Any] = {"name": name}
        _put_json(doc, "value", value)
        batch = self.client.batch()
        batch.set(self._meta_ref(name), doc)
        self._commit(batch, writes=1)

    @_guard("delete_meta")
    def _delete_named(self, name: str) -> None:
        batch = self.client.batch()
        batch.delete(self._meta_ref(name))
        self._commit(batch, deletes=1)


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The field updates that turn `before` into `after`: whole top-level fields, and the run
    history slot by slot (a record is sent once, not the ring again)."""
    changes: dict[str, Any] = {}
    for name in set(before) | set(after):
        if name == "runs":
            old, new = before.get("runs") or {}, after.get("runs") or {}
            for slot in set(old) | set(new):
                if old.get(slot) != new.get(slot):
                    changes[f"runs.{slot}"] = new.get(slot, firestore.DELETE_FIELD)
        elif before.get(name) != after.get(name):
            changes[name] = after.get(name, firestore.DELETE_FIELD)
    return changes
