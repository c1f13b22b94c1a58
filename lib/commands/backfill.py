"""`python -m lib backfill`: the command around lib/sync/backfill.py, with its progress bars and output."""

from __future__ import annotations

import argparse

from ..state.contract import StateStore
from ..sync.backfill import BACKFILL_QUOTA_WAIT_SECONDS, BackfillResult, run_backfill
from ..sync.options import window_problem
from .command import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Context,
    ProgressBar,
    build_syncer,
    print_json,
    setup,
)


def command(args: argparse.Namespace, ctx: Context) -> int:
    """Backfill --from..--to with a progress bar on stderr; the result as lines or JSON."""
    if args.start > args.end:
        ctx.warn("error: --from is after --to")
        return EXIT_USAGE
    # Before the store is opened: a date at the calendar's edge is a typo, not a run.
    problem = window_problem(args.start, args.end, ctx.clock().date(), names=("--from", "--to"))
    if problem is not None:
        ctx.warn(f"error: {problem}")
        return EXIT_USAGE
    settings, store, code = setup(args, ctx)
    if settings is None or store is None:
        return code
    try:
        today = ctx.clock().astimezone(settings.chat_timezone).date()
        if args.end > today:
            ctx.warn(f"error: --to {args.end} is in the future (today is {today} in {settings.chat_timezone.key})")
            return EXIT_USAGE

        bars = None if args.json else Progress(ctx, (args.end - args.start).days + 1)
        try:
            result = run_backfill(
                settings, store, args.start, args.end,
                build=lambda: build_syncer(settings, store, ctx, sheets_quota_wait=ctx.sheets_quota_wait
                                           or BACKFILL_QUOTA_WAIT_SECONDS,
                                           on_quota_wait=bars.quota_wait if bars else None),
                clock=ctx.clock, notify=args.notify, lease_wait=args.wait, sleep=ctx.sleep,
                progress=bars.read if bars else None, on_rows=bars.written if bars else None,
            )
        except KeyboardInterrupt:
            if bars:
                bars.close()
            ctx.warn("Interrupted. What was read is in the journal; run the same command again to finish "
                     "(what was read is read again and adds nothing; nothing is written twice).")
            return EXIT_INTERRUPTED
        except Exception as exc:  # never a traceback: the backfill's note already says "failed"
            if bars:
                bars.close()
            ctx.warn(f"error: the backfill stopped on an unexpected {type(exc).__name__}; it is recorded as failed. "
                     "What was read is in the journal: run the same command again (with -v to see the log).")
            return EXIT_FAILED
        if bars:
            bars.close()
        if args.json:
            print_json(ctx, result.as_dict())
        else:
            ctx.say(*_lines(result, store))
        if result.stopped == "lease":
            return EXIT_BUSY
        return EXIT_OK if result.ok else EXIT_FAILED
    finally:
        store.close()


class Progress:
    """The command's progress: a bar over the days read, then a count of the rows written; while
    Sheets' quota is waited out, the bar says so with the seconds left (on a terminal it counts
    down beside the bar; elsewhere one line says how long the wait is)."""

    def __init__(self, ctx: Context, days: int):
        self.ctx = ctx
        self.days: ProgressBar | None = ProgressBar(ctx.stderr, days, "days", desc="days read")
        self.total = days
        self.rows: ProgressBar | None = None
        self.waiting = False
        self.tty = bool(getattr(ctx.stderr, "isatty", lambda: False)())

    def quota_wait(self, left: float) -> None:
        """Sheets answered 429 (quota): `left` seconds of this wait remain (0: it is over)."""
        bar = self.rows or self.days
        text = f"waiting for Sheets' quota (60 writes a minute): {left:.0f} s left" if left > 0 else ""
        if self.tty and bar is not None:
            bar.note(text)
        elif left > 0 and not self.waiting:
            self.ctx.warn(text)
        self.waiting = left > 0

    def read(self, result: BackfillResult) -> None:
        if self.days is not None:
            self.days.show(result.days_done, new=result.new)

    def written(self, rows: int) -> None:
        if self.rows is None:
            # The delivery starts once the last span is read.
            if self.days is not None:
                self.days.show(self.total)
                self.days.done()
                self.days = None
            self.rows = ProgressBar(self.ctx.stderr, None, "rows", desc="rows written")
        self.rows.add(rows)

    def close(self) -> None:
        for bar in (self.days, self.rows):
            if bar is not None:
                bar.done()


def _lines(result: BackfillResult, store: StateStore) -> list[str]:
    c = result.counts()
    out = [
        f"backfill {result.start} to {result.end}: {result.days_done} of {result.days_total} days read",
        f"  read {c['read']}: already known {c['already_known']}, new {c['new']}"
        + (f", set aside (unreadable) {c['set_aside']}" if c["set_aside"] else ""),
        f"  new {c['new']}: already in the sheet {c['already_in_sheet']}, written {c['written_new']}"
        + (f", still waiting {c['waiting']}" if c["waiting"] else ""),
        f"  written {c['written']}: new {c['written_new']}, left by an earlier run {c['written_earlier']}",
        f"  announced {c['announced']}" + (
            f" ({result.not_announced} dated before today in one summary)" if result.summary_posted
            else f", not announced {c['not_announced']} (dated before today; --notify posts one summary of them)"
            if c["not_announced"] else ""),
    ]
    if result.summary_posted:
        out.append(f"one summary of the backfilled {' and '.join(result.summary_sources)} was posted to Slack")
    if result.summary_error:
        out.append(f"error: the Slack summary could not be posted: {result.summary_error}")
    if result.stopped == "failed":
        out.append(f"stopped at {result.failed_day}: {result.error}")
        if result.error is not None and result.error.fix:
            out.append(f"fix: {result.error.fix}")
        out.append("What was read before it is in the journal; fix the cause and run the same command again.")
    elif result.stopped == "lease":
        lease = store.get_lease()
        holder = f" (run {lease.owner}, until {lease.expires_at:%H:%M:%S} UTC)" if lease else ""
        out.append(f"stopped at {result.failed_day}: another run holds the lease{holder}. "
                   "Run the same command again later, or raise --wait.")
    return out
