"""`python -m lib check`: try every dependency without changing anything.

Each probe gives one line: OK, WARN (works, but worth knowing) or FAIL (with the fix), or SKIP
when an earlier failure makes it meaningless. Nothing here writes: the Moneypenny login
caches no token, the sheet is only read, Slack is asked who we are and where we are, and the
chat log is never read (a read can move Moneypenny's cursor).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import logs
from ..accounts import own_name, settings_for, shared_logins, stray_variables, suffix, wide_variables
from ..clock import utcnow
from ..errors import DocumentError, StateStoreMissing, SyncError, cut
from ..settings import Settings
from ..sources import CHATS_FEED, registered
from ..state import open_store as default_open_store
from ..state.documents import CURSOR_DOC
from .command import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SETTINGS,
    STORE_UNSET,
    STORE_UNSET_FIX,
    Context,
    accounts_of,
    log_level,
    pick_account,
    print_json,
    store_unset,
    table,
)
from .service_checks import (
    DAMAGED_DOCUMENT_FIX,
    FAIL,
    OK,
    SKIP,
    WARN,
    CheckResult,
    check_calls,
    check_moneypenny,
    check_sheet,
    check_slack,
    failed,
)
from .status_collect import collect
from .watcher import FOUND, watcher_state


def check_settings(env: Mapping[str, str] | None, account: str = "") -> tuple[CheckResult, Settings | None]:
    """Read the settings the function would read (for `account`, "" without ACCOUNTS)."""
    try:
        settings = settings_for(env, account)
    except SyncError as exc:
        return failed("settings", exc), None
    where = (settings.sqlite_path and f"SQLite {cut(settings.sqlite_path)}") or "Firestore"
    # The tabs in use only: SHEET_TAB means nothing while chats are off, CALLS_TAB while calls are.
    tabs = [f"{'sheet' if feed is CHATS_FEED else feed.name} tab {cut(feed.tab(settings))!r}"
            for feed in registered() if settings.feed_on(feed.name)]
    detail = f"read; state in {where}, {', '.join(tabs)}, chat times in {settings.chat_timezone.key}"
    return CheckResult("settings", OK, detail), settings


def store_fix(settings: Settings, exc: BaseException) -> str:
    """What to do when the state store does not open or answer and its error says nothing."""
    if isinstance(exc, DocumentError):
        return DAMAGED_DOCUMENT_FIX
    damaged = any(sign in str(exc) for sign in ("not a database", "malformed"))
    if settings.sqlite_path and not damaged:
        return ("Another process may be writing the file (a run, a backfill): try again in a minute; check that "
                "STATE_STORE names the file you mean.")
    if settings.sqlite_path:
        return ("STATE_STORE names a file SQLite cannot read (damaged, or not a SQLite database): restore it from a "
                "copy, or move it aside and point STATE_STORE at a new file (the next run creates it).")
    return ("Check GOOGLE_CLOUD_PROJECT, FIRESTORE_DATABASE and this identity's access (roles/datastore.user) and the "
            "network; https://status.cloud.google.com shows outages.")


def check_store(settings: Settings, open_store: Callable[[Settings], Any]) -> tuple[CheckResult, Any]:
    """Open the state store and read one document."""
    try:
        store = open_store(settings)
    except StateStoreMissing as exc:
        if settings.sqlite_path and not os.path.exists(settings.sqlite_path):
            # As a sheet tab that does not exist yet: normal before the first run, and check creates nothing.
            return CheckResult("state store", OK, f"{exc}: the first run creates it (if one should be there, "
                               "check STATE_STORE; a relative path is read from the current folder)"), None
        return failed("state store", exc), None
    except Exception as exc:
        return failed("state store", exc, store_fix(settings, exc)), None
    try:
        store.get_meta(CURSOR_DOC)  # raw: this checks that the store answers, not the document
    except Exception as exc:
        store.close()
        return failed("state store", exc, store_fix(settings, exc)), None
    if settings.sqlite_path:
        detail = f"SQLite at {cut(settings.sqlite_path)} answers"
    else:
        project = settings.google_cloud_project or "(the default project)"
        detail = (
            f"Firestore {cut(project)}, database {cut(settings.firestore_database)}, "
            f"collections {cut(settings.firestore_collection_prefix)}_* "
            + (f"of account {settings.account} (under {cut(settings.firestore_collection_prefix)}_accounts/"
               f"{settings.account}) " if settings.account else "") + "answer"
        )
    return CheckResult("state store", OK, detail), store


def check_last_run(store: Any, now: datetime) -> CheckResult:
    """When the last run succeeded, from the run history (the same verdict `status` prints first)."""
    try:
        data = collect(store, now, runs=1)
    except Exception as exc:
        return failed("last run", exc)
    state, _, text = data["verdict"].partition(" — ")
    return CheckResult("last run", OK if state == "OK" else WARN, text,
                       "" if state == "OK" else "`python -m lib status` shows the runs and what is waiting.")


def check_watcher(settings: Settings, env: Mapping[str, str] | None) -> CheckResult:
    """Whether the outside watcher's alert policies exist (Cloud Monitoring; needs credentials)."""
    state = watcher_state(settings, env)
    if state.state == FOUND:
        return CheckResult("watcher", OK, state.detail)
    return CheckResult("watcher", WARN, state.detail,
                       "Set watcher_enabled = true and alert_emails in terraform.tfvars, then `terraform apply`; "
                       "or watch the function elsewhere.")


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
    account: str = "",
) -> CheckReport:
    """Every probe, in order: settings, state store, last run, Moneypenny, sheet, Slack, watcher;
    for `account` ("" without ACCOUNTS): its settings, its store, its login, sheet and channel."""
    if open_store is None:
        # Read only: check changes nothing, so it never creates, migrates or locks a store.
        open_store = functools.partial(default_open_store, read_only=True)
    first, settings = check_settings(env, account)
    if settings is not None:
        logs.register_secrets(settings.secrets())  # the probes' log lines are scrubbed of them too
    results = [first]
    if settings is None:
        for name in ("state store", "last run", "moneypenny login", "sheet", "slack token", "slack channel",
                     "watcher"):
            results.append(CheckResult(name, SKIP, "needs valid settings"))
        return CheckReport(results)
    if store_unset(env):
        store_result, store = CheckResult("state store", FAIL, STORE_UNSET, STORE_UNSET_FIX), None
    else:
        store_result, store = check_store(settings, open_store)
    results.append(store_result)
    if store is not None:
        results.append(check_last_run(store, (clock or utcnow)()))
        store.close()
    elif store_result.status == OK:
        results.append(CheckResult("last run", WARN, "none recorded (no state store yet)"))
    else:
        results.append(CheckResult("last run", SKIP, "needs the state store"))
    results.append(check_moneypenny(settings, backoff))
    feeds = [feed for feed in registered() if settings.feed_on(feed.name)]
    # Each feed read by days is read for today (a read moves nothing); the chat log is not (its login is).
    results.extend(check_calls(settings, backoff, (clock or utcnow)(), feed=feed) for feed in feeds
                   if feed.probe is not None)
    # The tabs in use only: SHEET_TAB means nothing while chats are off, CALLS_TAB while calls are.
    results.extend(check_sheet(settings, backoff, feed=feed) for feed in feeds)
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


