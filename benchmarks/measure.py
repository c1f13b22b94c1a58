"""Measuring one request to the function: the worker process, and what a run cost.

`Worker` runs benchmarks/worker.py in a child process (the function, served through
functions-framework) and talks JSON lines with it; `measure_run` makes one request and gathers
its wall and CPU time (taken inside that process), the calls the stand-ins counted, their busy
time (`StandIns.busy_seconds`) and the state store's own counters (`StoreCounters`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sandbox.standins import StandIns  # noqa: E402

# Variables the function reads; the worker gets only the benchmark's own values for these.
FUNCTION_VARS = ("MONEYPENNY_", "SHEET", "SLACK_", "STATE_STORE", "FIRESTORE_COLLECTION", "GOOGLE_CLOUD_PROJECT",
                  "CHAT_TIMEZONE", "HTTP_TIMEOUT", "LOG_FORMAT", "LEASE_", "RETENTION_", "RECONCILE_")


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory": memory,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


# --------------------------------------------------------------------------- worker process


class Worker:
    """benchmarks/worker.py in a child process, talking JSON lines."""

    def __init__(self, env: dict[str, str], mode: str, log_path: Path):
        self.log = open(log_path, "ab")  # noqa: SIM115 (closed in close(), outlives this call)
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py"), mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env=env, cwd=str(ROOT), text=True, bufsize=1,
        )
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the benchmark worker exited (code {self.proc.poll()}); see {self.log.name}")
        return json.loads(line)

    def call(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if "error" in answer and set(answer) == {"error"}:
            raise RuntimeError(f"worker: {answer['error']} (log: {self.log.name})")
        return answer

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.call_quit()
                self.proc.wait(timeout=30)
        except Exception:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        finally:
            self.log.close()

    def call_quit(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
        self.proc.stdin.flush()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def worker_env(stand: StandIns, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FUNCTION_VARS)}
    env.update(stand.env())
    env.update(
        LOG_FORMAT="json",  # to the worker's log file
        HTTP_TIMEOUT_SECONDS="120",
        PYTHONPATH=str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def calls(stand: StandIns) -> dict[str, int]:
    mp, sheets, slack = stand.moneypenny, stand.sheets, stand.slack
    out = {
        "moneypenny_login": mp.count("auth"),
        "moneypenny_log": mp.count("log"),
        "moneypenny": mp.count(),
        "sheets_reads": sheets.count_reads(),
        "sheets_writes": sheets.count_writes(),
        "sheets_appends": sheets.count("values.append"),
        "sheets": sheets.count(),
        "slack": slack.count(),
    }
    out["total"] = out["moneypenny"] + out["sheets"] + out["slack"]
    return out


# --------------------------------------------------------------------------- one run


@dataclass
class Run:
    """One request to the function: what it cost and what it did."""

    label: str
    chats: int
    status: int
    body: dict[str, Any]
    wall: float
    cpu: float
    calls: dict[str, int]
    round_trips: int | None
    maxrss_kb: int
    peak_bytes: int | None = None
    standins_busy: float | None = None  # the stand-ins' time answering, latency included
    store: dict[str, int] | None = None  # the store's round trips, reads, writes, deletes
    gc_cpu: float | None = None  # of `cpu`: the garbage collector's passes

    def standins_own(self, latency: float) -> float | None:
        """The stand-ins' own processing time in the run (their busy time minus the latency)."""
        if self.standins_busy is None:
            return None
        return max(0.0, self.standins_busy - self.calls["total"] * latency)

    def waits(self, latency: float) -> float:
        return self.calls["total"] * latency

    def beyond(self, latency: float) -> float:
        return max(0.0, self.wall - self.waits(latency))


def measure_run(worker: Worker, stand: StandIns, label: str, chats: int, **command: Any) -> Run:
    """One request through the function; raises unless it answered 200."""
    stand.reset_calls()  # the call logs and the busy times
    answer = worker.call(cmd="run", **command)
    if answer.get("status") != 200:
        raise RuntimeError(f"the {label} run failed: HTTP {answer.get('status')} {answer.get('body')}")
    return Run(
        label=label, chats=chats, status=answer["status"], body=answer.get("body") or {},
        wall=answer["wall"], cpu=answer["cpu"], calls=calls(stand), round_trips=answer.get("round_trips"),
        maxrss_kb=answer["maxrss_kb"], peak_bytes=answer.get("peak_bytes"), standins_busy=stand.busy_seconds,
        store=answer.get("store"), gc_cpu=answer.get("gc_cpu"),
    )
