"""`python -m lib quarantine`: list the chat items set aside as unreadable; --retry reads them again.

A retry is one ordinary run in mode "quarantine" (lease, journal, sheet, Slack; no alerts):
each item that now reads is delivered once and leaves the quarantine, the others stay.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .command import EXIT_BUSY, EXIT_FAILED, EXIT_OK, Context, build_syncer, print_json, setup, table, with_fix
from .errors import SyncError
from .runner import Ending, run_and_report
from .settings import Settings
from .state.base import RejectedItem, StateStore
from .sync import Mode, RunOptions, RunReport

NOT_SHOWN = ("Content not shown (it may hold a visitor's data): add --show. After an upgrade that reads them, "
             "--retry delivers them.")


def command(args: argparse.Namespace, ctx: Context) -> int:
    """List the quarantine (after a retry with --retry); the exit code of the retry, if any."""
    # Listing reads only the state store; a retry writes to the sheet and Slack, so it needs all.
    settings, store, code = setup(args, ctx, store_only=not args.retry)
    if settings is None or store is None:
        return code
    try:
        result: dict[str, Any] = {}
        code = EXIT_OK
        if args.retry:
            code, result = _retry(settings, store, ctx)
        try:
            items = store.quarantine_list()
        except SyncError as exc:
            ctx.warn(f"error: the state store cannot be read: {exc}")
            return EXIT_FAILED
        listed = [_listed(item, args.show) for item in items]
        if args.json:
            print_json(ctx, {**result, "count": len(listed), "items": listed})
            return code
        if result.get("line"):
            ctx.say(result["line"])
        ctx.say(*_lines(items, listed, settings.chat_timezone, args.show))
        return code
    finally:
        store.close()


def _retry(settings: Settings, store: StateStore, ctx: Context) -> tuple[int, dict[str, Any]]:
    run = run_and_report(settings, RunOptions(mode=Mode.QUARANTINE), lambda: build_syncer(settings, store, ctx),
                         alerts=False)
    if run.error is not None:
        return run.exit_code, _failed(run.report, run.error)
    assert run.report is not None  # a run without an error has a report
    if run.ending is Ending.SKIPPED:
        return EXIT_BUSY, {"retry": run.report.as_dict(),
                           "line": f"retry skipped: {run.report.skipped}; run the same command again in a few minutes"}
    return EXIT_OK, {"retry": run.report.as_dict(), "line": _retry_line(run.report)}


def _failed(report: RunReport | None, error: SyncError) -> dict[str, Any]:
    body = report.as_dict() if report is not None else {}
    body.update(ok=False, error=str(error), fix=error.fix)
    head = f"{_retry_line(report)}\n" if report is not None else ""
    return {"retry": body, "line": with_fix(f"{head}error: {error}", error.fix)}


def _retry_line(report: RunReport) -> str:
    return (
        f"retry {report.run_id}: {report.fetched} item(s) read again, {report.recovered} now readable "
        f"({report.new} new in the journal, {report.already_in_sheet} already in the sheet), "
        f"{report.skipped_invalid} still unreadable; written {report.appended}, posted {report.posted}"
    )


def _listed(item: RejectedItem, show: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": item.id,
        "fetched_at": item.fetched_at.isoformat(),
        "expires_at": item.expires_at.isoformat() if item.expires_at else None,
        "reason": item.reason,
        "size": len(item.raw.encode("utf-8", "replace")),
    }
    if show:
        out["raw"] = item.raw
    return out


def _lines(items: list[RejectedItem], listed: list[dict[str, Any]], tz: ZoneInfo, show: bool) -> list[str]:
    if not items:
        return ["The quarantine is empty."]

    def local(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else "never"

    rows = [[local(i.fetched_at), local(i.expires_at), f"{d['size']} B", i.reason] for i, d in zip(items, listed)]
    head, *body = table(["FETCHED", "EXPIRES", "SIZE", "REASON"], rows)
    out = [f"{len(items)} unreadable item(s) set aside, oldest first (times in {tz.key}):", "  " + head]
    for item, line in zip(items, body):
        out.append("  " + line)
        if show:
            out.append(f"    {item.raw}")
    if not show:
        out.append(NOT_SHOWN)
    return out
