"""Structured logs: the JSON shape, readable text, and no secret or visitor data in any line."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

from lib import logs
from lib.commands.cli import Context, main
from sandbox.standins.samples import sample_chats, tricky_chats
from sandbox.standins.server import Status


def _visitor_data(chats: list) -> set[str]:
    """Every piece of personal data in these chats that is long enough to search for."""
    found: set[str] = set()
    for chat in chats:
        if not isinstance(chat, dict):
            continue
        for field in ("name", "companyName", "email", "phone"):
            value = chat.get(field)
            if isinstance(value, str) and len(value.strip()) >= 5:
                found.add(value.strip())
        phone = chat.get("phone")
        if isinstance(phone, str) and len(re.sub(r"\D", "", phone)) >= 7:
            found.add(re.sub(r"\D", "", phone))
        for line in chat.get("transcript") or []:
            text = line.split("] - ", 1)[-1].strip()
            if len(text) >= 8:
                found.add(text[:60])
        for variable in chat.get("variables") or []:
            value = variable.get("value") if isinstance(variable, dict) else None
            if isinstance(value, str) and len(value) >= 5:
                found.add(value)
    return found


def test_a_full_sync_at_debug_logs_no_visitor_data_and_no_secret(harness, capfd, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger, so every library's debug lines are on too
    local_now = harness.clock().astimezone(ZoneInfo("Europe/London")).replace(tzinfo=None)
    chats = sample_chats(12, start=local_now - timedelta(hours=3), seed=21) + tricky_chats(local_now - timedelta(hours=1))
    unreadable = {"chatTime": "not a time", "name": "Prudence Unreadable-Visitor", "email": "prudence@example.org"}
    harness.stand.moneypenny.add_chats(chats + [unreadable])
    env = {**harness.env(), "LOG_FORMAT": "json", "SLACK_ALERT_CHANNEL": "C0DEMO"}
    ctx = Context(env=env, clock=harness.clock, backoff=0.01)

    assert main(["run", "-vv"], ctx) == 0  # the sync: fetch, sheet, Slack summary
    harness.clock.advance(minutes=5)
    harness.stand.slack.kick("C0DEMO")
    harness.add_chats(3, seed=22)
    assert main(["run", "-vv"], ctx) == 1  # Slack refuses: warning paths and the alert attempt
    harness.stand.slack.member_of.add("C0DEMO")
    harness.clock.advance(minutes=5)
    assert main(["run", "-vv"], ctx) == 0  # the late post and the recovery message
    harness.clock.advance(minutes=5)
    assert main(["run", "-vv", "--mode", "reconcile"], ctx) == 0
    token = harness.open_store().get_token().value
    harness.stand.moneypenny.expire_tokens()
    wrong = {**env, "MONEYPENNY_PASSWORD": "wrong-password-42"}
    assert main(["run", "-vv"], Context(env=wrong, clock=harness.clock, backoff=0.01)) == 1
    assert main(["check", "-vv"], Context(env=wrong, clock=harness.clock, backoff=0.01)) == 1

    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    records = "\n".join(
        r.getMessage() + " " + json.dumps(getattr(r, "fields", {}), default=str) for r in caplog.records
    )
    # The capture is live: the run lines and the debug level really were recorded.
    assert any(json.loads(line).get("message") == "run ok" for line in lines)
    assert any(r.levelno == logging.DEBUG or r.name.startswith("lib.") for r in caplog.records)
    assert len(harness.data_rows()) >= 15

    secrets = [env["MONEYPENNY_PASSWORD"], env["MONEYPENNY_USERNAME"], env["SLACK_BOT_TOKEN"], token,
               "wrong-password-42"]
    personal = _visitor_data(chats + [unreadable]) | _visitor_data(harness.stand.moneypenny.all_chats())
    assert len(personal) > 50
    for where, text in (("stderr", err), ("log records", records)):
        for value in secrets:
            assert value not in text, f"a secret is in the {where}"
        leaked = sorted(v for v in personal if v in text)
        assert leaked == [], f"visitor data in the {where}: {leaked[:3]}"


def test_every_json_line_has_cloud_loggings_fields_and_the_run_line_has_counts_and_steps(harness, capfd):
    harness.add_chats(3)
    harness.reconciled()  # a run of the day after its reconcile
    ctx = Context(env={**harness.env(), "LOG_FORMAT": "json"}, clock=harness.clock, backoff=0.01)
    assert main(["run", "-v"], ctx) == 0
    entries = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert entries and all(e["severity"] in ("DEBUG", "INFO", "WARNING", "ERROR") and e["message"] for e in entries)
    run = next(e for e in entries if e["message"] == "run ok")
    assert run["fetched"] == 3 and run["appended"] == 3 and run["posted"] == 3
    assert set(run["steps_ms"]) >= {"fetch", "sheet", "slack"}
    assert run["logging.googleapis.com/labels"]["run_id"] == run["run_id"]


def test_text_format_is_one_readable_line_with_fields_and_context():
    stream = io.StringIO()
    logs.configure("text", stream=stream)
    with logs.context(command="backfill", day="2026-11-01"):
        logging.getLogger("lib.sync").info("run ok", extra={"fields": {"run_id": "abc123", "fetched": 3}})
    line = stream.getvalue().strip()
    assert "\n" not in line
    assert re.search(r"INFO +run ok +command=backfill day=2026-11-01 run_id=abc123 fetched=3$", line), line


def test_known_secrets_and_token_shapes_are_masked_in_any_line():
    stream = io.StringIO()
    logs.configure("json", stream=stream, secrets=["s3cret-passphrase"])
    log = logging.getLogger("lib.test")
    log.warning("sent Authorization: Bearer eyJhbGciOi.abc-def with s3cret-passphrase")
    log.warning("body {\"access_token\": \"tok_123456789\"} and xoxb-1111-2222-abcdef")
    text = stream.getvalue()
    for value in ("eyJhbGciOi", "s3cret-passphrase", "tok_123456789", "xoxb-1111"):
        assert value not in text
    assert text.count("***") == 4


def test_libraries_that_log_bodies_stay_at_warning_whatever_the_root_level():
    logging.getLogger().setLevel(logging.DEBUG)
    logs.configure("json", level=logging.DEBUG, stream=io.StringIO())
    assert logging.getLogger("lib.sync").getEffectiveLevel() == logging.DEBUG
    for name in ("slack_sdk.web.base_client", "urllib3.connectionpool", "requests_oauthlib.oauth2_session"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING


def test_configure_twice_leaves_one_handler():
    logs.configure("json", stream=io.StringIO())
    logs.configure("text", stream=io.StringIO())
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_moneypenny_sync", False)]
    assert len(ours) == 1


def test_a_moneypenny_outage_logs_the_cause_not_the_request(harness, capfd):
    harness.add_chats(2)
    harness.stand.moneypenny.inject("log", Status(503), times=None)
    ctx = Context(env={**harness.env(), "LOG_FORMAT": "json"}, clock=harness.clock, backoff=0.01)
    assert main(["run"], ctx) == 1
    entries = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]
    failed = next(e for e in entries if e["message"] == "run failed")
    assert failed["severity"] == "ERROR" and failed["run_id"]


def _caller_data(calls: list) -> set[str]:
    """Every caller's name, company, number and message in these call messages, long enough to search for."""
    found: set[str] = set()
    for call in calls:
        if not isinstance(call, dict):
            continue
        for field in ("caller", "callerCompany", "callerNumber", "message"):
            value = call.get(field)
            if isinstance(value, str) and len(value.strip()) >= 5:
                found.add(value.strip()[:60])
        number = call.get("callerNumber")
        if isinstance(number, str) and len(re.sub(r"\D", "", number)) >= 7:
            found.add(re.sub(r"\D", "", number))
    return found


