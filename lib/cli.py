"""The command-line interface; every command uses the same settings as the function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping, TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 3
EXIT_SETTINGS = 4
EXIT_INTERRUPTED = 130

EXIT_CODES = """\
exit codes:
  0    done: the run or backfill succeeded, every check passed, the last run did not fail
  1    failed: a run or a backfill day failed, a check found a problem, or the last run failed
  2    usage: a bad command line (unknown option, bad date, --from after --to)
  3    busy: another run holds the lease (run: skipped; backfill: still held after --wait)
  4    settings: an environment variable is missing or malformed (the message names it)
  130  interrupted (Ctrl-C); a backfill is safe to run again
"""

SETTINGS_NOTE = (
    "Settings come from the same environment variables as the function "
    "(MONEYPENNY_*, SHEET_ID, SLACK_*, STATE_STORE, ...)."
)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Context:
    """What a command needs from outside: environment, clock, streams; tests pass their own."""

    env: Mapping[str, str] | None = None
    clock: Callable[[], datetime] = _utcnow
    out: TextIO | None = None
    err: TextIO | None = None
    sleep: Callable[[float], None] = time.sleep
    backoff: float = 0.5

    @property
    def stdout(self) -> TextIO:
        return self.out or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self.err or sys.stderr


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date as YYYY-MM-DD") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
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
        "backfill", parents=[common], help="read a past window from Moneypenny, day by day, into the sheet",
        description="Read a past window from Moneypenny day by day through the journal: chats already in the "
        "sheet are not written again, and chats from before today are not announced one by one in Slack. "
        "Safe to stop (Ctrl-C) and run again. " + SETTINGS_NOTE,
        epilog=EXIT_CODES, formatter_class=formatter,
    )
    backfill.add_argument("--from", dest="start", type=_iso_date, required=True, metavar="YYYY-MM-DD",
                          help="first day (in CHAT_TIMEZONE)")
    backfill.add_argument("--to", dest="end", type=_iso_date, required=True, metavar="YYYY-MM-DD",
                          help="last day, included (today at the latest)")
    backfill.add_argument("--notify", action="store_true",
                          help="post one summary of the backfilled chats to SLACK_CHANNEL at the end")
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
        "quarantine", parents=[common], help="list the unreadable chat items set aside; --retry reads them again",
        description="List the chat items that could not be read and were set aside (time, reason, size; the "
        "content only with --show, as it holds a visitor's data). They expire after RETENTION_DAYS. --retry reads "
        "them again with this version's parser (after an upgrade that fixed it): each item that now reads goes "
        "through the journal to the sheet and Slack, once, and leaves the quarantine; the others stay. --retry "
        "takes the run lease, so it is safe while the scheduled sync runs. " + SETTINGS_NOTE,
        epilog=EXIT_CODES, formatter_class=formatter,
    )
    quarantine.add_argument("--show", action="store_true",
                            help="print each item's content too (it may hold a visitor's personal data)")
    quarantine.add_argument("--retry", action="store_true",
                            help="read every item again; deliver those that now read, once")
    quarantine.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None, ctx: Context | None = None) -> int:
    """Run one command; return its exit code."""
    ctx = ctx or Context()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    commands = {"run": _run, "backfill": _backfill, "check": _check, "status": _status, "quarantine": _quarantine}
    try:
        return commands[args.command](args, ctx, parser)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=ctx.stderr)
        return EXIT_INTERRUPTED


# -- shared -------------------------------------------------------------------------------------


def _print_json(ctx: Context, data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False), file=ctx.stdout)


def _setup(args, ctx: Context, store_only: bool = False):
    """Settings, logging and the store; (None, None) and a message when they cannot be had.

    store_only: read only the state store's settings (status needs nothing else)."""
    from . import logs
    from .errors import SyncError
    from .settings import Settings
    from .state import open_store

    try:
        settings = Settings.for_store(ctx.env) if store_only else Settings.from_env(ctx.env)
    except SyncError as exc:
        print(f"error: {exc}\nfix: {exc.fix}", file=ctx.stderr)
        return None, None, EXIT_SETTINGS
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logs.configure(settings.log_format, level=level, stream=ctx.err,
                   secrets=(settings.moneypenny_username, settings.moneypenny_password, settings.slack_bot_token))
    try:
        store = open_store(settings)
    except SyncError as exc:
        print(f"error: the state store cannot be opened: {exc}" + (f"\nfix: {exc.fix}" if exc.fix else ""),
              file=ctx.stderr)
        return settings, None, EXIT_FAILED
    return settings, store, EXIT_OK


