"""Shared fixtures (the only place for them): the Firestore emulator (one per session), fresh state
stores, the sync harness, the function's test client, and logging put back after every test."""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sandbox import emulator

# -- Firestore emulator ---------------------------------------------------------------------------

EMULATOR_PROJECT = "demo-test"
_INSTALL_HINT = "(install google-cloud-cli-firestore-emulator and a Java runtime)"
_READY_TIMEOUT = 60.0
_EMULATOR_STATS: dict[str, object] = {}


def _emulator_script() -> str:
    """The emulator's start script; skips the test, naming what is missing, when absent."""
    script = emulator.emulator_script()
    if script is None:
        missing = "no Java runtime on PATH" if not (os.environ.get("JAVA") or shutil.which("java")) else (
            "gcloud has no emulator component" if shutil.which("gcloud") else "no gcloud and no emulator script")
        pytest.skip(f"Firestore emulator not installed: {missing} {_INSTALL_HINT}")
    return script


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory):
    """Start the Firestore emulator on a free port; yield "host:port" with FIRESTORE_EMULATOR_HOST set."""
    script = _emulator_script()
    port = emulator.free_port()
    host = f"127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("firestore-emulator") / "emulator.log"
    with open(log_path, "wb") as log:
        process = emulator.start(script, port, log)
    try:
        try:
            seconds = emulator.wait_ready(process, host, _READY_TIMEOUT, str(log_path))
        except RuntimeError as exc:
            pytest.fail(str(exc))
        _EMULATOR_STATS.update(host=host, start_seconds=seconds)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FIRESTORE_EMULATOR_HOST", host)
            yield host
    finally:
        emulator.stop(process)


def pytest_terminal_summary(terminalreporter):
    _print_fault_stats(terminalreporter)
    if "start_seconds" in _EMULATOR_STATS:
        terminalreporter.write_line(
            f"Firestore emulator at {_EMULATOR_STATS['host']} was ready in "
            f"{_EMULATOR_STATS['start_seconds']:.1f} s"
        )


def _clear_emulator(host: str) -> None:
    url = f"http://{host}/emulator/v1/projects/{EMULATOR_PROJECT}/databases/(default)/documents"
    # A freshly started emulator on a busy machine can take well over 10 s to answer the first call.
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=60):
        pass


def _emulator_client():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    return firestore.Client(project=EMULATOR_PROJECT, credentials=AnonymousCredentials())


def _close_client(client) -> None:
    # Client.close() leaves the gRPC channel open.
    api = getattr(client, "_firestore_api_internal", None)
    if api is not None:
        api.transport.close()


@pytest.fixture
def firestore_client(firestore_emulator):
    """A Firestore client on the emulator, whose database was emptied for this test."""
    _clear_emulator(firestore_emulator)
    client = _emulator_client()
    yield client
    _close_client(client)


# -- state stores ---------------------------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path):
    """A SqliteStore in a fresh file (in a folder that does not exist yet)."""
    from lib.state.sqlite.store import SqliteStore

    store = SqliteStore(str(tmp_path / "state" / "state.sqlite3"))
    yield store
    store.close()


# -- the sync harness and the fault-injection suite -------------------------------------------------

from sandbox.standins import StandIns  # noqa: E402
from tests.harness import Clock, Harness  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def harness(tmp_path):
    """Stand-ins on 127.0.0.1, a movable clock and a SQLite store in tmp_path."""
    clock = Clock()
    with StandIns(clock=clock) as stand:
        h = Harness(stand=stand, clock=clock, tmp=tmp_path)
        yield h
        if h.store is not None:
            h.store.close()


# The collections' prefix of the Firestore `store` (tests that reach the emulator's collections
# directly name them `poison_journal`, ...).
FIRESTORE_PREFIX = "poison"


@pytest.fixture(params=["sqlite", "firestore"])
def store(request, harness):
    """The harness's state store, each test run on both: SQLite in tmp_path, or a FirestoreStore
    on the emulator (its database emptied); both on the harness's clock, so tests move time by
    hand for the lease as for everything else."""
    if request.param == "firestore":
        from lib.state.firestore.store import FirestoreStore

        request.getfixturevalue("firestore_client")  # an emptied emulator database
        harness.store = FirestoreStore(_emulator_client(), FIRESTORE_PREFIX, clock=harness.clock)
    return harness.open_store()


@pytest.fixture
def store_kind(request, store) -> str:
    """Which store the `store` fixture made ("sqlite" or "firestore"), for the few tests that
    reach its files or collections directly."""
    return str(request.node.callspec.params["store"])


