"""Failure alerts: once per cause per ALERT_REPEAT_MINUTES, a recovery message once, never hiding the run's answer."""

from __future__ import annotations

import logging

import pytest

from lib.alerts import ALERTS_DOC, run_with_alerts
from lib.app import build_alerter
from lib.errors import RunFailed
from sandbox.standins.server import Status
from sandbox.standins.slack import FakeSlack
from tests.harness import slack_text

ALERT_CHANNEL = "C0ALERTS"


@pytest.fixture
def alert_channel(harness):
    harness.stand.slack.channels[ALERT_CHANNEL] = "sync-alerts"
    harness.stand.slack.member_of.add(ALERT_CHANNEL)
    harness.env_overrides["SLACK_ALERT_CHANNEL"] = ALERT_CHANNEL
    return ALERT_CHANNEL


def scheduled_run(harness):
    """One run as the function does it: a fresh Syncer, then the alert bookkeeping."""
    syncer = harness.syncer()
    alerter = build_alerter(harness.settings(), syncer)
    try:
        return run_with_alerts(syncer, alerter)
    except RunFailed as failed:
        return failed


def alerts(harness) -> list[dict]:
    return harness.stand.slack.messages(ALERT_CHANNEL)


def test_an_hour_of_failing_runs_alerts_once_then_again_after_the_repeat_interval(harness, alert_channel):
    harness.add_chats(2)
    harness.stand.moneypenny.inject("log", Status(503), times=None)
    posted_at = []
    for minute in range(0, 80, 5):  # a run every 5 minutes for 75 minutes
        before = len(alerts(harness))
        outcome = scheduled_run(harness)
        assert isinstance(outcome, RunFailed) and outcome.transient
        if len(alerts(harness)) > before:
            posted_at.append(minute)
        harness.clock.advance(minutes=5)
    # Transient: held back for the first 10 minutes; then once per ALERT_REPEAT_MINUTES (60).
    assert posted_at == [10, 70]
    first, second = alerts(harness)
    assert "is failing" in first["text"] and "still failing" in second["text"]
    for message in (first, second):
        text = slack_text(message)
        assert "HTTP 503" in text and "moneypenny" in text
        assert "What to do" in text and "python -m lib check" in text
        assert FakeSlack.message_live_entities(message) == []
    assert harness.stand.slack.messages("C0DEMO") == []  # the sales channel hears nothing


def test_a_different_cause_alerts_at_once_and_recovery_is_posted_once(harness, alert_channel):
    harness.add_chats(2)
    harness.stand.moneypenny.inject("log", Status(503), times=None)
    for _ in range(3):  # 0, 5, 10 min: the third run alerts
        scheduled_run(harness)
        harness.clock.advance(minutes=5)
    assert len(alerts(harness)) == 1
    harness.stand.moneypenny.clear_faults()
    harness.stand.moneypenny.expire_tokens()
    harness.env_overrides["MONEYPENNY_PASSWORD"] = "a-changed-password"
    failed = scheduled_run(harness)  # a new cause, 5 minutes after the first alert
    assert failed.error.cause == "moneypenny_auth"
    assert len(alerts(harness)) == 2
    second = slack_text(alerts(harness)[1])
    assert "MONEYPENNY_PASSWORD" in second and "a-changed-password" not in second
    harness.clock.advance(minutes=5)
    scheduled_run(harness)  # the same cause again: held
    assert len(alerts(harness)) == 2

    del harness.env_overrides["MONEYPENNY_PASSWORD"]
    harness.clock.advance(minutes=5)
    report = scheduled_run(harness)
    assert report.outcome == "ok" and report.appended == 2
    assert len(alerts(harness)) == 3
    recovery = alerts(harness)[2]
    assert "working again" in recovery["text"] and "5 failed runs" in recovery["text"]
    assert "2 row(s) written" in recovery["text"]
    for _ in range(2):
        harness.clock.advance(minutes=5)
        scheduled_run(harness)
    assert len(alerts(harness)) == 3
    assert harness.open_store().get_meta(ALERTS_DOC) is None