def _syncer(settings, store, ctx: Context, checkpoint=None):
    from .app import build_syncer

    return build_syncer(settings, store=store, clock=ctx.clock, checkpoint=checkpoint, backoff=ctx.backoff)


# -- run ----------------------------------------------------------------------------------------


def _run(args, ctx: Context, parser) -> int:
    from .alerts import notify_failed, notify_succeeded
    from .app import build_alerter
    from .sync import RunFailed

    settings, store, code = _setup(args, ctx)
    if store is None:
        return code
    try:
        syncer = _syncer(settings, store, ctx)
        alerter = build_alerter(settings, syncer)
        try:
            report = syncer.run(mode=args.mode)
        except RunFailed as failed:
            outcome = notify_failed(alerter, failed)
            body = {**failed.report.as_dict(), "ok": False, "error": str(failed.error), "cause": failed.error.cause,
                    "retryable": failed.transient, "fix": failed.error.fix, "alert": outcome and outcome.action}
            if args.json:
                _print_json(ctx, body)
            else:
                print(_run_line(failed.report), file=ctx.stdout)
                print(f"error: {failed.error}", file=ctx.stdout)
                if failed.error.fix:
                    print(f"fix: {failed.error.fix}", file=ctx.stdout)
                elif failed.transient:
                    print("fix: nothing, if it passes: the next run retries; `python -m lib check` "
                          "tells whether something is wrong", file=ctx.stdout)
                _print_alert(ctx, outcome, settings)
            return EXIT_FAILED
        outcome = notify_succeeded(alerter, report)
        if args.json:
            _print_json(ctx, {**report.as_dict(), "alert": outcome and outcome.action})
        else:
            print(_run_line(report), file=ctx.stdout)
            _print_alert(ctx, outcome, settings)
        return EXIT_BUSY if report.outcome == "skipped" else EXIT_OK
    finally:
        store.close()


def _run_line(report) -> str:
    head = f"run {report.run_id} ({report.mode}): {report.outcome} in {report.duration_ms / 1000:.1f} s"
    if report.outcome == "skipped":
        return f"{head}: {report.skipped}"
    counts = (
        f"fetched {report.fetched}, new {report.new}, recovered {report.recovered}, written {report.appended}, "
        f"already in sheet {report.already_in_sheet}, posted {report.posted}, set aside {report.skipped_invalid}, "
        f"still waiting {report.pending}"
    )
    return f"{head}\n  {counts}"


def _print_alert(ctx: Context, outcome, settings) -> None:
    if outcome is None:
        return
    messages = {
        "alerted": f"alert posted to {settings.alert_channel}",
        "repeated": f"reminder alert posted to {settings.alert_channel}",
        "held": "no alert: this cause was alerted less than ALERT_REPEAT_MINUTES ago",
        "waiting": "no alert yet: a transient failure is alerted only if it lasts",
        "recovered": f"recovery message posted to {settings.alert_channel}",
        "failed_to_post": "the alert could not be posted (see the log with -v)",
    }
    if outcome.action in messages:
        print(messages[outcome.action], file=ctx.stdout)


# -- backfill -----------------------------------------------------------------------------------


