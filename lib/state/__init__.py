"""The state store: its data types (`models`), contract (`contract`, `base`), typed documents
(`documents`) and `open_store`, which picks an implementation (`sqlite/`, `firestore/`).

The Firestore implementation is imported on demand: loading google.cloud.firestore costs
cold-start time that a SQLite run should not pay.
"""

from __future__ import annotations

from ..errors import SettingsError, StateStoreAccessError, UnknownJournalField
from ..settings import Settings
from .contract import StateStore
from .models import (
    DONE,
    INFLIGHT,
    PENDING,
    CachedToken,
    InflightBatch,
    JournalEntry,
    Lease,
    RejectedItem,
)
from .sqlite.store import SqliteStore

__all__ = [
    "DONE",
    "INFLIGHT",
    "PENDING",
    "CachedToken",
    "InflightBatch",
    "JournalEntry",
    "Lease",
    "RejectedItem",
    "StateStore",
    "UnknownJournalField",
    "open_store",
]


def open_store(settings: Settings, *, read_only: bool = False, create: bool = True) -> StateStore:
    """The store that STATE_STORE names, `sqlite:PATH` or `firestore`, scoped to settings.account
    (no account: the layout of a deployment without ACCOUNTS). An account's SQLite file is
    settings.sqlite_path (`dir/state.db` -> `dir/state.north.db`); its Firestore collections are `{prefix}_state`, `_journal`, …
    under the document `{prefix}_accounts/{account}`.

    `read_only` (status, check, the quarantine's listing): a SQLite file is opened for reading
    only, never created, migrated or locked (StateStoreMissing when it is not there). Firestore
    is only read by those commands anyway; a database that does not exist is reported by the
    first read. `create` False: a SQLite file must exist already (a command that only deletes)."""
    path = settings.sqlite_path
    if path:
        return SqliteStore(path, read_only=read_only, create=create)
    if settings.state_store != "firestore":
        raise SettingsError("STATE_STORE must be 'firestore' or 'sqlite:PATH'")

    # google.cloud.firestore (loaded by these, the store module too) costs cold-start time that a
    # SQLite run should not pay: imported only when the store is Firestore.
    import google.auth.exceptions
    from google.cloud import firestore

    from .firestore.store import FirestoreStore

    try:
        client = firestore.Client(
            project=settings.google_cloud_project or None, database=settings.firestore_database
        )
    except (google.auth.exceptions.DefaultCredentialsError, OSError) as exc:
        # No credentials or no project could be found in the environment.
        raise StateStoreAccessError(
            f"Firestore client could not start: {type(exc).__name__}",
            fix="Set GOOGLE_CLOUD_PROJECT and run with a service account (or "
            "`gcloud auth application-default login` locally).",
        ) from None
    return FirestoreStore(client, settings.firestore_collection_prefix, account=settings.account)
