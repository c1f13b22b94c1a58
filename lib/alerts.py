"""Failure alerts and the recovery message, posted to Slack, once per cause per ALERT_REPEAT_MINUTES.

The state lives in the store's named document "alerts" (lib/state/documents.AlertState: since
when the runs fail, how many did, the last failure and cause, when each cause last alerted, how
many alerts were sent), so that every instance of the function (and the command line) shares it.

Rules:
- a permanent failure (a person must fix something) alerts at once;
- a transient one (Moneypenny down, a Sheets 503) alerts only once the failing streak has
  lasted TRANSIENT_GRACE: the scheduler retries every few minutes and most blips pass alone;
- the same cause alerts again only after ALERT_REPEAT_MINUTES; a new cause alerts at once;
- the first successful run after a streak that alerted posts one recovery message;
- alerting never raises: a failure to alert is logged and the run's own outcome stands.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .clock import utcnow
from .destinations.slack.client import SlackNotifier
from .errors import RunFailed, SyncError, TransientError
from .settings import Settings
from .sources import registered
from .state.contract import StateStore
from .state.documents import ALERTS_DOC as ALERTS_DOC  # named here before lib/state/documents
from .state.documents import AlertState
from .sync import ALERT_GRACE, RunReport, Syncer

log = logging.getLogger(__name__)

TRANSIENT_GRACE = ALERT_GRACE
MESSAGE_LIMIT = 1500

# What to do, for causes whose errors carry no fix of their own (retrying is their remedy).
DEFAULT_FIXES = {
    "moneypenny": "Moneypenny's API is failing or unreachable; runs keep retrying and catch up by "
    "themselves. If it lasts for hours, ask Moneypenny support whether the live chat API is down.",
    "moneypenny_calls": "Moneypenny's call messages API is failing or unreachable; the chats still go "
    "through, and runs keep retrying and read the missed days again. If it lasts for hours, ask Moneypenny "
    "support whether the call messages API (clienttas) is down.",
    "sheets": "The Google Sheets API is failing; runs keep retrying. If it lasts, check "
    "https://www.google.com/appsstatus and the project's Sheets API quota.",
    "slack": "Slack is failing; runs keep retrying. If it lasts, check https://status.slack.com.",
    "state_store": "The state store (Firestore) is failing; runs keep retrying. If it lasts, check "
    "the Firestore database and the function's service account.",
    "internal": "An unexpected error: search the function's logs for the run id below.",
}


def feed_fix(cause: str) -> str | None:
    """What to do when a feed read by days fails (its cause is `moneypenny_<feed name>`, as
    lib.sources registers it), for a feed without a fix of its own in DEFAULT_FIXES."""
    name = cause.removeprefix("moneypenny_")
    feed = next((f for f in registered() if f.name == name), None) if cause != name else None
    if feed is None:
        return None
    return (f"Moneypenny's {feed.noun}s API is failing or unreachable; the other feeds still go through, and runs "
            f"keep retrying and read the missed days again. If it lasts for hours, ask Moneypenny support whether "
            f"the {feed.noun}s API is down.")


GENERIC_FIX = "Run `python -m lib check` with the function's settings to see what is wrong."

# Used only while the store cannot be read or written; by account (Settings.account), as each
# account's store keeps its own alert state.
_MEMORY: dict[str, AlertState | None] = {}


def _copy(state: AlertState | None) -> AlertState | None:
    return None if state is None else dataclasses.replace(state, alerted=dict(state.alerted))


def _escape(text: str) -> str:
    """Our own text made safe for mrkdwn: no accidental mention or link markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Outcome:
    """What the alerter did after a run (for logs, the CLI and tests)."""

    action: str  # alerted | repeated | held | waiting | recovered | quiet | failed_to_post
    cause: str = ""


