"""The probes of the outside services (`python -m lib check`): Moneypenny's login, the sheet's
row 1, Slack's token and channels; each asks the client's own checks and changes nothing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ..clock import utcnow
from ..destinations.sheet.client import build_client, sheets_identity
from ..destinations.sheet.writer import MAX_CELLS, SheetWriter
from ..destinations.slack import client as slack_module
from ..errors import (
    DocumentError,
    MoneypennyTokenUnavailable,
    SheetFullError,
    SlackConfigError,
    SlackUnavailable,
    SyncError,
    TransientError,
    cut,
)
from ..settings import Settings
from ..sources import CALLS_FEED, CHATS_FEED, Feed
from ..sources.moneypenny import MoneypennyClient
from ..state.models import CachedToken

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")



@dataclass
class CheckResult:
    """One line of the check table."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


SHEETS_DOWN_FIX = ("Check SHEETS_API_URL and the network (https://www.google.com/appsstatus shows outages); "
                   "if it passes, the scheduled runs catch up on their own.")
SLACK_DOWN_FIX = "Check SLACK_API_URL and the network; https://status.slack.com shows outages."
DAMAGED_DOCUMENT_FIX = (
    "A stored document is damaged or was written by a newer version of this tool: deploy the newest version; "
    "else remove the document it names (SQLite: its row; Firestore: in the console) and the next run writes it anew.")
UNEXPECTED_FIX = "Run the same command with -v to see the log, and report it with that log if it persists."

# The fix of a FAIL whose error brings none, by check, for an error that may pass (no answer, a
# server error: the first) and for one that will not (the second): every FAIL line has a fix.
FALLBACK_FIXES: dict[str, tuple[str, str]] = {
    "settings": ("Set the named environment variables (see the README's configuration table).",) * 2,
    "moneypenny login": (
        "Check MONEYPENNY_AUTH_URL and the network: can this machine reach Moneypenny? If it passes, the "
        "scheduled runs catch up on their own.",
        "Check MONEYPENNY_AUTH_URL, MONEYPENNY_USERNAME and MONEYPENNY_PASSWORD."),
    "moneypenny calls": (
        "Check MONEYPENNY_CALLS_URL and the network; if it passes, the next runs read the missed days again.",
        "Check MONEYPENNY_CALLS_URL, or leave calls out of MONEYPENNY_SOURCES."),
    "sheet": (SHEETS_DOWN_FIX, "Check SHEET_ID and SHEET_TAB."),
    "calls tab": (SHEETS_DOWN_FIX, "Check SHEET_ID and CALLS_TAB."),
    "slack token": (SLACK_DOWN_FIX, "Check SLACK_BOT_TOKEN and SLACK_API_URL."),
    "last run": (
        "Check the state store (the line above); `python -m lib status -v` reads the same history.",
        DAMAGED_DOCUMENT_FIX),
}


def failed(name: str, exc: BaseException, fix: str = "") -> CheckResult:
    """A FAIL line for `exc`: its own fix, else `fix`, else the check's FALLBACK_FIXES."""
    passing, lasting = FALLBACK_FIXES.get(name, (UNEXPECTED_FIX, UNEXPECTED_FIX))
    if isinstance(exc, SyncError):
        return CheckResult(name, FAIL, str(exc),
                           exc.fix or fix or (passing if isinstance(exc, TransientError) else lasting))
    if isinstance(exc, DocumentError):  # names the document and field, never a value
        return CheckResult(name, FAIL, str(exc), fix or DAMAGED_DOCUMENT_FIX)
    # An unexpected error's message may hold anything: name its type only.
    return CheckResult(name, FAIL, f"unexpected {type(exc).__name__}", fix or UNEXPECTED_FIX)


class _ScratchTokens:
    """Takes the token of the check's login and forgets it: check changes no state."""

    def get_token(self) -> CachedToken | None:
        return None

    def put_token(self, token: CachedToken) -> None:
        pass

    def clear_token(self) -> None:
        pass


