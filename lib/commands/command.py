"""What every command of `python -m lib` shares: exit codes, its context, its settings and store,
JSON output and the aligned text table. Each command lives in its own module (see lib/commands/cli.py)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .. import logs
from ..accounts import account_ids, read_for, settings_for, store_settings_for, unknown_account
from ..app import build_syncer as build
from ..clock import Clock, utcnow
from ..errors import StateStoreMissing, SyncError, cut
from ..settings import Settings
from ..state import open_store
from ..state.contract import StateStore
from ..sync import Syncer

# How a command that needs only some settings reads them: (environment, names) -> Settings, where
# `names` says how a problem names a variable (an account's own: `SHEET_ID__NORTH`), as Settings.from_env's.
SettingsReader = Callable[[Mapping[str, str], Mapping[str, str] | None], Settings]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 3
EXIT_SETTINGS = 4
EXIT_INTERRUPTED = 130


@dataclass
class Context:
    """What a command needs from outside: environment, clock, streams; tests pass their own."""

    env: Mapping[str, str] | None = None
    clock: Clock = utcnow
    out: TextIO | None = None
    err: TextIO | None = None
    inp: TextIO | None = None  # where a confirmation is read (default stdin)
    sleep: Callable[[float], None] = time.sleep
    backoff: float = 0.5
    sheets_quota_wait: float | None = None  # None: each command's own (tests pass a short one)

    @property
    def stdout(self) -> TextIO:
        return self.out or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self.err or sys.stderr

    @property
    def stdin(self) -> TextIO:
        return self.inp or sys.stdin

    @property
    def interactive(self) -> bool:
        """Whether a person can answer a question: stdin is a terminal."""
        try:
            return bool(self.stdin.isatty())
        except (AttributeError, ValueError):  # closed, or no stdin at all
            return False

    def confirm(self, question: str) -> bool:
        """Ask `question` [y/N] on stderr and read the answer (only when `interactive`)."""
        print(f"{question} [y/N] ", end="", file=self.stderr, flush=True)
        return self.stdin.readline().strip().lower() in ("y", "yes")

    def say(self, *lines: str) -> None:
        """Print lines on stdout."""
        for line in lines:
            print(line, file=self.stdout)

    def warn(self, *lines: str) -> None:
        """Print lines on stderr."""
        for line in lines:
            print(line, file=self.stderr)


def print_json(ctx: Context, data: Any) -> None:
    """The command's result as indented JSON on stdout."""
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False), file=ctx.stdout)


def log_level(verbose: int, quiet: int = logging.WARNING) -> int:
    """The log level of -v (info) and -vv (debug); `quiet` without either."""
    return {0: quiet, 1: logging.INFO}.get(verbose, logging.DEBUG)


def with_fix(message: str, fix: str) -> str:
    """A message, and under it its fix when there is one."""
    return message + (f"\nfix: {fix}" if fix else "")


STORE_UNSET = (
    "STATE_STORE is not set, and without GOOGLE_CLOUD_PROJECT (or FIRESTORE_EMULATOR_HOST) there is no "
    "Firestore project to read"
)
STORE_UNSET_FIX = (
    "Set STATE_STORE: sqlite:PATH for a local store (`python -m sandbox --serve` prints the settings of "
    "a local playground), or STATE_STORE=firestore and GOOGLE_CLOUD_PROJECT for the deployed one "
    "(see docs/operating.md, 'The command line')."
)


def store_unset(env: Mapping[str, str] | None) -> bool:
    """Whether nothing names a state store: STATE_STORE unset and no Firestore project in sight.

    The function's default is Firestore, found from the environment's credentials; on a laptop
    with no settings that means a metadata-server probe and a credentials error, not a store."""
    env = os.environ if env is None else env
    return not any((env.get(name) or "").strip()
                   for name in ("STATE_STORE", "GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST"))


def accounts_of(ctx: Context) -> tuple[tuple[str, ...] | None, int]:
    """The accounts ACCOUNTS names (empty: none), or None and EXIT_SETTINGS, with the message, when it is wrong."""
    try:
        return account_ids(ctx.env), EXIT_OK
    except SyncError as exc:
        ctx.warn(with_fix(f"error: {exc}", exc.fix))
        return None, EXIT_SETTINGS


def pick_account(args: argparse.Namespace, ctx: Context) -> tuple[str | None, int]:
    """The account a command is for: `--account ID`, one of ACCOUNTS ("" without ACCOUNTS); None
    and the exit code, with a message, when it is missing, unknown or given without ACCOUNTS."""
    accounts, code = accounts_of(ctx)
    if accounts is None:
        return None, code
    given = getattr(args, "account", None) or ""
    if not accounts:
        if given:
            ctx.warn(f"error: --account {cut(given)!r}, but ACCOUNTS is not set: this deployment is one account; "
                     "leave --account out")
            return None, EXIT_USAGE
        return "", EXIT_OK
    if not given:
        ctx.warn(f"error: ACCOUNTS names {', '.join(accounts)}: say which with --account ID "
                 f"(such as --account {accounts[0]})")
        return None, EXIT_USAGE
    if given not in accounts:
        ctx.warn(f"error: --account: {unknown_account(given, accounts)}")
        return None, EXIT_USAGE
    return given, EXIT_OK


