"""Google's Firestore emulator (the Cloud SDK's script, with Java) for the tests and the
benchmark: found, started on a free port, waited for, and stopped with its whole process group.
`firestore_emulator()` is the benchmark's: the one FIRESTORE_EMULATOR_HOST names, or one of its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCRIPT = "platform/cloud-firestore-emulator/cloud_firestore_emulator"
SDK_ROOTS = ("/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk")
READY_SECONDS = 90.0


def emulator_script() -> str | None:
    """The emulator's start script, or None when Java or the emulator component is missing."""
    if not (os.environ.get("JAVA") or shutil.which("java")):
        return None
    roots = list(SDK_ROOTS)
    gcloud = shutil.which("gcloud")
    if gcloud:  # <sdk>/bin/gcloud, possibly behind a symlink
        roots.insert(0, str(Path(gcloud).resolve().parent.parent))
    for root in roots:
        script = Path(root) / SCRIPT
        if os.access(script, os.X_OK) and script.with_name("cloud-firestore-emulator.jar").exists():
            return str(script)
    return None


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Stop the emulator: the script runs java as its child, so signal the whole group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            process.poll()  # reap the shell, or its zombie keeps the group "alive"
            if not _group_alive(process.pid):
                return
            time.sleep(0.05)


def start(script: str, port: int, log: Any) -> subprocess.Popen:  # type: ignore[type-arg]
    """Start the emulator script on 127.0.0.1:`port`, its output to the open file `log`."""
    return subprocess.Popen([script, "start", "--host=127.0.0.1", f"--port={port}"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def wait_ready(process: subprocess.Popen, host: str, timeout: float, log_name: str) -> float:  # type: ignore[type-arg]
    """Wait until the emulator at `host` answers; seconds taken. RuntimeError if it exits or is late."""
    started = time.monotonic()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the Firestore emulator exited early; see {log_name}")
        try:
            with urllib.request.urlopen(f"http://{host}/", timeout=1) as reply:
                if reply.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the Firestore emulator was not ready after {timeout:.0f} s; see {log_name}")
        time.sleep(0.1)


@contextlib.contextmanager
def firestore_emulator() -> Iterator[str]:
    """Yield "host:port" of a Firestore emulator, with FIRESTORE_EMULATOR_HOST set to it."""
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        yield os.environ["FIRESTORE_EMULATOR_HOST"]
        return
    script = emulator_script()
    if script is None:
        raise RuntimeError("--store firestore needs FIRESTORE_EMULATOR_HOST or Google's Firestore emulator "
                           "(google-cloud-cli-firestore-emulator and a Java runtime)")
    port = free_port()
    host = f"127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="firestore-emulator-", suffix=".log", delete=False)  # noqa: SIM115
    process = start(script, port, log)
    try:
        wait_ready(process, host, READY_SECONDS, log.name)
        os.environ["FIRESTORE_EMULATOR_HOST"] = host
        try:
            yield host
        finally:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
    finally:
        stop(process)
        log.close()