@pytest.fixture
def client(harness, monkeypatch):
    """A test client of main.sync_chats served by the real functions-framework app, with the
    harness's settings (and none from the outer environment) in os.environ."""
    from functions_framework import create_app

    for name in list(os.environ):
        if name.startswith(("MONEYPENNY_", "SHEET", "SLACK_", "STATE_STORE", "FIRESTORE_", "ALERT_")):
            monkeypatch.delenv(name, raising=False)
    for name, value in harness.env().items():
        monkeypatch.setenv(name, value)
    return create_app("sync_chats", str(ROOT / "main.py")).test_client()


@pytest.fixture
def actions_client(harness, monkeypatch):
    """A test client of main.slack_actions (the public Slack actions entry point) served by the
    real functions-framework app, with the harness's settings and the Slack stand-in's signing
    secret, workspace and app in os.environ."""
    from functions_framework import create_app

    from sandbox.standins.slack import APP_ID, SIGNING_SECRET, TEAM_ID

    for name in list(os.environ):
        if name.startswith(("MONEYPENNY_", "SHEET", "SLACK_", "STATE_STORE", "FIRESTORE_", "ALERT_", "ACCOUNTS")):
            monkeypatch.delenv(name, raising=False)
    env = {**harness.env(), "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_TEAM_ID": TEAM_ID, "SLACK_APP_ID": APP_ID}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return create_app("slack_actions", str(ROOT / "main.py")).test_client()


@pytest.fixture(autouse=True)
def restore_logging():
    """Put logging back as it was after each test: commands reconfigure it process-wide."""
    import logging

    from lib import logs

    root = logging.getLogger()
    names = ("lib",) + logs.QUIET_LOGGERS
    saved = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in names},
             list(logging.getLogger("lib").handlers))
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger("lib").handlers[:] = saved[3]


FAULT_STATS: dict[str, dict[str, int]] = {}


def pytest_addoption(parser):
    parser.addoption(
        "--fault-schedules",
        type=int,
        default=300,
        help="how many seeded random fault schedules the fault-injection suite runs (default 300)",
    )
    parser.addoption(
        "--fault-dimensions",
        default="ready",
        help="time and store dimensions of the fault suite's main schedules: ready (default: those whose "
             "fixes are in, see WAITS_ON in tests/test_faults.py), all, none, or names separated by commas "
             "(store, expiry, lease, skew, sources, emptied)",
    )
    parser.addoption(
        "--hypothesis-more",
        action="store_true",
        default=os.environ.get("HYPOTHESIS_MORE", "") not in ("", "0"),
        help="the property-based suites draw ten times as many examples (also HYPOTHESIS_MORE=1)",
    )


def _print_fault_stats(terminalreporter) -> None:
    for name, stats in FAULT_STATS.items():
        terminalreporter.write_line(
            f"fault injection ({name}): {stats['schedules']} schedules, {stats['runs']} runs, "
            f"{stats['chats']} chats, {stats['faults']} faults tried "
            f"({stats['crashes']} crashes, {stats['overlaps']} overlapping calls, {stats['failed_runs']} failed runs), "
            f"{stats['poison']} odd items ({stats['quarantined']} set aside)"
            + (f", {stats['calls']} call messages" if stats.get("calls") else "")
        )
        terminalreporter.write_line(
            f"fault injection ({name}): recovery, in runs after the faults cleared (0: before): worst "
            f"{stats['worst_answered']} after answered faults ({stats['recoveries_answered']} recoveries), worst "
            f"{stats['worst_other']} after crashes or unanswered calls ({stats['recoveries_other']} recoveries)"
        )
        if "dimensions" in stats:
            terminalreporter.write_line(
                f"fault injection ({name}): time and the store [{stats['dimensions']}]: "
                f"{stats['store_faults']} store faults ({stats['set_aside_again']} items set aside twice), "
                f"{stats['expiries']} expiries "
                f"(RETENTION_DAYS {stats['worst_retention'] or 'as set'}), {stats['lease_takeovers']} leases "
                f"taken over mid-run, {stats['skewed_calls']} callers 11 min off, {stats['source_switches']} "
                f"source switches, {stats['empties']} stores emptied"
                + (f", {stats['unreachable']} items older than a source's first read's days missing (not promised)"
                   if stats.get("unreachable") else "")
                + (f", {stats['unannounced']} rows whose Slack post was due when their store was emptied (not promised)"
                   if stats.get("unannounced") else "")
            )
        if stats.get("accounts"):
            terminalreporter.write_line(
                f"fault injection ({name}): two accounts in {stats['accounts']} schedules: the other account's "
                f"{stats['other_chats']} chats over {stats['other_runs']} runs ({stats['other_beside']} at the same "
                f"time as north's), {stats['other_faults']} faults, crashes, wrong passwords, unshared sheets and "
                f"outages of its own")
        failures = stats.get("failures")
        if failures is not None:
            ran = stats["schedules"] + len(failures)
            terminalreporter.write_line(f"fault injection ({name}): {len(failures)} of {ran} schedules failed")
            for failure in failures:
                terminalreporter.write_line(f"    {failure}")
