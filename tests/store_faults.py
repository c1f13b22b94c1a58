"""The state store as a failing service: a wrapper that makes chosen store calls fail the way the
store's own library fails, for the tests (never in lib/).

`FaultyStore(store)` answers every call as `store` does, until a fault is queued: `fail("journal_update",
"unavailable")` makes the next `journal_update` fail. A fault is raised as the store's own library
raises it (sqlite3.OperationalError, google.api_core's ServiceUnavailable, Aborted,
DeadlineExceeded) and then goes through the store's own translation (the `guard` its methods carry),
so the sync meets exactly the error a real failure would give it (a StateStoreUnavailable naming the
operation).

Kinds (FAULT_KINDS):
- "unavailable": the store is down; nothing was done.
- "contention": a transaction gave up on contention (Firestore's Aborted, SQLite's "database is
  locked" after its busy timeout); nothing was done.
- "timeout": a read gets no answer (nothing done); a write *was carried out* and its answer lost
  (Firestore's DeadlineExceeded after the commit landed): the caller cannot know it succeeded.
"""

from __future__ import annotations

import inspect
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib.state.contract import StateStore

# Every call of the StateStore contract (lib/state/contract.py) that talks to the store: a new one
# is faulted too. A "timeout" on a write carries the write out first; a call not named a read here
# is taken for a write.
OPERATIONS = frozenset(name for name in dir(StateStore) if not name.startswith("_") and name != "close"
                       and inspect.isfunction(getattr(StateStore, name)))
READS = frozenset({
    "get_token", "journal_pending", "journal_any_pending", "journal_get", "batch_list", "quarantine_count", "quarantine_oldest",
    "quarantine_list", "read_run_state", "get_lease", "get_meta", "read_doc", "recent_runs",
})
WRITES = OPERATIONS - READS
FAULT_KINDS = ("unavailable", "contention", "timeout")


class InjectedStoreFault(Exception):
    """Marks an exception as injected (kept as the library exception's __cause__ for messages)."""


def library_error(store: StateStore, kind: str) -> Exception:
    """The exception the store's own library raises for a fault of this kind."""
    if _is_firestore(store):
        from google.api_core import exceptions as gexc

        return {"unavailable": gexc.ServiceUnavailable, "contention": gexc.Aborted,
                "timeout": gexc.DeadlineExceeded}[kind](f"injected {kind}")
    text = {"unavailable": "disk I/O error", "contention": "database is locked", "timeout": "database is locked"}[kind]
    return sqlite3.OperationalError(text)


def translated(store: StateStore, operation: str, exc: Exception) -> Exception:
    """`exc` as the store's own guard would raise it from `operation` (a StateStoreUnavailable)."""
    if _is_firestore(store):
        from lib.state.firestore.layout import translate
    else:
        from lib.state.sqlite.base import _translate as translate
    try:
        try:
            raise exc
        except Exception as raised:
            translate(store, operation, raised)
    except Exception as mapped:  # the guard raises from inside the except block
        return mapped
    return exc


def _is_firestore(store: Any) -> bool:
    return type(store).__module__.startswith("lib.state.firestore.store")


@dataclass
class _Queued:
    operation: str  # a name in OPERATIONS, or "*" for the next store call of any kind
    kind: str
    skip: int = 0  # let this many matching calls through first
    times: int | None = 1  # how many calls fail (None: every one until `clear`)


@dataclass
class FaultyStore:
    """A StateStore whose calls fail on demand (see the module docstring)."""

    store: StateStore
    queued: list[_Queued] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)  # "operation:kind" of each fault raised
    calls: int = 0  # store calls made through this wrapper
    # Called before each store call with its name: a schedule can queue a fault there.
    before: Callable[[str], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, operation: str, kind: str, *, skip: int = 0, times: int | None = 1) -> None:
        """Make the next `times` calls of `operation` ("*": any) fail with `kind` (None: every
        one until `clear`), after `skip` more go through."""
        if operation != "*" and operation not in OPERATIONS:
            raise ValueError(f"unknown store operation {operation!r}; known: {sorted(OPERATIONS)}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {FAULT_KINDS}")
        with self._lock:
            self.queued.append(_Queued(operation, kind, skip, times))

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self.queued.clear()

    def _take(self, operation: str) -> str | None:
        with self._lock:
            self.calls += 1
            for q in self.queued:
                if q.operation in ("*", operation):
                    if q.skip:
                        q.skip -= 1
                        return None
                    if q.times is not None:
                        q.times -= 1
                        if q.times == 0:
                            self.queued.remove(q)
                    self.injected.append(f"{operation}:{q.kind}")
                    return q.kind
        return None

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.store, name)
        if name not in OPERATIONS:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.before is not None:
                self.before(name)
            kind = self._take(name)
            if kind is None:
                return value(*args, **kwargs)
            if kind == "timeout" and name in WRITES:
                value(*args, **kwargs)  # carried out; the answer is lost
            raise translated(self.store, name, library_error(self.store, kind))

        return call