def check_moneypenny(settings: Settings, backoff: float = 0.5) -> CheckResult:
    """Log in to Moneypenny (the token is not kept)."""
    client = MoneypennyClient(
        auth_url=settings.moneypenny_auth_url,
        chats_url=settings.moneypenny_chats_url,
        username=settings.moneypenny_username,
        password=settings.moneypenny_password,
        store=_ScratchTokens(),  # type: ignore[arg-type]
        timeout=settings.http_timeout_seconds,
        backoff=backoff,
    )
    try:
        client.login()
    except Exception as exc:
        return failed("moneypenny login", exc)
    return CheckResult(
        "moneypenny login", OK,
        "the username and password are accepted (the chat log is not read: a read can move its cursor)",
    )


def check_calls(settings: Settings, backoff: float = 0.5, now: datetime | None = None,
                feed: Feed = CALLS_FEED) -> CheckResult:
    """Log in and read today's items of a feed read by days (the call messages, or another
    registered feed: its `probe`); the token is not kept, a read moves nothing."""
    client = MoneypennyClient(
        auth_url=settings.moneypenny_auth_url, chats_url=settings.moneypenny_chats_url,
        calls_url=settings.moneypenny_calls_url, username=settings.moneypenny_username,
        password=settings.moneypenny_password, store=_ScratchTokens(),  # type: ignore[arg-type]
        timeout=settings.http_timeout_seconds, backoff=backoff,
    )
    today = (now or utcnow()).astimezone(settings.chat_timezone).date()
    name = f"moneypenny {feed.name}"
    assert feed.probe is not None, "a feed read by days says how check probes it"
    try:
        found = feed.probe(client, today)
    except MoneypennyTokenUnavailable as exc:
        # Its login failed, not its endpoint: the fix names the token endpoint.
        return failed(name, exc, FALLBACK_FIXES["moneypenny login"][0])
    except Exception as exc:
        return failed(name, exc)
    # The count only: a message's caller, number and text never reach the output.
    return CheckResult(name, OK, f"the {feed.noun}s endpoint answers ({len(found)} {feed.noun.split()[-1]}(s) today)")


def check_sheet(settings: Settings, backoff: float = 0.5, *, calls: bool = False, feed: Feed | None = None) -> CheckResult:
    """Read row 1 of a feed's tab (the chats' by default, the Calls tab with `calls`): the sheet
    exists, this identity may read it, the header is ours (judged by the sheet's own header
    check, the one every run makes)."""
    feed = feed or (CALLS_FEED if calls else CHATS_FEED)
    layout = feed.layout
    name = "sheet" if feed is CHATS_FEED else f"{feed.name} tab"
    tab_name = feed.tab(settings)
    identity = sheets_identity(settings)
    try:
        client = build_client(settings, backoff=backoff)
        writer = SheetWriter(client, settings.sheet_id, tab_name, identity=identity, layout=layout)
        found = writer.inspect_header()
    except Exception as exc:
        return failed(name, exc)
    shared = f"shared with {identity}" if identity else "readable by this identity"
    tab = f"tab {cut(tab_name)!r}"
    if not found.tab_exists:
        return _fullness(writer, name, CheckResult(name, OK, f"{shared}; {tab} does not exist yet: the first run "
                                                   "creates it"), needs=1000 * len(layout.header))
    if found.blank:
        return _fullness(writer, name, CheckResult(name, OK, f"{shared}; {tab} is empty: the first run writes the "
                                                   "header"), needs=len(layout.header))
    if found.wrong_column is not None:
        return CheckResult(
            name, FAIL,
            f"row 1 of {tab} ({layout.setting}) is not this tool's header: column {chr(ord('A') + found.wrong_column)} "
            f"should read {layout.header[found.wrong_column]!r}",
            f"Restore the header in row 1 (columns A to {layout.last_column}; extra columns to the right are fine), "
            f"or point {layout.setting} at a new or empty tab.",
        )
    note = " (edit access is proven by the first append)" if not identity else ""
    return _fullness(writer, name, CheckResult(name, OK, f"{shared}; {tab} has the right header{note}"),
                     needs=len(layout.header))


# Past this share of Google's cell limit, `check` warns that the spreadsheet is filling up.
FULL_WARN = 0.8