def test_a_sync_with_calls_at_debug_logs_no_caller_name_number_or_message(harness, capfd, caplog):
    from datetime import UTC, datetime

    from sandbox.standins.samples import sample_calls, tricky_calls

    caplog.set_level(logging.DEBUG)
    start = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    calls = sample_calls(15, start, seed=31, missing_ids=0.3) + tricky_calls(start)
    unreadable = {"date": "not a time", "caller": "Prudence Unreadable-Caller", "callerNumber": "07700 900461"}
    harness.stand.moneypenny.add_calls(calls)
    harness.stand.moneypenny.add_odd_calls([unreadable])
    env = {**harness.env(), "LOG_FORMAT": "json", "MONEYPENNY_SOURCES": "chats,calls"}
    ctx = Context(env=env, clock=harness.clock, backoff=0.01)
    assert main(["run", "-vv"], ctx) == 0
    harness.clock.advance(minutes=5)
    harness.stand.moneypenny.inject("calls", Status(503), times=None)
    assert main(["run", "-vv"], ctx) == 1  # the calls feed down: the failure and its alert
    harness.stand.moneypenny.clear_faults()
    assert main(["check", "-vv"], ctx) == 0
    main(["status", "-vv"], ctx)  # unhealthy (an item in quarantine): exit 1, but it reports

    out, err = capfd.readouterr()
    assert "moneypenny calls  OK" in out and "Call messages      last full day read 2026-11-19" in out
    records = "\n".join(r.getMessage() + " " + json.dumps(getattr(r, "fields", {}), default=str) for r in caplog.records)
    assert any(json.loads(line).get("message") == "run ok" for line in err.splitlines() if line.strip())
    assert len(harness.stand.sheets.rows(harness.sheet_id, "Calls")) == len(calls) + 1
    personal = _caller_data(calls + [unreadable])
    assert len(personal) > 30
    for where, text in (("stderr", err), ("log records", records), ("check and status output", out)):
        leaked = sorted(v for v in personal if v in text)
        assert leaked == [], f"caller data in the {where}: {leaked[:3]}"


