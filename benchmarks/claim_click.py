"""Click-to-answer time of `main.slack_actions` (#23 item 3): Slack wants its answer in 3 seconds.

Against the stand-ins on 127.0.0.1 (each answering after `--latency` seconds, a stand-in for the
network and Google's and Slack's own time) and a SQLite store, served by the real
functions-framework app:

- cold: a fresh process imports `main`, makes the app and answers one click (the process's own
  import and first-request time; the platform's container start comes on top in the cloud);
- warm: the same process answering further clicks (median and slowest), each a first click on
  its item (users.info, the store's transaction, two Sheets reads and a write, chat.update).

    python -m benchmarks.claim_click [--latency 0.1] [--clicks 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.measure import FUNCTION_VARS, ROOT
from sandbox.standins import DEMO_CHANNEL_ID, DEMO_SLACK_TOKEN, StandIns, sample_chats
from sandbox.standins.a1 import col_letters
from sandbox.standins.slack import APP_ID, SIGNING_SECRET, TEAM_ID, FakeSlack

CHILD = "--child"


def _setup(stand: StandIns, tmp: Path, items: int) -> tuple[dict[str, str], list[str], dict[str, Any]]:
    """The sheet with `items` chats (Owner and Claimed at added), a summary with a Claim button
    each: (the function's environment, the keys, the message)."""
    from slack_sdk import WebClient

    from lib.app import build_syncer
    from lib.settings import Settings
    from lib.sources import CHATS_FEED

    env = {**stand.env(), "STATE_STORE": f"sqlite:{tmp / 'state.sqlite3'}", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_TEAM_ID": TEAM_ID, "SLACK_APP_ID": APP_ID, "LOG_FORMAT": "json"}
    stand.moneypenny.add_chats(sample_chats(items, start=datetime.now(ZoneInfo("Europe/London")).replace(tzinfo=None) - timedelta(hours=3)))
    settings = Settings.from_env(env)
    build_syncer(settings).run()
    width = len(CHATS_FEED.layout.header)
    stand.sheets.set_cell(stand.sheet_id, settings.sheet_tab, f"{col_letters(width)}1", "Owner")
    stand.sheets.set_cell(stand.sheet_id, settings.sheet_tab, f"{col_letters(width + 1)}1", "Claimed at")
    rows = stand.sheets.rows(stand.sheet_id, settings.sheet_tab)
    keys = [row[width - 1] for row in rows[1:]]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"a chat `{k[-8:]}`"},
               "accessory": {"type": "button", "action_id": "claim", "text": {"type": "plain_text", "text": "Claim"},
                             "value": json.dumps({"a": "", "f": "chats", "k": k}, separators=(",", ":"))}}
              for k in keys]
    client = WebClient(token=DEMO_SLACK_TOKEN, base_url=stand.slack.api_url)
    ts = client.chat_postMessage(channel=DEMO_CHANNEL_ID, text="new chats", blocks=blocks)["ts"]
    return env, keys, stand.slack.message(ts)


def _request(stand: StandIns, message: dict[str, Any], key: str) -> tuple[bytes, dict[str, str]]:
    slack: FakeSlack = stand.slack
    wanted = next(b for b in slack.buttons(message) if json.loads(b["value"])["k"] == key)
    return slack.interactivity_request(slack.click_payload(message, wanted, "U0ANN"))


def _child(path: str) -> None:
    """A cold instance: import main, make the app, answer the clicks in `path` one by one."""
    t0 = time.perf_counter()
    from functions_framework import create_app

    app = create_app("slack_actions", str(ROOT / "main.py")).test_client()
    imported = time.perf_counter() - t0
    answers = []
    for item in json.loads(Path(path).read_text()):
        t1 = time.perf_counter()
        response = app.post("/", data=item["body"].encode(), headers=item["headers"])
        answers.append({"status": response.status_code, "ms": (time.perf_counter() - t1) * 1000})
    print(json.dumps({"import_ms": imported * 1000, "answers": answers}))


def measure(latency: float, clicks: int) -> dict[str, Any]:
    """Cold and warm click-to-answer times (ms) with every stand-in answering after `latency` s."""
    with tempfile.TemporaryDirectory() as folder, StandIns() as stand:
        env, keys, message = _setup(stand, Path(folder), clicks + 1)
        requests = [_request(stand, message, key) for key in keys[: clicks + 1]]
        stand.reset_calls()
        stand.set_latency(latency)
        path = Path(folder) / "clicks.json"
        path.write_text(json.dumps([{"body": b.decode(), "headers": h} for b, h in requests]))
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(FUNCTION_VARS)}
        child_env.update(env, PYTHONPATH=str(ROOT))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "benchmarks.claim_click", CHILD, str(path)],
                              capture_output=True, text=True, env=child_env, cwd=str(ROOT), check=False)
        wall = (time.perf_counter() - t0) * 1000
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1:])
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        answers = out["answers"]
        if any(a["status"] != 200 for a in answers):
            raise RuntimeError(f"a click was not answered 200: {answers}")
        warm = [a["ms"] for a in answers[1:]]
        return {
            "latency_s": latency,
            "cold": {"import_main_and_app_ms": round(out["import_ms"]), "first_click_ms": round(answers[0]["ms"]),
                     "process_wall_ms": round(wall)},
            "warm": {"clicks": len(warm), "median_ms": round(statistics.median(warm)), "max_ms": round(max(warm))},
            "calls_per_click": round(stand.slack.count() / len(answers), 1),
            "sheets_calls_per_click": round(stand.sheets.count() / len(answers), 1),
        }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == CHILD:
        _child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, action="append", help="seconds each stand-in waits (repeatable)")
    parser.add_argument("--clicks", type=int, default=10, help="warm clicks measured (default 10)")
    args = parser.parse_args()
    for latency in args.latency or [0.0, 0.1]:
        print(json.dumps(measure(latency, args.clicks)))


if __name__ == "__main__":
    main()
