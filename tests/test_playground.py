"""The local playground (`python -m sandbox --serve`) and the demo's output folder (issue #20):
the command line works against the stand-ins with the settings the playground prints, and
`--out` never deletes what the demo did not write."""

from __future__ import annotations

import csv
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sandbox.outdir import DEMO_FILES, OutDirRefused, prepare
from sandbox.playground import READY

REPO = Path(__file__).resolve().parent.parent


class Lines:
    """A child's stdout, line by line, with a timeout (a thread reads it)."""

    def __init__(self, stream) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def until(self, wanted: str, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            line = self.queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            if line is None:
                raise AssertionError("the playground ended early:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if line == wanted:
                return self.seen

    def rest(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while (line := self.queue.get(timeout=max(deadline - time.monotonic(), 0.01))) is not None:
            self.seen.append(line)
        return self.seen


def printed_environment(lines: list[str]) -> dict[str, str]:
    env = {}
    for line in lines:
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


def answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.timeout(300)
def test_the_playground_serves_status_run_and_the_quarantine_with_the_environment_it_prints(tmp_path):
    out = tmp_path / "play"
    child = subprocess.Popen([sys.executable, "-m", "sandbox", "--serve", "--out", str(out), "--every", "0"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = Lines(child.stdout)
    try:
        banner = lines.until(READY, timeout=120)
        printed = printed_environment(banner)
        assert printed["STATE_STORE"] == f"sqlite:{out / 'playground.sqlite3'}"
        assert {"MONEYPENNY_USERNAME", "MONEYPENNY_CHATS_URL", "SHEET_ID", "SHEETS_API_URL", "SLACK_BOT_TOKEN",
                "SLACK_CHANNEL", "SLACK_API_URL", "MONEYPENNY_SOURCES"} <= set(printed)
        for command in ("status", "check", "run", "backfill --from", "quarantine"):
            assert any(f"-m lib {command}" in line for line in banner), command
        # A shell with nothing but what the playground printed (no settings of the test's own).
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **printed}

        def cli(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "lib", *argv], cwd=REPO, env=env, capture_output=True,
                                  text=True, timeout=120)

        before = cli("status")
        assert before.returncode == 0 and before.stdout.startswith("NO RUNS YET"), before.stdout + before.stderr
        run = cli("run")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "written 10" in run.stdout and "set aside 1" in run.stdout  # 6 chats, 4 call messages
        stuck = cli("status")
        assert stuck.returncode == 1 and "set aside in quarantine" in stuck.stdout.splitlines()[0]
        assert cli("quarantine", "--drop-all", "--yes").returncode == 0
        after = cli("status")
        assert after.returncode == 0 and after.stdout.startswith("OK — "), after.stdout
    finally:
        child.send_signal(signal.SIGINT)
        try:
            code = child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
    assert code == 0
    tail = lines.rest(timeout=10)
    assert any(line.startswith("Stopped the stand-ins.") for line in tail)
    assert any("sheet: tab 'Chats' has 6 row(s)" in line for line in tail)
    assert not answers(printed["SHEETS_API_URL"]) and not answers(printed["MONEYPENNY_AUTH_URL"])
    with open(out / "playground-chats.csv", newline="") as saved:
        assert len(list(csv.reader(saved))) == 1 + 6


@pytest.mark.parametrize("serve", [False, True])
def test_out_refuses_a_folder_holding_anything_but_its_own_output_and_deletes_nothing(tmp_path, serve):
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine\n")
    (kept / "sheet.csv").write_text("an earlier demo's\n")
    (kept / ".git").mkdir()
    argv = [sys.executable, "-m", "sandbox", "--out", str(kept)] + (["--serve"] if serve else [])
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "notes.txt" in out.stderr and ".git" in out.stderr and "fix:" in out.stderr
    assert (kept / "notes.txt").read_text() == "mine\n" and (kept / "sheet.csv").read_text() == "an earlier demo's\n"
    assert (kept / ".git").is_dir()


def test_out_dot_in_the_checkout_is_refused_before_anything_is_touched():
    out = subprocess.run([sys.executable, "-m", "sandbox", "--out", "."], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and ".git" in out.stderr and "fix:" in out.stderr
    assert (REPO / "README.md").exists() and (REPO / "lib").is_dir()


def test_out_replaces_only_the_commands_own_earlier_output(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("sheet.csv", "state.sqlite3", "function.log", "playground.sqlite3"):
        (out / name).write_text("earlier\n")
    assert prepare(str(out), DEMO_FILES) == out.resolve()
    assert sorted(p.name for p in out.iterdir()) == ["playground.sqlite3"]  # the playground's is not the demo's
    (out / "sub").mkdir()
    with pytest.raises(OutDirRefused, match="sub"):
        prepare(str(out), DEMO_FILES)
    assert (out / "playground.sqlite3").exists()
    assert prepare(str(tmp_path / "new" / "folder"), DEMO_FILES).is_dir()