def account_settings(env: Mapping[str, str] | None, account: str, store_only: bool = False,
                     reader: SettingsReader | None = None) -> Settings:
    """One account's settings ("" without ACCOUNTS): all of them, the store's only, or as `reader`
    reads them (from the environment as the account sees it, naming its variables as it does:
    `SHEET_ID__NORTH`). SettingsError names the variable."""
    if reader is not None:
        return read_for(env, account, reader)
    return store_settings_for(env, account) if store_only else settings_for(env, account)


def setup(
    args: argparse.Namespace, ctx: Context, store_only: bool = False, read_only: bool = False,
    settings_reader: SettingsReader | None = None, create: bool = True,
) -> tuple[Settings | None, StateStore | None, int]:
    """Settings, logging and the store; a None and the exit code, with a message, when they cannot be had.

    The account is `--account` (pick_account): its settings, and its own store.
    store_only: read only the state store's settings (status needs nothing else). read_only: open
    the store for reading only (it must exist; nothing is created, migrated or locked).
    settings_reader: read the settings another way (a command that needs only some of them).
    create False: the store must exist (a command that only deletes from it)."""
    account, code = pick_account(args, ctx)
    if account is None:
        return None, None, code
    try:
        settings = account_settings(ctx.env, account, store_only, settings_reader)
    except SyncError as exc:
        ctx.warn(f"error: {exc}\nfix: {exc.fix}")
        return None, None, EXIT_SETTINGS
    if store_unset(ctx.env):
        ctx.warn(with_fix(f"error: {STORE_UNSET}", STORE_UNSET_FIX))
        return None, None, EXIT_SETTINGS
    logs.configure(settings.log_format, level=log_level(args.verbose), stream=ctx.err, secrets=settings.secrets())
    try:
        store = open_store(settings, read_only=read_only, create=create)
    except StateStoreMissing as exc:
        if settings.account and settings.sqlite_path and not os.path.exists(settings.sqlite_path):
            # The store's own message names the account's file as if STATE_STORE said it, and
            # its fix a `run` that ACCOUNTS refuses without --account.
            ctx.warn(with_fix(
                f"error: account {settings.account!r} has no state store yet: no {settings.sqlite_path} (its file "
                f"beside STATE_STORE={cut(settings.state_store)}); it has had no run",
                f"Its first run creates it: `python -m lib run --account {settings.account}` (or the "
                f"function's call with ?account={settings.account})."))
        else:
            ctx.warn(with_fix(f"error: the state store cannot be opened: {exc}", exc.fix))
        return settings, None, EXIT_FAILED
    except SyncError as exc:
        ctx.warn(with_fix(f"error: the state store cannot be opened: {exc}", exc.fix))
        return settings, None, EXIT_FAILED
    return settings, store, EXIT_OK


def build_syncer(
    settings: Settings, store: StateStore, ctx: Context, checkpoint: Callable[[str], None] | None = None,
    sheets_quota_wait: float | None = None, on_quota_wait: Callable[[float], None] | None = None,
) -> Syncer:
    """The Syncer of a command: the context's clock and backoff, the command's store
    (`sheets_quota_wait`: a longer wait for Sheets' quota than a scheduled run's; `on_quota_wait`
    hears the seconds left while it waits)."""
    extra = {} if sheets_quota_wait is None else {"sheets_quota_wait": sheets_quota_wait}
    return build(settings, store=store, clock=ctx.clock, checkpoint=checkpoint, backoff=ctx.backoff,
                 on_quota_wait=on_quota_wait, **extra)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as aligned text lines under their header, two spaces between columns, no trailing space."""
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    return [line(header)] + [line(row) for row in rows]


class ProgressBar:
    """A tqdm bar on stderr: `days read: 100%|████| 365/365 [00:08, 43.1 days/s, new=10950, written=0]`.

    `total` None counts without a bar (`rows written: 10950 rows [00:03, …]`). On a terminal it
    redraws in place; elsewhere (a log, CI) it writes only when it closes, one line.
    """

    def __init__(self, stream: TextIO, total: int | None, unit: str, desc: str | None = None):
        from tqdm import tqdm  # only the commands that draw a bar load it

        tty = bool(getattr(stream, "isatty", lambda: False)())
        self.bar = tqdm(total=total, unit=f" {unit}", desc=desc or unit, file=stream, ascii=not tty or None,
                        dynamic_ncols=tty, ncols=None if tty else 100, leave=True,
                        # Not a terminal: no redraws into the file, one line at the end.
                        mininterval=0.2 if tty else float("inf"))

    def show(self, done: int, new: int | None = None, written: int | None = None) -> None:
        """Move the bar to `done`, with the counts beside it."""
        counts = {name: value for name, value in (("new", new), ("written", written)) if value is not None}
        if counts:
            self.bar.set_postfix(counts, refresh=False)
        self.bar.update(done - self.bar.n)

    def note(self, text: str) -> None:
        """Show `text` beside the bar (and redraw it now), or clear it with ""."""
        self.bar.set_postfix_str(text, refresh=True)

    def add(self, n: int) -> None:
        """Move the bar `n` further."""
        self.bar.update(n)

    def done(self) -> None:
        """Draw the bar's last state and end its line."""
        self.bar.close()
