"""The test harness (local stand-ins, a movable clock, settings and a real Syncer wired to them)
and the helpers the tests share. The fixtures themselves are in conftest.py."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from lib.accounts import env_for, settings_for
from lib.app import build_syncer
from lib.settings import Settings
from lib.state.contract import StateStore
from lib.state.sqlite.store import SqliteStore
from lib.sync import RunProtocols, RunReport, Syncer
from sandbox.standins import StandIns
from sandbox.standins.samples import sample_chats

UK = "Europe/London"
T = TypeVar("T")


class Clock:
    """A clock the tests move by hand; shared by the Syncer and the Moneypenny stand-in."""

    def __init__(self, start: datetime | None = None):
        self.value = start or datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.value

    def advance(self, **kwargs: float) -> None:
        self.value += timedelta(**kwargs)


@dataclass
class Harness:
    stand: StandIns
    clock: Clock
    tmp: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    store: StateStore | None = None
    # With ACCOUNTS in the environment, the account this harness runs ("": none, as before).
    account: str = ""

    @property
    def sheet_id(self) -> str:
        return env_for(self.env(), self.account)["SHEET_ID"]

    def env(self) -> dict[str, str]:
        return {
            **self.stand.env(),
            "STATE_STORE": f"sqlite:{self.tmp / 'state.sqlite3'}",
            "HTTP_TIMEOUT_SECONDS": "2",
            **self.env_overrides,
        }

    def settings(self) -> Settings:
        return settings_for(self.env(), self.account)

    def open_store(self) -> StateStore:
        if self.store is None:
            # The store's clock is the harness clock too: tests move time by hand for the
            # lease as for everything else (the lease is judged by the store's clock).
            path = self.settings().sqlite_path if self.account else None
            self.store = SqliteStore(path or str(self.tmp / "state.sqlite3"), clock=self.clock)
        return self.store

    def syncer(self, checkpoint: Callable[[str], None] | None = None, store: StateStore | None = None) -> Syncer:
        # A fresh Syncer per run, as a fresh function instance would be; the store persists.
        return build_syncer(
            self.settings(), store=store or self.open_store(), clock=self.clock, checkpoint=checkpoint, backoff=0.01
        )

    def protocols(self, checkpoint: Callable[[str], None] | None = None) -> RunProtocols:
        """One run's protocols (fetch log, journal, sheet and Slack delivery), as Syncer.run
        makes them, on the real clients, the stand-ins, this store and this clock."""
        return self.syncer(checkpoint=checkpoint).protocols()

    def report(self, run_id: str = "run") -> RunReport:
        """An empty report of a run starting now (the protocols add to it)."""
        return RunReport(run_id=run_id, mode="new", started_at=self.clock())

    def add_chats(self, n: int, *, seed: int = 0, start: datetime | None = None, user: str | None = None,
                  **kw: Any) -> list[dict]:
        """n sample chats for the stand-in's `user` (None: its first), from two hours ago."""
        local_start = start or (self.clock().astimezone(ZoneInfo(UK)).replace(tzinfo=None) - timedelta(hours=2))
        chats = sample_chats(n, start=local_start, seed=seed, **kw)
        self.stand.moneypenny.add_chats(chats, user=user)
        return chats

    def rows(self) -> list[list[str]]:
        return self.stand.sheets.rows(self.sheet_id, self.settings().sheet_tab)

    def data_rows(self) -> list[list[str]]:
        return self.rows()[1:]

    def records(self) -> list[dict[str, str]]:
        """The data rows as dicts keyed by the sheet's header row (see by_header)."""
        return by_header(self.rows())

    def sheet_keys(self) -> list[str]:
        return [r["Chat key"] for r in self.records() if "Chat key" in r]

    def reconciled(self, at: datetime | None = None) -> None:
        """The store as after a daily reconcile at `at` (default: now), as it is for every run
        of a day but the first after RECONCILE_AT: a scheduled sync makes no reconcile read."""
        at = at or self.clock()

        def change(state: Any) -> Any:
            # That run read the chats too: the cursor records a read (a store whose chats were
            # never read reconciles in its first run with chats on, lib/sync/run.py).
            if state.cursor.last_read is None:
                state = dataclasses.replace(state, cursor=dataclasses.replace(state.cursor, last_read=at))
            return state.with_reconciled_at(at)

        self.open_store().update_run_state(change)


def hold_lease_elsewhere(harness: Harness, owner: str, minutes: float = 10) -> bool:
    """Another run takes the lease for `minutes`, on the store's own clock: as the command line
    and the function see it (they open their store as production does; the harness's store
    follows the harness clock instead)."""
    from lib.state import open_store

    store = open_store(harness.settings())
    try:
        now = harness.clock()
        return store.acquire_lease(owner, now, now + timedelta(minutes=minutes))
    finally:
        store.close()


def by_header(rows: Sequence[Sequence[T]], name: Callable[[T], str] = str) -> list[dict[str, T]]:
    """Rows after the first as dicts keyed by the first row's cells (`name` reads a header cell).

    A row's missing trailing cells (Sheets leaves out empty ones) are missing from its dict.
    """
    if not rows:
        return []
    header = [name(cell) for cell in rows[0]]
    return [dict(zip(header, row)) for row in rows[1:]]


class Crash(BaseException):
    """A simulated crash: not an Exception, so no `except Exception` in the sync swallows it."""


def crash_at(where: str) -> Callable[[str], None]:
    """A Syncer checkpoint that crashes the run at the named step."""

    def checkpoint(step: str) -> None:
        if step == where:
            raise Crash(step)

    return checkpoint


def slack_text(*messages: dict) -> str:
    """The messages' fallback text and blocks (as JSON), to search for what a reader would see."""
    return "\n".join((m.get("text") or "") + "\n" + json.dumps(m.get("blocks") or []) for m in messages)


def days_read_by_window(calls: Sequence[Any]) -> set[date]:
    """Every day that the Moneypenny stand-in's window calls asked for (startTime..endTime, both included)."""
    days: set[date] = set()
    for call in calls:
        if "startTime" not in call.query:
            continue
        first = us_date(call.query["startTime"])
        last = us_date(call.query["endTime"])
        days.update(first + timedelta(days=i) for i in range((last - first).days + 1))
    return days


def us_date(text: str) -> date:
    """A date written mm/dd/yyyy, as Moneypenny's window calls take it."""
    month, day, year = (int(part) for part in text.split("/"))
    return date(year, month, day)


def move_cursor_elsewhere(harness: Harness) -> None:
    """Another client of the API (or a lost answer) moves Moneypenny's cursor past every chat."""
    import requests

    env = harness.env()
    token = requests.post(env["MONEYPENNY_AUTH_URL"], json={
        "username": env["MONEYPENNY_USERNAME"], "password": env["MONEYPENNY_PASSWORD"]}, timeout=5).json()
    requests.get(env["MONEYPENNY_CHATS_URL"], headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5)
    assert harness.stand.moneypenny.pending_chats() == []
