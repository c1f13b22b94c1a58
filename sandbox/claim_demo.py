"""The demo's claim (#23): the first Claim button of the summary clicked as Slack would send it
(signed, by the stand-in's "Ann"), answered by main.slack_actions' own code in this process on the
demo's state store; what it did, as lines to print.

`python -m sandbox` calls it once the function has stopped and before it prints the tabs (one
line in sandbox/demo.py, left to the merge: lanes sales-links and acc-proof reshape that file)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .standins.slack import APP_ID, SIGNING_SECRET, TEAM_ID, FakeSlack


def click_first_claim(slack: FakeSlack, sheets: Any, sheet_ids: Mapping[str, str], env: Mapping[str, str]) -> list[str]:
    """Click the first Claim button of the newest message that has one; lines saying what
    happened ([] when no message has a Claim button). `sheet_ids`: each account's spreadsheet
    ("" for a deployment without ACCOUNTS), where the click's Owner cell is looked for."""
    from lib.actions import handle_action

    for message in reversed(slack.messages()):
        buttons = [b for b in slack.buttons(message) if b.get("action_id") == "claim"]
        if buttons:
            break
    else:
        return []
    item = json.loads(buttons[0]["value"])
    body, headers = slack.interactivity_request(slack.click_payload(message, buttons[0], "U0ANN"))
    answer, status = handle_action("POST", body, headers, {
        **env, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_TEAM_ID": TEAM_ID, "SLACK_APP_ID": APP_ID})
    lines = [f"A click on the first Claim button ({item['k'][-8:]}), signed as Slack signs it, by Ann: HTTP {status}"]
    tab = "Calls" if item["f"] == "calls" else "Chats"
    rows = sheets.rows(sheet_ids[item["a"]], tab)
    header = [cell.strip().casefold() for cell in rows[0]] if rows else []
    for number, row in enumerate(rows[1:], start=2):
        if "owner" in header and len(row) > header.index("owner") and row[header.index("owner")]:
            at = row[header.index("claimed at")] if "claimed at" in header and len(row) > header.index("claimed at") else ""
            lines.append(f"  the sheet: tab {tab!r} row {number}: Owner {row[header.index('owner')]!r}, Claimed at {at!r}")
    if status != 200:
        lines.append(f"  answer: {answer}")
    lines.append("  the summary below says who claimed the line, its button gone")
    return lines
