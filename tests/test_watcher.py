"""The function tells the outside watcher what it knows: every run carries a `healthy` flag.

Healthy means the run did not fail and nothing is stuck: no chat undelivered for longer than
the alert grace, no item waiting in quarantine, a Moneypenny token the next run can use. The
watcher counts only healthy `run ok` lines, so it also hears runs that "succeed" while
nothing reaches the sheet.
"""

from __future__ import annotations

import json

from lib.commands.cli import Context, main
from lib.sync import ALERT_GRACE


def _run_line(capfd) -> dict:
    entries = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]
    return next(e for e in entries if e["message"].startswith("run "))


def test_a_run_that_delivers_everything_is_healthy_in_its_report_record_and_log_line(harness, capfd):
    harness.add_chats(3)
    ctx = Context(env={**harness.env(), "LOG_FORMAT": "json"}, clock=harness.clock, backoff=0.01)
    assert main(["run", "--json", "-v"], ctx) == 0
    out, err = capfd.readouterr()
    assert json.loads(out)["healthy"] is True
    line = next(json.loads(x) for x in err.splitlines() if x.strip() and json.loads(x)["message"] == "run ok")
    assert line["healthy"] is True and line["outcome"] == "ok" and line["unhealthy"] == []
    assert harness.open_store().recent_runs(1)[0]["healthy"] is True


def test_an_item_waiting_in_quarantine_makes_a_successful_run_unhealthy(harness):
    harness.add_chats(2)
    harness.stand.moneypenny.add_chats(["not an object"])
    report = harness.syncer().run()
    assert report.outcome == "ok" and report.appended == 2
    assert report.healthy is False
    assert report.unhealthy == ["1 item(s) set aside in quarantine in the last 24 h"]
    record = harness.open_store().recent_runs(1)[0]
    assert record["healthy"] is False and record["unhealthy"] == report.unhealthy
    # The report names counts only, never the item itself.
    assert "not an object" not in json.dumps(report.as_dict())


def test_chats_undelivered_past_the_alert_grace_make_a_successful_run_unhealthy_until_delivered(harness):
    harness.add_chats(2)
    first = harness.syncer().run(notify=False)  # the sheet gets them, Slack does not yet
    assert first.outcome == "ok" and first.pending == 2
    assert first.healthy is True, "just fetched: within the grace"
    harness.clock.advance(seconds=ALERT_GRACE.total_seconds() + 60)
    second = harness.syncer().run(notify=False)
    assert second.outcome == "ok" and second.healthy is False
    assert second.unhealthy == ["2 chat(s) undelivered for over 10 min"]
    harness.clock.advance(minutes=5)
    third = harness.syncer().run()  # delivered: healthy again by the next call
    assert third.posted == 2 and third.healthy is True and third.unhealthy == []


def test_a_token_the_next_run_cannot_use_makes_a_successful_run_unhealthy(harness):
    harness.add_chats(1)
    harness.stand.moneypenny.token_lifetime = 120  # shorter than the refresh margin: no renewal sticks
    report = harness.syncer().run()
    assert report.outcome == "ok" and report.appended == 1
    assert report.healthy is False
    assert report.unhealthy == ["no Moneypenny token cached for the next run (token renewal is not working)"]
    harness.stand.moneypenny.token_lifetime = 86400
    harness.stand.moneypenny.expire_tokens()
    harness.clock.advance(minutes=5)
    assert harness.syncer().run().healthy is True


def test_a_failed_run_is_never_healthy(harness, capfd):
    harness.add_chats(1)
    harness.stand.slack.kick(harness.settings().slack_channel)
    ctx = Context(env={**harness.env(), "LOG_FORMAT": "json"}, clock=harness.clock, backoff=0.01)
    assert main(["run"], ctx) == 1
    line = _run_line(capfd)
    assert line["message"] == "run failed" and line["outcome"] == "failed" and line["healthy"] is False
