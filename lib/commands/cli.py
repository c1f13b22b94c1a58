"""The command line, `python -m lib COMMAND`: it parses the arguments and hands off to the command's
module in lib/commands/ (run.py, backfill.py, checks.py, status.py, quarantine.py, waiting.py); every command uses the
same settings as the function. What the commands share is in lib/commands/command.py."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from datetime import date

from .. import logs
from ..accounts import ACCOUNT_ID
from ..errors import cut
from .command import EXIT_BUSY, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_SETTINGS, EXIT_USAGE, Context

__all__ = ["EXIT_BUSY", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_SETTINGS", "EXIT_USAGE", "Context",
           "build_parser", "main"]

EXIT_CODES = """\
exit codes:
  0    done: the run or backfill succeeded, every check passed, the last run did not fail
  1    failed: a run, a backfill's read or its delivery failed, a check found a problem, or the last run failed
  2    usage: a bad command line (unknown option, bad date, --from after --to)
  3    busy: another run holds the lease (run: skipped; backfill: still held after --wait)
  4    settings: an environment variable is missing or malformed (the message names it)
  130  interrupted (Ctrl-C); a backfill is safe to run again
"""

SETTINGS_NOTE = (
    "Settings come from the same environment variables as the function "
    "(MONEYPENNY_*, SHEET_ID, SLACK_*, STATE_STORE, ...)."
)

# Each command's module has `command(args, ctx) -> exit code`; imported only when it runs.
COMMANDS = {"run": "run", "backfill": "backfill", "check": "checks", "status": "status",
            "quarantine": "quarantine", "waiting": "waiting"}


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{cut(text)!r} is not a date as YYYY-MM-DD") from None


def _account(text: str) -> str:
    if not ACCOUNT_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{cut(text)!r} is not an account id (1 to 30 lower-case letters, digits "
                                         "or hyphens, as ACCOUNTS names them)")
    return text


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{cut(text)!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{cut(text)!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser for `python -m lib`."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m lib",
        description="Moneypenny chats to a Google Sheet and Slack. " + SETTINGS_NOTE,
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="show the log on stderr (-v: info, -vv: debug)")
    common.add_argument("--account", type=_account, metavar="ID",
                        help="the account (one of ACCOUNTS) to act on; needed when ACCOUNTS is set, but for "
                        "status and check, which without it cover every account")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", parents=[common], help="one sync now, as the scheduler would",
        description="One sync now, as the scheduler would (failure alerts and recovery messages included). "
        + SETTINGS_NOTE, epilog=EXIT_CODES, formatter_class=formatter,
    )
    run.add_argument("--mode", choices=("new", "reconcile"), default="new",
                     help="new: chats since the last read (default); reconcile: re-read the last RECONCILE_DAYS days")
    run.add_argument("--json", action="store_true", help="print the run report as JSON")

    backfill = commands.add_parser(
        "backfill", parents=[common], help="read a past window from Moneypenny into the journal, then write it to the sheet once",
        description="Read a past window from Moneypenny, a month per call, into the journal, then deliver it "
        "once (waiting out Sheets' quota): chats already in the sheet are not written again, and chats "
        "from before today are not announced one by one in Slack. "
        "Safe to stop (Ctrl-C) and run again. " + SETTINGS_NOTE,
        epilog=EXIT_CODES, formatter_class=formatter,
    )
    backfill.add_argument("--from", dest="start", type=_iso_date, required=True, metavar="YYYY-MM-DD",
                          help="first day (in CHAT_TIMEZONE)")
    backfill.add_argument("--to", dest="end", type=_iso_date, required=True, metavar="YYYY-MM-DD",
                          help="last day, included (today at the latest)")
    backfill.add_argument("--notify", action="store_true",
                          help="post one summary of the backfilled chats and call messages (a part per source) to "
                          "SLACK_CHANNEL at the end")
    backfill.add_argument("--wait", type=_seconds, default=120.0, metavar="SECONDS",
                          help="how long to wait for a scheduled run to finish before giving up (default 120)")
    backfill.add_argument("--json", action="store_true", help="print the result as JSON (no progress bar)")

    check = commands.add_parser(
        "check", parents=[common], help="try every dependency without changing anything",
        description="Try every dependency without changing anything: the settings, the state store, the "
        "Moneypenny login, the sheet, Slack. One line each: OK, WARN, FAIL (with the fix) or SKIP. "
        + SETTINGS_NOTE, epilog=EXIT_CODES, formatter_class=formatter,
    )
    check.add_argument("--json", action="store_true", help="print the results as JSON")

    status = commands.add_parser(
        "status", parents=[common], help="the last runs, the token, what is waiting to be delivered",
        description="One line first: OK or PROBLEM, with when the last run succeeded and what is wrong. Then "
        "the last runs (time, counts, duration, outcome), the Moneypenny token's expiry, the journal's "
        "undelivered chats, the lease, the alert state and whether the outside watcher's alert policies "
        "exist. Needs only the state store's settings (STATE_STORE, GOOGLE_CLOUD_PROJECT, FIRESTORE_*).",
        epilog=EXIT_CODES, formatter_class=formatter,
    )
    status.add_argument("--runs", type=_positive, default=10, help="how many runs to list (default 10)")
    status.add_argument("--json", action="store_true", help="print everything as JSON")
    status.add_argument("--watch-minutes", type=_positive, default=30, metavar="MINUTES",
                        help="a problem when no run succeeded for this long (default 30, as the watcher)")

    quarantine = commands.add_parser(
        "quarantine", parents=[common], help="list the unreadable items (chats, call messages) set aside; --retry reads them again",
        description="List the chat items that could not be read and were set aside (time, reason, size; the "
        "content only with --show, as it holds a visitor's data). They expire after RETENTION_DAYS. --retry reads "
        "them again with this version's parser (after an upgrade that fixed it): each item that now reads goes "
        "through the journal to the sheet and Slack, once, and leaves the quarantine; the others stay. --retry "
        "takes the run lease, so it is safe while the scheduled sync runs; it needs the store, sheet and Slack "
        "settings, not Moneypenny's. --drop ID... or --drop-all deletes items for good (it asks first; --yes "
        "skips the question). Items set aside over 24 hours ago no longer make runs unhealthy. " + SETTINGS_NOTE,
        epilog=EXIT_CODES, formatter_class=formatter,
    )
    quarantine.add_argument("--show", action="store_true",
                            help="print each item's content too (it may hold a visitor's personal data)")
    action = quarantine.add_mutually_exclusive_group()
    action.add_argument("--retry", action="store_true",
                        help="read every item again; deliver those that now read, once")
    action.add_argument("--drop", nargs="+", default=[], metavar="ID",
                        help="delete these items (ids as listed) for good, after a confirmation")
    action.add_argument("--drop-all", action="store_true",
                        help="delete every item in the quarantine for good, after a confirmation")
    quarantine.add_argument("--yes", action="store_true",
                            help="drop without asking (needed when no terminal can answer the question)")
    quarantine.add_argument("--json", action="store_true", help="print the result as JSON")

    waiting = commands.add_parser(
        "waiting", parents=[common], help="what waits in the journal, by source; --drop SOURCE lets a source's go",
        description="Count the journal's undelivered items by source (chats, calls, any other registered feed). A source turned off "
        "(MONEYPENNY_SOURCES) leaves its items waiting: turn it back on to deliver them, once, or --drop it: "
        "its waiting items are taken as delivered (not written to the sheet, not announced). --drop takes the "
        "run lease. Needs only the state store's settings.", epilog=EXIT_CODES, formatter_class=formatter,
    )
    # Any registered feed's name (lib/sources), checked by the command: the parser stays light.
    waiting.add_argument("--drop", metavar="SOURCE", help="take this source's (chats, calls, ...) waiting items as "
                         "delivered")
    waiting.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None, ctx: Context | None = None) -> int:
    """Run one command; return its exit code."""
    ctx = ctx or Context()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        module = importlib.import_module(f"{__package__}.{COMMANDS[args.command]}")
        # Every line a command logs names its account.
        with logs.context(**({logs.ACCOUNT: args.account} if args.account else {})):
            code: int = module.command(args, ctx)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=ctx.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader stopped early (`python -m lib status | head -1`): the rest has nowhere to go.
        # Standard output goes to /dev/null so that the flush at exit raises nothing either.
        if ctx.out is None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
