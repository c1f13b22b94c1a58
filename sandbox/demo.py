"""The local run: the real function, served by functions-framework, against local stand-ins.

No cloud account and no settings are needed. It starts a Moneypenny simulator, a Sheets API
stand-in and a Slack Web API stand-in on 127.0.0.1, serves main.sync_chats with
functions-framework in a child process pointed at them (state in SQLite), calls it twice as
Cloud Scheduler would, then prints the sheet and the Slack message and saves the sheet as CSV.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import requests

from lib.accounts import per_account_names

from .claim_demo import click_first_claim
from .outdir import DEMO_ACCOUNTS, DEMO_FILES, OutDirRefused, prepare, python_command, shown_path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(host: str, port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"functions-framework exited with code {proc.returncode}")
        # A TCP connect, not a request: any request to the function runs a sync.
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("functions-framework did not start within 30 s")


CHAT_COLUMNS = ("Chat time", "Name", "Company", "Page URL", FIRST_MESSAGE := "First message")
CALL_COLUMNS = ("Call time", "Caller", "Company", "Action taken", "Message")


def with_first_message(rows: list[list[str]]) -> list[list[str]]:
    """The chats tab's rows with a "First message" column: each chat's first visitor message,
    read from its Transcript cell (whose first line is the same pre-chat note on every row)."""
    from lib.sources.chats import first_visitor_message

    if not rows or "Transcript" not in rows[0]:
        return rows
    header = rows[0]
    at = header.index("Transcript")
    padded = [row + [""] * (len(header) - len(row)) for row in rows[1:]]  # the API leaves out empty cells
    return [header + [FIRST_MESSAGE]] + [row + [first_visitor_message(row[at].split("\n"))] for row in padded]


def _table(rows: list[list[str]], widths: tuple[int, ...] = (19, 16, 14, 22, 60),
           columns: tuple[str, ...] = CHAT_COLUMNS) -> str:
    if not rows:
        return "(empty)"
    header, body = rows[0], rows[1:]
    picks = [header.index(h) for h in columns]

    def cell(text: str, width: int) -> str:
        text = " ".join(str(text).split())
        return (text if len(text) <= width else text[: width - 1] + "…").ljust(width)

    lines = [" | ".join(cell(header[i], w) for i, w in zip(picks, widths))]
    lines.append("-+-".join("-" * w for w in widths))
    for short in body:
        row = short + [""] * (len(header) - len(short))
        lines.append(" | ".join(cell(row[i], w) for i, w in zip(picks, widths)))
    return "\n".join(lines)


def _call(url: str, schedule_time: str, job: str = "local-demo") -> dict[str, Any]:
    response = requests.post(
        url,
        headers={"X-CloudScheduler-JobName": job, "X-CloudScheduler-ScheduleTime": schedule_time},
        timeout=120,
    )
    body = response.json()
    print(f"  HTTP {response.status_code}: {json.dumps(body)}")
    return body


def main(out_dir: str = "local-run", chats: int = 8, calls: int = 5, accounts: int = 0) -> int:
    """Run the demo (chats and call messages); return a process exit code. With `accounts`, a
    deployment of that many accounts (ACCOUNTS), each with its own Moneypenny login, samples,
    sheet and channel, each called as its own Scheduler job would (`?account=`)."""
    from .standins import StandIns
    from .standins.samples import sample_calls, sample_chats

    try:
        out = prepare(out_dir, DEMO_FILES)  # its own earlier output only; a folder with other files is refused
    except OutDirRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ids = DEMO_ACCOUNTS[:accounts]
    with StandIns() as stand:
        now = datetime.now().replace(microsecond=0)
        # Not the shell's accounts: ACCOUNTS and the per-account NAME__ID settings are the demo's own.
        own = set(per_account_names())
        env = {k: v for k, v in os.environ.items() if k != "ACCOUNTS" and k.partition("__")[0] not in own}
        env.update({
            **stand.env(),
            "MONEYPENNY_SOURCES": "chats,calls",
            "STATE_STORE": f"sqlite:{out / 'state.sqlite3'}",
            "LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        })
        if ids:
            env.update(stand.accounts_env(ids))
        users = [stand.accounts[a].username for a in ids] or [stand.moneypenny.username]
        for n, user in enumerate(users):  # each account its own samples
            stand.moneypenny.add_chats(sample_chats(chats, start=now - timedelta(hours=3), seed=7 + 10 * n), user=user)
            stand.moneypenny.add_calls(sample_calls(calls, datetime.now(UTC) - timedelta(hours=2), seed=7 + 10 * n,
                                                    missing_ids=0.2), user=user)
        reminder = _reminder_leads(stand, sample_chats, users[0])
        port = _free_port()
        command = [
            sys.executable, "-m", "functions_framework",
            "--target", "sync_chats", "--source", str(ROOT / "main.py"),
            "--host", "127.0.0.1", "--port", str(port),
        ]
        print(f"Stand-ins: Moneypenny {stand.moneypenny.url}, Sheets {stand.sheets.url}, Slack {stand.slack.url}")
        print(f"Serving main.sync_chats with functions-framework on http://127.0.0.1:{port}\n")
        if ids:
            print(f"ACCOUNTS={','.join(ids)}: each account has its own Moneypenny login, sheet and Slack channel, "
                  "and its own Scheduler job (?account=ID):")
            for account in ids:
                one = stand.accounts[account]
                print(f"  {account}: login {one.username}, sheet {one.sheet_id}, channel #{one.channel_name}")
            print()
        log_file = open(out / "function.log", "w")  # noqa: SIM115 (closed after the child stops)
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        answers: list[tuple[dict[str, Any], dict[str, Any]]] = []
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for("127.0.0.1", port, proc)
            tick = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
            jobs = [(f"{url}/?account={a}", f"local-demo-{a}", f" {a}") for a in ids] or [(url, "local-demo", "")]
            first = []
            for (target, job, named), user in zip(jobs, users, strict=True):
                waiting = (f"{len(stand.moneypenny.all_chats(user))} chats and "
                           f"{len(stand.moneypenny.all_calls(user))} call messages")
                print(f"Call 1{named} (as Cloud Scheduler, {waiting} waiting in Moneypenny):")
                first.append(_call(target, tick.isoformat() + "Z", job))
            second = []
            for target, job, named in jobs:
                print(f"Call 2{named} (five minutes later; nothing new: the call days are read again and add nothing, "
                      "the cached token is reused):")
                second.append(_call(target, (tick + timedelta(minutes=5)).isoformat() + "Z", job))
            answers = list(zip(first, second, strict=True))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log_file.close()

        if reminder:
            print(f"\n{reminder}")
        sheet_ids = {a: stand.accounts[a].sheet_id for a in ids} or {"": stand.sheet_id}
        print()
        for line in click_first_claim(stand.slack, stand.sheets, sheet_ids, env):
            print(line)
        if not ids:
            _show(stand, out, "", stand.sheet_id, None, stand.moneypenny.username)
        for account in ids:
            one = stand.accounts[account]
            print(f"\n=== Account {account} (sheet {one.sheet_id}, channel #{one.channel_name}) ===")
            _show(stand, out, account, one.sheet_id, one.channel_id, one.username)
        print(f"\nThe function's log: {out / 'function.log'}.")
        print(*next_steps(out / "state.sqlite3", ids), sep="\n")
        ok = len(answers) == max(len(ids), 1) and all(
            call1.get("ok") and call2.get("ok") and call2.get("new") == 0 and call2.get("appended") == 0
            for call1, call2 in answers)
        return 0 if ok else 1


def _show(stand: Any, out: Path, account: str, sheet_id: str, channel: str | None, user: str) -> None:
    """One account's tabs as tables, saved as CSV, and its channel's messages as text."""
    named = f".{account}" if account else ""
    sheet_rows = stand.sheets.rows(sheet_id, "Chats")
    call_rows = stand.sheets.rows(sheet_id, "Calls")
    print(f"\nMoneypenny logins: {stand.moneypenny.count('auth', tenant=user)}, chat log calls: "
          f"{stand.moneypenny.count('log', tenant=user)}, call message reads: {stand.moneypenny.count('calls', tenant=user)}")
    print(f"\nThe sheet (tab 'Chats', {max(len(sheet_rows) - 1, 0)} rows, some columns):\n")
    print(_table(with_first_message(sheet_rows)))
    print(f"\nThe sheet (tab 'Calls', {max(len(call_rows) - 1, 0)} rows, some columns):\n")
    print(_table(call_rows, (19, 16, 14, 14, 60), CALL_COLUMNS))
    csv_path, calls_path = out / f"sheet{named}.csv", out / f"calls{named}.csv"
    stand.sheets.to_csv(sheet_id, "Chats", str(csv_path))
    stand.sheets.to_csv(sheet_id, "Calls", str(calls_path))
    messages = stand.slack.messages(channel)
    where = f"Slack #{stand.slack.channels[channel]}" if channel else "Slack"
    print(f"\n{where} ({len(messages)} message{'' if len(messages) == 1 else 's'}):\n")
    for message in messages:
        print(textwrap.indent(stand.slack.message_text(message), "  "))
    print(f"\nSaved the tabs as {csv_path} and {calls_path}.")

def _reminder_leads(stand: Any, sample_chats: Any, user: str) -> str:
    """With UNCLAIMED_REMINDER_AT set in the environment (it reaches the function), three chats of
    the last working day, so that the reminder of unclaimed leads has something to list; what to
    expect of it, as a line to print ("" when it is not set)."""
    from zoneinfo import ZoneInfo

    from lib.sync.reminder import due_day, last_working_day

    at = os.environ.get("UNCLAIMED_REMINDER_AT", "").strip()
    if not at or at.lower() == "off":
        return ""
    tz = ZoneInfo(os.environ.get("CHAT_TIMEZONE") or "Europe/London")
    now = datetime.now(UTC)
    today = now.astimezone(tz).date()
    day = last_working_day(today)
    stand.moneypenny.add_chats(sample_chats(3, start=datetime.combine(day, clock_time(10)), seed=11,
                                            spacing=timedelta(minutes=40)), user=user)
    try:
        hour, minute = (int(part) for part in at.split(":"))
        due = due_day(None, now, clock_time(hour, minute), tz) is not None
    except ValueError:
        return f"UNCLAIMED_REMINDER_AT={at[:100]!r} is not HH:MM: the function refuses it (see its answer above)."
    if due:
        return (f"UNCLAIMED_REMINDER_AT={at}: three chats of {day:%a} {day.day} {day:%b} were added; nobody claimed them, "
                "so the first call also posted the reminder below.")
    return (f"UNCLAIMED_REMINDER_AT={at}: three chats of {day:%a} {day.day} {day:%b} were added, but no reminder is due now "
            f"(it is {now.astimezone(tz):%a %H:%M} in {tz.key}: weekends and times before {at} post none).")



def next_steps(store: Path, accounts: tuple[str, ...] = ()) -> list[str]:
    """The demo's last lines: the command line on what it left, and the playground for the rest."""
    py = python_command()
    setting = f"STATE_STORE=sqlite:{shlex.quote(shown_path(store))}"
    if accounts:
        setting = f"ACCOUNTS={','.join(accounts)} {setting}"
    return [
        "",
        "The command line on what the demo left (the stand-ins have stopped, so only the state store can be read):",
        f"  {setting} {py} -m lib status" + ("    (a line per account)" if accounts else ""),
        f"  {setting} {py} -m lib quarantine" + (f" --account {accounts[0]}" if accounts else ""),
        "To try every command (check, run, backfill, quarantine) against stand-ins that keep running:",
        f"  {py} -m sandbox --serve",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
