"""The function as Cloud Run runs it: functions-framework's own server (`functions-framework
--target sync_chats`, gunicorn behind it) in a child process, with what Cloud Run sets
(K_SERVICE; LOG_EXECUTION_ID=true, which Google adds to every function made through the Cloud
Functions v2 API), pointed at the stand-ins; and the Python runtime Terraform deploys."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from sandbox.standins import StandIns
from sandbox.standins.samples import sample_chats
from tests.conftest import EMULATOR_PROJECT
from tests.harness import by_header

ROOT = Path(__file__).resolve().parent.parent
SEVERITIES = {"DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}
LABELS = "logging.googleapis.com/labels"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    url: str
    stand: StandIns
    proc: subprocess.Popen
    env: dict[str, str]

    def call(self, execution_id: str, **headers: str) -> requests.Response:
        return requests.post(self.url, headers={"Function-Execution-Id": execution_id, **headers}, timeout=60)

    def stop(self) -> tuple[str, str]:
        """Stop the server; its whole stdout and stderr."""
        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return out, err


@contextlib.contextmanager
def serving(stand: StandIns, tmp_path: Path, **extra: str) -> Iterator[Served]:
    """main.sync_chats served by `functions-framework --target sync_chats` as Cloud Run serves it,
    pointed at `stand` (settings from `stand.env()`, then `extra`); stopped on leaving."""
    script = Path(sys.executable).parent / "functions-framework"
    assert script.exists(), f"functions-framework's command is not in {script.parent}: pip install -r requirements.txt"
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MONEYPENNY_", "SHEET", "SLACK_", "STATE_STORE", "FIRESTORE_", "ALERT_", "LOG_",
                                "ACCOUNTS"))}
    env.update(stand.env())
    env.update({
        "STATE_STORE": f"sqlite:{tmp_path / 'state.sqlite3'}",
        "SLACK_ALERT_CHANNEL": "C0ALERTS",  # a channel the bot is not in: the alert path logs too
        "K_SERVICE": "moneypenny-sync", "K_REVISION": "moneypenny-sync-00001-abc",
        "LOG_EXECUTION_ID": "true",
        "PYTHONUNBUFFERED": "1",
        **extra,
    })
    env.pop("LOG_FORMAT", None)  # K_SERVICE alone chooses JSON, as in Cloud Run
    proc = subprocess.Popen(
        [str(script), "--target", "sync_chats", "--source", str(ROOT / "main.py"),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    served = Served(f"http://127.0.0.1:{port}/", stand, proc, env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"functions-framework exited: {served.stop()}"
            try:
                # A connect, not a request: any request runs a sync.
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "functions-framework did not start within 60 s"
                time.sleep(0.2)
        yield served
    finally:
        if proc.poll() is None:
            served.stop()


@pytest.fixture
def served(tmp_path) -> Iterator[Served]:
    """main.sync_chats served by `functions-framework --target sync_chats` as Cloud Run serves it."""
    with StandIns() as stand, serving(stand, tmp_path) as one:
        yield one


def test_served_as_cloud_run_serves_it_each_record_is_one_json_line_with_the_execution_id_and_no_secret(served):
    stand = served.stand
    stand.moneypenny.add_chats(sample_chats(4, start=datetime.now() - timedelta(hours=2), seed=5))
    first = served.call("exec-healthy-1")
    assert first.status_code == 200 and first.json()["appended"] == 4, first.text
    # A run that fails: the bot is removed from the channel, so the summary and the alert fail.
    stand.slack.kick(served.env["SLACK_CHANNEL"])
    stand.moneypenny.add_chats(sample_chats(2, start=datetime.now() - timedelta(hours=1), seed=6))
    second = served.call("exec-failed-2")
    assert second.status_code >= 500, second.text
    tokens = list(stand.moneypenny._tokens)  # the access tokens it issued: secrets too
    out, err = served.stop()

    lines = [line for line in (out + err).splitlines() if line.strip()]
    entries = []
    for line in lines:
        entry = json.loads(line)  # every line is one JSON object, which Cloud Logging reads as jsonPayload
        assert isinstance(entry, dict), line
        entries.append(entry)
    assert entries, f"the server wrote nothing: stdout {out!r}, stderr {err!r}"
    for entry in entries:
        # Our shape: a severity Cloud Logging knows, a message, the logger and the time.
        assert entry.get("severity") in SEVERITIES, entry
        assert entry.get("message") and entry.get("logger") and entry.get("time"), entry
    runs = [e for e in entries if e["message"] in ("run ok", "run failed")]
    # Each run's outcome line, once, labelled with its request's execution id.
    assert [(e["message"], e[LABELS]["execution_id"]) for e in runs] == [
        ("run ok", "exec-healthy-1"), ("run failed", "exec-failed-2")]
    assert [e[LABELS]["run_id"] for e in runs] == [first.json()["run_id"], second.json()["run_id"]]
    # Every line a request logged names that request.
    assert all(e.get(LABELS, {}).get("execution_id") in ("exec-healthy-1", "exec-failed-2") for e in entries), entries
    # No line twice (functions-framework's copy of a record would repeat its message).
    keyed = [(e["message"], e["time"]) for e in entries]
    assert len(keyed) == len(set(keyed)), keyed

    secrets = [served.env["MONEYPENNY_USERNAME"], served.env["MONEYPENNY_PASSWORD"], served.env["SLACK_BOT_TOKEN"],
               *tokens]
    assert len(secrets) >= 4
    for secret in secrets:
        assert secret not in out + err


@pytest.mark.parametrize("kind", ["sqlite", "firestore"])
def test_two_accounts_called_at_once_in_threads_and_in_separate_processes_both_deliver_nothing_twice(
        kind, tmp_path, request):
    """ACCOUNTS=north,east-london served as Cloud Run serves it, on each store: both accounts' runs
    at once in two threads of one instance, then in two instances (processes), each account also
    called on the other instance at the same moment (a scheduler retry landing elsewhere). Each
    account's chats reach its own sheet once and its own channel once, and the two accounts' runs
    go on side by side (their calls to the services interleave), neither waiting for the other."""
    store: dict[str, str] = {}
    if kind == "firestore":
        request.getfixturevalue("firestore_client")  # the emulator, emptied
        store = {"STATE_STORE": "firestore", "GOOGLE_CLOUD_PROJECT": EMULATOR_PROJECT,
                 "FIRESTORE_EMULATOR_HOST": request.getfixturevalue("firestore_emulator")}
    with StandIns(latency=0.05) as stand:
        extra = {k: v for k, v in stand.accounts_env(["north", "east-london"]).items() if k not in stand.env()}
        extra.update(store)
        accounts = dict(stand.accounts)
        sent: dict[str, list[str]] = {account: [] for account in accounts}

        def arrive(seed: int) -> None:
            for n, (account, own) in enumerate(accounts.items()):
                chats = sample_chats(3, start=datetime.now() - timedelta(hours=2), seed=seed * 10 + n)
                for chat in chats:
                    chat["name"] = f"{chat['name']} ({account} {seed})"
                stand.moneypenny.add_chats(chats, user=own.username)
                sent[account] += [chat["name"] for chat in chats]

        def at_once(calls: list[tuple[Served, str]]) -> list[tuple[str, dict]]:
            start = threading.Barrier(len(calls))

            def call(where: Served, account: str) -> tuple[str, dict]:
                start.wait()
                response = requests.post(f"{where.url}?account={account}", timeout=60)
                assert response.status_code == 200, response.text
                return account, response.json()

            with ThreadPoolExecutor(len(calls)) as pool:
                return list(pool.map(lambda c: call(*c), calls))

        with serving(stand, tmp_path, **extra) as one, serving(stand, tmp_path, **extra) as two:
            arrive(1)
            stand.reset_calls()
            for account, body in at_once([(one, "north"), (one, "east-london")]):
                assert (body["account"], body["appended"]) == (account, 3), body
            # Side by side: each account's calls to the services began before the other's ended.
            spans = []
            for own in accounts.values():
                moments = [c.at for name, standin in (("moneypenny", stand.moneypenny), ("sheets", stand.sheets),
                                                      ("slack", stand.slack))
                           for c in standin.calls(tenant=own.tenants[name])]
                spans.append((min(moments), max(moments)))
            assert max(begin for begin, _ in spans) < min(end for _, end in spans), spans

            arrive(2)
            answers = at_once([(one, "north"), (two, "east-london"), (two, "north"), (one, "east-london")])
            for account in accounts:
                mine = [body for named, body in answers if named == account]
                assert all(body["account"] == account for body in mine), mine
                assert sum(body["appended"] for body in mine) == 3, mine  # one of the two ran, or both shared

    for account, own in accounts.items():
        names = Counter(r["Name"] for r in by_header(stand.sheets.rows(own.sheet_id, "Chats")))
        assert names == Counter(sent[account]), f"{account}: missing {names - Counter(sent[account])} or " \
                                                 f"extra {Counter(sent[account]) - names}"
        announced = [int(m) for msg in stand.slack.messages(own.channel_id)
                     for m in re.findall(r"(\d+) new chats?", msg.get("text") or "")[:1]]
        assert sum(announced) == 6, (account, announced)
        # ... kept in its own state store.
        if kind == "sqlite":
            assert (tmp_path / f"state.{account}.sqlite3").is_file()
        else:
            client = request.getfixturevalue("firestore_client")
            account_doc = client.collection("moneypenny_sync_accounts").document(account)
            assert account_doc.collection("moneypenny_sync_journal").limit(1).get(), account
    if kind == "sqlite":
        assert not (tmp_path / "state.sqlite3").exists()


def test_the_tested_python_is_the_runtime_terraform_deploys():
    """CI runs the suite on the version python_runtime names (scripts/test.sh); the tools check it."""
    text = (ROOT / "terraform" / "variables.tf").read_text()
    block = re.search(r'variable "python_runtime" \{(.*?)\n\}', text, re.S)
    assert block, "terraform/variables.tf has no python_runtime variable"
    m = re.search(r'default\s*=\s*"python3(\d+)"', block.group(1))
    assert m, block.group(1)
    deployed = f"3.{m.group(1)}"
    venv = ROOT / f".venv3{m.group(1)}"
    assert (venv / "bin" / "python").exists(), f"{venv.name} is missing: run scripts/setup.sh"
    tested = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                            capture_output=True, text=True, timeout=60).stdout.strip()
    assert tested == deployed, f"{venv.name} runs Python {tested}, Terraform deploys {deployed}"
    named = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "--print-runtime-venv"],
                           capture_output=True, text=True, timeout=60)
    assert named.stdout.strip() == venv.name, (named.stdout, named.stderr)
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    assert '"$runtime_venv"/bin/python -m pytest\n' in test_sh, "scripts/test.sh does not run the whole suite on it"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'target-version = "py3{m.group(1)}"' in pyproject, "ruff does not target the deployed Python"
    assert f'python_version = "{deployed}"' in pyproject, "mypy does not check for the deployed Python"


def test_time_zones_load_without_the_systems_zone_files():
    """A runtime image without /usr/share/zoneinfo has been seen: zoneinfo then reads tzdata."""
    assert re.search(r"^tzdata\b", (ROOT / "requirements.txt").read_text(), re.M), "tzdata is not in requirements.txt"
    code = ("import zoneinfo; zoneinfo.reset_tzpath([]); from datetime import datetime; "
            "print(datetime(2026, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo('Europe/London')).utcoffset())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout.strip() == "1:00:00"


def test_each_line_of_a_request_carries_its_execution_id_label(harness, client, capfd, monkeypatch):
    """Without functions-framework's stdout/stderr rewriting (LOG_EXECUTION_ID unset), the
    lines carry the request's execution id all the same: our formatter puts it there."""
    monkeypatch.setenv("LOG_FORMAT", "json")
    harness.add_chats(2)
    capfd.readouterr()
    response = client.post("/", headers={"Function-Execution-Id": "execAbC123"})
    assert response.status_code == 200, response.get_json()
    entries = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert any(e["message"] == "run ok" for e in entries)
    assert {e[LABELS]["execution_id"] for e in entries} == {"execAbC123"}


def test_loading_the_function_takes_the_root_logger_over_before_any_request(monkeypatch):
    """functions-framework installs its root handler before it imports main.py: the import
    itself removes it, so a line logged before the first request is not written twice."""
    import logging

    from functions_framework import create_app

    theirs = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(theirs)
    create_app("sync_chats", str(ROOT / "main.py"))
    assert theirs not in logging.getLogger().handlers
    assert [h for h in logging.getLogger().handlers if getattr(h, "_moneypenny_sync", False)]
