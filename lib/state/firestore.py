"""`FirestoreStore`: the state store in Firestore (Native mode), for the cloud.

Layout, with `P` the collection prefix:

- `P_state`: documents `token`, `lease` and `meta_<name>`.
- `P_journal`: one document per chat, id = chat key (hashed when Firestore cannot take the key
  as an id; the `key` field always holds it). Fields: key, chat_json (the item as JSON text; an
  item too large for a document is journaled cut, see lib/chats.journal_item), chat_time,
  fetched_at, sheet, sheet_batch, slack, pending (not delivered to both), expires_at (absent until set). A
  TTL policy on `expires_at` of collection group `P_journal` deletes delivered entries.
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

import random
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core import gapic_v1
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from ..chats import json_text
from ..counters import StoreCounters
from ..errors import StateStoreError
from .base import CachedToken, JournalEntry, Lease, RejectedItem, StoreBase, delivered
from .common import first_of_each_key, guard, journal_changes, stored_time, unique
from .common import utc as _ts
from .firestore_layout import batches as _chunks
from .firestore_layout import doc_id as _doc_id
from .firestore_layout import dt as _dt
from .firestore_layout import get_json as _get_json
from .firestore_layout import put_json as _put_json
from .firestore_layout import run_sort_key as _run_sort_key
from .firestore_layout import sized_batches as _sized_chunks
from .firestore_layout import text_bytes as _text_bytes
from .firestore_layout import translate as _translate

_TXN_ATTEMPTS = 10  # the client's default of 5 is too few for a handful of racing instances
_OUTER_ATTEMPTS = 5  # for Aborted raised while reading inside a transaction (not retried by the client)
_UPDATE_ATTEMPTS = 5

T = TypeVar("T")

_guard = guard(_translate)


class FirestoreStore(StoreBase):
    """The state store in Firestore collections named `{prefix}_…`.

    `timeout` and `retry` are passed to every call that takes them (library defaults if unset).
    """

    def __init__(
        self,
        client: firestore.Client,
        prefix: str = "moneypenny_sync",
        *,
        timeout: float | None = None,
        retry: Any = gapic_v1.method.DEFAULT,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.counters = StoreCounters()
        self._rpc: dict[str, Any] = {"retry": retry, "timeout": timeout}
        self._state = client.collection(f"{prefix}_state")
        self._journal = client.collection(f"{prefix}_journal")
        self._quarantine = client.collection(f"{prefix}_quarantine")
        self._runs = client.collection(f"{prefix}_runs")

    # -- plumbing ------------------------------------------------------------------------------
    def _get(self, ref: Any) -> Any:
        self.counters.round_trips += 1
        self.counters.reads += 1
        return ref.get(**self._rpc)

    def _get_all(self, refs: list[Any], field_paths: list[str] | None = None) -> list[Any]:
        self.counters.round_trips += 1
        self.counters.reads += len(refs)  # each document asked for, found or not
        return list(self.client.get_all(refs, field_paths=field_paths, **self._rpc))

    def _stream(self, query: Any, offset: int = 0) -> list[Any]:
        self.counters.round_trips += 1
        found = list(query.stream(**self._rpc))
        # At least one read per query, plus the documents the offset skipped (all of it when
        # the query returned any: the most Firestore bills when it returned none).
        self.counters.reads += max(1, len(found) + offset)
        return found

    def _commit(self, batch: Any, writes: int = 0, deletes: int = 0) -> None:
        self.counters.round_trips += 1
        batch.commit(**self._rpc)
        self.counters.writes += writes
        self.counters.deletes += deletes

    def _transaction(self, body: Callable[[Any], T]) -> T:
        # A fresh @transactional per call: the wrapper keeps per-run state (transaction ids),
        # so sharing one between threads would mix their retries.
        def attempt(transaction: Any) -> T:
            self.counters.round_trips += 1
            return body(transaction)

        for tries in range(_OUTER_ATTEMPTS):
            try:
                run = firestore.transactional(attempt)
                result: T = run(self.client.transaction(max_attempts=_TXN_ATTEMPTS))
                return result
            except gexc.Aborted:
                # Contention met on a read, which the client does not retry itself.
                if tries == _OUTER_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * 2**tries)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the client's gRPC channel (Client.close only closes HTTP sessions)."""
        api = getattr(self.client, "_firestore_api_internal", None)
        if api is not None:
            api.transport.close()
        self.client.close()  # type: ignore[no-untyped-call]

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

    # -- journal -------------------------------------------------------------------------------
    @staticmethod
    def _journal_doc(entry: JournalEntry) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "key": entry.key,
            "chat_time": _ts(entry.chat_time),
            "fetched_at": _ts(entry.fetched_at),
            "sheet": entry.sheet,
            "sheet_batch": entry.sheet_batch,
            "slack": entry.slack,
            "pending": not delivered(entry.sheet, entry.slack),
        }
        # As JSON text: one string field is far cheaper for the client to encode than a nested
        # map, and any item Moneypenny sends fits (map keys have rules, strings do not).
        doc["chat_json"] = json_text(entry.chat)  # a lone surrogate cannot fail the write
        if entry.expires_at is not None:
            doc["expires_at"] = _ts(entry.expires_at)
        return doc

    @staticmethod
    def _entry(doc: dict[str, Any]) -> JournalEntry:
        return JournalEntry(
            key=doc["key"],
            chat=_get_json(doc, "chat"),
            chat_time=_dt(doc["chat_time"]),
            fetched_at=_dt(doc["fetched_at"]),
            sheet=doc["sheet"],
            sheet_batch=doc.get("sheet_batch"),
            slack=doc["slack"],
            expires_at=stored_time(doc.get("expires_at")),
        )

    @_guard("journal_add")
    def journal_add(self, entries: Iterable[JournalEntry]) -> list[str]:
        first = first_of_each_key(entries)
        added: list[str] = []
        prepared = [(e, self._journal_doc(e)) for e in first.values()]
        for chunk in _sized_chunks(prepared, lambda pair: _text_bytes(pair[1])):
            docs = {e.key: (self._journal.document(_doc_id(e.key)), doc) for e, doc in chunk}
            present = {s.id for s in self._get_all([ref for ref, _ in docs.values()], ["key"]) if s.exists}
            missing = [key for key, (ref, _) in docs.items() if ref.id not in present]
            if not missing:
                continue
            batch = self.client.batch()
            for key in missing:
                batch.create(*docs[key])
            try:
                self._commit(batch, writes=len(missing))
                added.extend(missing)
            except gexc.AlreadyExists:
                # Another writer created one of them since our read: the batch wrote nothing,
                # so create one by one and leave theirs alone.
                for key in missing:
                    ref, data = docs[key]
                    try:
                        self.counters.round_trips += 1
                        ref.create(data, **self._rpc)
                        self.counters.writes += 1
                        added.append(key)
                    except gexc.AlreadyExists:
                        pass
        return added

    @_guard("journal_pending")
    def journal_pending(self) -> list[JournalEntry]:
        query = self._journal.where(filter=FieldFilter("pending", "==", True))
        entries = [self._entry(snap.to_dict()) for snap in self._stream(query)]
        entries.sort(key=lambda e: (e.chat_time, e.key))
        return entries

    @_guard("journal_get")
    def journal_get(self, keys: Iterable[str]) -> dict[str, JournalEntry]:
        found: dict[str, JournalEntry] = {}
        for chunk in _chunks(unique(keys)):
            for snap in self._get_all([self._journal.document(_doc_id(k)) for k in chunk]):
                if snap.exists:
                    entry = self._entry(snap.to_dict())
                    found[entry.key] = entry
        return found

    @_guard("journal_update")
    def journal_update(self, keys: Iterable[str], **changes: Any) -> None:
        """Set fields on existing entries (missing keys are skipped), keeping `pending` right.

        `pending` follows from sheet and slack. When a change names both (the pipeline always
        does) or neither, each chunk of ≤500 is one blind batch of updates. When it names
        only one, the chunk is read first (sheet and slack only) and written with a
        last-update-time precondition per document, so that a concurrent change fails the
        batch, which is then read and written again: `pending` never goes stale.
        """
        fields = journal_changes(changes)
        wanted = unique(keys)
        if not fields or not wanted:
            return
        data = dict(fields)
        if "expires_at" in data:
            # Absent rather than null, as the TTL policy expects.
            expires = data["expires_at"]
            data["expires_at"] = firestore.DELETE_FIELD if expires is None else _ts(expires)
        blind = ("sheet" in fields) == ("slack" in fields)
        if blind and "sheet" in fields:
            data["pending"] = not delivered(fields["sheet"], fields["slack"])
        for chunk in _chunks(wanted):
            refs = [self._journal.document(_doc_id(k)) for k in chunk]
            if blind:
                batch = self.client.batch()
                for ref in refs:
                    batch.update(ref, data)
                try:
                    self._commit(batch, writes=len(refs))
                    continue
                except gexc.NotFound:
                    pass  # some key is missing: nothing was written; the checked path skips it
            self._update_checked(refs, fields, data)

    def _update_checked(self, refs: list[Any], fields: dict[str, Any], data: dict[str, Any]) -> None:
        for _ in range(_UPDATE_ATTEMPTS):
            batch = self.client.batch()
            writes = 0
            for snap in self._get_all(refs, ["sheet", "slack"]):
                if not snap.exists:
                    continue
                now = snap.to_dict()
                sheet = fields.get("sheet", now.get("sheet"))
                slack = fields.get("slack", now.get("slack"))
                pending = not delivered(sheet, slack)
                option = self.client.write_option(last_update_time=snap.update_time)
                batch.update(snap.reference, {**data, "pending": pending}, option=option)
                writes += 1
            if not writes:
                return
            try:
                self._commit(batch, writes=writes)
                return
            except (gexc.FailedPrecondition, gexc.NotFound):
                continue  # changed or deleted since our read: read again
        raise StateStoreError("Firestore state store failed during journal_update: concurrent changes")

    def journal_prune(self, now: datetime) -> int:
        """Return 0: the TTL policy on `expires_at` deletes delivered entries in Firestore."""
        _ts(now)
        return 0

    # -- quarantine ----------------------------------------------------------------------------
    @_guard("quarantine")
    def quarantine(self, items: Iterable[RejectedItem]) -> None:
        docs = [
            {"raw": item.raw, "reason": item.reason, "fetched_at": _ts(item.fetched_at)}
            | ({} if item.expires_at is None else {"expires_at": _ts(item.expires_at)})
            for item in items
        ]
        for chunk in _sized_chunks(docs, _text_bytes):
            batch = self.client.batch()
            for doc in chunk:
                batch.create(self._quarantine.document(), doc)
            self._commit(batch, writes=len(chunk))

    @_guard("quarantine_count")
    def quarantine_count(self) -> int:
        self.counters.round_trips += 1
        result = self._quarantine.count().get(**self._rpc)  # type: ignore[no-untyped-call]
        count = int(result[0][0].value)
        self.counters.reads += max(1, -(-count // 1000))  # billed per 1,000 index entries
        return count

    @_guard("quarantine_oldest")
    def quarantine_oldest(self) -> datetime | None:
        query = self._quarantine.order_by("fetched_at").limit(1).select(["fetched_at"])
        snaps = self._stream(query)
        return stored_time(snaps[0].to_dict().get("fetched_at")) if snaps else None

    @_guard("quarantine_list")
    def quarantine_list(self) -> list[RejectedItem]:
        items = [
            RejectedItem(
                raw=doc.get("raw", ""), reason=doc.get("reason", ""), fetched_at=_dt(doc.get("fetched_at")),
                expires_at=stored_time(doc.get("expires_at")), id=snap.id,
            )
            for snap in self._stream(self._quarantine)
            for doc in (snap.to_dict(),)
        ]
        items.sort(key=lambda item: (item.fetched_at, item.id))
        return items

    @_guard("quarantine_remove")
    def quarantine_remove(self, ids: Iterable[str]) -> None:
        for chunk in _chunks([i for i in unique(ids) if i and "/" not in i]):
            batch = self.client.batch()
            for doc_id in chunk:
                batch.delete(self._quarantine.document(doc_id))
            self._commit(batch)

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
