"""`FirestoreStore`: the state store in Firestore (Native mode), for the cloud.

Layout, with `P` the collection prefix:

- `P_state`: documents `token`, `lease` and `meta_<name>`.
- `P_journal`: one document per chat, id = chat key (hashed when Firestore cannot take the key
  as an id; then the `key` field holds it). Fields: chat_json (the item as JSON text; an item
  too large for a document is journaled cut, see lib/chat_source.journal_item), chat_time,
  fetched_at, pending (not delivered to both; `false` alone means both done), sheet and slack
  (only when not pending; absent is pending), sheet_batch (documents written before in-flight
  batches), expires_at (absent until set). A TTL policy on `expires_at` of collection group
  `P_journal` deletes delivered entries.
- `P_batches`: one document per in-flight append (more, `<id>.<n>`, for over 20,000 keys):
  batch, label, keys_json, expires_at (TTL policy on collection group `P_batches`). Read by
  `journal_pending` only when some entry is pending.
- `P_quarantine`: one document per unreadable item (auto id): raw, reason, fetched_at and
  expires_at, which a TTL policy on collection group `P_quarantine` honours.
- `P_runs`: run records, id and `sort_key` sortable by started_at.

`journal_pending` is the single-field query `pending == True`, sorted on the client, so
production needs no composite index.

Commits hold at most 500 writes and about 3 MB of documents (Firestore takes 10 MiB a request,
its emulator 4 MiB).

How values become fields, ids and batches, and which errors mean "no access", is in
`firestore_layout`.

`counters` (`lib.counters.StoreCounters`) counts server calls (one per get, get_all, commit,
query, count and transaction attempt) and the documents read, written and deleted as billed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from .base import CachedToken, Lease
from .common import guard
from .common import utc as _ts
from .firestore_journal import FirestoreJournalStore
from .firestore_layout import batches as _chunks
from .firestore_layout import dt as _dt
from .firestore_layout import get_json as _get_json
from .firestore_layout import put_json as _put_json
from .firestore_layout import run_sort_key as _run_sort_key
from .firestore_layout import translate as _translate

_guard = guard(_translate)


class FirestoreStore(FirestoreJournalStore):
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

    # -- lease ---------------------------------------------------------------------------------
    @_guard("acquire_lease")
    def acquire_lease(self, owner: str, now: datetime, expires_at: datetime) -> bool:
        now, until = _ts(now), _ts(expires_at)
        ref = self._state.document("lease")

        def body(transaction: Any) -> bool:
            snap = ref.get(transaction=transaction)
            self.counters.reads += 1
            if snap.exists:
                held = snap.to_dict() or {}
                if held.get("owner") != owner and _dt(held.get("expires_at")) > now:
                    return False
            transaction.set(ref, {"owner": owner, "expires_at": until})
            return True

        taken = self._transaction(body)
        self.counters.writes += taken
        return taken

    @_guard("release_lease")
    def release_lease(self, owner: str) -> None:
        ref = self._state.document("lease")

        def body(transaction: Any) -> bool:
            snap = ref.get(transaction=transaction)
            self.counters.reads += 1
            if snap.exists and (snap.to_dict() or {}).get("owner") == owner:
                transaction.delete(ref)
                return True
            return False

        self.counters.deletes += self._transaction(body)

    @_guard("get_lease")
    def get_lease(self) -> Lease | None:
        snap = self._get(self._state.document("lease"))
        if not snap.exists:
            return None
        doc = snap.to_dict()
        return Lease(doc["owner"], _dt(doc["expires_at"]))

    # -- small named documents -----------------------------------------------------------------
    def _meta_ref(self, name: str) -> Any:
        if not name or "/" in name:
            raise ValueError("meta names must be non-empty and free of '/'")
        return self._state.document(f"meta_{name}")

    @_guard("get_meta")
    def get_meta(self, name: str) -> dict[str, Any] | None:
        snap = self._get(self._meta_ref(name))
        return _get_json(snap.to_dict(), "value") if snap.exists else None

    @_guard("put_meta")
    def put_meta(self, name: str, value: dict[str, Any]) -> None:
        doc: dict[str, Any] = {"name": name}
        _put_json(doc, "value", value)
        batch = self.client.batch()
        batch.set(self._meta_ref(name), doc)
        self._commit(batch, writes=1)

    @_guard("delete_meta")
    def delete_meta(self, name: str) -> None:
        batch = self.client.batch()
        batch.delete(self._meta_ref(name))
        self._commit(batch, deletes=1)

    # -- run history ---------------------------------------------------------------------------
    @_guard("record_run")
    def record_run(self, record: dict[str, Any], keep: int = 100) -> None:
        sort_key = _run_sort_key(record.get("started_at", ""))
        doc: dict[str, Any] = {"sort_key": sort_key}
        _put_json(doc, "record", record)
        batch = self.client.batch()
        batch.create(self._runs.document(f"{sort_key}_{uuid.uuid4().hex[:8]}"), doc)
        self._commit(batch, writes=1)
        stale = (
            self._runs.order_by("sort_key", direction=firestore.Query.DESCENDING)
            .offset(max(keep, 0))
            .select([FieldPath.document_id()])
        )
        for chunk in _chunks(self._stream(stale, offset=max(keep, 0))):
            batch = self.client.batch()
            for snap in chunk:
                batch.delete(snap.reference)
            self._commit(batch, deletes=len(chunk))

    @_guard("recent_runs")
    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        query = self._runs.order_by("sort_key", direction=firestore.Query.DESCENDING).limit(limit)
        return [_get_json(snap.to_dict(), "record") for snap in self._stream(query)]
