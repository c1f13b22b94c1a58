"""`status` says whether it is working in one line, needs only the state store's settings, and
`status` and `check` say whether the outside watcher's alert policies exist."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from lib.commands.cli import EXIT_FAILED, EXIT_OK, Context, main

REPO = Path(__file__).resolve().parents[1]


def _cli(harness, *argv: str, env: dict | None = None) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), Context(env=env or harness.env(), clock=harness.clock, out=out, err=err, backoff=0.01))
    return code, out.getvalue()


def test_status_runs_with_only_the_state_store_settings(harness, tmp_path):
    harness.add_chats(2)
    harness.syncer().run()
    harness.open_store().close()
    harness.store = None
    env = {"PATH": os.environ["PATH"], "STATE_STORE": harness.env()["STATE_STORE"], "HOME": str(tmp_path)}
    assert not {"MONEYPENNY_PASSWORD", "SLACK_BOT_TOKEN", "SHEET_ID", "SLACK_CHANNEL"} & set(env)
    proc = subprocess.run([sys.executable, "-m", "lib", "status"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode in (EXIT_OK, EXIT_FAILED), proc.stderr
    assert "is not set" not in proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith(("OK — last successful run", "PROBLEM — no successful run")), proc.stdout


def test_status_starts_with_ok_when_runs_succeed_and_nothing_waits(harness):
    harness.add_chats(2)
    harness.syncer().run()
    harness.clock.advance(minutes=3)
    code, out = _cli(harness, "status")
    assert code == EXIT_OK
    assert out.splitlines()[0] == "OK — last successful run 3 min ago, nothing waiting"
    assert "Last success" in out


def test_status_starts_with_problem_and_the_cause_when_runs_fail(harness):
    harness.add_chats(1)
    harness.syncer().run()
    harness.clock.advance(minutes=47)
    wrong = {**harness.env(), "MONEYPENNY_PASSWORD": "not-the-password"}
    harness.stand.moneypenny.expire_tokens()
    harness.open_store().clear_token()
    assert _cli(harness, "run", env=wrong)[0] == EXIT_FAILED
    code, out = _cli(harness, "status")
    assert code == EXIT_FAILED
    first = out.splitlines()[0]
    assert first.startswith("PROBLEM — no successful run for 47 min: Moneypenny refused the login (HTTP 401"), first
    assert "not-the-password" not in out


def test_status_calls_it_a_problem_when_no_run_happened_for_the_watch_window(harness):
    harness.add_chats(1)
    harness.syncer().run()
    harness.clock.advance(minutes=40)
    code, out = _cli(harness, "status")
    assert code == EXIT_FAILED
    assert out.splitlines()[0] == ("PROBLEM — no successful run for 40 min; the last run was 40 min ago "
                                   "(is the scheduler job paused?)")
    assert _cli(harness, "status", "--watch-minutes", "60")[0] == EXIT_OK


@pytest.mark.parametrize("other, line", [
    (lambda day: ("backfill", "--from", day, "--to", day), "Last backfill or window"),
    (lambda day: ("quarantine", "--retry"), "Last quarantine retry"),
])
def test_status_judges_the_scheduled_runs_only_a_backfill_or_retry_has_its_own_line(harness, other, line):
    """A backfill's spans (mode window) and a quarantine retry are not scheduled runs: their
    success does not hide that no scheduled run ran for hours; each is shown on its own line."""
    harness.add_chats(2)
    assert _cli(harness, "run")[0] == EXIT_OK
    harness.clock.advance(hours=3)  # the scheduler job paused: no run for 3 hours
    day = (harness.clock() - timedelta(days=3)).date().isoformat()
    assert _cli(harness, *other(day))[0] == EXIT_OK
    harness.clock.advance(minutes=1)
    code, out = _cli(harness, "status")
    assert code == EXIT_FAILED
    assert out.splitlines()[0] == ("PROBLEM — no successful run for 3 h 1 min; the last run was 3 h 1 min ago "
                                   "(is the scheduler job paused?)")
    assert any(row.startswith(line) and "ok" in row and "not a scheduled run" in row for row in out.splitlines())


def test_status_calls_it_a_problem_when_runs_succeed_but_something_is_stuck(harness):
    harness.add_chats(2)
    harness.stand.moneypenny.add_chats(["not an object"])
    harness.syncer().run()
    harness.clock.advance(minutes=2)
    code, out = _cli(harness, "status")
    assert code == EXIT_FAILED
    assert out.splitlines()[0] == ("PROBLEM — last successful run 2 min ago, but 1 item(s) set aside in quarantine in the last 24 h")


def test_status_before_any_run_says_so_in_its_first_line(harness):
    harness.open_store()  # the store as a first run would leave it (status creates none)
    code, out = _cli(harness, "status")
    assert code == EXIT_OK and out.splitlines()[0].startswith("NO RUNS YET")


# -- the watcher's alert policies ----------------------------------------------------------------


class _Monitoring:
    """A tiny stand-in of Cloud Monitoring's alertPolicies.list, one policy per page."""

    def __init__(self, policies: list[dict], status: int = 200):
        self.policies, self.status, self.requests = policies, status, []
        stand = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                stand.requests.append(url.path)
                page = int((parse_qs(url.query).get("pageToken") or ["0"])[0])
                body: dict = {"alertPolicies": stand.policies[page:page + 1]}
                if page + 1 < len(stand.policies):
                    body["nextPageToken"] = str(page + 1)
                data = json.dumps(body if stand.status == 200 else {"error": {"code": stand.status}}).encode()
                self.send_response(stand.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def monitoring():
    made = []

    def make(policies: list[dict], status: int = 200) -> _Monitoring:
        made.append(_Monitoring(policies, status))
        return made[-1]

    yield make
    for m in made:
        m.close()


def _policy(name: str, label: str = "moneypenny_sync", enabled: bool = True) -> dict:
    return {"name": f"projects/demo-project/alertPolicies/{abs(hash(name)) % 10**6}", "displayName": name,
            "enabled": enabled, "userLabels": {"app": "moneypenny-sync", "watcher_for": label}}


def test_status_and_check_name_the_watchers_alert_policies(harness, monitoring):
    harness.open_store()  # status reads a store, it creates none
    api = monitoring([
        _policy("moneypenny-sync: no healthy run for 30 min"),
        _policy("someone else's policy", label="other_app"),
        _policy("moneypenny-sync: function errors", enabled=False),
    ])
    env = {**harness.env(), "MONITORING_API_URL": api.url, "GOOGLE_CLOUD_PROJECT": "demo-project"}
    code, out = _cli(harness, "status", "--json", env=env)
    watcher = json.loads(out)["watcher"]
    assert watcher["state"] == "found"
    assert [p["display_name"] for p in watcher["policies"]] == [
        "moneypenny-sync: no healthy run for 30 min", "moneypenny-sync: function errors"]
    assert "(disabled)" in watcher["detail"]
    assert api.requests and set(api.requests) == {"/v3/projects/demo-project/alertPolicies"}
    assert len(api.requests) == 3, "every page is read"

    checks = {c["name"]: c for c in json.loads(_cli(harness, "check", "--json", env=env)[1])["checks"]}
    assert checks["watcher"]["status"] == "OK" and "2 alert policies in project demo-project" in checks["watcher"]["detail"]


def test_status_and_check_say_when_no_policy_watches_or_the_answer_is_unknown(harness, monitoring):
    harness.open_store()  # status reads a store, it creates none
    none = monitoring([_policy("someone else's policy", label="other_app")])
    env = {**harness.env(), "MONITORING_API_URL": none.url, "GOOGLE_CLOUD_PROJECT": "demo-project"}
    code, out = _cli(harness, "status", env=env)
    assert "Watcher" in out and "no alert policies watch this state store in project demo-project" in out
    check = {c["name"]: c for c in json.loads(_cli(harness, "check", "--json", env=env)[1])["checks"]}
    assert check["watcher"]["status"] == "WARN" and "watcher_enabled" in check["watcher"]["fix"]

    refused = monitoring([], status=403)
    env = {**env, "MONITORING_API_URL": refused.url}
    watcher = json.loads(_cli(harness, "status", "--json", env=env)[1])["watcher"]
    assert watcher["state"] == "unknown" and "HTTP 403" in watcher["detail"] and "monitoring.viewer" in watcher["detail"]

    # Offline, with a local store: unknown, and nothing is asked of the network.
    local = json.loads(_cli(harness, "status", "--json")[1])["watcher"]
    assert local["state"] == "unknown" and local["detail"].startswith("unknown (")


def test_check_says_when_the_last_run_succeeded(harness):
    harness.add_chats(1)
    harness.syncer().run()
    harness.clock.advance(minutes=4)
    checks = {c["name"]: c for c in json.loads(_cli(harness, "check", "--json")[1])["checks"]}
    assert checks["last run"]["status"] == "OK"
    assert checks["last run"]["detail"] == "last successful run 4 min ago, nothing waiting"
    harness.clock.advance(minutes=40)
    later = {c["name"]: c for c in json.loads(_cli(harness, "check", "--json")[1])["checks"]}
    assert later["last run"]["status"] == "WARN" and "no successful run for 44 min" in later["last run"]["detail"]


def test_quarantine_listing_needs_only_the_state_store_settings_and_a_retry_needs_all(harness, tmp_path):
    harness.stand.moneypenny.add_chats(["not a chat"])
    harness.syncer().run()
    harness.open_store().close()
    harness.store = None
    env = {"PATH": os.environ["PATH"], "STATE_STORE": harness.env()["STATE_STORE"], "HOME": str(tmp_path)}
    listed = subprocess.run([sys.executable, "-m", "lib", "quarantine"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == EXIT_OK, listed.stderr
    assert "is not set" not in listed.stderr and "not a chat" not in listed.stdout
    retried = subprocess.run([sys.executable, "-m", "lib", "quarantine", "--retry"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
    assert retried.returncode == 4 and "SHEET_ID is not set" in retried.stderr
