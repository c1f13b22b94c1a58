"""The Firestore store's in-flight batches: one document per append to the sheet (its keys as
one JSON string, far cheaper to encode than an array), or several "<id>.<n>" parts when its keys
pass what one document holds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..common import guard
from ..common import utc as _ts
from ..models import InflightBatch
from .base import FirestoreBase
from .layout import batches as _chunks
from .layout import dt as _dt
from .layout import sized_batches as _sized_chunks
from .layout import text_bytes as _text_bytes
from .layout import translate as _translate

# Keys per batch document: about 700 KB of JSON for 32-digit keys (a document holds 1 MiB).
KEYS_PER_PART = 20_000

_guard = guard(_translate)


class FirestoreBatches(FirestoreBase):
    """`batch_put`, `batch_list` and `batch_delete` on the `{prefix}_batches` collection."""

    @property
    def _batches(self) -> Any:
        return self.collection("batches")

    @staticmethod
    def _parts(batch: InflightBatch) -> list[tuple[int, tuple[str, ...]]]:
        keys = batch.keys
        count = max(1, -(-len(keys) // KEYS_PER_PART))
        return [(n, keys[n * KEYS_PER_PART:(n + 1) * KEYS_PER_PART]) for n in range(count)]

    @_guard("batch_put")
    def batch_put(self, batch: InflightBatch) -> None:
        self._put_docs(self._batch_docs(batch))

    def _batch_docs(self, batch: InflightBatch) -> list[tuple[Any, dict[str, Any]]]:
        return [
            (self._batches.document(f"{batch.id}.{part}"), {
                "batch": batch.id, "part": part, "label": batch.label, "keys_json": json.dumps(list(keys)),
                "expires_at": _ts(batch.expires_at), "destination": batch.destination,
            })
            for part, keys in self._parts(batch)
        ]

    def _put_docs(self, docs: list[tuple[Any, dict[str, Any]]]) -> None:
        for chunk in _sized_chunks(docs, lambda item: _text_bytes(item[1])):
            writes = self.client.batch()
            for ref, doc in chunk:
                writes.set(ref, doc)
            self._commit(writes, writes=len(chunk))

    @_guard("batch_list")
    def batch_list(self) -> list[InflightBatch]:
        found: dict[str, list[dict[str, Any]]] = {}
        for snap in self._stream(self._batches):
            doc = snap.to_dict()
            found.setdefault(doc["batch"], []).append(doc)
        batches = []
        for bid in sorted(found):
            parts = sorted(found[bid], key=lambda part: int(part.get("part", 0)))
            keys = tuple(key for part in parts for key in json.loads(part["keys_json"]))
            # A batch stored before destinations were plug-ins has no destination: the sheet's.
            batches.append(InflightBatch(id=bid, label=parts[0]["label"], keys=keys, expires_at=_dt(parts[0]["expires_at"]),
                                         destination=parts[0].get("destination") or "sheet"))
        return batches

    @_guard("batch_delete")
    def batch_delete(self, batches: Iterable[InflightBatch]) -> None:
        refs = [self._batches.document(f"{batch.id}.{part}") for batch in batches for part, _keys in self._parts(batch)]
        for chunk in _chunks(refs):
            writes = self.client.batch()
            for ref in chunk:
                writes.delete(ref)
            self._commit(writes, deletes=len(chunk))
