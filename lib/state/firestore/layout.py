"""How `FirestoreStore` lays data out in documents: times, JSON values, ids, sort keys, batches, errors.

Firestore's limits live here: what a field may hold, what an id may be, how many writes and
bytes a commit takes; and which Google errors mean "no access" rather than "try again".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import google.auth.exceptions
from google.api_core import exceptions as gexc

from ...errors import StateStoreAccessError, StateStoreMissing, StateStoreUnavailable
from ..common import chunks, stored_time

BATCH = 500  # Firestore's limit of writes per commit
# Journal entries per commit: one write is left for the run state's pending mark (run_state.PENDING_MARK).
JOURNAL_BATCH = BATCH - 1
# Bytes of documents per commit: Firestore takes 10 MiB per request, its emulator 4 MiB (gRPC).
BATCH_BYTES = 3_000_000
DOC_OVERHEAD = 512  # field names, timestamps, states, the document name

MAX_DEPTH = 16  # Firestore allows 20 levels of nesting; stay clear of it

T = TypeVar("T")

ACCESS_FIX = (
    "Check that the Firestore database exists in Native mode (FIRESTORE_DATABASE, "
    "GOOGLE_CLOUD_PROJECT) and that the function's service account has roles/datastore.user."
)


def dt(value: Any) -> datetime:
    # Firestore hands back DatetimeWithNanoseconds; callers get a plain aware datetime. Only
    # for fields every document has; `stored_time` for the others.
    moment = stored_time(value)
    assert moment is not None
    return moment


def storable(value: Any, depth: int = 0) -> bool:
    """Whether Firestore can hold this JSON value as native fields (else it is kept as text)."""
    if depth > MAX_DEPTH:
        return False
    if value is None or isinstance(value, (bool, str, float)):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and k and not (k.startswith("__") and k.endswith("__"))
            and storable(v, depth + 1)
            for k, v in value.items()
        )
    if isinstance(value, list):
        # Firestore refuses an array directly inside an array.
        return all(not isinstance(v, list) and storable(v, depth + 1) for v in value)
    return False


def put_json(doc: dict[str, Any], name: str, value: Any) -> None:
    if storable(value):
        doc[name] = value
    else:
        doc[name + "_json"] = json.dumps(value, ensure_ascii=False)


def get_json(doc: dict[str, Any], name: str) -> Any:
    text = doc.get(name + "_json")
    return json.loads(text) if text is not None else doc.get(name)


def doc_id(key: str) -> str:
    # Firestore ids cannot hold '/', be '.' or '..', match __.*__ or pass 1,500 bytes. Raw keys
    # starting with '__' are hashed too, so a hashed id ('__k_…') never equals a raw key.
    if (
        key and "/" not in key and key not in (".", "..") and not key.startswith("__")
        and len(key.encode()) <= 1500
    ):
        return key
    return "__k_" + hashlib.sha256(key.encode()).hexdigest()


def batches(items: list[T], size: int = BATCH) -> Iterator[list[T]]:
    return chunks(items, size)


def sized_batches(items: list[T], size_of: Callable[[T], int], count: int = BATCH) -> Iterator[list[T]]:
    """Chunks of at most `count` (BATCH) items and (but for a single larger item) BATCH_BYTES."""
    chunk: list[T] = []
    used = 0
    for item in items:
        size = size_of(item) + DOC_OVERHEAD
        if chunk and (len(chunk) == count or used + size > BATCH_BYTES):
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += size
    if chunk:
        yield chunk


def text_bytes(doc: dict[str, Any]) -> int:
    return sum(len(v.encode("utf-8")) for v in doc.values() if isinstance(v, str))


ACCESS_ERRORS = (
    gexc.PermissionDenied,
    gexc.Unauthenticated,
    gexc.NotFound,  # the database (our documents are read before they are updated)
    google.auth.exceptions.DefaultCredentialsError,
    google.auth.exceptions.RefreshError,
)


def failure(operation: str, exc: BaseException) -> StateStoreUnavailable | StateStoreAccessError:
    # The server's text can name documents (chat keys); the exception type says enough.
    name = type(exc).__name__
    if isinstance(exc, ACCESS_ERRORS):
        return StateStoreAccessError(f"Firestore refused {operation}: {name}", fix=ACCESS_FIX)
    return StateStoreUnavailable(f"Firestore state store failed during {operation}: {name}")


# Operations that only read: a NotFound there means no database (a missing document is no error).
READS = frozenset({"get_token", "read_run_state", "get_meta", "journal_get", "journal_pending", "quarantine_count",
                   "quarantine_oldest", "quarantine_list"})


def translate(store: Any, operation: str, exc: Exception) -> None:
    """Raise StateStoreUnavailable naming the operation for a Google API failure (no data)."""
    if isinstance(exc, gexc.NotFound) and operation in READS:
        # A read finds no document without an error: NotFound is the database itself.
        client = getattr(store, "client", None)
        database, project = getattr(client, "_database", "(default)"), getattr(client, "project", "?")
        raise StateStoreMissing(
            f"no Firestore database FIRESTORE_DATABASE={database!r} in project GOOGLE_CLOUD_PROJECT={project!r} "
            f"({operation}: NotFound)", fix=ACCESS_FIX) from None
    if isinstance(exc, (gexc.GoogleAPIError, google.auth.exceptions.GoogleAuthError)):
        raise failure(operation, exc) from None
    # The client reports exhausted transaction retries as a ValueError chained to the last API
    # error; anything else is a programming error and stays as it is.
    if isinstance(exc, ValueError) and isinstance(exc.__cause__, gexc.GoogleAPIError):
        raise StateStoreUnavailable(f"Firestore state store failed during {operation}: contention") from None
