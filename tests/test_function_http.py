"""The HTTP entry point, served by the real functions-framework app (Flask test client)."""

from __future__ import annotations

import json
import logging

import pytest

from sandbox.standins.server import Status


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


@pytest.mark.parametrize("start, end", [("9999-12-30", "9999-12-31"), ("0001-01-01", "0001-01-02")])
def test_a_window_at_the_edge_of_the_calendar_is_a_400_naming_start_and_end_not_a_failed_run(harness, client,
                                                                                               start, end):
    harness.add_chats(1)
    response = client.get(f"/?start={start}&end={end}")
    body = response.get_json()
    assert response.status_code == 400, body  # before: a 503 (an OverflowError in the run)
    assert f"start={start}" in body["error"] and "from 2000-01-01" in body["error"]
    assert body["cause"] == "bad_request" and body["retryable"] is False
    assert harness.stand.moneypenny.count() == 0 and harness.stand.slack.messages() == []


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


def test_a_non_finite_timeout_answers_500_naming_it_and_reads_nothing(harness, client, monkeypatch):
    harness.add_chats(2)
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "nan")
    response = client.post("/")
    body = response.get_json()
    assert response.status_code == 500 and body["cause"] == "settings"
    assert "HTTP_TIMEOUT_SECONDS must be a finite number" in body["error"]
    assert harness.stand.moneypenny.count() == 0 and harness.stand.sheets.count_writes() == 0


@pytest.mark.parametrize("name", ["MONEYPENNY_AUTH_URL", "MONEYPENNY_CHATS_URL", "SHEETS_API_URL", "SLACK_API_URL"])
def test_a_url_setting_with_a_user_and_password_is_refused_without_echoing_them(harness, client, monkeypatch, name):
    url = harness.env()[name].replace("http://", "http://someone:hunter2-pw@", 1)
    monkeypatch.setenv(name, url)
    response = client.post("/")
    body = response.get_json()
    assert response.status_code == 500 and body["cause"] == "settings"
    assert f"{name} must not carry a user name or password" in body["error"]
    assert "hunter2" not in response.get_data(as_text=True) and "someone" not in response.get_data(as_text=True)
    assert harness.stand.moneypenny.count() == 0


def test_a_url_is_named_only_by_scheme_host_and_port_in_the_answer_the_run_record_and_the_alert(
        harness, client, monkeypatch):
    from urllib.parse import urlsplit

    from lib.settings import Settings

    auth_url = harness.env()["MONEYPENNY_AUTH_URL"] + "?tenant=t-4f9a-private"
    monkeypatch.setenv("MONEYPENNY_AUTH_URL", auth_url)
    monkeypatch.setenv("MONEYPENNY_PASSWORD", "a-wrong-password")
    parts = urlsplit(auth_url)
    shown = f"http://{parts.hostname}:{parts.port}"
    response = client.post("/")
    assert response.status_code == 500
    error = response.get_json()["error"]
    record = harness.open_store().recent_runs(1)[0]
    alert = harness.stand.slack.messages()[-1]
    texts = {"answer": error, "run record": json.dumps(record), "alert": json.dumps(alert)}
    for where, text in texts.items():
        assert shown in text, where
        assert parts.path not in text and "t-4f9a-private" not in text, where
    described = Settings.from_env(harness.env() | {"MONEYPENNY_AUTH_URL": auth_url}).describe()
    assert described["moneypenny_auth_url"] == shown


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD", "PUT", "DELETE", "PATCH"])
def test_only_get_and_post_start_a_sync_other_methods_get_405_and_read_nothing(harness, client, method):
    harness.add_chats(3)
    response = client.open("/", method=method, headers={"Origin": "https://example.com",
                                                        "Access-Control-Request-Method": "POST"})
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "POST"}
    assert harness.stand.moneypenny.count() == 0
    assert harness.stand.sheets.count_reads() == harness.stand.sheets.count_writes() == 0
    assert harness.stand.slack.messages() == []
    assert not (harness.tmp / "state.sqlite3").exists()  # the store was never opened
    assert len(harness.stand.moneypenny.pending_chats()) == 3


def test_a_bad_mode_lists_every_mode_and_echoes_at_most_100_characters(harness, client):
    response = client.get("/?mode=" + "sideways" + "x" * 5000)
    error = response.get_json()["error"]
    assert response.status_code == 400
    for mode in ("new", "reconcile", "window"):
        assert mode in error
    assert "sideways" in error and "x" * 101 not in error and len(error) < 300
    assert harness.stand.moneypenny.count() == 0


@pytest.mark.parametrize("mode", ["reconcile", "new"])
def test_a_mode_with_dates_is_a_400_not_a_silent_window(harness, client, mode):
    harness.add_chats(2)
    day = harness.clock().date().isoformat()
    response = client.post(f"/?mode={mode}&start={day}&end={day}")
    assert response.status_code == 400
    assert f"mode={mode}" in response.get_json()["error"] and "mode=window" in response.get_json()["error"]
    assert harness.stand.moneypenny.count() == 0
    assert client.post(f"/?mode=window&start={day}&end={day}").status_code == 200


def test_a_column_inserted_before_a_between_two_calls_to_one_instance_answers_500(harness, client):
    harness.add_chats(2)
    assert client.post("/").status_code == 200
    harness.stand.sheets.insert_columns(harness.sheet_id, "Chats", "A")
    harness.stand.sheets.set_cell(harness.sheet_id, "Chats", "A1", "Owner")
    harness.add_chats(1, seed=2)
    response = client.post("/")  # the same process: its Syncer and SheetWriter are reused
    body = response.get_json()
    assert response.status_code == 500 and body["cause"] == "sheets_header", body
    assert "SHEET_TAB" in body["error"] and body["fix"]
    assert len(harness.rows()) == 3  # header and the first two rows; nothing under "Owner"


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
