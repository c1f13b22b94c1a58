"""Firestore plumbing shared by the store's parts: the client, counted calls, commits, transactions."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core import gapic_v1
from google.cloud import firestore

from ..counters import StoreCounters
from .base import StoreBase

_TXN_ATTEMPTS = 10  # the client's default of 5 is too few for a handful of racing instances
_OUTER_ATTEMPTS = 5  # for Aborted raised while reading inside a transaction (not retried by the client)

T = TypeVar("T")


class FirestoreBase(StoreBase):
    """The client, the collections and the counted calls every part of the store makes."""

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
        self.counters.offset_reads += offset
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
