"""`StoreBase`, the part both stores share on top of the contract (`contract`).

The data types the store holds are in `models`; the run state's parts (lease, run history) are
built once for both stores in `run_store`. Two implementations keep it: `SqliteStore` (local
runs, tests) and `FirestoreStore` (the cloud). The contract tests in
tests/test_state_contract.py run against both.
"""

from __future__ import annotations

from .contract import StateStore
from .documents import D, Document


class StoreBase(StateStore):
    """What both stores share on top of their own methods: `round_trips` and typed documents.

    The typed documents are built once here on get_meta/put_meta/delete_meta, so they cost the
    same round trips and billed documents as the raw calls.
    """

    @property
    def round_trips(self) -> int:
        """Server round trips so far (the same as `counters.round_trips`)."""
        return self.counters.round_trips

    def read_doc(self, kind: type[D]) -> D | None:
        """The document of this class (under its NAME), or None; DocumentError if malformed."""
        data = self.get_meta(kind.NAME)
        return None if data is None else kind.from_dict(data)

    def write_doc(self, doc: Document) -> None:
        """Replace the document under its class's NAME with `doc.to_dict()`."""
        self.put_meta(doc.NAME, doc.to_dict())

    def delete_doc(self, kind: type[Document]) -> None:
        """Remove the document of this class if present."""
        self.delete_meta(kind.NAME)

    def close(self) -> None:
        """Release connections."""
