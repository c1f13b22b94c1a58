"""The HTTP side of the function: read the request, run the sync, answer with JSON."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from datetime import date
from typing import Any

from . import logs
from .accounts import account_ids, settings_for, unknown_account
from .app import build_syncer
from .clock import utcnow
from .errors import SHOWN_VALUE_LIMIT, BadRequest, SettingsError, cut
from .runner import RunResult, run_and_report
from .settings import Settings
from .sync import RunOptions, Syncer
from .sync.options import window_problem

log = logging.getLogger(__name__)

# The warm Syncer of each account ("" without ACCOUNTS) with the settings it was built from. `_lock`
# guards only these dicts, never a build or a run: one account's requests never wait for another's.
_lock = threading.Lock()
_cached: dict[str, tuple[Settings, Syncer]] = {}
# One lock per account, held while its Syncer is built (two first requests build it once).
_building: dict[str, threading.Lock] = {}


def _warm(settings: Settings) -> Syncer | None:
    # Settings compare by every value (secrets and whole URLs included): describe() shows less.
    with _lock:
        got = _cached.get(settings.account)
        return got[1] if got is not None and got[0] == settings else None


def _syncer_for(settings: Settings) -> Syncer:
    """One Syncer per process, account and settings, so warm instances reuse sessions and clients.

    Each account's is its own (its own store, Moneypenny login and Slack client); a change of
    an account's settings builds its Syncer again, and leaves the other accounts' alone."""
    syncer = _warm(settings)
    if syncer is not None:
        return syncer
    with _lock:
        building = _building.setdefault(settings.account, threading.Lock())
    with building:
        syncer = _warm(settings)
        if syncer is None:
            syncer = build_syncer(settings)
            with _lock:
                _cached[settings.account] = (settings, syncer)
        return syncer


def warm_syncer(account: str = "") -> Syncer | None:
    """The Syncer that this process reuses between requests for `account` ("" without ACCOUNTS),
    or None before its first request.

    Its `store.counters`, `moneypenny.counters`, `sheet.counters` and `slack.counters` say what
    the requests served so far have cost.
    """
    with _lock:
        got = _cached.get(account)
        return None if got is None else got[1]


def warm_syncers() -> dict[str, Syncer]:
    """Every account's warm Syncer in this process, by account."""
    with _lock:
        return {account: syncer for account, (_, syncer) in _cached.items()}


ALLOWED_METHODS = ("GET", "POST")
MODES = ("new", "reconcile", "window")
# The request header Cloud Run (and functions-framework, when it is missing) names a request by.
EXECUTION_ID_HEADER = "Function-Execution-Id"


def _echo(value: str) -> str:
    """A bad request value as an answer shows it: quoted, cut as every echoed value is (errors.cut)."""
    return repr(cut(value))


def refuse_method(method: str) -> tuple[dict[str, Any], int, dict[str, str]] | None:
    """A 405 answer for any method but GET and POST (a CORS preflight must not start a sync), else None.

    It is decided before anything is read: no settings, no store, no Moneypenny.
    """
    if method.upper() in ALLOWED_METHODS:
        return None
    allow = ", ".join(ALLOWED_METHODS)
    body = {"ok": False, "error": f"method {_echo(method)} is not allowed; a sync is started by {' or '.join(ALLOWED_METHODS)}",
            "cause": "method_not_allowed", "retryable": False}
    return body, 405, {"Allow": allow, "Cache-Control": "no-store"}


def parse_request(args: Mapping[str, str], today: date | None = None) -> dict[str, Any]:
    """The run's options from the query string: mode, start, end (ISO dates from 2000-01-01 to
    tomorrow; `today` defaults to the UTC date)."""
    given = (args.get("mode") or "").strip()
    mode = given or "new"
    start_raw, end_raw = (args.get("start") or "").strip(), (args.get("end") or "").strip()
    if mode not in MODES:
        raise BadRequest(f"query parameter 'mode' must be one of {', '.join(MODES)}, got {_echo(mode)}")
    options: dict[str, Any] = {"mode": mode}
    if (start_raw or end_raw) and given in ("new", "reconcile"):
        # A window would silently replace the mode asked for.
        raise BadRequest(
            f"mode={given} takes no 'start' or 'end'; for a date window use mode=window (or no mode) "
            "with 'start' and 'end'"
        )
    if start_raw or end_raw:
        if not (start_raw and end_raw):
            raise BadRequest("query parameters 'start' and 'end' go together (ISO dates, YYYY-MM-DD)")
        try:
            start, end = date.fromisoformat(start_raw), date.fromisoformat(end_raw)
        except ValueError:
            raise BadRequest("query parameters 'start' and 'end' must be ISO dates (YYYY-MM-DD)") from None
        problem = window_problem(start, end, (today or utcnow().date()))
        if problem is not None:
            raise BadRequest(f"query parameters: {problem}")
        if end < start:
            raise BadRequest("query parameter 'end' is before 'start'")
        if (end - start).days > 366:
            raise BadRequest("a window of more than 366 days is too long for one call; use the CLI's backfill")
        options.update(mode="window", start=start, end=end)
    elif mode == "window":
        raise BadRequest("mode=window needs 'start' and 'end'")
    return options


