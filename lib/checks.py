"""`python -m lib check`: try every dependency without changing anything.

Each probe gives one line: OK, WARN (works, but worth knowing) or FAIL (with the fix), or SKIP
when an earlier failure makes it meaningless. Nothing here writes: the Moneypenny login
caches no token, the sheet is only read, Slack is asked who we are and where we are, and the
chat log is never read (a read can move Moneypenny's cursor).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import utcnow
from .command import EXIT_FAILED, EXIT_OK, EXIT_SETTINGS, Context, log_level, print_json, table
from .errors import SyncError
from .service_checks import (
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
from .settings import Settings
from .state.documents import CURSOR_DOC


def check_settings(env: Mapping[str, str] | None) -> tuple[CheckResult, Settings | None]:
    """Read the settings the function would read."""
    try:
        settings = Settings.from_env(env)
    except SyncError as exc:
        return failed("settings", exc), None
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
        return failed("state store", exc), None
    try:
        store.get_meta(CURSOR_DOC)  # raw: this checks that the store answers, not the document
    except Exception as exc:
        store.close()
        return failed("state store", exc), None
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
        return failed("last run", exc)
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
    if settings is not None:
        from . import logs

        logs.register_secrets(settings.secrets())  # the probes' log lines are scrubbed of them too
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
    if settings.calls_on:
        results.append(check_calls(settings, backoff, (clock or utcnow)()))
    results.append(check_sheet(settings, backoff))
    if settings.calls_on:
        results.append(check_sheet(settings, backoff, calls=True))
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
