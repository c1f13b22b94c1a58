"""main.slack_actions as Cloud Run runs it: functions-framework's own server (`functions-framework
--target slack_actions`, gunicorn behind it) in a child process, with what Cloud Run sets, pointed
at the stand-ins: the raw body read over real HTTP, verified, claimed."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import requests

from sandbox.standins import StandIns
from sandbox.standins.samples import sample_chats
from tests.test_runtime import LABELS, ROOT, Served, _free_port


def _serve(stand: StandIns, tmp_path: Path, extra: dict[str, str]) -> Served:
    """`functions-framework --target slack_actions` on a free port (tests/test_runtime.py serves
    sync_chats the same way), once it accepts connections."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MONEYPENNY_", "SHEET", "SLACK_", "STATE_STORE", "FIRESTORE_", "ALERT_", "LOG_", "ACCOUNTS"))}
    env.update({**stand.env(), "STATE_STORE": f"sqlite:{tmp_path / 'state.sqlite3'}", "K_SERVICE": "moneypenny-sync",
                "LOG_EXECUTION_ID": "true", "PYTHONUNBUFFERED": "1", **extra})
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "functions-framework"), "--target", "slack_actions",
         "--source", str(ROOT / "main.py"), "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    served = Served(f"http://127.0.0.1:{port}/", stand, proc, env)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"functions-framework exited: {served.stop()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return served
        except OSError:
            assert time.monotonic() < deadline, "functions-framework did not start within 60 s"
            time.sleep(0.2)


def test_served_as_cloud_run_a_signed_click_is_claimed_a_late_answer_still_claims_and_an_unsigned_one_is_refused(tmp_path):
    from slack_sdk import WebClient

    from lib.app import build_syncer
    from lib.settings import Settings
    from lib.sources import CHATS_FEED
    from sandbox.standins import DEMO_CHANNEL_ID, DEMO_SLACK_TOKEN
    from sandbox.standins.a1 import col_letters
    from sandbox.standins.slack import APP_ID, SIGNING_SECRET, TEAM_ID

    extra = {"SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_TEAM_ID": TEAM_ID, "SLACK_APP_ID": APP_ID}
    with StandIns() as stand:
        served = _serve(stand, tmp_path, extra)
        try:
            stand.moneypenny.add_chats(sample_chats(2, start=datetime.now() - timedelta(hours=2), seed=7))
            settings = Settings.from_env(served.env)
            build_syncer(settings).run()
            width = len(CHATS_FEED.layout.header)
            stand.sheets.set_cell(stand.sheet_id, settings.sheet_tab, f"{col_letters(width)}1", "Owner")
            stand.sheets.set_cell(stand.sheet_id, settings.sheet_tab, f"{col_letters(width + 1)}1", "Claimed at")
            key = stand.sheets.rows(stand.sheet_id, settings.sheet_tab)[1][width - 1]
            button = {"type": "button", "action_id": "claim", "text": {"type": "plain_text", "text": "Claim"},
                      "value": json.dumps({"a": "", "f": "chats", "k": key})}
            late_key = stand.sheets.rows(stand.sheet_id, settings.sheet_tab)[2][width - 1]
            late_button = {**button, "value": json.dumps({"a": "", "f": "chats", "k": late_key})}
            blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"a chat `{k[-8:]}`"}, "accessory": b}
                      for k, b in ((key, button), (late_key, late_button))]
            ts = WebClient(token=DEMO_SLACK_TOKEN, base_url=stand.slack.api_url).chat_postMessage(
                channel=DEMO_CHANNEL_ID, text="new chats", blocks=blocks)["ts"]
            body, headers = stand.slack.interactivity_request(stand.slack.click_payload(stand.slack.message(ts), button))
            stand.reset_calls()
            unsigned = requests.post(served.url, data=body, headers={"Content-Type": headers["Content-Type"],
                                                                     "Function-Execution-Id": "exec-stranger"}, timeout=60)
            assert unsigned.status_code == 401 and stand.sheets.count() == 0 and stand.slack.count() == 0
            signed = requests.post(served.url, data=body, headers={**headers, "Function-Execution-Id": "exec-click"},
                                   timeout=60)
            assert signed.status_code == 200, signed.text
            assert stand.sheets.rows(stand.sheet_id, settings.sheet_tab)[1][width] == "Ann"
            assert "claimed by *Ann*" in json.dumps(stand.slack.message(ts)["blocks"])
            # An answer that comes late (Slack gives up after 3 s): the claim is made all the same.
            late_body, late_headers = stand.slack.interactivity_request(
                stand.slack.click_payload(stand.slack.message(ts), late_button, "U0BOB"))
            stand.set_latency(0.4)  # five calls: two seconds, four times the patience below
            with contextlib.suppress(requests.Timeout):
                requests.post(served.url, data=late_body, headers=late_headers, timeout=0.5)
                raise AssertionError("the slow click was answered within 0.5 s")
            deadline = time.monotonic() + 30
            while stand.sheets.rows(stand.sheet_id, settings.sheet_tab)[2][width:width + 1] != ["Bob B"]:
                assert time.monotonic() < deadline, "the late click's claim never reached the sheet"
                time.sleep(0.2)
            while "claimed by *Bob B*" not in json.dumps(stand.slack.message(ts)["blocks"]):
                assert time.monotonic() < deadline, "the late click's claim never reached the message"
                time.sleep(0.2)
            stand.set_latency(0)
        finally:
            out, err = served.stop()
    entries = [json.loads(line) for line in (out + err).splitlines() if line.strip()]
    assert SIGNING_SECRET not in out + err
    refused = [e for e in entries if e["message"].startswith("refused a request")]
    assert [e[LABELS]["execution_id"] for e in refused] == ["exec-stranger"]
    handled = [e for e in entries if e["message"] == "claim click handled"]
    assert [e[LABELS].get("execution_id") for e in handled][:1] == ["exec-click"] and len(handled) == 2