def handle(args: Mapping[str, str], headers: Mapping[str, str], env: Mapping[str, str] | None = None) -> tuple[dict[str, Any], int]:
    """Run one sync for an HTTP request; return (JSON body, status).

    200: done or skipped. 400: a bad query. 500: a permanent failure (a person must act).
    503: a transient failure (Cloud Scheduler retries). No body carries a secret or a visitor's data.
    """
    # Cloud Run names each request (functions-framework passes the id on, or makes one): every
    # line this request logs carries it as Cloud Logging's execution_id label.
    execution_id = (headers.get(EXECUTION_ID_HEADER) or "").strip()[:SHOWN_VALUE_LIMIT]
    with logs.context(**({logs.EXECUTION_ID: execution_id} if execution_id else {})):
        return _handle(args, headers, env)


def _settings_refused(exc: SettingsError, account: str = "") -> tuple[dict[str, Any], int]:
    logs.configure("auto")
    log.error("settings are invalid", extra={"fields": {"cause": exc.cause}})
    return {"ok": False, **_named(account), "error": str(exc), "cause": exc.cause, "fix": exc.fix, "retryable": False}, 500


def _named(account: str) -> dict[str, str]:
    return {"account": account} if account else {}


def pick_account(args: Mapping[str, str], accounts: tuple[str, ...]) -> str:
    """The account a request names (`?account=north`): one of ACCOUNTS, required when ACCOUNTS is
    set; "" for a deployment without ACCOUNTS, which takes no `account`. BadRequest lists the accounts."""
    given = (args.get("account") or "").strip()
    if not accounts:
        if given:
            raise BadRequest(f"query parameter 'account' is {_echo(given)}, but this deployment has no ACCOUNTS: "
                             "leave 'account' out")
        return ""
    if not given:
        raise BadRequest(f"query parameter 'account' is required (ACCOUNTS names {', '.join(accounts)}): "
                         f"call with ?account={accounts[0]}")
    if given not in accounts:
        raise BadRequest(f"query parameter 'account': {unknown_account(given, accounts)}")
    return given


def _handle(args: Mapping[str, str], headers: Mapping[str, str], env: Mapping[str, str] | None) -> tuple[dict[str, Any], int]:
    env = os.environ if env is None else env
    try:
        accounts = account_ids(env)
    except SettingsError as exc:
        return _settings_refused(exc)
    try:
        account = pick_account(args, accounts)
    except BadRequest as exc:
        return {"ok": False, "error": str(exc), "cause": exc.cause, "retryable": False, "accounts": list(accounts)}, 400
    with logs.context(**({logs.ACCOUNT: account} if account else {})):
        try:
            settings = settings_for(env, account)
        except SettingsError as exc:
            return _settings_refused(exc, account)
        logs.configure(settings.log_format, secrets=settings.secrets())
        try:
            options = parse_request(args)
        except BadRequest as exc:
            return {"ok": False, **_named(account), "error": str(exc), "cause": exc.cause, "retryable": False}, 400
        # A sync (mode new) is a scheduled run: it makes the daily reconcile's read when it is due.
        result = run_and_report(
            settings, RunOptions(**options, daily_reconcile=True), lambda: _syncer_for(settings),
            schedule_time=headers.get("X-CloudScheduler-ScheduleTime") or None,
            schedule_job=headers.get("X-CloudScheduler-JobName") or None,
        )
        body = answer(result)
        if account:
            # A run's report names it already; an answer without one (a run that could not start) too.
            body = {"account": account, **body}
        return body, result.http_status


def answer(result: RunResult) -> dict[str, Any]:
    """The JSON body for a run's result: its report, and for a failure the error, cause,
    retryable and fix (when there is one)."""
    body: dict[str, Any] = result.report.as_dict() if result.report is not None else {}
    if result.error is None:
        return body
    body.update(ok=False, error=str(result.error), cause=result.error.cause, retryable=result.retryable)
    if result.error.fix:
        body["fix"] = result.error.fix
    return body