def _backfill(args, ctx: Context, parser) -> int:
    from .backfill import days_between, run_backfill

    if args.start > args.end:
        print("error: --from is after --to", file=ctx.stderr)
        return EXIT_USAGE
    settings, store, code = _setup(args, ctx)
    if store is None:
        return code
    try:
        today = ctx.clock().astimezone(settings.chat_timezone).date()
        if args.end > today:
            print(f"error: --to {args.end} is in the future (today is {today} in {settings.chat_timezone.key})",
                  file=ctx.stderr)
            return EXIT_USAGE
        total = len(days_between(args.start, args.end))
        bar = _ProgressBar(ctx.stderr, total) if not args.json else None
        if bar:
            bar.show(0, 0, 0)
        try:
            result = run_backfill(
                settings, store, args.start, args.end,
                build=lambda: _syncer(settings, store, ctx),
                clock=ctx.clock, notify=args.notify, lease_wait=args.wait, sleep=ctx.sleep,
                progress=(lambda r: bar.show(r.days_done, r.new, r.appended)) if bar else None,
            )
        except KeyboardInterrupt:
            if bar:
                bar.done()
            print("Interrupted. Days already done are in place; run the same command again to finish "
                  "(done days are read again and add nothing).", file=ctx.stderr)
            return EXIT_INTERRUPTED
        if bar:
            bar.done()
        if args.json:
            _print_json(ctx, result.as_dict())
        else:
            _print_backfill(ctx, result, store)
        if result.stopped == "lease":
            return EXIT_BUSY
        return EXIT_OK if result.ok else EXIT_FAILED
    finally:
        store.close()


def _print_backfill(ctx: Context, result, store) -> None:
    out = ctx.stdout
    print(
        f"backfill {result.start} to {result.end}: {result.days_done} of {result.days_total} days done; "
        f"fetched {result.fetched}, new {result.new}, written {result.appended}, "
        f"already in the sheet {result.already_in_sheet}, not announced {result.not_announced}",
        file=out,
    )
    if result.summary_posted:
        print("one summary of the backfilled chats was posted to Slack", file=out)
    if result.summary_error:
        print(f"error: the Slack summary could not be posted: {result.summary_error}", file=out)
    if result.stopped == "failed":
        print(f"stopped at {result.failed_day}: {result.error}", file=out)
        if result.error is not None and result.error.fix:
            print(f"fix: {result.error.fix}", file=out)
        print("Days before it are done; fix the cause and run the same command again.", file=out)
    elif result.stopped == "lease":
        lease = store.get_lease()
        holder = f" (run {lease.owner}, until {lease.expires_at:%H:%M:%S} UTC)" if lease else ""
        print(f"stopped at {result.failed_day}: another run holds the lease{holder}. "
              "Run the same command again later, or raise --wait.", file=out)


class _ProgressBar:
    """`[#####          ] 12/30 days, 143 new chats, 140 written` on stderr; plain lines when not a terminal."""

    WIDTH = 24

    def __init__(self, stream: TextIO, total: int):
        self.stream = stream
        self.total = max(total, 1)
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def show(self, done: int, new: int, written: int) -> None:
        filled = round(self.WIDTH * done / self.total)
        line = (f"[{'#' * filled}{' ' * (self.WIDTH - filled)}] {done}/{self.total} days, "
                f"{new} new chats, {written} written")
        if self.tty:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# -- check --------------------------------------------------------------------------------------


def _check(args, ctx: Context, parser) -> int:
    from . import logs
    from .checks import format_table, run_checks

    logs.configure("text", level={0: logging.ERROR, 1: logging.INFO}.get(args.verbose, logging.DEBUG),
                   stream=ctx.err)
    report = run_checks(ctx.env, backoff=ctx.backoff, clock=ctx.clock)
    if args.json:
        _print_json(ctx, {"ok": report.ok, "checks": [r.as_dict() for r in report.results]})
    else:
        print(format_table(report.results), file=ctx.stdout)
    if not report.settings_ok:
        return EXIT_SETTINGS
    return EXIT_OK if report.ok else EXIT_FAILED


# -- status -------------------------------------------------------------------------------------


