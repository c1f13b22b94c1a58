"""The Firestore emulator for `--store firestore`: the one FIRESTORE_EMULATOR_HOST names, or one
started here (Google's emulator script from the Cloud SDK, with Java) and stopped at the end."""

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    # The script runs java as its child: signal its whole process group.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


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
    host = f"127.0.0.1:{_free_port()}"
    log = tempfile.NamedTemporaryFile(prefix="firestore-emulator-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen([script, "start", "--host=127.0.0.1", f"--port={host.rsplit(':', 1)[1]}"],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        started = time.monotonic()
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the Firestore emulator exited early; see {log.name}")
            try:
                with urllib.request.urlopen(f"http://{host}/", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() - started > READY_SECONDS:
                raise RuntimeError(f"the Firestore emulator was not ready after {READY_SECONDS:.0f} s; see {log.name}")
            time.sleep(0.2)
        os.environ["FIRESTORE_EMULATOR_HOST"] = host
        try:
            yield host
        finally:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
    finally:
        _stop(process)
        log.close()