def accounts_line(env: Mapping[str, str] | None, accounts: tuple[str, ...]) -> CheckResult:
    """The ACCOUNTS line: the accounts; a FAIL for accounts that share a Moneypenny login, a WARN
    for a per-account variable that names none of them."""
    shared = shared_logins(env)
    if shared:
        # Moneypenny moves a login's one cursor on every read: each account would get part of its chats.
        groups = "; ".join(" and ".join(group) for group in shared)
        names = ", ".join(own_name("MONEYPENNY_USERNAME", account) for group in shared for account in group)
        return CheckResult("accounts", FAIL, f"{', '.join(accounts)}; one Moneypenny login is shared by {groups} "
                           "(each would get only part of its chats: Moneypenny's cursor moves on every read)",
                           f"Give each account its own Moneypenny login ({names} and their MONEYPENNY_PASSWORD__ID); "
                           "the bare MONEYPENNY_USERNAME is every account's default.")
    stray, wide = stray_variables(env), wide_variables(env)
    fixes = []
    if stray:
        fixes.append("A per-account variable ends in __ and the id in upper case, hyphens as underscores "
                     f"(such as SHEET_ID__{suffix(accounts[0])}): rename it, or add its account to ACCOUNTS.")
    if wide:
        names = ", ".join(dict.fromkeys(variable.partition("__")[0] for variable in wide))
        fixes.append(f"{names} {'is' if ',' not in names else 'are'} the deployment's, the same for every account: "
                     "set the bare name instead (docs/operating.md, 'Several accounts', lists the per-account settings).")
    if fixes:
        unread = [*stray, *wide]
        return CheckResult("accounts", WARN, f"{', '.join(accounts)}; no account reads {', '.join(unread[:10])}",
                           " ".join(fixes))
    return CheckResult("accounts", OK, ", ".join(accounts))