class Alerter:
    """Decides whether a run's outcome is worth a Slack message, and posts it."""

    def __init__(
        self,
        store: StateStore,
        notifier: SlackNotifier,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        grace: timedelta = TRANSIENT_GRACE,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.settings = settings
        self.clock = clock or utcnow
        self.repeat = timedelta(minutes=settings.alert_repeat_minutes)
        self.grace = grace

    # -- state ---------------------------------------------------------------------------------
    def load(self) -> AlertState | None:
        """The failing streak's state (None when all is well)."""
        try:
            return self.store.read_doc(AlertState)
        except Exception as exc:
            log.warning("could not read the alert state; using this instance's memory",
                        extra={"fields": {"error": type(exc).__name__}})
            return _copy(_MEMORY.get(self.settings.account))

    def _save(self, state: AlertState | None) -> None:
        _MEMORY[self.settings.account] = _copy(state)
        try:
            if state is not None:
                self.store.write_doc(state)
            else:
                self.store.delete_doc(AlertState)
        except Exception as exc:
            log.warning("could not save the alert state", extra={"fields": {"error": type(exc).__name__}})

    # -- decisions -----------------------------------------------------------------------------
    def run_failed(self, error: SyncError, report: RunReport | None = None) -> Outcome:
        """Record a failed run; post an alert if one is due. Raises if the post fails."""
        now = self.clock()
        state = self.load() or AlertState(failing_since=now)
        cause = error.cause or "sync_error"
        state.failed_runs += 1
        state.last_failure, state.last_cause, state.last_error = now, cause, _cut(str(error), 500)
        last = state.alerted.get(cause)
        fields = {"cause": cause, "failed_runs": state.failed_runs}
        if isinstance(error, TransientError) and now - state.failing_since < self.grace:
            self._save(state)
            log.info("run failed; no alert yet (a transient failure often passes)", extra={"fields": fields})
            return Outcome("waiting", cause)
        if last is not None and now - last < self.repeat:
            self._save(state)
            log.info("run failed; alert for this cause already sent",
                     extra={"fields": {**fields, "alerted_at": last.isoformat()}})
            return Outcome("held", cause)
        try:
            self.notifier.post(*self._failure_message(error, state, report, repeat=last is not None))
        except Exception:
            # Not marked as alerted: the next failing run tries again.
            self._save(state)
            raise
        state.alerted[cause] = now
        state.alerts_sent += 1
        self._save(state)
        log.warning("alert posted", extra={"fields": {**fields, "channel": self.notifier.channel}})
        return Outcome("repeated" if last is not None else "alerted", cause)

    def run_succeeded(self, report: RunReport) -> Outcome:
        """Close a failing streak; post the recovery message if the streak was alerted."""
        if report.outcome != "ok":
            return Outcome("quiet")
        state = self.load()
        if state is None:
            return Outcome("quiet")
        if not state.alerts_sent:
            self._save(None)
            log.info("runs succeed again; no alert had been sent", extra={"fields": {"failed_runs": state.failed_runs}})
            return Outcome("quiet")
        # If this post fails the state stays, and the next good run posts the recovery.
        self.notifier.post(*self._recovery_message(state, report))
        self._save(None)
        log.warning("recovery message posted", extra={"fields": {"failed_runs": state.failed_runs,
                                                                  "channel": self.notifier.channel}})
        return Outcome("recovered", state.last_cause or "")

    # -- messages ------------------------------------------------------------------------------
    @property
    def _sync(self) -> str:
        """The sync a message is about: "Moneypenny sync", or with ACCOUNTS "Moneypenny sync of account north"."""
        return f"Moneypenny sync of account {self.settings.account}" if self.settings.account else "Moneypenny sync"

    @property
    def _check(self) -> str:
        return f"python -m lib check --account {self.settings.account}" if self.settings.account else "python -m lib check"

    def _local(self, moment: datetime) -> str:
        return moment.astimezone(self.settings.chat_timezone).strftime("%a %d %b %H:%M")

    def _failure_message(
        self, error: SyncError, state: AlertState, report: RunReport | None, repeat: bool
    ) -> tuple[str, list[dict[str, Any]]]:
        cause = error.cause or "sync_error"
        fix = error.fix or DEFAULT_FIXES.get(cause) or feed_fix(cause) or GENERIC_FIX
        # The command a fix names must check this account (`check` alone checks every account).
        fix = fix.replace("`python -m lib check`", f"`{self._check}`")
        since = self._local(state.failing_since)
        runs = state.failed_runs or 1
        title = f"{self._sync} is still failing" if repeat else f"{self._sync} is failing"
        message = _cut(str(error))
        pending = report.pending if report is not None else 0
        # "chat" while the chats are the only feed on, "item" when the run reads several.
        noun = "chat" if self.settings.moneypenny_sources == ("chats",) else "item"
        waiting = (
            f"{pending} {noun}{'s are' if pending != 1 else ' is'} kept and will be delivered once it is fixed."
            if pending else f"{noun.capitalize()}s are kept and will be delivered once it is fixed."
        )
        run_id = f" · run `{report.run_id}`" if report is not None else ""
        body = (
            f"*What went wrong:* {_escape(message)}\n"
            f"*What to do:* {_escape(_cut(fix, 800))}\n"
            f"*Since:* {since} ({runs} failed run{'s' if runs != 1 else ''})"
        )
        context = (
            f"{waiting} Diagnose with `{self._check}`. Cause `{_escape(cause)}`{run_id}. "
            f"Next reminder in {self.settings.alert_repeat_minutes} min if it goes on."
        )
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": f":rotating_light: {title}"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ]
        text = f"{title} since {since}: {message} — What to do: {fix}"
        return text, blocks

    def _recovery_message(self, state: AlertState, report: RunReport) -> tuple[str, list[dict[str, Any]]]:
        since = self._local(state.failing_since)
        now = self._local(self.clock())
        runs = state.failed_runs
        caught_up = report.appended + report.posted
        detail = (
            f"It had been failing since {since} ({runs} failed run{'s' if runs != 1 else ''}; "
            f"last cause `{_escape(state.last_cause or '?')}`)."
        )
        if caught_up:
            noun = "chat" if self.settings.moneypenny_sources == ("chats",) else "item"
            detail += f" This run caught up: {report.appended} row(s) written, {report.posted} {noun}(s) posted."
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": f":white_check_mark: {self._sync} is working again"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"Runs succeed again as of {now}. {detail}"}},
        ]
        text = f"{self._sync} is working again as of {now}. {detail}"
        return text, blocks