def _fullness(writer: Any, name: str, result: CheckResult, *, needs: int) -> CheckResult:
    """The check's line with how full the tab's spreadsheet is (cells used of Google's limit, from
    the spreadsheet's metadata): WARN past FULL_WARN, FAIL when not one more row fits."""
    try:
        used = writer.cells_used()
    except Exception as exc:
        return failed(name, exc)
    share = used / MAX_CELLS
    text = f"{result.detail}; the spreadsheet uses {used:,} of Google's {MAX_CELLS:,} cells ({100 * share:.1f} %)"
    if MAX_CELLS - used < needs:
        return CheckResult(name, FAIL, text + ": it is full, no row can be added", SheetFullError.fix)
    if share > FULL_WARN:
        return CheckResult(name, WARN, text + f": past {FULL_WARN:.0%}, it fills up", SheetFullError.fix)
    return dataclasses.replace(result, detail=text)


TOKEN_FIX = ("Set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…), from the app's "
             "OAuth & Permissions page; reinstall the app if it was revoked.")


def check_slack(settings: Settings, backoff: float = 0.5) -> list[CheckResult]:
    """auth.test for the token, conversations.info for each channel the sync posts to (their
    errors sorted as the sync's own posts sort them)."""
    client = slack_module.build_client(settings, backoff=backoff)
    try:
        me = slack_module.call("auth.test", client.auth_test)
    except SlackConfigError as exc:
        results = [CheckResult("slack token", FAIL, str(exc), TOKEN_FIX)]
        return results + [CheckResult(n, SKIP, "needs a valid token") for n in _channel_checks(settings)]
    except Exception as exc:
        detail = str(exc) if isinstance(exc, SyncError) else f"Slack did not answer auth.test ({type(exc).__name__})"
        return [CheckResult("slack token", FAIL, detail, SLACK_DOWN_FIX)]
    bot = str(me.get("user") or "the bot")
    results = [CheckResult("slack token", OK, f"valid: bot @{bot} in workspace {me.get('team') or '?'}")]
    for name, (variable, channel) in _channel_checks(settings).items():
        results.append(_check_channel(client, name, variable, channel, bot))
    return results


def _channel_checks(settings: Settings) -> dict[str, tuple[str, str]]:
    checks = {"slack channel": ("SLACK_CHANNEL", settings.slack_channel)}
    if settings.slack_alert_channel and settings.slack_alert_channel != settings.slack_channel:
        checks["slack alert channel"] = ("SLACK_ALERT_CHANNEL", settings.slack_alert_channel)
    return checks


def _check_channel(client: Any, name: str, variable: str, channel: str, bot: str) -> CheckResult:
    try:
        info = slack_module.call("conversations.info", lambda: client.conversations_info(channel=channel), channel)
    except (SlackConfigError, SlackUnavailable) as exc:
        return _channel_refused(name, variable, channel, bot, exc)
    except Exception as exc:
        return failed(name, exc, "Check SLACK_API_URL and the network.")
    data = info.get("channel") or {}
    label = f"#{data.get('name')} ({channel})" if data.get("name") else channel
    if data.get("is_archived"):
        return CheckResult(name, FAIL, f"{label} is archived", f"Unarchive it or set {variable} to another channel.")
    if not data.get("is_member"):
        return CheckResult(name, FAIL, f"the bot @{bot} is not in {label}",
                           f"In Slack, open the channel and type /invite @{bot}.")
    return CheckResult(name, OK, f"the bot is in {label}")


def _channel_refused(
    name: str, variable: str, channel: str, bot: str, exc: SlackConfigError | SlackUnavailable
) -> CheckResult:
    if exc.error == "channel_not_found":
        if not _CHANNEL_ID.match(channel):
            return CheckResult(
                name, FAIL, f"{variable}={cut(channel)!r} is not a channel id, and Slack finds no channel by it",
                "Use the channel id (C…): channel name > About, at the bottom. For a private "
                f"channel, invite the bot first: /invite @{bot}.",
            )
        return CheckResult(
            name, FAIL, f"no channel {cut(channel)} ({variable}) that the bot can see",
            f"Check {variable}; for a private channel, invite the bot first: /invite @{bot}.",
        )
    if exc.error == "missing_scope":
        return CheckResult(
            name, WARN, f"cannot check {variable}: the token lacks channels:read (groups:read for private channels)",
            f"Add those scopes to see this line OK, or make sure yourself that @{bot} is in the channel.",
        )
    if isinstance(exc, SlackUnavailable) and not exc.error:  # no answer
        return CheckResult(name, FAIL, str(exc), "Check SLACK_API_URL and the network.")
    return CheckResult(name, FAIL, str(exc), f"Check {variable} and SLACK_BOT_TOKEN.")
