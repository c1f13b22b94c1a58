"""The local playground, `python -m sandbox --serve`: the stand-ins keep running for the command line.

It starts the Moneypenny, Sheets and Slack stand-ins on 127.0.0.1 with sample data (recent chats
and call messages, a week of older chats that only a backfill finds, one chat without a
`chatTime` that a run sets aside), makes an empty SQLite state store, prints every setting to
paste into a shell (also saved as `playground.env`) and the commands to try, then reports what
reaches the sheet and Slack until Ctrl-C. Development code, never deployed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from .outdir import PLAYGROUND_FILES, OutDirRefused, prepare, python_command, shown_path

UK = ZoneInfo("Europe/London")  # chatTime is UK local time in the samples, as CHAT_TIMEZONE says
PAST_DAYS = 7  # older chats, one or two a day, that a plain read no longer returns
# ... ending this many days ago: the first run's daily reconcile reads the last RECONCILE_DAYS
# (2) days by date, so only a backfill finds the week before them.
PAST_END_DAYS = 3
READY = "Ready."  # the line after which the stand-ins answer (tests wait for it)


class Busy(Exception):
    """Another playground serves from the same folder."""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # One playground per folder: a second would clear the first one's store under it.
    try:
        import fcntl
    except ImportError:  # not on this platform: no guard
        yield
        return
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise Busy(f"a playground already serves from {path.parent}\n"
                       "fix: use that one, stop it (Ctrl-C), or give another folder (--out DIR).") from None
        yield


def _uk_now() -> datetime:
    return datetime.now(UK).replace(tzinfo=None, microsecond=0)


def seed(stand: Any, chats: int, calls: int) -> dict[str, Any]:
    """Put the sample data into Moneypenny; what was added, for the banner."""
    from .standins.samples import sample_calls, sample_chats

    today = _uk_now().date()
    past: list[dict[str, Any]] = []
    for back in range(PAST_DAYS + PAST_END_DAYS - 1, PAST_END_DAYS - 1, -1):
        day = today - timedelta(days=back)
        past += sample_chats(1 + back % 2, start=datetime(day.year, day.month, day.day, 10, 0), seed=200 + back,
                             spacing=timedelta(hours=3))
    stand.moneypenny.add_chats(past)
    stand.moneypenny.skip_to_end()  # read before the sync began: only a window (a backfill) finds them
    now = _uk_now()
    spacing = timedelta(hours=2) / (chats + 1)
    stand.moneypenny.add_chats(sample_chats(chats, start=now - timedelta(hours=2), seed=7, spacing=spacing))
    # No chatTime: the run sets it aside in quarantine, for `quarantine` to show, retry or drop.
    stand.moneypenny.add_chats([{"name": "Unreadable Example", "email": "unreadable@example.com",
                                 "pageUrl": "https://example.com/contact", "transcript": "no time on this one"}])
    stand.moneypenny.add_calls(sample_calls(calls, datetime.now(UTC) - timedelta(hours=2), seed=7,
                                            spacing=timedelta(hours=1.5) / max(calls, 1), missing_ids=0.2))
    reminded = _reminder_chats(stand, today)
    return {"reminder_day": reminded,
            "past_from": today - timedelta(days=PAST_DAYS + PAST_END_DAYS - 1), "past_to": today - timedelta(days=PAST_END_DAYS),
            "past": len(past), "chats": chats, "calls": calls}


def _reminder_at() -> str:
    """UNCLAIMED_REMINDER_AT as the playground was started with it ("" when unset or off)."""
    at = os.environ.get("UNCLAIMED_REMINDER_AT", "").strip()
    return "" if at.lower() == "off" else at


def _reminder_chats(stand: Any, today: Any) -> Any:
    """With UNCLAIMED_REMINDER_AT set: two chats of the last working day, read by the first `run`,
    for its reminder of unclaimed leads to list (that day, or None)."""
    from lib.sync.reminder import last_working_day

    from .standins.samples import sample_chats

    if not _reminder_at():
        return None
    day = last_working_day(today)
    stand.moneypenny.add_chats(sample_chats(2, start=datetime(day.year, day.month, day.day, 11, 0), seed=300,
                                            spacing=timedelta(hours=2)))
    return day


def environment(stand: Any, store: Path) -> dict[str, str]:
    """Every setting the command line needs to use the stand-ins and the playground's store."""
    return {
        **stand.env(),
        "MONEYPENNY_SOURCES": "chats,calls",
        "CHAT_TIMEZONE": "Europe/London",
        "STATE_STORE": f"sqlite:{store}",
        "LOG_FORMAT": "text",
        **({"UNCLAIMED_REMINDER_AT": _reminder_at()} if _reminder_at() else {}),
    }


