"""One sync run and its report, the same for the HTTP function and `python -m lib run`.

`run_and_report` builds the Syncer, runs it, does the alert bookkeeping and returns a RunResult:
the report, the error, what the alerter did, and what that means as an HTTP status and as an
exit code. lib/handler.py turns it into the function's JSON answer; `command` below into the
lines (or JSON) of `python -m lib run`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .alerts import Alerter, Outcome, notify_failed, notify_succeeded
from .command import EXIT_BUSY, EXIT_FAILED, EXIT_OK, Context, build_syncer, print_json, setup
from .errors import SyncError, TransientError
from .settings import Settings
from .sync import RunFailed, RunOptions, RunReport, Syncer

log = logging.getLogger(__name__)


class Ending(Enum):
    """How a call of run_and_report ended."""

    DONE = "done"  # the run went through (its report may still say it was unhealthy)
    SKIPPED = "skipped"  # another run holds the lease, or this scheduled run already succeeded
    FAILED = "failed"  # a step failed: the report says how far it got
    NOT_STARTED = "not_started"  # the run could not start (its clients or store, a bad window)
    INTERNAL = "internal"  # an unexpected exception outside the run's own error handling


HTTP_STATUS = {Ending.DONE: 200, Ending.SKIPPED: 200, Ending.NOT_STARTED: 500, Ending.INTERNAL: 500}
EXIT_CODE = {Ending.DONE: EXIT_OK, Ending.SKIPPED: EXIT_BUSY, Ending.FAILED: EXIT_FAILED,
             Ending.NOT_STARTED: EXIT_FAILED, Ending.INTERNAL: EXIT_FAILED}


@dataclass(frozen=True)
class RunResult:
    """What one call of run_and_report did, for any front end."""

    ending: Ending
    report: RunReport | None = None  # None when the run did not start
    error: SyncError | None = None  # the failed run's first error, or why it did not start
    alert: Outcome | None = None  # what the alerter did (None: no alerter, or nothing to do)

    @property
    def transient(self) -> bool:
        """A later attempt may succeed (the scheduler retries a 503)."""
        return isinstance(self.error, TransientError)

    @property
    def retryable(self) -> bool:
        """What an answer tells the scheduler: retry a transient failure or an unexpected error;
        a run that did not start waits for a person (its settings, credentials or store)."""
        return self.ending is not Ending.NOT_STARTED and self.transient

    @property
    def http_status(self) -> int:
        """200 done or skipped; 503 a transient failure; 500 a permanent one or a run that did not start."""
        if self.ending is Ending.FAILED:
            return 503 if self.transient else 500
        return HTTP_STATUS[self.ending]

    @property
    def exit_code(self) -> int:
        """0 done, 3 skipped (busy), 1 anything that failed."""
        return EXIT_CODE[self.ending]


def _alerter_for(settings: Settings, syncer: Syncer) -> Alerter | None:
    """The failure alerter, or None if it cannot be built (the run goes ahead without alerts)."""
    from .app import build_alerter

    try:
        return build_alerter(settings, syncer)
    except Exception as exc:
        log.error("could not set up failure alerts", extra={"fields": {"error": type(exc).__name__}})
        return None


def run_and_report(
    settings: Settings,
    options: RunOptions,
    build: Callable[[], Syncer],
    *,
    schedule_time: str | None = None,
    schedule_job: str | None = None,
    alerts: bool = True,
) -> RunResult:
    """Build the Syncer (`build()`), run it with `options`, then the alert bookkeeping (unless
    `alerts` is False); never raises an Exception. No result carries a secret or visitor data."""
    try:
        syncer = build()
        alerter = _alerter_for(settings, syncer) if alerts else None
        try:
            report = syncer.run(options=options, schedule_time=schedule_time, schedule_job=schedule_job)
        except RunFailed as failed:
            return RunResult(Ending.FAILED, failed.report, failed.error, notify_failed(alerter, failed))
        ending = Ending.SKIPPED if report.outcome == "skipped" else Ending.DONE
        return RunResult(ending, report, alert=notify_succeeded(alerter, report))
    except SyncError as exc:
        return RunResult(Ending.NOT_STARTED, error=exc)
    except Exception as exc:  # the message of an unexpected error may hold anything: name its type
        log.exception("unexpected error", extra={"fields": {"error": type(exc).__name__}})
        return RunResult(Ending.INTERNAL, error=TransientError(f"internal error ({type(exc).__name__})",
                                                               cause="internal"))


# -- `python -m lib run` ------------------------------------------------------------------------

ALERT_LINES = {
    "alerted": "alert posted to {channel}",
    "repeated": "reminder alert posted to {channel}",
    "held": "no alert: this cause was alerted less than ALERT_REPEAT_MINUTES ago",
    "waiting": "no alert yet: a transient failure is alerted only if it lasts",
    "recovered": "recovery message posted to {channel}",
    "failed_to_post": "the alert could not be posted (see the log with -v)",
}
TRANSIENT_FIX = ("nothing, if it passes: the next run retries; `python -m lib check` "
                 "tells whether something is wrong")


def command(args: argparse.Namespace, ctx: Context) -> int:
    """`python -m lib run`: one sync now, alerts included; the report as lines or JSON."""
    settings, store, code = setup(args, ctx)
    if settings is None or store is None:
        return code
    try:
        # As the scheduler would: a sync makes the daily reconcile's read when it is due.
        result = run_and_report(settings, RunOptions(mode=args.mode, daily_reconcile=True),
                                lambda: build_syncer(settings, store, ctx))
        if args.json:
            print_json(ctx, as_json(result))
        else:
            ctx.say(*lines(result, settings))
        return result.exit_code
    finally:
        store.close()


def as_json(result: RunResult) -> dict[str, Any]:
    """The CLI's JSON: the report, and on failure the error, its cause and fix, and the alert's action."""
    body: dict[str, Any] = result.report.as_dict() if result.report is not None else {}
    if result.error is not None:
        body.update(ok=False, error=str(result.error), cause=result.error.cause, retryable=result.retryable,
                    fix=result.error.fix)
    return {**body, "alert": result.alert and result.alert.action}


def lines(result: RunResult, settings: Settings) -> list[str]:
    """The CLI's text: the report's line, then the error and its fix, then what the alerter did."""
    out = [run_line(result.report)] if result.report is not None else []
    if result.error is not None:
        out.append(f"error: {result.error}")
        if result.error.fix:
            out.append(f"fix: {result.error.fix}")
        elif result.transient:
            out.append(f"fix: {TRANSIENT_FIX}")
    if result.alert is not None and result.alert.action in ALERT_LINES:
        out.append(ALERT_LINES[result.alert.action].format(channel=settings.alert_channel))
    return out


def run_line(report: RunReport) -> str:
    """`run ID (mode): outcome in N s` and, unless it was skipped, its counts."""
    head = f"run {report.run_id} ({report.mode}): {report.outcome} in {report.duration_ms / 1000:.1f} s"
    if report.outcome == "skipped":
        return f"{head}: {report.skipped}"
    counts = (
        f"fetched {report.fetched}, new {report.new}, recovered {report.recovered}, written {report.appended}, "
        f"already in sheet {report.already_in_sheet}, posted {report.posted}, set aside {report.skipped_invalid}, "
        f"still waiting {report.pending}"
    )
    return f"{head}\n  {counts}"