def test_a_console_handler_someone_else_put_on_the_root_logger_writes_nothing(capfd):
    """functions-framework (LOG_EXECUTION_ID=true) and logging.basicConfig put a plain
    StreamHandler on the root logger: each record would come out twice, the copy unscrubbed."""
    root = logging.getLogger()
    root.addHandler(logging.StreamHandler(sys.stderr))  # what logging.basicConfig() adds
    root.addHandler(logging.StreamHandler(sys.stdout))  # functions-framework's legacy stdout handler
    logs.configure("json", secrets=["registered-secret-value"])
    logging.getLogger("urllib3.connectionpool").warning("retrying %s with registered-secret-value", "/log")
    logging.getLogger("lib.sync").info("run ok", extra={"fields": {"run_id": "r1"}})
    out, err = capfd.readouterr()
    assert out == ""
    entries = [json.loads(line) for line in err.splitlines()]
    assert [(e["logger"], e["message"]) for e in entries] == [
        ("urllib3.connectionpool", "retrying /log with ***"), ("lib.sync", "run ok")]
    assert "registered-secret-value" not in out + err


def test_a_capturing_handler_that_writes_elsewhere_stays():
    captured = io.StringIO()
    capture = logging.StreamHandler(captured)

    class Capture(logging.StreamHandler):  # a test's capture or a file: not the console
        pass

    kept = Capture(captured)
    logging.getLogger().addHandler(kept)
    logging.getLogger().addHandler(capture)
    logs.configure("json", stream=io.StringIO())
    assert kept in logging.getLogger().handlers
    assert capture not in logging.getLogger().handlers  # a plain StreamHandler is a console's


def test_gunicorns_error_log_comes_out_in_our_shape(capfd):
    server = logging.getLogger("gunicorn.error")
    server.addHandler(logging.StreamHandler(sys.stderr))  # as gunicorn's glogging sets it up
    server.propagate = False
    server.setLevel(logging.ERROR)
    try:
        logs.configure("json")
        server.error("Worker (pid:%s) was sent SIGKILL", 42)
        lines = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
        assert [(e["severity"], e["logger"], e["message"]) for e in lines] == [
            ("ERROR", "gunicorn.error", "Worker (pid:42) was sent SIGKILL")]
    finally:
        server.handlers.clear()
        server.propagate = True
        server.setLevel(logging.NOTSET)


def test_the_execution_id_is_a_label_of_each_line_not_a_field():
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    with logs.context(execution_id="abc123exec"):
        logging.getLogger("lib.sync").info("run ok", extra={"fields": {"run_id": "r9"}})
    logging.getLogger("lib.sync").info("outside a request")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["logging.googleapis.com/labels"] == {"run_id": "r9", "execution_id": "abc123exec"}
    assert "execution_id" not in inside
    assert "logging.googleapis.com/labels" not in outside


def test_the_text_format_leaves_the_execution_id_out():
    stream = io.StringIO()
    logs.configure("text", stream=stream)
    with logs.context(execution_id="abc123exec", command="run"):
        logging.getLogger("lib.sync").info("run ok")
    assert "abc123exec" not in stream.getvalue() and "command=run" in stream.getvalue()


def test_our_loggers_write_again_after_someone_elses_dictconfig_disabled_them():
    """logging.config.dictConfig (functions-framework runs one with LOG_EXECUTION_ID set)
    disables every logger that existed before it."""
    stream = io.StringIO()
    sync = logging.getLogger("lib.sync")
    sync.disabled = True  # what dictConfig's disable_existing_loggers does
    try:
        logs.configure("json", stream=stream)
        sync.info("run ok")
        assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["run ok"]
    finally:
        sync.disabled = False
