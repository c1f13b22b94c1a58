"""`python -m lib run`: one sync now, alerts included, the same run as the HTTP function's
(lib/runner.py); the report as lines or JSON, and the run's ending as an exit code."""

from __future__ import annotations

import argparse
from typing import Any

from ..runner import Ending, RunResult, run_and_report
from ..settings import Settings
from ..sync import RunOptions, RunReport
from .command import EXIT_BUSY, EXIT_FAILED, EXIT_OK, Context, build_syncer, print_json, setup

EXIT_CODE = {Ending.DONE: EXIT_OK, Ending.SKIPPED: EXIT_BUSY, Ending.FAILED: EXIT_FAILED,
             Ending.NOT_STARTED: EXIT_FAILED, Ending.INTERNAL: EXIT_FAILED}


def exit_code(result: RunResult) -> int:
    """0 done, 3 skipped (busy), 1 anything that failed."""
    return EXIT_CODE[result.ending]


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
        return exit_code(result)
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
    if report.reminded_on is not None:
        counts += ("\n  reminder of unclaimed leads: " + (
            f"{report.reminded} listed" if report.reminded else "every lead was claimed, nothing posted"))
    return f"{head}\n  {counts}"
