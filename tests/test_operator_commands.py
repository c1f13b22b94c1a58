"""The owner's commands on a store they did not mean to change (issue #20): `status`, `check`, the
quarantine's listing and `waiting`'s read only (no store created, migrated or locked); the quarantine can be
cleared (`--drop`, `--drop-all`) and stops making runs unhealthy after a day; `quarantine --retry`
counts each item once with both sources and asks for no Moneypenny setting."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lib.commands.cli import EXIT_FAILED, EXIT_OK, EXIT_SETTINGS, EXIT_USAGE, Context, main
from lib.state.models import RejectedItem
from sandbox.standins.samples import sample_calls, sample_chats

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    out: str
    err: str


class Terminal(io.StringIO):
    """Typed answers on a stdin that says it is a terminal (a person is there to answer)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def cli(harness):
    def run(*argv: str, env: dict | None = None, stdin: io.StringIO | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        answers = {} if stdin is None else {"inp": stdin}
        ctx = Context(env=harness.env() if env is None else env, clock=harness.clock, out=out, err=err,
                      backoff=0.01, **answers)
        return Result(main(list(argv), ctx), out.getvalue(), err.getvalue())

    return run


def set_aside(store, items: list, now: datetime, reason: str = "chatTime is not an ISO 8601 date-time") -> None:
    store.quarantine(RejectedItem(raw=json.dumps(item), reason=reason, fetched_at=now,
                                  expires_at=now + timedelta(days=30)) for item in items)


# -- read-only means read-only ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["quarantine"], ["status", "--json"], ["quarantine", "--drop-all",
                                                                                      "--yes"],
                                     ["waiting"], ["waiting", "--json"], ["waiting", "--drop", "calls"]])
def test_a_read_only_command_on_a_mistyped_sqlite_path_creates_nothing_and_names_the_setting(harness, cli, command):
    typo = harness.tmp / "local-rnu" / "state.sqlite3"
    result = cli(*command, env={**harness.env(), "STATE_STORE": f"sqlite:{typo}"})
    assert result.code == EXIT_FAILED, result.out
    assert f"STATE_STORE=sqlite:{typo}" in result.err and "fix:" in result.err
    assert "NO RUNS YET" not in result.out
    assert not typo.parent.exists()  # no folder, no empty database


def test_check_changes_nothing_even_where_no_store_exists_yet(harness, cli):
    path = harness.tmp / "fresh" / "state.sqlite3"
    result = cli("check", "--json", env={**harness.env(), "STATE_STORE": f"sqlite:{path}"})
    lines = {c["name"]: c for c in json.loads(result.out)["checks"]}
    assert lines["state store"]["status"] == "OK" and "the first run creates it" in lines["state store"]["detail"]
    assert f"STATE_STORE=sqlite:{path}" in lines["state store"]["detail"]
    assert lines["last run"]["status"] == "WARN"
    assert not path.parent.exists()
    assert result.code == EXIT_OK


def test_a_read_only_command_on_a_file_that_is_not_a_state_store_says_so(harness, cli):
    other = harness.tmp / "notes.txt"
    other.write_text("my notes\n")
    result = cli("status", env={**harness.env(), "STATE_STORE": f"sqlite:{other}"})
    assert result.code == EXIT_FAILED and "STATE_STORE" in result.err
    assert other.read_text() == "my notes\n"


@pytest.mark.timeout(120)
def test_status_reads_a_store_another_process_is_writing_without_waiting_for_it(harness, cli):
    harness.add_chats(2, seed=70)
    harness.syncer().run()
    harness.store.close()
    path = harness.tmp / "state.sqlite3"
    # Another process mid-write: its transaction holds SQLite's write lock until told to finish.
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE')\n"
         "c.execute(\"INSERT OR REPLACE INTO meta (name, value) VALUES ('busy', '{}')\")\n"
         "print('writing', flush=True)\n"
         "sys.stdin.readline()\n"
         "c.execute('COMMIT')\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        started = time.monotonic()
        status = cli("status", "--json")
        listing = cli("quarantine")
        waiting = cli("waiting")
        took = time.monotonic() - started
    finally:
        writer.communicate("done\n", timeout=30)
    assert status.code == EXIT_OK, status.err
    assert json.loads(status.out)["runs"][0]["appended"] == 2
    assert listing.code == EXIT_OK and "The quarantine is empty." in listing.out
    assert waiting.code == EXIT_OK and "Nothing waits in the journal." in waiting.out
    assert took < 10, f"status and the listings waited {took:.1f} s for the writer"