def before_accounts_line(env: Mapping[str, str] | None) -> CheckResult | None:
    """The state of the deployment before ACCOUNTS was set (the store without an account), when
    it is still there: no account reads it, so a WARN when it holds entries waiting for a
    destination or items set aside; None when there is none (or it cannot be read)."""
    try:
        store = default_open_store(Settings.for_store(env), read_only=True)
    except SyncError:  # StateStoreMissing: none (a SQLite file never made); else nothing to say here
        return None
    try:
        if store.read_run_state().version is None:
            return None
        waiting, set_aside = len(store.journal_pending()), store.quarantine_count()
    except SyncError:
        return None
    finally:
        store.close()
    name = "before ACCOUNTS"
    if not waiting and not set_aside:
        return CheckResult(name, OK, "the state from before ACCOUNTS holds nothing waiting (no account reads it)")
    return CheckResult(
        name, WARN, f"the state from before ACCOUNTS holds {waiting} item(s) waiting for the sheet or Slack and "
        f"{set_aside} set aside, and no account reads it",
        "See them with ACCOUNTS unset for one command: `ACCOUNTS= python -m lib waiting` and `ACCOUNTS= python -m "
        "lib quarantine` (docs/deploy.md, 'A deployment without accounts moving to accounts').")


def every_account(args: argparse.Namespace, ctx: Context, accounts: tuple[str, ...]) -> int:
    """`python -m lib check` with ACCOUNTS and no --account: every account's checks, a table each;
    4 when any account's settings are wrong, else 1 when any check failed."""
    first = accounts_line(ctx.env, accounts)
    before = before_accounts_line(ctx.env) if not store_unset(ctx.env) else None
    reports = {account: run_checks(ctx.env, backoff=ctx.backoff, clock=ctx.clock, account=account)
               for account in accounts}
    if args.json:
        print_json(ctx, {"ok": first.status != FAIL and all(r.ok for r in reports.values()), "accounts_check": first.as_dict(),
                         **({"before_accounts": before.as_dict()} if before else {}),
                         "accounts": {a: {"ok": r.ok, "checks": [c.as_dict() for c in r.results]}
                                      for a, r in reports.items()}})
    else:
        ctx.say(format_table([first, *([before] if before else [])]))
        for account, report in reports.items():
            ctx.say("", f"Account {account}", format_table(report.results))
    if not all(r.settings_ok for r in reports.values()):
        return EXIT_SETTINGS
    return EXIT_OK if first.status != FAIL and all(r.ok for r in reports.values()) else EXIT_FAILED


def command(args: argparse.Namespace, ctx: Context) -> int:
    """`python -m lib check`: every probe as a table (or JSON); 4 for bad settings, 1 for a failure.
    With ACCOUNTS: the account of --account, or without it every account (every_account)."""
    logs.configure("text", level=log_level(args.verbose, quiet=logging.ERROR), stream=ctx.err)
    if args.account:
        account, code = pick_account(args, ctx)
        if account is None:
            return code
    else:
        accounts, code = accounts_of(ctx)
        if accounts is None:
            return code
        if accounts:
            return every_account(args, ctx, accounts)
        account = ""
    report = run_checks(ctx.env, backoff=ctx.backoff, clock=ctx.clock, account=account)
    if args.json:
        print_json(ctx, {"ok": report.ok, "checks": [r.as_dict() for r in report.results]})
    else:
        ctx.say(format_table(report.results))
    if not report.settings_ok:
        return EXIT_SETTINGS
    return EXIT_OK if report.ok else EXIT_FAILED
