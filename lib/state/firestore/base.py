"""Firestore plumbing shared by the store's parts: the client and the counted calls and commits."""

from __future__ import annotations

from typing import Any

from google.api_core import gapic_v1
from google.cloud import firestore

from ...clock import Clock
from ...counters import StoreCounters
from ..base import StoreBase


class FirestoreBase(StoreBase):
    """The client, the collections and the counted calls every part of the store makes."""

    def __init__(
        self,
        client: firestore.Client,
        prefix: str = "moneypenny_sync",
        *,
        timeout: float | None = None,
        retry: Any = gapic_v1.method.DEFAULT,
        clock: Clock | None = None,
        account: str = "",
    ) -> None:
        self.client = client
        # The store's clock (the lease is judged by it): Firestore's read time of each read of
        # the run state, unless a test moves time by hand.
        self.clock = clock
        self.prefix = prefix
        self.account = account
        self.counters = StoreCounters()
        self._rpc: dict[str, Any] = {"retry": retry, "timeout": timeout}
        self._state = self.collection("state")
        self._journal = self.collection("journal")
        self._quarantine = self.collection("quarantine")
        self._runs = self.collection("runs")

    def collection(self, name: str) -> Any:
        """The store's collection `{prefix}_{name}`: at the top without an account (the layout of a
        deployment without ACCOUNTS), else under the account's document `{prefix}_accounts/{account}`.
        The collection ids stay the same, so the collection-group TTL policies and index
        exemptions cover every account."""
        if not self.account:
            return self.client.collection(f"{self.prefix}_{name}")
        return self.client.collection(f"{self.prefix}_accounts").document(self.account).collection(f"{self.prefix}_{name}")

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

    def close(self) -> None:
        """Close the client's gRPC channel (Client.close only closes HTTP sessions)."""
        api = getattr(self.client, "_firestore_api_internal", None)
        if api is not None:
            api.transport.close()
        self.client.close()  # type: ignore[no-untyped-call]
