"""One sync run and its report, the same for the HTTP function and `python -m lib run`.

`run_and_report` builds the Syncer, runs it, does the alert bookkeeping and returns a RunResult:
the report, the error, what the alerter did, and what that means as an HTTP status and as an
exit code. lib/handler.py turns it into the function's JSON answer; lib/commands/run.py into the
lines (or JSON) of `python -m lib run`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from . import logs
from .alerts import Alerter, Outcome, notify_failed, notify_succeeded
from .app import build_alerter
from .errors import RunFailed, SyncError, TransientError
from .settings import Settings
from .sync import RunOptions, RunReport, Syncer

log = logging.getLogger(__name__)


class Ending(Enum):
    """How a call of run_and_report ended."""

    DONE = "done"  # the run went through (its report may still say it was unhealthy)
    SKIPPED = "skipped"  # another run holds the lease, or this scheduled run already succeeded
    FAILED = "failed"  # a step failed: the report says how far it got
    NOT_STARTED = "not_started"  # the run could not start (its clients or store, a bad window)
    INTERNAL = "internal"  # an unexpected exception outside the run's own error handling


HTTP_STATUS = {Ending.DONE: 200, Ending.SKIPPED: 200, Ending.NOT_STARTED: 500, Ending.INTERNAL: 500}


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


def _alerter_for(settings: Settings, syncer: Syncer) -> Alerter | None:
    """The failure alerter, or None if it cannot be built (the run goes ahead without alerts)."""
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
    `alerts` is False); never raises an Exception. No result carries a secret or visitor data.
    Every line it logs names the account (settings.account), when there is one."""
    with logs.context(**({logs.ACCOUNT: settings.account} if settings.account else {})):
        return _run_and_report(settings, options, build, schedule_time=schedule_time, schedule_job=schedule_job,
                               alerts=alerts)


def _run_and_report(settings: Settings, options: RunOptions, build: Callable[[], Syncer], *,
                    schedule_time: str | None, schedule_job: str | None, alerts: bool) -> RunResult:
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
