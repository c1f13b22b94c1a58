"""The naive baseline: the integration as it is usually written by hand.

Every run logs in to Moneypenny (no token cache), reads the log, then for each chat appends
one row with gspread's `Worksheet.append_row` and posts one Slack message with slack_sdk's
`chat_postMessage`. It uses the real libraries against the same stand-ins as the function;
the only difference from a cloud deployment is that gspread gets an anonymous session whose
requests go to the Sheets stand-in instead of `gspread.service_account()`.

It assumes the sheet's tab already exists with a header (made by hand), and stops at the
first error, as such scripts do; the benchmark reports how far it got.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import gspread
import requests
from slack_sdk import WebClient

GOOGLE_SHEETS_ROOT = "https://sheets.googleapis.com"


class _ToStandIn(requests.Session):
    """Sends gspread's requests for sheets.googleapis.com to the stand-in's address."""

    def __init__(self, root: str):
        super().__init__()
        self.root = root.rstrip("/")

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        if isinstance(url, str) and url.startswith(GOOGLE_SHEETS_ROOT):
            url = self.root + url[len(GOOGLE_SHEETS_ROOT):]
        return super().request(method, url, *args, **kwargs)


def _row(chat: dict[str, Any]) -> list[str]:
    transcript = chat.get("transcript") or []
    variables = chat.get("variables") or []
    return [
        chat.get("chatTime") or "",
        chat.get("name") or "",
        chat.get("companyName") or "",
        chat.get("email") or "",
        chat.get("phone") or "",
        chat.get("pageURL") or "",
        chat.get("entryURL") or "",
        "\n".join(transcript),
        "\n".join(f"{v.get('name')}: {v.get('value')}" for v in variables if isinstance(v, dict)),
        ", ".join(str(t) for t in chat.get("tags") or []),
        chat.get("utM_Source") or "",
        chat.get("utM_Medium") or "",
        chat.get("utM_Term") or "",
    ]


def naive_sync(env: Mapping[str, str]) -> dict[str, Any]:
    """One naive run. Returns how many chats it handled, timings of its fixed part and of its
    per-chat loop, and the error that stopped it (None when it finished)."""
    t0, c0 = time.perf_counter(), time.process_time()
    done = 0
    error = None
    setup_s = loop_s = setup_cpu = loop_cpu = 0.0
    chats: list[dict[str, Any]] = []
    try:
        # Log in every run.
        auth = requests.post(
            env["MONEYPENNY_AUTH_URL"],
            json={"username": env["MONEYPENNY_USERNAME"], "password": env["MONEYPENNY_PASSWORD"]},
            timeout=30,
        )
        auth.raise_for_status()
        token = auth.json()["access_token"]
        log = requests.get(env["MONEYPENNY_CHATS_URL"], headers={"Authorization": f"Bearer {token}"}, timeout=30)
        log.raise_for_status()
        chats = log.json() or []

        gc = gspread.Client(None, session=_ToStandIn(env["SHEETS_API_URL"]))  # type: ignore[arg-type]
        worksheet = gc.open_by_key(env["SHEET_ID"]).worksheet(env.get("SHEET_TAB") or "Chats")
        slack = WebClient(token=env["SLACK_BOT_TOKEN"], base_url=env["SLACK_API_URL"])
        setup_s, setup_cpu = time.perf_counter() - t0, time.process_time() - c0

        t1, c1 = time.perf_counter(), time.process_time()
        for chat in chats:
            worksheet.append_row(_row(chat))
            first = next((line for line in chat.get("transcript") or [] if "[Visitor] -" in line), "")
            slack.chat_postMessage(
                channel=env["SLACK_CHANNEL"],
                text=f"New chat from {chat.get('name')} ({chat.get('companyName') or 'no company'}) "
                f"on {chat.get('pageURL')}: {first}",
            )
            done += 1
        loop_s, loop_cpu = time.perf_counter() - t1, time.process_time() - c1
    except Exception as exc:  # a hand-written script would simply crash here
        text = str(exc)
        error = text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"
        error = error[:120] + ("…" if len(error) > 120 else "")
        if not setup_s:
            setup_s, setup_cpu = time.perf_counter() - t0, time.process_time() - c0
        else:
            loop_s = time.perf_counter() - t0 - setup_s
            loop_cpu = time.process_time() - c0 - setup_cpu
    return {"fetched": len(chats), "done": done, "error": error, "setup_s": setup_s, "loop_s": loop_s,
            "setup_cpu": setup_cpu, "loop_cpu": loop_cpu}
