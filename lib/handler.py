"""The HTTP side of the function: read the request, run the sync, answer with JSON."""

from __future__ import annotations

import logging
import threading
from datetime import date
from typing import Any, Mapping

from .errors import SettingsError, SyncError
from .settings import Settings
from . import logs

log = logging.getLogger(__name__)

_lock = threading.Lock()
_cached: tuple[tuple, Any] | None = None


def _syncer_for(settings: Settings):
    """One Syncer per process and settings, so warm instances reuse sessions and clients."""
    global _cached
    from .app import build_syncer

    # Settings compare by every value (secrets and whole URLs included): describe() shows less.
    key = (settings,)
    with _lock:
        if _cached is None or _cached[0] != key:
            _cached = (key, build_syncer(settings))
        return _cached[1]


def warm_syncer():
    """The Syncer that this process reuses between requests, or None before the first request.

    Its `store.counters`, `moneypenny.counters`, `sheet.counters` and `slack.counters` say what
    the requests served so far have cost.
    """
    with _lock:
        return None if _cached is None else _cached[1]


def _secrets(settings: Settings) -> tuple:
    return (settings.moneypenny_username, settings.moneypenny_password, settings.slack_bot_token)


def _alerter_for(settings: Settings, syncer):
    """The failure alerter, or None if it cannot be built (the run goes ahead without alerts)."""
    from .app import build_alerter

    try:
        return build_alerter(settings, syncer)
    except Exception as exc:
        log.error("could not set up failure alerts", extra={"fields": {"error": type(exc).__name__}})
        return None


class BadRequest(SyncError):
    cause = "bad_request"


ALLOWED_METHODS = ("GET", "POST")
MODES = ("new", "reconcile", "window")
ECHO_LIMIT = 100  # characters of a bad query value shown back


def _echo(value: str) -> str:
    return repr(value if len(value) <= ECHO_LIMIT else value[:ECHO_LIMIT] + "…")


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


def parse_request(args: Mapping[str, str]) -> dict[str, Any]:
    """The run's options from the query string: mode, start, end (ISO dates)."""
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
    from .alerts import run_with_alerts
    from .sync import RunFailed, RunOptions

    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        logs.configure("auto")
        log.error("settings are invalid", extra={"fields": {"cause": exc.cause}})
        return {"ok": False, "error": str(exc), "cause": exc.cause, "fix": exc.fix, "retryable": False}, 500
    logs.configure(settings.log_format, secrets=_secrets(settings))
    try:
        options = parse_request(args)
    except BadRequest as exc:
        return {"ok": False, "error": str(exc), "cause": exc.cause, "retryable": False}, 400
    schedule_time = headers.get("X-CloudScheduler-ScheduleTime") or None
    schedule_job = headers.get("X-CloudScheduler-JobName") or None
    try:
        syncer = _syncer_for(settings)
        run = RunOptions(**options, schedule_time=schedule_time, schedule_job=schedule_job)
        report = run_with_alerts(syncer, _alerter_for(settings, syncer), options=run)
    except RunFailed as failed:
        body = {
            **failed.report.as_dict(),
            "ok": False,
            "error": str(failed.error),
            "cause": failed.error.cause,
            "retryable": failed.transient,
        }
        if failed.error.fix:
            body["fix"] = failed.error.fix
        return body, 503 if failed.transient else 500
    except SyncError as exc:
        body = {"ok": False, "error": str(exc), "cause": exc.cause, "retryable": False}
        if exc.fix:
            body["fix"] = exc.fix
        return body, 500
    except Exception as exc:  # the message of an unexpected error may hold anything
        log.exception("unexpected error", extra={"fields": {"error": type(exc).__name__}})
        return {"ok": False, "error": f"internal error ({type(exc).__name__})", "cause": "internal", "retryable": True}, 500
    return report.as_dict(), 200