def test_status_with_no_settings_names_STATE_STORE_instead_of_trying_firestore(tmp_path):
    # A new user's shell: no settings, no Google credentials, no project.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "lib", "status"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == EXIT_SETTINGS, out.stdout + out.stderr
    assert "STATE_STORE" in out.stderr and "sqlite:" in out.stderr and "fix:" in out.stderr
    assert "Traceback" not in out.stderr and "Credentials" not in out.stderr
    assert "metadata" not in out.stderr.lower()


def test_quarantine_count_since_counts_only_the_items_fetched_from_then(store):
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    set_aside(store, [{"a": 1}], t0 - timedelta(days=2))
    set_aside(store, [{"b": 2}, {"c": 3}], t0 - timedelta(hours=1))
    assert store.quarantine_count() == 3
    assert store.quarantine_count(since=t0 - timedelta(hours=24)) == 2
    assert store.quarantine_count(since=t0 - timedelta(hours=1)) == 2
    assert store.quarantine_count(since=t0) == 0


# -- a quarantine you can clear -----------------------------------------------------------------------


def test_drop_deletes_the_named_items_and_logs_their_ids_never_their_content(harness, cli):
    chats = sample_chats(3, start=datetime(2026, 11, 20, 9, 0), seed=71)
    set_aside(harness.open_store(), chats, harness.clock())
    ids = [item.id for item in harness.open_store().quarantine_list()]
    listed = cli("quarantine")
    assert all(i in listed.out for i in ids) and listed.out.splitlines()[1].split()[0] == "ID"

    result = cli("quarantine", "--drop", ids[0], ids[2], "--yes")
    assert result.code == EXIT_OK, result.err
    assert [item.id for item in harness.open_store().quarantine_list()] == [ids[1]]
    assert f"Dropped 2 item(s) from the quarantine: {ids[0]}, {ids[2]}" in result.out
    assert "dropped items from the quarantine" in result.err and ids[2] in result.err  # the log line
    for chat in chats:
        for value in (chat["name"], chat["email"]):
            assert not value or value not in result.out + result.err  # (a sample may leave its email empty)


def test_drop_of_an_id_not_in_the_quarantine_drops_nothing(harness, cli):
    set_aside(harness.open_store(), sample_chats(2, start=datetime(2026, 11, 20, 9, 0), seed=72), harness.clock())
    [first, _] = [item.id for item in harness.open_store().quarantine_list()]
    result = cli("quarantine", "--drop", first, "99999", "--yes")
    assert result.code == EXIT_USAGE and "'99999'" in result.err and "fix:" in result.err
    assert harness.open_store().quarantine_count() == 2


def test_drop_all_asks_first_and_without_a_terminal_needs_yes(harness, cli):
    set_aside(harness.open_store(), sample_chats(2, start=datetime(2026, 11, 20, 9, 0), seed=73), harness.clock())
    piped = cli("quarantine", "--drop-all", stdin=io.StringIO("y\n"))  # no terminal: nobody to ask
    assert piped.code == EXIT_USAGE and "--yes" in piped.err
    declined = cli("quarantine", "--drop-all", stdin=Terminal("n\n"))
    assert declined.code == EXIT_FAILED and "Drop these 2 item(s) for good?" in declined.err
    assert "Nothing dropped." in declined.out and harness.open_store().quarantine_count() == 2
    accepted = cli("quarantine", "--drop-all", stdin=Terminal("y\n"))
    assert accepted.code == EXIT_OK and harness.open_store().quarantine_count() == 0
    assert "The quarantine is empty." in accepted.out
    assert cli("quarantine", "--yes").code == EXIT_USAGE  # --yes alone answers no question


