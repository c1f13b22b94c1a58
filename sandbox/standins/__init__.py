"""Local stand-ins for Moneypenny, Google Sheets and Slack, served on 127.0.0.1.

Used by the local demo, the test suite (including fault injection) and the benchmark.
`StandIns` starts all three and gives the environment that points the sync at them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from lib.accounts import own_name

from .moneypenny import FakeMoneypenny
from .samples import chat_time_text, sample_chats, tricky_chats
from .server import Call, Delay, Drop, Fault, LostResponse, Malformed, StandIn, Status
from .sheets import EMPTY, Cell, FakeSheets
from .slack import FakeSlack

DEMO_SHEET_ID = "local-demo-sheet"
DEMO_SLACK_TOKEN = "xoxb-demo-token"
DEMO_CHANNEL_ID = "C0DEMO"
DEMO_CHANNEL_NAME = "sales-chats"

__all__ = [
    "DEMO_CHANNEL_ID",
    "DEMO_CHANNEL_NAME",
    "DEMO_SHEET_ID",
    "DEMO_SLACK_TOKEN",
    "EMPTY",
    "AccountStandIn",
    "Call",
    "Cell",
    "Delay",
    "Drop",
    "FakeMoneypenny",
    "FakeSheets",
    "FakeSlack",
    "Fault",
    "LostResponse",
    "Malformed",
    "StandIn",
    "StandIns",
    "Status",
    "chat_time_text",
    "sample_chats",
    "tricky_chats",
]


@dataclass(frozen=True)
class AccountStandIn:
    """One account on the stand-ins: its Moneypenny login, its spreadsheet and its Slack bot
    token and channel (`StandIns.add_account`)."""

    id: str
    username: str
    password: str
    sheet_id: str
    slack_token: str
    channel_id: str
    channel_name: str

    def settings(self) -> dict[str, str]:
        """Its own settings by their bare names (the rest are every account's)."""
        return {"MONEYPENNY_USERNAME": self.username, "MONEYPENNY_PASSWORD": self.password,
                "SHEET_ID": self.sheet_id, "SLACK_BOT_TOKEN": self.slack_token, "SLACK_CHANNEL": self.channel_id}

    def env(self) -> dict[str, str]:
        """Its own settings as a deployment with ACCOUNTS names them: `SHEET_ID__EAST_LONDON`, ..."""
        return {own_name(name, self.id): value for name, value in self.settings().items()}

    @property
    def tenants(self) -> dict[str, str]:
        """Its tenant at each stand-in (`inject(..., tenant=...)`, `calls(tenant=...)`), by the
        stand-in's attribute name on StandIns."""
        return {"moneypenny": self.username, "sheets": self.sheet_id, "slack": self.slack_token}


class StandIns:
    """All three stand-ins, started together; the spreadsheet "local-demo-sheet" exists with
    only "Sheet1", so the sync must create its own tab."""

    def __init__(self, latency: float = 0.0, clock: Callable[[], datetime] | None = None):
        self.moneypenny = FakeMoneypenny(clock=clock, latency=latency)
        self.sheets = FakeSheets(latency=latency)
        self.slack = FakeSlack(
            tokens=(DEMO_SLACK_TOKEN,), channels={DEMO_CHANNEL_ID: DEMO_CHANNEL_NAME}, latency=latency
        )
        self.sheet_id = DEMO_SHEET_ID
        self.sheets.create_spreadsheet(DEMO_SHEET_ID, tabs=("Sheet1",), title="Moneypenny chats (local demo)")
        self.accounts: dict[str, AccountStandIn] = {}

    def add_account(self, account: str) -> AccountStandIn:
        """A Moneypenny user, a spreadsheet (with only "Sheet1"), a bot token and a channel the
        bot is in, all of this account's own; its settings are `AccountStandIn.env()`."""
        if account in self.accounts:
            raise ValueError(f"account {account!r} exists already")
        one = AccountStandIn(
            id=account, username=f"{account}@example.com", password=f"{account}-password",
            sheet_id=f"{DEMO_SHEET_ID}-{account}", slack_token=f"xoxb-{account}-token",
            channel_id=f"C0{account.upper().replace('-', '')}", channel_name=f"sales-{account}",
        )
        self.moneypenny.add_user(one.username, one.password)
        self.sheets.create_spreadsheet(one.sheet_id, tabs=("Sheet1",), title=f"Moneypenny chats ({account})")
        self.slack.add_token(one.slack_token)
        self.slack.add_channel(one.channel_id, one.channel_name)
        self.accounts[account] = one
        return one

    def accounts_env(self, accounts: Iterable[str]) -> dict[str, str]:
        """`env()` for a deployment with these accounts (each added if new): ACCOUNTS and each
        one's own settings; the bare names stay the stand-ins' defaults."""
        ids = list(accounts)
        out = {**self.env(), "ACCOUNTS": ",".join(ids)}
        for account in ids:
            out.update((self.accounts.get(account) or self.add_account(account)).env())
        return out

    @property
    def all(self) -> tuple[StandIn, StandIn, StandIn]:
        return (self.moneypenny, self.sheets, self.slack)

    def start(self) -> StandIns:
        """Start all three servers; returns self."""
        for standin in self.all:
            standin.start()
        return self

    def stop(self) -> None:
        """Stop all three servers."""
        for standin in self.all:
            standin.stop()

    def __enter__(self) -> StandIns:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Every environment variable Settings needs to talk to these stand-ins."""
        return {
            "MONEYPENNY_USERNAME": self.moneypenny.username,
            "MONEYPENNY_PASSWORD": self.moneypenny.password,
            "MONEYPENNY_AUTH_URL": self.moneypenny.auth_url,
            "MONEYPENNY_CHATS_URL": self.moneypenny.chats_url,
            "MONEYPENNY_CALLS_URL": self.moneypenny.calls_url,
            "SHEET_ID": self.sheet_id,
            "SHEETS_API_URL": self.sheets.url,
            "SLACK_BOT_TOKEN": DEMO_SLACK_TOKEN,
            "SLACK_CHANNEL": DEMO_CHANNEL_ID,
            "SLACK_API_URL": self.slack.api_url,
        }

    def set_latency(self, seconds: float) -> None:
        """Add `seconds` before every answer of all three stand-ins."""
        for standin in self.all:
            standin.latency = seconds

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until none of the three is handling a request."""
        return all(standin.wait_idle(timeout) for standin in self.all)

    @property
    def busy_seconds(self) -> float:
        """Seconds the three spent answering since their last `reset_calls` (latency included)."""
        return sum(standin.busy_seconds for standin in self.all)

    def reset_calls(self) -> None:
        """Forget the call logs (and busy times) of all three."""
        for standin in self.all:
            standin.reset_calls()

    def clear_faults(self) -> None:
        """Drop every queued fault on all three."""
        for standin in self.all:
            standin.clear_faults()

    def total_calls(self) -> dict[str, int]:
        """Request counts: per service, Sheets reads and writes, and the total."""
        out = {
            "moneypenny": self.moneypenny.count(),
            "sheets": self.sheets.count(),
            "sheets_reads": self.sheets.count_reads(),
            "sheets_writes": self.sheets.count_writes(),
            "slack": self.slack.count(),
        }
        out["total"] = out["moneypenny"] + out["sheets"] + out["slack"]
        return out
