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
    # It shows a claim end to end: the Owner cell of the clicked line's row, and the summary's line.
    owners = [(r["Chat key"], r["Owner"]) for r in by_header(rows) if r["Owner"]] + [
        (r["Call id"], r["Owner"]) for r in by_header(calls) if r["Owner"]]
    assert [owner for _, owner in owners] == ["Ann"], owners
    assert f"Claim button ({owners[0][0][-8:]})" in out.stdout and "claimed by *Ann*" in out.stdout
    # Its last lines say how to use the command line on what it left, and they work as printed.
    [status] = [line.strip() for line in out.stdout.splitlines() if line.strip().endswith("-m lib status")]
    assert status.startswith("STATE_STORE=sqlite:") and "-m sandbox --serve" in out.stdout.splitlines()[-1]
    shell = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    read = subprocess.run(status, shell=True, cwd=REPO, env=shell, capture_output=True, text=True, timeout=120)
    assert read.returncode == 0 and read.stdout.startswith("OK — "), read.stdout + read.stderr


@pytest.mark.timeout(180)
def test_demo_with_accounts_fills_each_accounts_own_tabs_and_channel(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "sandbox", "--accounts", "2", "--chats", "2", "--calls", "1", "--out", str(tmp_path / "run")],
        cwd=REPO, capture_output=True, text=True, timeout=170,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    keys: dict[str, set[str]] = {}
    for account in ("north", "east-london"):
        with open(tmp_path / "run" / f"sheet.{account}.csv", newline="") as f:
            chats = by_header(list(csv.reader(f)))
        with open(tmp_path / "run" / f"calls.{account}.csv", newline="") as f:
            calls = by_header(list(csv.reader(f)))
        keys[account] = {r["Chat key"] for r in chats}
        assert len(chats) == len(keys[account]) == 2 and len(calls) == 1, account
        # Its own channel, its own summary, and its own state file beside STATE_STORE's.
        assert f"Slack #sales-{account} (1 message)" in out.stdout
        assert (tmp_path / "run" / f"state.{account}.sqlite3").is_file()
    assert not keys["north"] & keys["east-london"]  # each account's own chats, none of the other's
    assert out.stdout.count("2 NEW CHATS · 1 NEW CALL") == 2
    assert not (tmp_path / "run" / "state.sqlite3").exists()
    # Its last lines say how to read what it left, every account's status and one account's quarantine.
    shell = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    lines = [line.strip() for line in out.stdout.splitlines() if " -m lib " in line]
    status = [line.split("    ")[0] for line in lines if " -m lib status" in line]
    quarantine = [line for line in lines if line.endswith("-m lib quarantine --account north")]
    assert len(status) == len(quarantine) == 1, lines
    read = subprocess.run(status[0], shell=True, cwd=REPO, env=shell, capture_output=True, text=True, timeout=120)
    assert read.returncode == 0, read.stdout + read.stderr
    assert [line.split()[:2] for line in read.stdout.splitlines()[:2]] == [["north", "OK"], ["east-london", "OK"]]
    read = subprocess.run(quarantine[0], shell=True, cwd=REPO, env=shell, capture_output=True, text=True, timeout=120)
    assert read.returncode == 0 and "empty" in read.stdout, read.stdout + read.stderr


def test_demo_refuses_accounts_out_of_range_or_with_the_playground():
    for args, says in ((["--accounts", "99"], "--accounts must be 1 to 8, not 99"),
                       (["--accounts", "2", "--serve"], "the playground (--serve) runs one account")):
        out = subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 2 and says in out.stderr, out.stderr
