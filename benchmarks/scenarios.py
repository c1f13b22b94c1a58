"""The benchmark's scenarios: what runs against fresh stand-ins, for our function and the naive way.

- `measure_function`: first run (1 chat: login, tab, header), N new chats, nothing new, token
  expired, and N more new chats under tracemalloc;
- `measure_naive`: the naive baseline (benchmarks/naive.py) on min(N, limit) chats;
- `measure_quota`: both ways under Sheets' per-user write quota.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.measure import Run, Worker, calls, measure_run, worker_env
from sandbox.standins import StandIns
from sandbox.standins.samples import sample_chats

SHEETS_WRITE_QUOTA = 60  # write requests per minute per user (Google's default)


# --------------------------------------------------------------------------- chats


def local_now() -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Europe/London")).replace(tzinfo=None, microsecond=0)


def make_chats(n: int, start: datetime, seed: int) -> list[dict[str, Any]]:
    # 5 s apart: 10,000 chats span 14 hours, and every chatTime is unique.
    return sample_chats(n, start=start, seed=seed, spacing=timedelta(seconds=5))


def row_bytes(chats: list[dict[str, Any]]) -> int:
    """The size of the chats' sheet rows as JSON: what the appends carry."""
    from zoneinfo import ZoneInfo

    from lib.sources.chats import chat_row, parse_batch

    parsed, _ = parse_batch(chats, ZoneInfo("Europe/London"))
    return sum(len(json.dumps(chat_row(c), ensure_ascii=False).encode("utf-8")) + 1 for c in parsed)


# --------------------------------------------------------------------------- store


def store_env(kind: str, tmp: Path, tag: str) -> dict[str, str]:
    if kind == "sqlite":
        return {"STATE_STORE": f"sqlite:{tmp / f'state-{tag}.sqlite3'}"}
    return {
        "STATE_STORE": "firestore",
        "GOOGLE_CLOUD_PROJECT": os.environ.get("GOOGLE_CLOUD_PROJECT") or "demo-benchmark",
        "FIRESTORE_COLLECTION_PREFIX": f"bench_{tag}_{os.getpid()}_{int(time.time())}",
    }


@dataclass
class FunctionResult:
    n: int
    runs: dict[str, Run] = field(default_factory=dict)
    append_bytes: int = 0
    # Firestore only: the main run's writes made again by a bare loop in the same process
    # (benchmarks/floor.py): cpu, wall, commits, writes, kinds.
    floor: dict[str, Any] | None = None

    def floor_ratio(self) -> float | None:
        """The main run's function CPU over the Firestore client's floor for the same writes."""
        if not self.floor or not self.floor.get("cpu"):
            return None
        return self.runs["main"].cpu / self.floor["cpu"]


def measure_function(n: int, latency: float, store: str, tmp: Path, seed: int, profile_dir: Path | None) -> FunctionResult:
    result = FunctionResult(n)
    start = local_now() - timedelta(days=2)
    with StandIns(latency=latency) as stand:
        env = worker_env(stand, store_env(store, tmp, f"fn{n}"))
        with Worker(env, "function", tmp / f"function-{n}.log") as worker:
            stand.moneypenny.add_chats(make_chats(1, start, seed + 1))
            result.runs["first"] = measure_run(worker, stand, "first (cold, sets up)", 1)

            batch = make_chats(n, start + timedelta(minutes=1), seed)
            result.append_bytes = row_bytes(batch)
            stand.moneypenny.add_chats(batch)
            profile = str(profile_dir / f"function-{n}.prof") if profile_dir else None
            firestore = store == "firestore"
            result.runs["main"] = measure_run(worker, stand, f"{n} new chats", n, profile=profile,
                                              record_writes=firestore)
            if firestore:  # the client's own floor: the same writes, same batches, same process
                result.floor = worker.call(cmd="floor")

            result.runs["idle"] = measure_run(worker, stand, "nothing new", 0)

            stand.moneypenny.expire_tokens()
            worker.call(cmd="expire_token")
            result.runs["expired"] = measure_run(worker, stand, "token expired", 0)

            stand.moneypenny.add_chats(make_chats(n, start + timedelta(days=1), seed + 2))
            result.runs["memory"] = measure_run(worker, stand, f"{n} new chats, traced", n, trace_memory=True)
    return result


# --------------------------------------------------------------------------- naive


@dataclass
class NaiveResult:
    n: int
    measured_on: int
    done: int
    error: str | None
    wall: float
    cpu: float
    setup_s: float
    loop_s: float
    setup_cpu: float
    loop_cpu: float
    calls: dict[str, int]

    @property
    def extrapolated(self) -> bool:
        return self.measured_on != self.n

    def per_chat(self, what: str) -> float:
        return getattr(self, what) / self.done if self.done else 0.0

    def wall_for_n(self) -> float:
        return self.setup_s + self.per_chat("loop_s") * self.n

    def cpu_for_n(self) -> float:
        return self.setup_cpu + self.per_chat("loop_cpu") * self.n

    def calls_for_n(self) -> dict[str, float]:
        if not self.done:
            return dict(self.calls)
        per_chat = {k: self.calls[k] / self.done for k in ("sheets_writes", "slack")}
        out = dict(self.calls)
        out["sheets_writes"] = round(per_chat["sheets_writes"] * self.n)
        out["sheets_appends"] = out["sheets_writes"]
        out["slack"] = round(per_chat["slack"] * self.n)
        out["sheets"] = out["sheets_reads"] + out["sheets_writes"]
        out["total"] = out["moneypenny"] + out["sheets"] + out["slack"]
        return out


def _naive_sheet(stand: StandIns) -> None:
    from lib.sources.chats import HEADER  # the same columns, so both ways write the same table

    stand.sheets.create_spreadsheet(stand.sheet_id, tabs=("Chats",))
    stand.sheets.set_rows(stand.sheet_id, "Chats", [list(HEADER[:-1])])


def measure_naive(n: int, limit: int, latency: float, tmp: Path, seed: int, write_quota: int | None = None) -> NaiveResult:
    k = min(n, limit)
    with StandIns(latency=latency) as stand:
        _naive_sheet(stand)
        stand.sheets.write_quota = write_quota
        stand.moneypenny.add_chats(make_chats(k, local_now() - timedelta(days=1), seed))
        env = worker_env(stand, {})
        with Worker(env, "naive", tmp / f"naive-{n}.log") as worker:
            stand.reset_calls()
            answer = worker.call(cmd="naive")
            counted = calls(stand)
    return NaiveResult(
        n=n, measured_on=k, done=answer["done"], error=answer["error"], wall=answer["wall"], cpu=answer["cpu"],
        setup_s=answer["setup_s"], loop_s=answer["loop_s"], setup_cpu=answer["setup_cpu"],
        loop_cpu=answer["loop_cpu"], calls=counted,
    )


@dataclass
class QuotaResult:
    chats: int
    naive: NaiveResult | None
    ours: Run | None


def measure_quota(chats: int, latency: float, store: str, tmp: Path, seed: int) -> QuotaResult:
    naive = measure_naive(chats, chats, latency, tmp, seed, write_quota=SHEETS_WRITE_QUOTA)
    with StandIns(latency=latency) as stand:
        stand.sheets.write_quota = SHEETS_WRITE_QUOTA
        stand.moneypenny.add_chats(make_chats(chats, local_now() - timedelta(days=1), seed))
        env = worker_env(stand, store_env(store, tmp, "quota"))
        with Worker(env, "function", tmp / "function-quota.log") as worker:
            ours = measure_run(worker, stand, f"{chats} chats under the quota", chats)
    return QuotaResult(chats, naive, ours)