def test_a_dropped_item_no_longer_makes_runs_unhealthy_or_status_a_problem(harness, cli):
    harness.add_chats(1, seed=74)
    harness.stand.moneypenny.add_chats([{"name": "No Time", "email": "no.time@example.com"}])
    assert harness.syncer().run().healthy is False
    assert cli("status").code == EXIT_FAILED
    assert cli("quarantine", "--drop-all", "--yes").code == EXIT_OK
    harness.clock.advance(minutes=5)
    report = harness.syncer().run()
    assert report.healthy is True, report.unhealthy
    status = cli("status")
    assert status.code == EXIT_OK and status.out.startswith("OK — ")


def test_an_item_set_aside_over_a_day_ago_stops_making_runs_unhealthy_and_status_warns_with_the_commands(harness, cli):
    harness.add_chats(1, seed=75)
    harness.stand.moneypenny.add_chats([{"name": "No Time", "email": "no.time@example.com"}])
    first = harness.syncer().run()
    assert first.healthy is False and "set aside in quarantine" in " ".join(first.unhealthy)
    harness.clock.advance(hours=23)
    assert harness.syncer().run().healthy is False  # within the day: the watcher keeps telling
    harness.clock.advance(hours=1, seconds=1)
    later = harness.syncer().run()
    assert later.healthy is True, later.unhealthy
    status = cli("status")
    assert status.code == EXIT_OK
    first_line = status.out.splitlines()[0]
    assert first_line.startswith("WARN — ") and "1 unreadable item(s) in quarantine for over 24 h" in first_line
    assert "--drop-all" in first_line and "--retry" in first_line
    assert harness.open_store().quarantine_count() == 1  # kept until dropped, retried or expired


# -- quarantine --retry with both sources -----------------------------------------------------------


def test_a_retry_with_both_sources_reads_and_counts_each_item_once(harness, cli):
    harness.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    [chat] = sample_chats(1, start=datetime(2026, 11, 20, 9, 0), seed=76)
    [call] = sample_calls(1, harness.clock() - timedelta(hours=1), seed=76)
    set_aside(harness.open_store(), [chat, call, {"chatTime": "last Tuesday"}], harness.clock())
    result = cli("quarantine", "--retry", "--json")
    assert result.code == EXIT_OK, result.err
    retry = json.loads(result.out)["retry"]
    assert (retry["fetched"], retry["recovered"], retry["skipped_invalid"]) == (3, 2, 1)
    assert (retry["new"], retry["appended"]) == (2, 2)
    assert json.loads(result.out)["count"] == 1
    text = cli("quarantine", "--retry")
    assert "1 item(s) read again, 0 now readable" in text.out and "1 still unreadable" in text.out


def test_a_retry_asks_for_no_moneypenny_setting(harness, cli):
    [chat] = sample_chats(1, start=datetime(2026, 11, 20, 9, 0), seed=77)
    set_aside(harness.open_store(), [chat], harness.clock())
    env = {k: v for k, v in harness.env().items() if not k.startswith("MONEYPENNY_")}
    result = cli("quarantine", "--retry", env={**env, "MONEYPENNY_AUTH_URL": "not a url"})
    assert result.code == EXIT_OK, result.err
    assert "MONEYPENNY" not in result.err
    assert len(harness.data_rows()) == 1 and harness.open_store().quarantine_count() == 0
    assert harness.stand.moneypenny.count() == 0
    missing = cli("quarantine", "--retry", env={k: v for k, v in env.items() if k != "SLACK_CHANNEL"})
    assert missing.code == EXIT_SETTINGS and "SLACK_CHANNEL is not set" in missing.err


def test_a_firestore_database_that_does_not_exist_is_named_with_its_settings():
    # The emulator serves any database id, so its NotFound answer is made here; the client is real.
    from google.api_core import exceptions as gexc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    from lib.errors import StateStoreMissing
    from lib.state.firestore.layout import translate
    from lib.state.firestore.store import FirestoreStore

    store = FirestoreStore(firestore.Client(project="my-project", database="typo-db",
                                            credentials=AnonymousCredentials()))
    with pytest.raises(StateStoreMissing) as caught:
        translate(store, "read_run_state", gexc.NotFound("The database typo-db does not exist for project my-project"))
    text = str(caught.value)
    assert "FIRESTORE_DATABASE='typo-db'" in text and "GOOGLE_CLOUD_PROJECT='my-project'" in text
    assert "FIRESTORE_DATABASE" in caught.value.fix
    store.close()
