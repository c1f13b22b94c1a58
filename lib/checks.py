"""`python -m lib check`: try every dependency without changing anything.

Each probe gives one line: OK, WARN (works, but worth knowing) or FAIL (with the fix), or SKIP
when an earlier failure makes it meaningless. Nothing here writes: the Moneypenny login
caches no token, the sheet is only read, Slack is asked who we are and where we are, and the
chat log is never read (a read can move Moneypenny's cursor).
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .clock import utcnow
from .command import EXIT_FAILED, EXIT_OK, EXIT_SETTINGS, Context, log_level, print_json, table
from .errors import SlackConfigError, SlackError, SyncError
from .settings import Settings
from .state.documents import CURSOR_DOC

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")

if TYPE_CHECKING:
    from .state.base import CachedToken


@dataclass
class CheckResult:
    """One line of the check table."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _failed(name: str, exc: BaseException, fix: str = "") -> CheckResult:
    if isinstance(exc, SyncError):
        return CheckResult(name, FAIL, str(exc), exc.fix or fix)
    # An unexpected error's message may hold anything: name its type only.
    return CheckResult(name, FAIL, f"unexpected {type(exc).__name__}", fix)


class _ScratchTokens:
    """Takes the token of the check's login and forgets it: check changes no state."""

    def get_token(self) -> CachedToken | None:
        return None

    def put_token(self, token: CachedToken) -> None:
        pass

    def clear_token(self) -> None:
        pass


def check_settings(env: Mapping[str, str] | None) -> tuple[CheckResult, Settings | None]:
    """Read the settings the function would read."""
    try:
        settings = Settings.from_env(env)
    except SyncError as exc:
        return _failed("settings", exc), None
    where = (settings.sqlite_path and f"SQLite {settings.sqlite_path}") or "Firestore"
    detail = (
        f"read; state in {where}, sheet tab {settings.sheet_tab!r}, chat times in {settings.chat_timezone.key}"
    )
    return CheckResult("settings", OK, detail), settings


def check_store(settings: Settings, open_store: Callable[[Settings], Any]) -> tuple[CheckResult, Any]:
    """Open the state store and read one document."""
    try:
        store = open_store(settings)
    except Exception as exc:
        return _failed("state store", exc), None
    try:
        store.get_meta(CURSOR_DOC)  # raw: this checks that the store answers, not the document
    except Exception as exc:
        store.close()
        return _failed("state store", exc), None
    if settings.sqlite_path:
        detail = f"SQLite at {settings.sqlite_path} answers"
    else:
        project = settings.google_cloud_project or "(the default project)"
        detail = (
            f"Firestore {project}, database {settings.firestore_database}, "
            f"collections {settings.firestore_collection_prefix}_* answer"
        )
    return CheckResult("state store", OK, detail), store


def check_last_run(store: Any, now: datetime) -> CheckResult:
    """When the last run succeeded, from the run history (the same verdict `status` prints first)."""
    from .status import collect

    try:
        data = collect(store, now, runs=1)
    except Exception as exc:
        return _failed("last run", exc)
    state, _, text = data["verdict"].partition(" — ")
    return CheckResult("last run", OK if state == "OK" else WARN, text,
                       "" if state == "OK" else "`python -m lib status` shows the runs and what is waiting.")


def check_watcher(settings: Settings, env: Mapping[str, str] | None) -> CheckResult:
    """Whether the outside watcher's alert policies exist (Cloud Monitoring; needs credentials)."""
    from .watcher import FOUND, watcher_state

    state = watcher_state(settings, env)
    if state.state == FOUND:
        return CheckResult("watcher", OK, state.detail)
    return CheckResult("watcher", WARN, state.detail,
                       "Set watcher_enabled = true and alert_emails in terraform.tfvars, then `terraform apply`; "
                       "or watch the function elsewhere.")


def check_moneypenny(settings: Settings, backoff: float = 0.5) -> CheckResult:
    """Log in to Moneypenny (the token is not kept)."""
    from .moneypenny import MoneypennyClient

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
        return _failed("moneypenny login", exc)
    return CheckResult(
        "moneypenny login", OK,
        "the username and password are accepted (the chat log is not read: a read can move its cursor)",
    )


def check_sheet(settings: Settings, backoff: float = 0.5) -> CheckResult:
    """Read row 1 of the tab: the sheet exists, this identity may read it, the header is ours
    (judged by the sheet's own header check, the one every run makes)."""
    from . import sheet as sheet_module
    from .app import sheets_identity

    identity = sheets_identity(settings)
    try:
        client = sheet_module.build_client(settings, backoff=backoff)
        writer = sheet_module.SheetWriter(client, settings.sheet_id, settings.sheet_tab, identity=identity)
        found = writer.inspect_header()
    except Exception as exc:
        return _failed("sheet", exc)
    shared = f"shared with {identity}" if identity else "readable by this identity"
    tab = f"tab {settings.sheet_tab!r}"
    if not found.tab_exists:
        return CheckResult("sheet", OK, f"{shared}; {tab} does not exist yet: the first run creates it")
    if found.blank:
        return CheckResult("sheet", OK, f"{shared}; {tab} is empty: the first run writes the header")
    if found.wrong_column is not None:
        return CheckResult(
            "sheet", FAIL,
            f"row 1 of {tab} (SHEET_TAB) is not this tool's header: column {chr(ord('A') + found.wrong_column)} "
            f"should read {sheet_module.HEADER[found.wrong_column]!r}",
            "Restore the header in row 1 (columns A to N; extra columns to the right are fine), "
            "or point SHEET_TAB at a new or empty tab.",
        )
    note = " (edit access is proven by the first append)" if not identity else ""
    return CheckResult("sheet", OK, f"{shared}; {tab} has the right header{note}")