def notify_failed(alerter: Alerter | None, failed: RunFailed) -> Outcome | None:
    """Alert bookkeeping for a failed run; never raises."""
    if alerter is None:
        return None
    try:
        return alerter.run_failed(failed.error, failed.report)
    except Exception as exc:
        log.error("could not post the failure alert", extra={"fields": {
            "cause": failed.error.cause, "alert_error": type(exc).__name__,
            "alert_error_cause": getattr(exc, "cause", "internal"),
        }})
        return Outcome("failed_to_post", failed.error.cause)


def notify_succeeded(alerter: Alerter | None, report: RunReport) -> Outcome | None:
    """Recovery bookkeeping for a run that did not fail; never raises."""
    if alerter is None or report.outcome != "ok":
        return None
    try:
        return alerter.run_succeeded(report)
    except Exception as exc:
        log.error("could not post the recovery message", extra={"fields": {
            "alert_error": type(exc).__name__, "alert_error_cause": getattr(exc, "cause", "internal"),
        }})
        return Outcome("failed_to_post")


def run_with_alerts(syncer: Syncer, alerter: Alerter | None, **options: Any) -> RunReport:
    """Syncer.run, then the alert bookkeeping. A failed run's RunFailed is raised unchanged."""
    try:
        report = syncer.run(**options)
    except RunFailed as failed:
        notify_failed(alerter, failed)
        raise
    notify_succeeded(alerter, report)
    return report
