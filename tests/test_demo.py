"""The demo (`python -m sandbox`, the README's first command) runs the real function end to end."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import by_header

REPO = Path(__file__).resolve().parent.parent


def test_demo_help_lists_its_exit_codes():
    out = subprocess.run([sys.executable, "-m", "sandbox", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "usage: python -m sandbox" in out.stdout and "exit codes" in out.stdout


@pytest.mark.timeout(180)
def test_demo_fills_the_sheet_and_posts_one_summary(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "sandbox", "--chats", "3", "--out", str(tmp_path / "run")],
        cwd=REPO, capture_output=True, text=True, timeout=170,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    with open(tmp_path / "run" / "sheet.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "Chat time" and rows[0][-3:] == ["Chat key", "Owner", "Claimed at"]
    assert len(rows) == 1 + 3 and len({r["Chat key"] for r in by_header(rows)}) == 3
    assert "Slack (1 message)" in out.stdout
    with open(tmp_path / "run" / "calls.csv", newline="") as f:
        calls = list(csv.reader(f))
    assert calls[0][0] == "Call time" and calls[0][-3:] == ["Call id", "Owner", "Claimed at"]
    assert len(calls) == 1 + 5 and len({r["Call id"] for r in by_header(calls)}) == 5
    assert "3 NEW CHATS · 5 NEW CALLS" in out.stdout
    # Its last lines say how to use the command line on what it left, and they work as printed.
    [status] = [line.strip() for line in out.stdout.splitlines() if line.strip().endswith("-m lib status")]
    assert status.startswith("STATE_STORE=sqlite:") and "-m sandbox --serve" in out.stdout.splitlines()[-1]
    shell = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    read = subprocess.run(status, shell=True, cwd=REPO, env=shell, capture_output=True, text=True, timeout=120)
    assert read.returncode == 0 and read.stdout.startswith("OK — "), read.stdout + read.stderr