TOKEN_FIX = ("Set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…), from the app's "
             "OAuth & Permissions page; reinstall the app if it was revoked.")


def check_slack(settings: Settings, backoff: float = 0.5) -> list[CheckResult]:
    """auth.test for the token, conversations.info for each channel the sync posts to (their
    errors sorted as the sync's own posts sort them)."""
    from . import slack as slack_module

    client = slack_module.build_client(settings, backoff=backoff)
    try:
        me = slack_module.call("auth.test", client.auth_test)
    except SlackConfigError as exc:
        results = [CheckResult("slack token", FAIL, str(exc), TOKEN_FIX)]
        return results + [CheckResult(n, SKIP, "needs a valid token") for n in _channel_checks(settings)]
    except Exception as exc:
        detail = str(exc) if isinstance(exc, SyncError) else f"Slack did not answer auth.test ({type(exc).__name__})"
        return [CheckResult("slack token", FAIL, detail,
                            "Check SLACK_API_URL and the network; https://status.slack.com shows outages.")]
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
    from . import slack as slack_module

    try:
        info = slack_module.call("conversations.info", lambda: client.conversations_info(channel=channel), channel)
    except (SlackConfigError, SlackError) as exc:
        return _channel_refused(name, variable, channel, bot, exc)
    except Exception as exc:
        return _failed(name, exc, "Check SLACK_API_URL and the network.")
    data = info.get("channel") or {}
    label = f"#{data.get('name')} ({channel})" if data.get("name") else channel
    if data.get("is_archived"):
        return CheckResult(name, FAIL, f"{label} is archived", f"Unarchive it or set {variable} to another channel.")
    if not data.get("is_member"):
        return CheckResult(name, FAIL, f"the bot @{bot} is not in {label}",
                           f"In Slack, open the channel and type /invite @{bot}.")
    return CheckResult(name, OK, f"the bot is in {label}")


def _channel_refused(
    name: str, variable: str, channel: str, bot: str, exc: SlackConfigError | SlackError
) -> CheckResult:
    if exc.error == "channel_not_found":
        if not _CHANNEL_ID.match(channel):
            return CheckResult(
                name, FAIL, f"{variable}={channel!r} is not a channel id, and Slack finds no channel by it",
                "Use the channel id (C…): channel name > About, at the bottom. For a private "
                f"channel, invite the bot first: /invite @{bot}.",
            )
        return CheckResult(
            name, FAIL, f"no channel {channel} ({variable}) that the bot can see",
            f"Check {variable}; for a private channel, invite the bot first: /invite @{bot}.",
        )
    if exc.error == "missing_scope":
        return CheckResult(
            name, WARN, f"cannot check {variable}: the token lacks channels:read (groups:read for private channels)",
            f"Add those scopes to see this line OK, or make sure yourself that @{bot} is in the channel.",
        )
    if isinstance(exc, SlackError) and not exc.error:  # no answer
        return CheckResult(name, FAIL, str(exc), "Check SLACK_API_URL and the network.")
    return CheckResult(name, FAIL, str(exc), f"Check {variable} and SLACK_BOT_TOKEN.")


@dataclass
class CheckReport:
    """Every line of a check and whether they all passed."""

    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(r.status in (OK, WARN) for r in self.results)

    @property
    def settings_ok(self) -> bool:
        return bool(self.results) and self.results[0].status == OK


def run_checks(
    env: Mapping[str, str] | None = None,
    *,
    open_store: Callable[[Settings], Any] | None = None,
    backoff: float = 0.5,
    clock: Callable[[], datetime] | None = None,
) -> CheckReport:
    """Every probe, in order: settings, state store, last run, Moneypenny, sheet, Slack, watcher."""
    if open_store is None:
        from .state import open_store as default_open_store

        open_store = default_open_store
    first, settings = check_settings(env)
    results = [first]
    if settings is None:
        for name in ("state store", "last run", "moneypenny login", "sheet", "slack token", "slack channel",
                     "watcher"):
            results.append(CheckResult(name, SKIP, "needs valid settings"))
        return CheckReport(results)
    store_result, store = check_store(settings, open_store)
    results.append(store_result)
    if store is not None:
        results.append(check_last_run(store, (clock or utcnow)()))
        store.close()
    else:
        results.append(CheckResult("last run", SKIP, "needs the state store"))
    results.append(check_moneypenny(settings, backoff))
    results.append(check_sheet(settings, backoff))
    results.extend(check_slack(settings, backoff))
    results.append(check_watcher(settings, env))
    return CheckReport(results)


def format_table(results: list[CheckResult]) -> str:
    """The check lines as an aligned table; a fix goes on its own line under its check."""
    rows: list[list[str]] = []
    for r in results:
        rows.append([r.name, r.status, r.detail])
        if r.fix and r.status != OK:
            rows.append(["", "", f"fix: {r.fix}"])
    return "\n".join(table(["CHECK", "RESULT", "DETAIL"], rows))


def command(args: argparse.Namespace, ctx: Context) -> int:
    """`python -m lib check`: every probe as a table (or JSON); 4 for bad settings, 1 for a failure."""
    from . import logs

    logs.configure("text", level=log_level(args.verbose, quiet=logging.ERROR), stream=ctx.err)
    report = run_checks(ctx.env, backoff=ctx.backoff, clock=ctx.clock)
    if args.json:
        print_json(ctx, {"ok": report.ok, "checks": [r.as_dict() for r in report.results]})
    else:
        ctx.say(format_table(report.results))
    if not report.settings_ok:
        return EXIT_SETTINGS
    return EXIT_OK if report.ok else EXIT_FAILED
