"""The Firestore client's own floor for a run: the same documents, written and committed in the
same batches by a bare loop in the same process (benchmarks/worker.py's "floor" command).

Absolute CPU times differ twofold between the machines here, so the 10,000-chat run's CPU is
judged as a ratio to what the client itself spends on the run's writes (issue #22 item 6).

`WriteRecorder` notes every write the run adds to a Firestore batch or transaction (kind,
document path, the very data and options it passed) and keeps those of each commit that
succeeded, in order. `replay` then makes the same commits with nothing else around them: for
each, `client.batch()`, one `create`/`set`/`update`/`delete` per write with a reference made
from the path, `commit()`. The documents go to a fresh collection prefix; the few an update
finds there already in the run (the run-state document) are created first, outside the timing.
A write made in a transaction is replayed in a plain batch (its read is the run's, not the
floor's), and an update's precondition on the update time becomes "exists" (the replay's
documents have their own times).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

KINDS = ("create", "set", "update", "delete")


class GcTime:
    """CPU seconds the garbage collector took while installed (gc.callbacks), and its passes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.passes = 0
        self._start: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.process_time()
        elif self._start is not None:
            self.seconds += time.process_time() - self._start
            self.passes += 1
            self._start = None

    def __enter__(self) -> GcTime:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self)


@dataclass
class Write:
    kind: str  # one of KINDS
    path: str  # the document's path in the database ("collection/id/...")
    data: Any = None  # what the run passed (None for a delete)
    merge: Any = False  # `set`'s merge argument


@dataclass
class Commit:
    writes: list[Write] = field(default_factory=list)


class WriteRecorder:
    """The writes of every successful commit while installed (`with recorder.recording():`)."""

    def __init__(self) -> None:
        self.commits: list[Commit] = []
        self._open: dict[int, list[Write]] = {}

    def _add(self, batch: Any, write: Write) -> None:
        self._open.setdefault(id(batch), []).append(write)

    def _committed(self, batch: Any, ok: bool) -> None:
        writes = self._open.pop(id(batch), [])
        if ok and writes:
            self.commits.append(Commit(writes))

    @contextmanager
    def recording(self) -> Iterator[WriteRecorder]:
        """Note the writes of every batch and transaction committed inside the block."""
        from google.cloud.firestore_v1.base_batch import BaseBatch
        from google.cloud.firestore_v1.batch import WriteBatch
        from google.cloud.firestore_v1.transaction import Transaction

        recorder = self
        saved = {name: BaseBatch.__dict__[name] for name in KINDS}
        saved_commit, saved_tx_commit = WriteBatch.__dict__["commit"], Transaction.__dict__["_commit"]

        def create(batch: Any, reference: Any, document_data: Any) -> None:
            recorder._add(batch, Write("create", reference._document_path, document_data))
            saved["create"](batch, reference, document_data)

        def set_(batch: Any, reference: Any, document_data: Any, merge: Any = False) -> None:
            recorder._add(batch, Write("set", reference._document_path, document_data, merge))
            saved["set"](batch, reference, document_data, merge=merge)

        def update(batch: Any, reference: Any, field_updates: Any, option: Any = None) -> None:
            recorder._add(batch, Write("update", reference._document_path, field_updates))
            saved["update"](batch, reference, field_updates, option=option)

        def delete(batch: Any, reference: Any, option: Any = None) -> None:
            recorder._add(batch, Write("delete", reference._document_path))
            saved["delete"](batch, reference, option=option)

        def noting(saved_fn: Any) -> Any:
            # A commit (a batch's or a transaction's) that notes whether its writes landed.
            def commit(batch: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    result = saved_fn(batch, *args, **kwargs)
                except BaseException:
                    recorder._committed(batch, False)
                    raise
                recorder._committed(batch, True)
                return result
            return commit

        commit, tx_commit = noting(saved_commit), noting(saved_tx_commit)

        patches = {"create": create, "set": set_, "update": update, "delete": delete}
        try:
            for name, fn in patches.items():
                setattr(BaseBatch, name, fn)
            WriteBatch.commit = commit  # type: ignore[method-assign]
            Transaction._commit = tx_commit  # type: ignore[method-assign]
            yield self
        finally:
            for name, fn in saved.items():
                setattr(BaseBatch, name, fn)
            WriteBatch.commit = saved_commit  # type: ignore[method-assign]
            Transaction._commit = saved_tx_commit  # type: ignore[method-assign]
            self._open.clear()

    def summary(self) -> dict[str, int]:
        """Commits and writes recorded, by kind."""
        out = {"commits": len(self.commits), "writes": sum(len(c.writes) for c in self.commits)}
        for kind in KINDS:
            out[kind] = sum(1 for c in self.commits for w in c.writes if w.kind == kind)
        return out


def _moved(path: str, old: str, new: str) -> str:
    # Every collection id of the store starts with its prefix (also when nested under an
    # account's document): the same path under the floor's own prefix.
    return "/".join(new + part[len(old):] if part.startswith(old) else part for part in path.split("/"))


def replay(client: Any, commits: list[Commit], old_prefix: str, new_prefix: str) -> dict[str, Any]:
    """The same commits by a bare loop under `new_prefix`; its CPU and wall time, and what it wrote."""
    plan = [[Write(w.kind, _moved(w.path, old_prefix, new_prefix), w.data, w.merge) for w in c.writes]
            for c in commits]
    made: set[str] = set()
    needed: list[str] = []
    for writes in plan:
        for w in writes:
            if w.kind in ("create", "set"):
                made.add(w.path)
            elif w.kind == "update" and w.path not in made:
                needed.append(w.path)
                made.add(w.path)
    for chunk_start in range(0, len(needed), 500):  # outside the timing: what the run found there
        setup = client.batch()
        for path in needed[chunk_start:chunk_start + 500]:
            setup.set(client.document(path), {"floor": True})
        setup.commit()
    gc.collect()
    with GcTime() as gc_time:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for writes in plan:
            batch = client.batch()
            for w in writes:
                ref = client.document(w.path)
                if w.kind == "create":
                    batch.create(ref, w.data)
                elif w.kind == "set":
                    batch.set(ref, w.data, merge=w.merge)
                elif w.kind == "update":
                    batch.update(ref, w.data)
                else:
                    batch.delete(ref)
            batch.commit()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu": cpu, "wall": wall, "gc_cpu": gc_time.seconds, "gc_passes": gc_time.passes,
            "commits": len(plan), "writes": sum(len(w) for w in plan),
            "kinds": {kind: sum(1 for ws in plan for w in ws if w.kind == kind) for kind in KINDS}}
