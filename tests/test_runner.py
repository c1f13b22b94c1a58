"""The one run-and-report path: the HTTP function and `python -m lib run` answer the same run with
the same report, and each way a run ends has one HTTP status and one exit code."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from lib.commands.cli import EXIT_BUSY, EXIT_FAILED, EXIT_OK, Context, main
from lib.commands.run import exit_code
from lib.errors import PermanentError
from lib.runner import Ending, run_and_report
from lib.sync import RunOptions
from sandbox.standins.server import Status

# What differs between two runs of the same work: their id and how long they took.
PER_RUN = {"run_id", "duration_ms", "duration_seconds", "store"}  # store: what this run billed


@dataclass(frozen=True)
class Scenario:
    name: str
    prepare: Callable[[Any], dict[str, str]]  # sets the stand-ins up; returns env overrides
    ending: Ending
    http_status: int
    exit_code: int


def _new_chats(harness: Any) -> dict[str, str]:
    harness.add_chats(3, seed=len(harness.sheet_keys()))
    return {}


def _lease_held(harness: Any) -> dict[str, str]:
    # Held far past both clocks: the function's (the wall clock) and the harness's.
    now = max(harness.clock(), datetime.now(UTC))
    harness.open_store().acquire_lease("scheduled-run", now, now + timedelta(days=400))
    return {}


def _moneypenny_down(harness: Any) -> dict[str, str]:
    harness.add_chats(2)
    harness.stand.moneypenny.inject("log", Status(500), times=None)
    return {}


def _wrong_password(harness: Any) -> dict[str, str]:
    harness.add_chats(2)
    return {"MONEYPENNY_PASSWORD": "not-the-password"}


SCENARIOS = [
    Scenario("done", _new_chats, Ending.DONE, 200, EXIT_OK),
    Scenario("skipped", _lease_held, Ending.SKIPPED, 200, EXIT_BUSY),
    Scenario("transient failure", _moneypenny_down, Ending.FAILED, 503, EXIT_FAILED),
    Scenario("permanent failure", _wrong_password, Ending.FAILED, 500, EXIT_FAILED),
]


def _cli_json(harness: Any, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(env=env, clock=harness.clock, out=out, err=err, backoff=0.01)
    code = main(["run", "--json"], ctx)
    return code, json.loads(out.getvalue())


def _same_run(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in PER_RUN}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_the_function_and_the_command_line_give_the_same_report_for_the_same_run(
        harness, client, monkeypatch, scenario):
    harness.clock.value = datetime.now(UTC)  # the function runs on the wall clock
    harness.reconciled()  # today's reconcile is done: neither run makes its read
    overrides = scenario.prepare(harness)
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    response = client.post("/")
    answered = response.get_json()
    assert response.status_code == scenario.http_status, answered

    if scenario.name == "done":
        scenario.prepare(harness)  # the same work again: three chats nobody has read
    code, printed = _cli_json(harness, {**harness.env(), **overrides})
    assert code == scenario.exit_code, printed

    printed.pop("alert")  # what the alerter did: the function says it in its log only
    if not printed.get("fix"):
        printed.pop("fix", None)  # the CLI always names the fix; the function only when there is one
    assert _same_run(printed) == _same_run(answered)
    assert answered["run_id"] != printed["run_id"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_each_ending_has_one_http_status_and_one_exit_code(harness, scenario):
    overrides = scenario.prepare(harness)
    harness.env_overrides.update(overrides)
    settings = harness.settings()
    result = run_and_report(settings, RunOptions(), harness.syncer)
    assert (result.ending, result.http_status, exit_code(result)) == (
        scenario.ending, scenario.http_status, scenario.exit_code)
    assert result.report is not None and result.report.outcome == {
        Ending.DONE: "ok", Ending.SKIPPED: "skipped", Ending.FAILED: "failed"}[scenario.ending]
    assert (result.error is None) == (scenario.ending in (Ending.DONE, Ending.SKIPPED))


def test_a_run_that_cannot_start_answers_500_exit_1_and_is_not_retried(harness):
    harness.add_chats(2)
    backwards = RunOptions(mode="window", start=date(2026, 11, 20), end=date(2026, 11, 19))
    result = run_and_report(harness.settings(), backwards, harness.syncer)
    assert (result.ending, result.http_status, exit_code(result)) == (Ending.NOT_STARTED, 500, EXIT_FAILED)
    assert result.report is None and isinstance(result.error, PermanentError)
    assert result.retryable is False
    assert harness.stand.moneypenny.count() == 0 and harness.open_store().recent_runs(1) == []


def test_an_unexpected_error_is_named_by_its_type_only_and_answers_500(harness):
    def build() -> Any:
        raise LookupError("a message that may hold anything, say visitor@example.com")

    result = run_and_report(harness.settings(), RunOptions(), build)
    assert (result.ending, result.http_status, exit_code(result)) == (Ending.INTERNAL, 500, EXIT_FAILED)
    assert str(result.error) == "internal error (LookupError)" and result.error.cause == "internal"
    assert result.retryable is True


def test_a_run_without_alerts_posts_none_even_when_it_fails(harness):
    def alerts() -> list[dict[str, Any]]:
        return [m for m in harness.stand.slack.messages() if "sync is failing" in (m.get("text") or "")]

    harness.stand.sheets.forbid(harness.sheet_id)
    harness.add_chats(1)
    result = run_and_report(harness.settings(), RunOptions(), harness.syncer, alerts=False)
    assert result.ending is Ending.FAILED and result.alert is None
    assert alerts() == []
    alerted = run_and_report(harness.settings(), RunOptions(), harness.syncer)
    assert alerted.alert is not None and alerted.alert.action == "alerted"
    assert len(alerts()) == 1
