"""The function's process in the benchmark: serves `main.sync_chats` through functions-framework.

Started by benchmarks/run.py with the environment pointing at the stand-ins (which live in the
parent process, so that their own CPU time and memory never count against the function). It
reads one JSON command per line on stdin and answers one JSON line on stdout:

    {"cmd": "run", "trace_memory": false, "profile": null}   one POST / through the function
    {"cmd": "run", "record_writes": true}                    ... noting its Firestore writes (benchmarks/floor.py)
    {"cmd": "floor"}                                         the noted writes again, by a bare loop
    {"cmd": "expire_token"}                                  make the cached token look expired
    {"cmd": "naive"}                                         one run of the naive baseline
    {"cmd": "quit"}

Each "run" answer carries the HTTP status and body, wall and CPU time of the request, the
tracemalloc peak when asked for, the process's ru_maxrss, and the state store's round trips
and document reads, writes and deletes in the request (its public `counters`).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

def _store() -> Any:
    """The state store of the function's warm Syncer (None before the first request)."""
    from lib.handler import warm_syncer

    syncer = warm_syncer()
    return None if syncer is None else syncer.store


def _store_counters() -> Any:
    store = _store()
    return None if store is None else store.counters.snapshot()


def _maxrss_kb() -> int:
    # Linux reports kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _expire_token() -> dict[str, Any]:
    """Move the cached token's expiry into the past, as if its 24 hours had run out."""
    from lib.state.models import CachedToken

    past = datetime.now(UTC) - timedelta(minutes=1)
    store = _store()
    token = None if store is None else store.get_token()
    if token is not None:
        store.put_token(CachedToken(value=token.value, expires_at=past))
    return {"expired": int(token is not None)}


_RECORDED: list[Any] = []  # the writes of the last run made with record_writes (floor.Commit)


def _floor() -> dict[str, Any]:
    """The last recorded run's writes, made again by a bare loop on the warm store's own client."""
    from benchmarks.floor import replay

    store = _store()
    if store is None or not hasattr(store, "client"):
        return {"error": "the floor needs a Firestore run with record_writes first"}
    return replay(store.client, _RECORDED, store.prefix, f"{store.prefix}_floor")


def _run(client, trace_memory: bool, profile: str | None, record_writes: bool = False) -> dict[str, Any]:
    if record_writes:
        from benchmarks.floor import WriteRecorder

        recorder = WriteRecorder()
        with recorder.recording():
            answer = _run(client, trace_memory, profile)
        _RECORDED[:] = recorder.commits
        answer["recorded"] = recorder.summary()
        return answer
    gc.collect()
    before = _store_counters()  # None: a cold instance opens its store during the request
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # where the CPU goes (waits do not show)
    if trace_memory:
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    from benchmarks.floor import GcTime

    with GcTime() as gc_time:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        response = client.post("/")
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = None
    if trace_memory:
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    if profiler:
        profiler.dump_stats(profile)
    after = _store_counters()
    used = None if after is None else (after.since(before) if before is not None else after)
    return {
        "status": response.status_code,
        "body": response.get_json(silent=True),
        "wall": wall,
        "cpu": cpu,
        "gc_cpu": gc_time.seconds,  # of `cpu`: the garbage collector's passes in the request
        "gc_passes": gc_time.passes,
        "peak_bytes": peak,
        "maxrss_kb": _maxrss_kb(),
        "round_trips": None if used is None else used.round_trips,
        "store": None if used is None else used.as_dict(),
    }


def _naive() -> dict[str, Any]:
    from benchmarks.naive import naive_sync

    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = naive_sync(os.environ)
    result.update(wall=time.perf_counter() - wall0, cpu=time.process_time() - cpu0, maxrss_kb=_maxrss_kb())
    return result


def main() -> int:
    os.chdir(ROOT)
    mode = sys.argv[1] if len(sys.argv) > 1 else "function"
    client = None
    if mode == "function":
        from functions_framework import create_app

        client = create_app("sync_chats", str(ROOT / "main.py")).test_client()
    out = sys.stdout
    sys.stdout = sys.stderr  # anything else printed goes to the log, not the protocol
    out.write(json.dumps({"ready": True, "maxrss_kb": _maxrss_kb()}) + "\n")
    out.flush()
    for line in sys.stdin:
        command = json.loads(line)
        cmd = command.get("cmd")
        try:
            if cmd == "quit":
                break
            if cmd == "run" and client is not None:
                answer = _run(client, bool(command.get("trace_memory")), command.get("profile"),
                              bool(command.get("record_writes")))
            elif cmd == "floor":
                answer = _floor()
            elif cmd == "expire_token":
                answer = _expire_token()
            elif cmd == "naive":
                answer = _naive()
            else:
                answer = {"error": f"unknown command {cmd!r} in mode {mode}"}
        except Exception as exc:  # report, keep serving
            import traceback

            traceback.print_exc()
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer, default=str) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
