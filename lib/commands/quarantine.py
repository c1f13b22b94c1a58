"""`python -m lib quarantine`: list the chat items set aside as unreadable; --retry reads them again;
--drop / --drop-all delete them for good.

A retry is one ordinary run in mode "quarantine" (lease, journal, sheet, Slack; no alerts):
each item that now reads is delivered once and leaves the quarantine, the others stay. It never
calls Moneypenny, so it needs the store, the sheet and Slack settings, not Moneypenny's. Listing
reads the store only (read-only: nothing is created, migrated or locked). A drop asks first
(`--yes` skips the question; without a terminal to ask on, it needs `--yes`), and is logged by
item id and reason, never content.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import SyncError
from ..runner import Ending, run_and_report
from ..settings import Secret, Settings
from ..state.contract import StateStore
from ..state.models import RejectedItem
from ..sync import Mode, RunOptions, RunReport
from .command import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Context,
    build_syncer,
    print_json,
    setup,
    table,
    with_fix,
)
from .run import exit_code

log = logging.getLogger(__name__)

NOT_SHOWN = ("Content not shown (it may hold a visitor's data): add --show. After an upgrade that reads them, "
             "--retry delivers them; --drop ID... or --drop-all deletes them.")
# A retry reads no Moneypenny: its login and URLs are neither asked for nor read.
MONEYPENNY_SETTINGS = ("MONEYPENNY_USERNAME", "MONEYPENNY_PASSWORD", "MONEYPENNY_AUTH_URL", "MONEYPENNY_CHATS_URL",
                       "MONEYPENNY_CALLS_URL")


def retry_settings(env: Mapping[str, str] | None = None, names: Mapping[str, str] | None = None) -> Settings:
    """The settings a retry uses: the store, the sheet and Slack (Moneypenny's are left empty);
    `names` as Settings.from_env takes them (an account's own variables)."""
    env = os.environ if env is None else env
    kept = {name: value for name, value in env.items() if name not in MONEYPENNY_SETTINGS}
    settings = Settings.from_env({**kept, "MONEYPENNY_USERNAME": "-", "MONEYPENNY_PASSWORD": "-"}, names=names)
    return replace(settings, moneypenny_username=Secret(""), moneypenny_password=Secret(""))


def command(args: argparse.Namespace, ctx: Context) -> int:
    """List the quarantine (after a retry or a drop); the exit code of the retry or drop, if any."""
    drop = bool(args.drop) or args.drop_all
    if args.yes and not drop:
        ctx.warn("error: --yes only answers the question of --drop or --drop-all")
        return EXIT_USAGE
    # Listing reads only the state store; a retry writes to the sheet and Slack; a drop deletes.
    settings, store, code = setup(args, ctx, store_only=not args.retry, read_only=not (args.retry or drop),
                                  settings_reader=retry_settings if args.retry else None, create=not drop)
    if settings is None or store is None:
        return code
    try:
        result: dict[str, Any] = {}
        code = EXIT_OK
        if args.retry:
            code, result = _retry(settings, store, ctx)
        elif drop:
            code, result = _drop(store, ctx, args, settings.chat_timezone)
            if code == EXIT_USAGE:
                return code
        try:
            items = store.quarantine_list()
        except SyncError as exc:
            ctx.warn(with_fix(f"error: the state store cannot be read: {exc}", exc.fix))
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


def _drop(store: StateStore, ctx: Context, args: argparse.Namespace, tz: ZoneInfo) -> tuple[int, dict[str, Any]]:
    """Delete the items named (or all) after a confirmation; the exit code and what was dropped."""
    try:
        items = store.quarantine_list()
    except SyncError as exc:
        ctx.warn(with_fix(f"error: the state store cannot be read: {exc}", exc.fix))
        return EXIT_FAILED, {}
    if args.drop_all:
        chosen = items
    else:
        wanted = list(dict.fromkeys(args.drop))
        known = {item.id for item in items}
        unknown = [i for i in wanted if i not in known]
        if unknown:
            shown = ", ".join(repr(i[:100]) for i in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            ctx.warn(f"error: no item with the id {shown} in the quarantine; nothing dropped\n"
                     "fix: `python -m lib quarantine` lists the items with their ids.")
            return EXIT_USAGE, {}
        chosen = [item for item in items if item.id in set(wanted)]
    if not chosen:
        return EXIT_OK, {"dropped": [], "line": "The quarantine is empty: nothing to drop."}
    if not args.yes:
        if not ctx.interactive:
            ctx.warn("error: dropping deletes the items for good, and there is no terminal to ask on; "
                     "nothing dropped\nfix: add --yes to drop without asking.")
            return EXIT_USAGE, {}
        ctx.warn(*_lines(chosen, [_listed(item, False) for item in chosen], tz, False)[:-1])
        if not ctx.confirm(f"Drop these {len(chosen)} item(s) for good? What they hold reaches no sheet."):
            return EXIT_FAILED, {"dropped": [], "line": "Nothing dropped."}
    ids = [item.id for item in chosen]
    try:
        store.quarantine_remove(ids)
    except SyncError as exc:
        ctx.warn(with_fix(f"error: the state store refused the drop: {exc}", exc.fix))
        return EXIT_FAILED, {}
    reasons: dict[str, int] = {}
    for item in chosen:
        reasons[item.reason] = reasons.get(item.reason, 0) + 1
    # Ids and reasons only: an item's content may hold a visitor's data.
    log.warning("dropped items from the quarantine", extra={"fields": {"items": len(ids), "ids": ids,
                                                                        "reasons": reasons}})
    return EXIT_OK, {"dropped": ids, "line": f"Dropped {len(ids)} item(s) from the quarantine: {', '.join(ids)}."}


def _retry(settings: Settings, store: StateStore, ctx: Context) -> tuple[int, dict[str, Any]]:
    run = run_and_report(settings, RunOptions(mode=Mode.QUARANTINE), lambda: build_syncer(settings, store, ctx),
                         alerts=False)
    if run.error is not None:
        return exit_code(run), _failed(run.report, run.error)
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

    rows = [[i.id, local(i.fetched_at), local(i.expires_at), f"{d['size']} B", i.reason] for i, d in zip(items, listed)]
    head, *body = table(["ID", "FETCHED", "EXPIRES", "SIZE", "REASON"], rows)
    out = [f"{len(items)} unreadable item(s) set aside, oldest first (times in {tz.key}):", "  " + head]
    for item, line in zip(items, body):
        out.append("  " + line)
        if show:
            out.append(f"    {item.raw}")
    if not show:
        out.append(NOT_SHOWN)
    return out
