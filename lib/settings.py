"""Settings: one typed object read from environment variables and validated at start.

The variable names are a public contract (README, Terraform); keep them stable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import time
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .action_settings import ActionSettings as ActionSettings  # re-exported: moved to lib/action_settings.py
from .errors import SettingsError
from .errors import cut as _cut
from .secret import Secret as Secret  # re-exported: moved to lib/secret.py
from .secret import show_url as show_url  # re-exported: moved to lib/secret.py

DEFAULT_AUTH_URL = "https://api.moneypenny.com/auth/token"
# The guide prints the test host for the chat log; production users override it.
DEFAULT_CHATS_URL = "https://test-api.moneypenny.com/clientlivechat/V3/Log"
DEFAULT_CALLS_URL = "https://api.moneypenny.com/clienttas/V2/Messages"
# The feeds a run may read (MONEYPENNY_SOURCES names some of them, comma-separated): each
# feed's name -> the setting that names its tab and that tab's default name. The built-in feeds
# are here from the start; lib/sources registers any other (lib.sources.register).
_FEED_TABS: dict[str, tuple[str, str]] = {"chats": ("SHEET_TAB", "Chats"), "calls": ("CALLS_TAB", "Calls")}


def register_feed_setting(name: str, tab_setting: str | None, default_tab: str | None) -> None:
    """Let MONEYPENNY_SOURCES name the feed `name`, its tab named by `tab_setting` (default
    `default_tab`); both None: forget it (lib.sources.unregister)."""
    if tab_setting is None or default_tab is None:
        _FEED_TABS.pop(name, None)
    else:
        _FEED_TABS[name] = (tab_setting, default_tab)


def tab_settings() -> tuple[str, ...]:
    """The settings that name a feed's tab (SHEET_TAB, CALLS_TAB, any registered feed's NAME_TAB)."""
    return tuple(setting for setting, _ in _FEED_TABS.values())


DEFAULT_SHEETS_API_URL = "https://sheets.googleapis.com"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
# What reading the state store needs (and how to show its times): all that `status` asks for.
STORE_VARIABLES = ("STATE_STORE", "GOOGLE_CLOUD_PROJECT", "FIRESTORE_DATABASE", "FIRESTORE_COLLECTION_PREFIX",
                   "CHAT_TIMEZONE", "LOG_FORMAT",
                   # A store-only command that writes expiries (`waiting --drop`) keeps RETENTION_DAYS,
                   # judged against RECONCILE_DAYS as a run judges it.
                   "RETENTION_DAYS", "RECONCILE_DAYS")


# A run reads again, besides what is new: the reconcile's RECONCILE_DAYS days before today, the
# calls' last two days (the last full day less one), and a recovery read from a day before the
# last read. The journal must remember at least that much, and a day more (its margin for clocks
# and CHAT_TIMEZONE, lib/sync/journal.py FORGET_MARGIN), or each of those reads meets rows the
# journal forgot and reads the sheet's key column on every run (still never writing them twice).
CALLS_READ_AGAIN_DAYS = 2
RETENTION_MARGIN_DAYS = 3  # today, the recovery read's day before, the journal's margin


# A write to the sheet or Slack needs the lease to last at least this much longer by the store's
# clock, else it is renewed first (lib/sync/session.py LEASE_MARGIN): a LEASE_SECONDS shorter than
# this margin plus one HTTP_TIMEOUT_SECONDS request could end while the request is under way.
LEASE_MARGIN_SECONDS = 60


def min_retention_days(reconcile_days: int) -> int:
    """The shortest RETENTION_DAYS that covers every window a run may read again."""
    return max(reconcile_days, CALLS_READ_AGAIN_DAYS) + RETENTION_MARGIN_DAYS


URL_SETTINGS = ("moneypenny_auth_url", "moneypenny_chats_url", "moneypenny_calls_url", "sheets_api_url", "slack_api_url")
# RECONCILE_AT: a time of day on the 24-hour clock (H:MM or HH:MM), or "off".
_TIME_OF_DAY = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
RECONCILE_OFF = "off"


@dataclass(frozen=True)
class Settings:
    """Everything the sync reads from its environment, validated."""

    moneypenny_username: Secret
    moneypenny_password: Secret
    sheet_id: str
    slack_bot_token: Secret
    slack_channel: str
    moneypenny_auth_url: str = DEFAULT_AUTH_URL
    moneypenny_chats_url: str = DEFAULT_CHATS_URL
    moneypenny_calls_url: str = DEFAULT_CALLS_URL
    moneypenny_sources: tuple[str, ...] = ("chats",)
    chat_timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))
    sheet_tab: str = "Chats"
    calls_tab: str = "Calls"
    # The tabs of the other registered feeds that are on (their NAME_TAB setting), by feed name.
    feed_tabs: tuple[tuple[str, str], ...] = ()
    sheets_api_url: str = DEFAULT_SHEETS_API_URL
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_alert_channel: str = ""
    slack_max_listed: int = 20
    # Claim buttons on the summaries and the reminder (SLACK_CLAIM_BUTTONS=on|off): off where no
    # slack_actions function takes their clicks (Slack would show the clicker an error); the
    # lines keep their short keys and row links, and a name typed into Owner is a claim.
    slack_claim_buttons: bool = True
    state_store: str = "firestore"
    google_cloud_project: str = ""
    firestore_database: str = "(default)"
    firestore_collection_prefix: str = "moneypenny_sync"
    http_timeout_seconds: float = 30.0
    lease_seconds: int = 600
    retention_days: int = 30
    reconcile_days: int = 2
    # When, in CHAT_TIMEZONE, the daily reconcile falls due (the first scheduled run after it
    # makes the read); None: no daily reconcile (RECONCILE_AT=off).
    reconcile_at: time | None = time(3, 15)
    # When, in CHAT_TIMEZONE, the daily reminder of unclaimed leads falls due on a working day
    # (lib/sync/reminder.py); None: no reminder (UNCLAIMED_REMINDER_AT unset or off).
    unclaimed_reminder_at: time | None = None
    alert_repeat_minutes: int = 60
    log_format: str = "auto"
    # The account these settings are for (lib/accounts.py): "" when ACCOUNTS is unset. The store,
    # the run records, the log lines, the alerts and the answers take it from here.
    account: str = ""

    @property
    def sheets_is_google(self) -> bool:
        """False when SHEETS_API_URL points at a local stand-in (anonymous credentials)."""
        host = urlparse(self.sheets_api_url).hostname or ""
        return host == "googleapis.com" or host.endswith(".googleapis.com")

    @property
    def chats_on(self) -> bool:
        """Whether the chats feed is on (feed_on("chats"))."""
        return "chats" in self.moneypenny_sources

    @property
    def calls_on(self) -> bool:
        return "calls" in self.moneypenny_sources

    def feed_on(self, name: str) -> bool:
        """Whether MONEYPENNY_SOURCES names the feed `name`."""
        return name in self.moneypenny_sources

    def tab_of(self, feed: str) -> str:
        """The tab of the feed named `feed`: SHEET_TAB for the chats, CALLS_TAB for the calls,
        its own NAME_TAB setting (default: its title) for any other."""
        if feed == "chats":
            return self.sheet_tab
        if feed == "calls":
            return self.calls_tab
        own = dict(self.feed_tabs).get(feed)
        return own if own is not None else _FEED_TABS.get(feed, ("", feed.title()))[1]

    @property
    def sheet_url(self) -> str:
        if self.sheets_is_google:
            return f"https://docs.google.com/spreadsheets/d/{self.sheet_id}/edit"
        return f"{self.sheets_api_url.rstrip('/')}/v4/spreadsheets/{self.sheet_id}"

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file of `STATE_STORE=sqlite:PATH` (None for Firestore). An account's is its own
        file beside it, `dir/state.db` -> `dir/state.north.db`: its own lock, so accounts' runs never
        wait for each other."""
        if not self.state_store.startswith("sqlite:"):
            return None
        path = self.state_store[len("sqlite:"):]
        if not self.account:
            return path
        root, ext = os.path.splitext(path)
        return f"{root}.{self.account}{ext}"

    @property
    def alert_channel(self) -> str:
        return self.slack_alert_channel or self.slack_channel

    def secrets(self) -> tuple[Secret, Secret, Secret]:
        """The values that must never reach a log line (the logs mask them)."""
        return (self.moneypenny_username, self.moneypenny_password, self.slack_bot_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, names: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; one SettingsError lists every variable at fault.

        `names`: how a problem names a variable (lib/accounts.py passes `SHEET_ID__NORTH` for
        `SHEET_ID` when the account's own variable is the one at fault); default its own name."""
        env = os.environ if env is None else env
        problems: list[str] = []
        values: dict[str, object] = {}
        shown = dict(names or {})

        def label(name: str) -> str:
            return shown.get(name, name)

        def text(name: str, attr: str, *, required: bool = False, default: str | None = None) -> str | None:
            raw = env.get(name, "")
            raw = raw.strip() if raw is not None else ""
            if not raw:
                if required:
                    problems.append(f"{label(name)} is not set")
                    return None
                if default is None:
                    return None
                raw = default
            values[attr] = raw
            return raw

        def secret(name: str, attr: str) -> None:
            raw = env.get(name, "")
            if not raw or not raw.strip():
                problems.append(f"{label(name)} is not set")
                return
            values[attr] = Secret(raw.strip())

        def url(name: str, attr: str) -> None:
            raw = text(name, attr)
            if raw is None:
                return
            parsed = urlparse(raw)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                problems.append(f"{name} must be an http(s) URL with a host")
                values.pop(attr, None)
            elif "@" in parsed.netloc:
                # The value is not echoed: it holds a password.
                problems.append(
                    f"{name} must not carry a user name or password (user:password@host); "
                    "give the URL without them"
                )
                values.pop(attr, None)
            else:
                try:
                    _ = parsed.port  # urllib parses the port only when asked
                except ValueError:
                    problems.append(f"{name} has a port that is not a number from 0 to 65535")
                    values.pop(attr, None)

        def number(name: str, attr: str, kind: type[int] | type[float] = int, minimum: float = 1,
                   maximum: float | None = None) -> None:
            raw = env.get(name, "").strip()
            if not raw:
                return
            try:
                value = kind(raw)
            except ValueError:
                problems.append(f"{label(name)} must be a {'whole ' if kind is int else ''}number, got {_cut(raw)!r}")
                return
            if not math.isfinite(value):
                # float() takes nan and inf, and nan passes every comparison below.
                problems.append(f"{label(name)} must be a finite number, got {_cut(raw)!r}")
                return
            if value < minimum or (maximum is not None and value > maximum):
                bounds = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
                problems.append(f"{label(name)} must be {bounds}, got {_cut(raw)!r}")
                return
            values[attr] = value

        secret("MONEYPENNY_USERNAME", "moneypenny_username")
        secret("MONEYPENNY_PASSWORD", "moneypenny_password")
        url("MONEYPENNY_AUTH_URL", "moneypenny_auth_url")
        url("MONEYPENNY_CHATS_URL", "moneypenny_chats_url")
        url("MONEYPENNY_CALLS_URL", "moneypenny_calls_url")
        sources = text("MONEYPENNY_SOURCES", "moneypenny_sources")
        if sources is not None:
            named = tuple(dict.fromkeys(part.strip() for part in sources.lower().split(",")))
            unknown = [n for n in named if n not in _FEED_TABS]
            values.pop("moneypenny_sources", None)
            if unknown:
                problems.append(f"{label('MONEYPENNY_SOURCES')} must name feeds among {', '.join(_FEED_TABS)}, separated by commas "
                                f"(such as chats,calls); no feed is called {', '.join(repr(_cut(n)) for n in unknown)}")
            else:
                # In the order the feeds are registered, each once.
                values["moneypenny_sources"] = tuple(n for n in _FEED_TABS if n in named)
        tz_name = text("CHAT_TIMEZONE", "chat_timezone")
        if tz_name is not None:
            try:
                values["chat_timezone"] = ZoneInfo(tz_name)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
                values.pop("chat_timezone", None)
                problems.append(f"{label('CHAT_TIMEZONE')} must be an IANA zone such as Europe/London, got {_cut(tz_name)!r}")
        text("SHEET_ID", "sheet_id", required=True)
        text("SHEET_TAB", "sheet_tab")
        text("CALLS_TAB", "calls_tab")
        on = values.get("moneypenny_sources", ("chats",))
        assert isinstance(on, tuple)
        own_tabs = []
        for name in on:
            setting, default = _FEED_TABS[name]
            if name not in ("chats", "calls"):
                own_tabs.append((name, (env.get(setting) or "").strip() or default))
        values["feed_tabs"] = tuple(own_tabs)
        # A tab rule only for the tabs in use: SHEET_TAB=Calls is fine while calls are off.
        tabs: dict[str, str] = {}
        for name in on:
            setting, default = _FEED_TABS[name]
            tab = dict(own_tabs).get(name) or str(values.get({"chats": "sheet_tab", "calls": "calls_tab"}.get(name, ""),
                                                              default))
            if tab in tabs:
                problems.append(f"{label(setting)} must name another tab than {label(tabs[tab])} while MONEYPENNY_SOURCES reads "
                                f"both ({', '.join(on)})")
            else:
                tabs[tab] = setting
        url("SHEETS_API_URL", "sheets_api_url")
        secret("SLACK_BOT_TOKEN", "slack_bot_token")
        text("SLACK_CHANNEL", "slack_channel", required=True)
        text("SLACK_ALERT_CHANNEL", "slack_alert_channel")
        url("SLACK_API_URL", "slack_api_url")
        number("SLACK_MAX_LISTED", "slack_max_listed", maximum=40)
        claim_buttons = text("SLACK_CLAIM_BUTTONS", "slack_claim_buttons")
        if claim_buttons is not None:
            values.pop("slack_claim_buttons", None)
            if claim_buttons.lower() in ("on", "off"):
                values["slack_claim_buttons"] = claim_buttons.lower() == "on"
            else:
                problems.append(f"{label('SLACK_CLAIM_BUTTONS')} must be on (Claim buttons on the summaries and the "
                                "reminder) or off (none: where the slack_actions function is not deployed), got "
                                f"{_cut(claim_buttons)!r}")
        store = text("STATE_STORE", "state_store")
        if store is not None and store != "firestore" and (
            not store.startswith("sqlite:") or not store[len("sqlite:"):]
        ):
            problems.append(f"STATE_STORE must be 'firestore' or 'sqlite:PATH', got {_cut(store)!r}")
        text("GOOGLE_CLOUD_PROJECT", "google_cloud_project")
        text("FIRESTORE_DATABASE", "firestore_database")
        prefix = text("FIRESTORE_COLLECTION_PREFIX", "firestore_collection_prefix")
        if prefix is not None and ("/" in prefix or prefix.startswith("__")):
            problems.append("FIRESTORE_COLLECTION_PREFIX must not contain '/' or start with '__'")
        number("HTTP_TIMEOUT_SECONDS", "http_timeout_seconds", kind=float, minimum=0.1, maximum=300)
        number("LEASE_SECONDS", "lease_seconds", minimum=60, maximum=7200)
        number("RETENTION_DAYS", "retention_days", maximum=3650)
        number("RECONCILE_DAYS", "reconcile_days", maximum=31)
        reconcile_at = text("RECONCILE_AT", "reconcile_at")
        if reconcile_at is not None:
            moment = _TIME_OF_DAY.fullmatch(reconcile_at)
            if reconcile_at.lower() == RECONCILE_OFF:
                values["reconcile_at"] = None
            elif moment is None:
                values.pop("reconcile_at", None)
                problems.append("RECONCILE_AT must be a time of day on the 24-hour clock, HH:MM in CHAT_TIMEZONE "
                                f"(such as 03:15), or {RECONCILE_OFF} for no daily reconcile, got {_cut(reconcile_at)!r}")
            else:
                values["reconcile_at"] = time(int(moment.group(1)), int(moment.group(2)))
        reminder_at = text("UNCLAIMED_REMINDER_AT", "unclaimed_reminder_at")
        if reminder_at is not None:
            moment = _TIME_OF_DAY.fullmatch(reminder_at)
            if reminder_at.lower() == RECONCILE_OFF:
                values["unclaimed_reminder_at"] = None
            elif moment is None:
                values.pop("unclaimed_reminder_at", None)
                problems.append("UNCLAIMED_REMINDER_AT must be a time of day on the 24-hour clock, HH:MM in "
                                f"CHAT_TIMEZONE (such as 09:00), or {RECONCILE_OFF} for no reminder of unclaimed "
                                f"leads, got {_cut(reminder_at)!r}")
            else:
                values["unclaimed_reminder_at"] = time(int(moment.group(1)), int(moment.group(2)))
        number("ALERT_REPEAT_MINUTES", "alert_repeat_minutes", maximum=10080)
        lease, http_timeout = values.get("lease_seconds", 600), values.get("http_timeout_seconds", 30.0)
        assert isinstance(lease, int) and isinstance(http_timeout, float | int)
        refused = any(p.startswith(("LEASE_SECONDS ", "HTTP_TIMEOUT_SECONDS ")) for p in problems)
        if not refused and lease < LEASE_MARGIN_SECONDS + http_timeout:
            problems.append(
                f"LEASE_SECONDS={lease} is shorter than the lease margin ({LEASE_MARGIN_SECONDS} s) plus "
                f"HTTP_TIMEOUT_SECONDS={http_timeout:g}: a write could outlast the lease; set LEASE_SECONDS to at least "
                f"{math.ceil(LEASE_MARGIN_SECONDS + http_timeout)}, or HTTP_TIMEOUT_SECONDS to at most "
                f"{max(lease - LEASE_MARGIN_SECONDS, 0)}")
        retention, reconcile = values.get("retention_days", 30), values.get("reconcile_days", 2)
        assert isinstance(retention, int) and isinstance(reconcile, int)
        least = min_retention_days(reconcile)
        if retention < least:
            most = retention - RETENTION_MARGIN_DAYS
            problems.append(
                f"RETENTION_DAYS={retention} is shorter than the days a run may read again (RECONCILE_DAYS={reconcile}, "
                f"the calls' last {CALLS_READ_AGAIN_DAYS}, plus {RETENTION_MARGIN_DAYS}): set RETENTION_DAYS to at least "
                f"{least}" + (f", or RECONCILE_DAYS to at most {most}" if most >= 1 and most < reconcile else ""))
        log_format = text("LOG_FORMAT", "log_format")
        if log_format is not None and log_format not in ("auto", "json", "text"):
            problems.append(f"LOG_FORMAT must be auto, json or text, got {_cut(log_format)!r}")

        if problems:
            raise SettingsError(
                "Invalid settings: " + "; ".join(problems),
                fix="Set the named environment variables (see the README's configuration table).",
            )
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def for_store(cls, env: Mapping[str, str] | None = None, *, names: Mapping[str, str] | None = None) -> Settings:
        """Only the STORE_VARIABLES, validated; the Moneypenny, sheet and Slack settings are
        neither needed nor read (they are left empty). `names` as from_env takes them."""
        env = os.environ if env is None else env
        unused = {name: "-" for name in ("MONEYPENNY_USERNAME", "MONEYPENNY_PASSWORD", "SHEET_ID",
                                         "SLACK_BOT_TOKEN", "SLACK_CHANNEL")}
        settings = cls.from_env({**unused, **{k: env[k] for k in STORE_VARIABLES if k in env}}, names=names)
        empty = Secret("")
        return replace(settings, moneypenny_username=empty, moneypenny_password=empty, slack_bot_token=empty,
                       sheet_id="", slack_channel="")

    def describe(self) -> dict[str, str]:
        """Every setting as text, secrets masked: safe to print."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                out[f.name] = "***"
            elif f.name == "moneypenny_sources":
                out[f.name] = ",".join(value)
            elif f.name == "feed_tabs":
                out[f.name] = ",".join(f"{name}={tab}" for name, tab in value)
            elif f.name in URL_SETTINGS:
                out[f.name] = show_url(value)
            elif f.name in ("reconcile_at", "unclaimed_reminder_at"):
                out[f.name] = RECONCILE_OFF if value is None else value.strftime("%H:%M")
            elif f.name == "slack_claim_buttons":
                out[f.name] = "on" if value else "off"
            else:
                out[f.name] = str(value)
        return out