def banner(env: dict[str, str], added: dict[str, Any], env_file: Path, every: float) -> list[str]:
    """What to paste and what to try."""
    py = python_command()
    start, end = added["past_from"], added["past_to"]
    ticking = (f"Moneypenny receives a new chat every {every:g} s: `run` again to sync it."
               if every > 0 else "No new chats arrive by themselves (--every 0).")
    commands = [
        ("status", "what the runs did and what waits (nothing yet)"),
        ("check", "every dependency, changing nothing"),
        ("run", f"one sync now: {added['chats']} chats, {added['calls']} call messages, one unreadable chat set aside"),
        ("status", "the run, and the unreadable chat as a PROBLEM"),
        (f"backfill --from {start} --to {end}", f"the past week's {added['past']} chats, which a plain read no longer returns"),
        ("quarantine", "the unreadable chat (its content only with --show)"),
        ("quarantine --drop-all", "clear it (it asks first), or --retry to read it again"),
    ]
    width = max(len(f"{py} -m lib {command}") for command, _ in commands) + 2
    return [
        "The stand-ins are running: Moneypenny, the Sheets API and the Slack Web API on 127.0.0.1.",
        "",
        "Paste into another shell (from this folder), or `source " + shown_path(env_file) + "`:",
        "",
        *(f"export {name}={shlex.quote(value)}" for name, value in env.items()),
        "",
        "Then try:",
        "",
        *(f"  {f'{py} -m lib {command}':<{width}} # {why}" for command, why in commands),
        "",
        f"{ticking} Each command has --help; -v shows the log.",
        *([f"UNCLAIMED_REMINDER_AT={env['UNCLAIMED_REMINDER_AT']}: the first `run` after it on a weekday also posts "
           f"the reminder of {added['reminder_day']:%a %d %b}'s unclaimed leads (2 sample chats of that day)."]
          if added.get("reminder_day") and "UNCLAIMED_REMINDER_AT" in env else []),
        "What reaches the sheet and Slack is shown here. Ctrl-C stops the stand-ins.",
    ]


class Activity:
    """Lines for what changed on the sheet and in Slack since the last look."""

    def __init__(self, stand: Any):
        self.stand = stand
        self.rows = {"Chats": 0, "Calls": 0}
        self.messages = 0

    def changes(self) -> list[str]:
        lines: list[str] = []
        stamp = datetime.now(UK).strftime("%H:%M:%S")
        for tab in self.rows:
            rows = max(len(self.stand.sheets.rows(self.stand.sheet_id, tab)) - 1, 0)
            if rows != self.rows[tab]:
                lines.append(f"[{stamp}] sheet: tab {tab!r} has {rows} row(s) ({rows - self.rows[tab]:+d})")
                self.rows[tab] = rows
        messages = self.stand.slack.messages()
        for message in messages[self.messages:]:
            text = self.stand.slack.message_text(message).splitlines()
            lines.append(f"[{stamp}] Slack: {text[0] if text else '(empty message)'}")
        self.messages = len(messages)
        return lines


def serve(out_dir: str = "local-run", chats: int = 6, calls: int = 4, every: float = 120.0,
          stop: threading.Event | None = None, stream: IO[str] | None = None) -> int:
    """Run the playground until Ctrl-C (or `stop` is set); return a process exit code."""
    stop = stop or threading.Event()
    with contextlib.ExitStack() as stack:
        try:
            out = prepare(out_dir, ())
            stack.enter_context(_locked(out / "playground.lock"))
        except (OutDirRefused, Busy) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for name in PLAYGROUND_FILES:  # its own earlier output, now that no other playground uses it
            if name != "playground.lock":
                (out / name).unlink(missing_ok=True)
        if threading.current_thread() is threading.main_thread():
            # Ctrl-C (also where a shell started it with SIGINT ignored) and a plain kill stop it cleanly.
            for sig in (signal.SIGINT, signal.SIGTERM):
                stack.callback(signal.signal, sig, signal.signal(sig, lambda *_: stop.set()))
        return _serve(out, chats, calls, every, stop, stream)


def _serve(out: Path, chats: int, calls: int, every: float, stop: threading.Event, stream: IO[str] | None) -> int:
    from lib.state.sqlite.store import SqliteStore

    from .standins import StandIns
    from .standins.samples import sample_chats

    def say(*lines: str) -> None:
        for line in lines:
            print(line, file=stream, flush=True)

    store_path = out / "playground.sqlite3"
    with StandIns() as stand:
        added = seed(stand, chats, calls)
        SqliteStore(str(store_path)).close()  # an empty store: status and check read it from the start
        env = environment(stand, store_path)
        env_file = out / "playground.env"
        env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
        say(*banner(env, added, env_file, every), "", READY)
        activity = Activity(stand)
        next_chat, n = time.monotonic() + every, 0
        try:
            while not stop.wait(1.0):
                say(*activity.changes())
                if every > 0 and time.monotonic() >= next_chat:
                    n += 1
                    stand.moneypenny.add_chats(sample_chats(1, start=_uk_now() - timedelta(seconds=2),
                                                            seed=1000 + n, spacing=timedelta(seconds=1)))
                    say(f"[{datetime.now(UK):%H:%M:%S}] Moneypenny: a new chat arrived (`run` syncs it)")
                    next_chat += every
        except KeyboardInterrupt:
            pass
        say(*activity.changes())
        stand.sheets.to_csv(stand.sheet_id, "Chats", str(out / "playground-chats.csv"))
        stand.sheets.to_csv(stand.sheet_id, "Calls", str(out / "playground-calls.csv"))
    say("", f"Stopped the stand-ins. Saved the tabs as {shown_path(out / 'playground-chats.csv')} and "
            f"{shown_path(out / 'playground-calls.csv')}; the state store stays in {shown_path(store_path)} "
            "(`status` still reads it).")
    return 0
