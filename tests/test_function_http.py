"""The HTTP entry point, served by the real functions-framework app (Flask test client)."""

from __future__ import annotations

import json
import logging

import pytest
from functions_framework import create_app

from lib.standins.server import Status

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


@pytest.fixture
def client(harness, monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith(("MONEYPENNY_", "SHEET", "SLACK_", "STATE_STORE", "FIRESTORE_")):
            monkeypatch.delenv(name, raising=False)
    for name, value in harness.env().items():
        monkeypatch.setenv(name, value)
    app = create_app("sync_chats", str(ROOT / "main.py"))
    return app.test_client()


def test_a_run_answers_200_with_counts_and_duration(harness, client):
    harness.add_chats(4)
    response = client.post("/")
    body = response.get_json()
    assert response.status_code == 200
    assert body["ok"] is True
    assert (body["fetched"], body["appended"], body["posted"], body["skipped_invalid"]) == (4, 4, 4, 0)
    assert body["duration_ms"] >= 0


def test_moneypenny_5xx_answers_503_with_the_cause_and_nothing_is_written(harness, client):
    harness.add_chats(2)
    harness.stand.moneypenny.inject("log", Status(500), times=10)
    response = client.post("/")
    body = response.get_json()
    assert response.status_code == 503
    assert body["ok"] is False and body["retryable"] is True
    assert "Moneypenny" in body["error"] and "HTTP 500" in body["error"]
    assert harness.stand.sheets.count_writes() == 0


def test_missing_setting_answers_500_naming_the_variable(harness, client, monkeypatch):
    monkeypatch.delenv("SHEET_ID")
    response = client.post("/")
    body = response.get_json()
    assert response.status_code == 500
    assert "SHEET_ID is not set" in body["error"]
    assert body["cause"] == "settings"


def test_malformed_setting_names_the_variable(harness, client, monkeypatch):
    monkeypatch.setenv("CHAT_TIMEZONE", "Mars/Olympus")
    body = client.post("/").get_json()
    assert "CHAT_TIMEZONE" in body["error"]


def test_window_query_reads_by_date_and_bad_dates_are_a_400(harness, client):
    harness.add_chats(3)
    day = harness.clock().date().isoformat()
    response = client.get(f"/?start={day}&end={day}")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["mode"] == "window"
    log_calls = harness.stand.moneypenny.calls("log")
    assert any("startTime" in c.query for c in log_calls)
    assert client.get("/?start=2026-13-01&end=2026-13-02").status_code == 400
    assert client.get(f"/?start={day}").status_code == 400


def test_answers_and_logs_carry_no_secret(harness, client, capfd, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    harness.add_chats(3)
    bodies = [client.post("/").get_data(as_text=True)]
    token = harness.open_store().get_token().value
    harness.stand.moneypenny.expire_tokens()
    monkeypatch.setenv("MONEYPENNY_PASSWORD", "a-wrong-password")
    bodies.append(client.post("/").get_data(as_text=True))
    out, err = capfd.readouterr()
    logged = "\n".join(r.getMessage() + json.dumps(getattr(r, "fields", {}), default=str) for r in caplog.records)
    secrets = [harness.env()["MONEYPENNY_PASSWORD"], "a-wrong-password", harness.env()["SLACK_BOT_TOKEN"], token]
    for text in bodies + [out, err, logged]:
        for secret in secrets:
            assert secret not in text
    assert "MONEYPENNY_PASSWORD" in bodies[1]


def _scheduled(job: str | None, at: str) -> dict[str, str]:
    headers = {"X-CloudScheduler-ScheduleTime": at}
    if job is not None:
        headers["X-CloudScheduler-JobName"] = job
    return headers


def test_the_sync_and_the_reconcile_firing_at_the_same_schedule_time_both_run(harness, client):
    at = "2026-11-20T03:15:00Z"
    harness.add_chats(2)
    sync = client.post("/", headers=_scheduled("moneypenny-sync", at))
    reconcile = client.post("/?mode=reconcile", headers=_scheduled("moneypenny-sync-reconcile", at))
    assert sync.status_code == 200 and "skipped" not in sync.get_json()
    body = reconcile.get_json()
    assert reconcile.status_code == 200, body
    assert body["mode"] == "reconcile" and "skipped" not in body, body
    assert any("startTime" in c.query for c in harness.stand.moneypenny.calls("log"))


def test_a_retry_of_one_job_at_one_schedule_time_does_nothing(harness, client):
    at = "2026-11-20T03:15:00Z"
    assert "skipped" not in client.post("/", headers=_scheduled("moneypenny-sync", at)).get_json()
    calls = harness.stand.moneypenny.count("log")
    retry = client.post("/", headers=_scheduled("moneypenny-sync", at)).get_json()
    assert retry["skipped"] == "this scheduled run already succeeded"
    assert harness.stand.moneypenny.count("log") == calls


def test_without_a_job_name_the_mode_tells_two_scheduled_runs_apart(harness, client):
    at = "2026-11-20T03:15:00Z"
    assert "skipped" not in client.post("/", headers=_scheduled(None, at)).get_json()
    reconcile = client.post("/?mode=reconcile", headers=_scheduled(None, at)).get_json()
    assert reconcile["mode"] == "reconcile" and "skipped" not in reconcile, reconcile
    again = client.post("/?mode=reconcile", headers=_scheduled(None, at)).get_json()
    assert again["skipped"] == "this scheduled run already succeeded"