def _status(args, ctx: Context, parser) -> int:
    from .errors import SyncError
    from .status import collect, format_status
    from .watcher import watcher_state

    settings, store, code = _setup(args, ctx, store_only=True)
    if store is None:
        return code
    try:
        try:
            data = collect(store, ctx.clock(), runs=args.runs, watch_minutes=args.watch_minutes)
            data["watcher"] = watcher_state(settings, ctx.env).as_dict()
        except SyncError as exc:
            print(f"error: the state store cannot be read: {exc}" + (f"\nfix: {exc.fix}" if exc.fix else ""),
                  file=ctx.stderr)
            return EXIT_FAILED
        if args.json:
            _print_json(ctx, data)
        else:
            print(format_status(data, settings.chat_timezone), file=ctx.stdout)
        return EXIT_OK if data["healthy"] else EXIT_FAILED
    finally:
        store.close()


# -- quarantine ---------------------------------------------------------------------------------


def _quarantine(args, ctx: Context, parser) -> int:
    from .errors import SyncError

    settings, store, code = _setup(args, ctx)
    if store is None:
        return code
    try:
        result: dict[str, Any] = {}
        code = EXIT_OK
        if args.retry:
            code, result = _retry_quarantine(settings, store, ctx)
        try:
            items = store.quarantine_list()
        except SyncError as exc:
            print(f"error: the state store cannot be read: {exc}", file=ctx.stderr)
            return EXIT_FAILED
        listed = [_quarantined(item, args.show) for item in items]
        if args.json:
            _print_json(ctx, {**result, "count": len(listed), "items": listed})
            return code
        if result.get("line"):
            print(result["line"], file=ctx.stdout)
        _print_quarantine(ctx, items, listed, settings, args.show)
        return code
    finally:
        store.close()


def _retry_quarantine(settings, store, ctx: Context) -> tuple[int, dict[str, Any]]:
    from .sync import RunFailed, RunOptions

    syncer = _syncer(settings, store, ctx)
    try:
        report = syncer.run(options=RunOptions(mode="quarantine"))
    except RunFailed as failed:
        body = {**failed.report.as_dict(), "ok": False, "error": str(failed.error), "fix": failed.error.fix}
        line = f"{_retry_line(failed.report)}\nerror: {failed.error}"
        if failed.error.fix:
            line += f"\nfix: {failed.error.fix}"
        return EXIT_FAILED, {"retry": body, "line": line}
    if report.outcome == "skipped":
        return EXIT_BUSY, {"retry": report.as_dict(),
                           "line": f"retry skipped: {report.skipped}; run the same command again in a few minutes"}
    return EXIT_OK, {"retry": report.as_dict(), "line": _retry_line(report)}


def _retry_line(report) -> str:
    return (
        f"retry {report.run_id}: {report.fetched} item(s) read again, {report.recovered} now readable "
        f"({report.new} new in the journal, {report.already_in_sheet} already in the sheet), "
        f"{report.skipped_invalid} still unreadable; written {report.appended}, posted {report.posted}"
    )


def _quarantined(item, show: bool) -> dict[str, Any]:
    out = {
        "id": item.id,
        "fetched_at": item.fetched_at.isoformat(),
        "expires_at": item.expires_at.isoformat() if item.expires_at else None,
        "reason": item.reason,
        "size": len(item.raw.encode("utf-8", "replace")),
    }
    if show:
        out["raw"] = item.raw
    return out


def _print_quarantine(ctx: Context, items, listed, settings, show: bool) -> None:
    tz = settings.chat_timezone
    if not items:
        print("The quarantine is empty.", file=ctx.stdout)
        return

    def local(moment) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else "never"

    print(f"{len(items)} unreadable item(s) set aside, oldest first (times in {tz.key}):", file=ctx.stdout)
    header = ["FETCHED", "EXPIRES", "SIZE", "REASON"]
    rows = [[local(i.fetched_at), local(i.expires_at), f"{d['size']} B", i.reason] for i, d in zip(items, listed)]
    widths = [max(len(header[c]), *(len(r[c]) for r in rows)) for c in range(len(header))]
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), file=ctx.stdout)
    for item, row in zip(items, rows):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=ctx.stdout)
        if show:
            print(f"    {item.raw}", file=ctx.stdout)
    if not show:
        print("Content not shown (it may hold a visitor's data): add --show. After an upgrade that reads them, "
              "--retry delivers them.", file=ctx.stdout)


if __name__ == "__main__":
    sys.exit(main())