def test_a_permanent_failure_alerts_at_once_in_the_main_channel_when_no_alert_channel_is_set(harness):
    harness.add_chats(1)
    harness.stand.sheets.forbid(harness.sheet_id)
    failed = scheduled_run(harness)
    assert failed.error.cause == "sheets_access"
    messages = harness.stand.slack.messages("C0DEMO")
    # The run's own summary (the chat reached Slack) and the alert, in the main channel.
    alert = [m for m in messages if "failing" in m["text"]]
    assert len(alert) == 1
    assert "not shared" in alert[0]["text"] and "Share the spreadsheet" in alert[0]["text"]
    harness.clock.advance(minutes=5)
    scheduled_run(harness)
    assert len([m for m in harness.stand.slack.messages("C0DEMO") if "failing" in m["text"]]) == 1


def test_a_blip_that_passes_within_the_grace_period_posts_nothing(harness, alert_channel):
    # One run's worth: the plain call, then the window read instead and its four retries.
    harness.stand.moneypenny.inject("log", Status(503), times=6)
    assert isinstance(scheduled_run(harness), RunFailed)
    harness.clock.advance(minutes=5)
    assert scheduled_run(harness).outcome == "ok"
    assert alerts(harness) == []
    assert harness.open_store().get_meta(ALERTS_DOC) is None


def test_a_failed_alert_post_is_tried_again_by_the_next_failing_run(harness, alert_channel):
    harness.env_overrides["MONEYPENNY_PASSWORD"] = "not-the-password"
    harness.stand.slack.inject("chat.postMessage", Status(500), times=None)
    failed = scheduled_run(harness)
    assert failed.error.cause == "moneypenny_auth"  # the run's own error, not Slack's
    assert harness.stand.slack.count("chat.postMessage") == 3  # the alert, tried and retried
    assert alerts(harness) == []
    harness.stand.slack.clear_faults()
    harness.clock.advance(minutes=5)
    scheduled_run(harness)
    assert len(alerts(harness)) == 1


@pytest.fixture
def client(alert_channel, client):
    """The function's test client, with SLACK_ALERT_CHANNEL in its settings."""
    return client


def test_slack_failing_to_take_the_alert_leaves_the_functions_5xx_answer_unchanged(harness, client, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    harness.add_chats(2)
    monkeypatch.setenv("MONEYPENNY_PASSWORD", "not-the-password")
    quiet = client.post("/")
    harness.open_store().delete_meta(ALERTS_DOC)
    harness.stand.slack.inject("chat.postMessage", Status(500), times=None)
    noisy = client.post("/")
    assert quiet.status_code == noisy.status_code == 500
    body = noisy.get_json()
    assert body["cause"] == "moneypenny_auth" and "MONEYPENNY_PASSWORD" in body["error"]
    per_run = ("run_id", "duration_ms", "duration_seconds", "store")
    assert {k: v for k, v in body.items() if k not in per_run} == {
        k: v for k, v in quiet.get_json().items() if k not in per_run
    }
    assert len(alerts(harness)) == 1  # the first call's alert; the second could not be posted
    assert any(r.getMessage() == "could not post the failure alert" for r in caplog.records)


def test_an_alert_channel_that_does_not_exist_does_not_change_the_answer(harness, client, monkeypatch):
    monkeypatch.setenv("SLACK_ALERT_CHANNEL", "C0NOSUCH")
    harness.stand.sheets.delete_spreadsheet(harness.sheet_id)
    harness.add_chats(1)
    response = client.post("/")
    assert response.status_code == 500
    assert response.get_json()["cause"] == "sheets_access"


def test_a_calls_outage_alerts_naming_the_call_feed_while_the_chats_go_through(harness, alert_channel):
    harness.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    harness.stand.moneypenny.inject("calls", Status(503), times=None)
    for _ in range(4):
        harness.add_chats(1, seed=len(harness.data_rows()) + 40)
        outcome = scheduled_run(harness)
        assert isinstance(outcome, RunFailed) and outcome.transient
        harness.clock.advance(minutes=5)
    [alert] = alerts(harness)
    text = slack_text(alert)
    assert "call messages" in text and "moneypenny_calls" in text and "the chats still go through" in text
    assert len(harness.data_rows()) == 4  # every run wrote its chat
    assert len(harness.stand.slack.messages("C0DEMO")) == 4
