"""The Firestore store's journal and quarantine: one document per chat, one per in-flight batch, one
per unreadable item."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from ...errors import StateStoreUnavailable
from ...text import json_text
from ..common import first_of_each_key, guard, journal_changes, stored_time, unique, with_batches
from ..common import utc as _ts
from ..models import DONE, JournalEntry, RejectedItem, delivered, legacy_states
from ..run_state import PENDING_MARK, RUN_STATE_DOC
from .batches import FirestoreBatches
from .layout import JOURNAL_BATCH
from .layout import batches as _chunks
from .layout import doc_id as _doc_id
from .layout import dt as _dt
from .layout import get_json as _get_json
from .layout import sized_batches as _sized_chunks
from .layout import text_bytes as _text_bytes
from .layout import translate as _translate

_UPDATE_ATTEMPTS = 5
# The fields of a journal document's old shape (before destinations were plug-ins).
_OLD_FIELDS = ("sheet", "slack", "sheet_batch")


_guard = guard(_translate)


class FirestoreJournalStore(FirestoreBatches):
    """The journal and the quarantine (the store's per-item collections)."""

    # -- journal -------------------------------------------------------------------------------
    # `states` (destination name -> state) and `labels` (destination name -> in-flight label)
    # are small maps; `pending` (true while a destination the run wrote is not done) serves the
    # pending query. `key` is stored only when the id is its hash.
    # A document written before destinations were plug-ins has no `states`: `sheet` and `slack`
    # (each only when not pending), `sheet_batch`, and `pending: false` alone meaning delivered
    # to both. It is read into the mapping, and written in the new shape (the old fields
    # deleted) the next time its states are written.
    @staticmethod
    def _journal_doc(entry: JournalEntry, doc_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"chat_time": _ts(entry.item_time), "fetched_at": _ts(entry.fetched_at),
                               "pending": not entry.delivered, "states": dict(entry.states)}
        if doc_id != entry.key:
            doc["key"] = entry.key
        if entry.labels:
            doc["labels"] = dict(entry.labels)
        # As JSON text: one string field is far cheaper for the client to encode than a nested
        # map, and any item Moneypenny sends fits (map keys have rules, strings do not).
        doc["chat_json"] = json_text(entry.item)  # a lone surrogate cannot fail the write
        if entry.expires_at is not None:
            doc["expires_at"] = _ts(entry.expires_at)
        return doc

    @staticmethod
    def _mappings(doc: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
        states = doc.get("states")
        if isinstance(states, dict):
            return dict(states), dict(doc.get("labels") or {})
        # The old shape: the two fields.
        if doc.get("pending") is False:
            return legacy_states(DONE, DONE), {}
        label = doc.get("sheet_batch")
        return legacy_states(doc.get("sheet"), doc.get("slack")), ({"sheet": label} if label else {})

    @classmethod
    def _entry(cls, snap: Any) -> JournalEntry:
        doc = snap.to_dict()
        states, labels = cls._mappings(doc)
        return JournalEntry(
            key=doc.get("key") or snap.id,
            item=_get_json(doc, "chat"),
            item_time=_dt(doc["chat_time"]),
            fetched_at=_dt(doc["fetched_at"]),
            states=states,
            labels=labels,
            expires_at=stored_time(doc.get("expires_at")),
        )

    @_guard("journal_add")
    def journal_add(self, entries: Iterable[JournalEntry]) -> list[str]:
        first = first_of_each_key(entries)
        added: list[str] = []
        prepared = [(e.key, self._journal.document(_doc_id(e.key)), self._journal_doc(e, _doc_id(e.key))) for e in first.values()]
        for chunk in _sized_chunks(prepared, lambda item: _text_bytes(item[2]), JOURNAL_BATCH):
            added.extend(self._create_absent(chunk))
        return added

    def _mark_pending(self, batch: Any, docs: Iterable[dict[str, Any]]) -> int:
        """Add the run state's pending mark to `batch` when it leaves an entry pending (1 write):
        the mark and the entries commit together or not at all (lib/state/run_state.py). A merge,
        so that it needs no read and creates the run state if there is none (then read as "not
        known")."""
        if not any(doc.get("pending") is True for doc in docs):
            return 0
        batch.set(self._state.document(RUN_STATE_DOC), PENDING_MARK, merge=True)
        return 1

    def _create_absent(self, docs: list[tuple[str, Any, dict[str, Any]]]) -> list[str]:
        # Blind creates: a normal run's keys are all new and cost no read. A commit that meets
        # a key already present (a reconcile) wrote nothing: only then are the chunk's keys
        # read and the missing ones created.
        try:
            return self._create(docs)
        except gexc.AlreadyExists:
            present = {s.id for s in self._get_all([ref for _key, ref, _doc in docs], ["pending"]) if s.exists}
            docs = [item for item in docs if item[1].id not in present]
        try:
            return self._create(docs)
        except gexc.AlreadyExists:
            pass
        # Another writer created one of them since our read: one by one, leaving theirs alone.
        added = []
        for key, ref, doc in docs:
            try:
                batch = self.client.batch()
                batch.create(ref, doc)
                self._commit(batch, writes=1 + self._mark_pending(batch, [doc]))
                added.append(key)
            except gexc.AlreadyExists:
                pass
        return added

    def _create(self, docs: list[tuple[str, Any, dict[str, Any]]]) -> list[str]:
        if docs:
            batch = self.client.batch()
            for _key, ref, doc in docs:
                batch.create(ref, doc)
            marked = self._mark_pending(batch, [doc for _key, _ref, doc in docs])
            self._commit(batch, writes=len(docs) + marked)
        return [key for key, _ref, _doc in docs]

    @_guard("journal_pending")
    def journal_pending(self) -> list[JournalEntry]:
        query = self._journal.where(filter=FieldFilter("pending", "==", True))
        entries = [self._entry(snap) for snap in self._stream(query)]
        if entries:
            with_batches(entries, self.batch_list())
        entries.sort(key=lambda e: (e.item_time, e.key))
        return entries

    @_guard("journal_pending")
    def journal_any_pending(self) -> bool:
        return bool(self._stream(self._journal.where(filter=FieldFilter("pending", "==", True)).limit(1)))

    @_guard("journal_get")
    def journal_get(self, keys: Iterable[str]) -> dict[str, JournalEntry]:
        found: dict[str, JournalEntry] = {}
        for chunk in _chunks(unique(keys)):
            for snap in self._get_all([self._journal.document(_doc_id(k)) for k in chunk]):
                if snap.exists:
                    entry = self._entry(snap)
                    found[entry.key] = entry
        return found

    @_guard("journal_update")
    def journal_update(self, keys: Iterable[str], **changes: Any) -> None:
        """Set fields on existing entries (missing keys are skipped), keeping `pending` right.

        `states` is always the entry's whole mapping, so `pending` follows from it without a
        read: each chunk of ≤500 is one blind batch of updates (an old-shape document's fields
        deleted with it). Only when a key is missing is the chunk read, and the entries that
        exist written.
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
        if "states" in data:
            data["pending"] = not delivered(data["states"])
            if "labels" not in data:
                data["labels"] = {}  # the mapping is new: a label of the old shape goes with it
            data.update({name: firestore.DELETE_FIELD for name in _OLD_FIELDS})
        for chunk in _chunks(wanted, JOURNAL_BATCH):
            refs = [self._journal.document(_doc_id(k)) for k in chunk]
            batch = self.client.batch()
            for ref in refs:
                batch.update(ref, data)
            marked = self._mark_pending(batch, [data])
            try:
                self._commit(batch, writes=len(refs) + marked)
                continue
            except gexc.NotFound:
                pass  # some key is missing: nothing was written; the checked path skips it
            self._update_existing(refs, data)

    def _update_existing(self, refs: list[Any], data: dict[str, Any]) -> None:
        for _ in range(_UPDATE_ATTEMPTS):
            batch = self.client.batch()
            writes = 0
            for snap in self._get_all(refs, ["pending"]):
                if snap.exists:
                    batch.update(snap.reference, data)
                    writes += 1
            if not writes:
                return
            writes += self._mark_pending(batch, [data])
            try:
                self._commit(batch, writes=writes)
                return
            except gexc.NotFound:
                continue  # deleted since our read: read again
        raise StateStoreUnavailable("Firestore state store failed during journal_update: concurrent changes")

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
    def quarantine_count(self, since: datetime | None = None) -> int:
        self.counters.round_trips += 1
        query: Any = self._quarantine
        if since is not None:  # a single-field range: Firestore's automatic index serves it
            query = query.where(filter=FieldFilter("fetched_at", ">=", _ts(since)))
        result = query.count().get(**self._rpc)
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
