"""`python -m lib status`: what the last runs did and what is waiting, read from the state store only.
The data and its verdict are in status_collect.py, the store-cost figures in status_cost.py, the
overview of every account in status_accounts.py."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import SyncError
from ..sources import CALLS_FEED, feed_of_key, registered
from ..state.documents import BACKFILL_DOC as BACKFILL_DOC  # named here before lib/state/documents
from .command import (
    EXIT_FAILED,
    EXIT_OK,
    Context,
    accounts_of,
    print_json,
    setup,
    table,
    with_fix,
)
from .status_accounts import every_account
from .status_collect import QUARANTINE_COMMANDS, ago, alarm_hours, collect
from .status_cost import billed, cost_text, parse_time
from .watcher import watcher_state


def format_status(data: dict[str, Any], tz: ZoneInfo) -> str:
    """The status as text: a table of runs, then one line per topic."""
    now = datetime.fromisoformat(data["now"])

    def local(text: Any) -> str:
        moment = parse_time(text)
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else "?"

    lines = [data["verdict"], "", f"Last runs, newest first (times in {tz.key}):"]
    rows = []
    for run in data["runs"]:
        cause = ""
        if run.get("errors"):
            cause = ", ".join(sorted({str(e.get("cause")) for e in run["errors"]}))
        elif run.get("skipped"):
            cause = str(run["skipped"])
        rows.append([
            local(run.get("started_at")), str(run.get("mode", "")), str(run.get("outcome", "")),
            str(run.get("fetched", 0)), str(run.get("new", 0)), str(run.get("appended", 0)),
            str(run.get("posted", 0)), f"{int(run.get('duration_ms') or 0) / 1000:.1f} s", billed(run), cause,
        ])
    if rows:
        lines += ["  " + line for line in table(
            ["TIME", "MODE", "OUTCOME", "FETCHED", "NEW", "WRITTEN", "POSTED", "DURATION", "STORE R/W/D", "CAUSE"], rows)]
    else:
        lines.append("  (no runs recorded yet)")
    lines.append("")

    topics: list[tuple[str, str]] = []
    success = data.get("last_success")
    if success:
        moment = datetime.fromisoformat(success["started_at"])
        topics.append(("Last success", f"{local(success['started_at'])} ({ago(now - moment)} ago), run {success['run_id']}"
                       + ("" if success.get("healthy") is not False else ", but not healthy: "
                          + "; ".join(success.get("unhealthy") or []))))
    else:
        topics.append(("Last success", "none recorded"))
    for kind, run in (data.get("other_runs") or {}).items():
        text = f"{local(run.get('started_at'))}: {run.get('outcome')}"
        if run.get("errors"):
            text += " (" + ", ".join(sorted({str(e.get("cause")) for e in run["errors"]})) + ")"
        topics.append((f"Last {kind}", text + f", run {run.get('run_id')} (not a scheduled run)"))
    if data.get("watcher"):
        topics.append(("Watcher", data["watcher"]["detail"]))
    token = data["token"]
    if not token["cached"]:
        topics.append(("Moneypenny token", "none cached (the next run logs in)"))
    else:
        expires = datetime.fromisoformat(token["expires_at"])
        if token["valid"]:
            topics.append(("Moneypenny token", f"valid until {local(token['expires_at'])} (in {ago(expires - now)})"))
        else:
            topics.append(("Moneypenny token", f"expired at {local(token['expires_at'])} (the next run logs in again)"))
    journal = data["journal"]
    text = f"{journal['undelivered']} undelivered"
    if journal["undelivered"]:
        text += f" (waiting for the sheet: {journal['sheet_pending']}, for Slack: {journal['slack_pending']})"
        oldest = journal["oldest"]
        waited = ago(now - datetime.fromisoformat(oldest["fetched_at"]))
        if journal.get("calls_undelivered"):
            text += f" ({journal['calls_undelivered']} of them call messages)"
        kind = feed_of_key(oldest["key"]).noun.split()[0]
        text += f"; oldest: {kind} {oldest['key'][:12]} of {local(oldest['chat_time'])}, fetched {waited} ago"
    topics.append(("Journal", text))
    for source, count in (journal.get("off_waiting") or {}).items():
        noun = next((f"{f.noun}(s)" for f in registered() if f.name == source), f"{source} item(s)")
        topics.append(("Held", f"{count} {noun} wait in the journal while {source} are off (MONEYPENNY_SOURCES): "
                               f"turn {source} back on to deliver them, once, or drop them with "
                               f"`python -m lib waiting --drop {source}`"))
    text = "empty"
    if data["quarantined"]:
        text = f"{data['quarantined']} unreadable item(s) set aside"
        if data.get("quarantine_oldest"):
            oldest_at = datetime.fromisoformat(data["quarantine_oldest"])
            text += f", the oldest fetched {local(data['quarantine_oldest'])} ({ago(now - oldest_at)} ago)"
        recent = data.get("quarantine_recent", data["quarantined"])
        if recent:
            text += f" ({recent} in the last {alarm_hours()} h: runs are unhealthy until then)"
        else:
            text += f" (over {alarm_hours()} h ago: runs are healthy again)"
        text += f"; {QUARANTINE_COMMANDS}"
    topics.append(("Quarantine", text))
    if data.get("store_cost"):
        topics.append(("Store cost", cost_text(data["store_cost"])))
    lease = data["lease"]
    topics.append(("Lease", "free" if lease is None else
                   f"held by run {lease['owner']} until {local(lease['expires_at'])}"))
    cursor = data["cursor"]
    text = f"last read {local(cursor['last_read'])}" if cursor.get("last_read") else "never read"
    if cursor.get("intent"):
        text += f"; a read since {cursor['intent'].get('since')} is still to be settled by the next run"
    topics.append(("Moneypenny cursor", text))
    by_days = {CALLS_FEED.name: data.get("calls"), **(data.get("feeds") or {})}
    for name, read in by_days.items():
        if not read:
            continue
        feed = next((f for f in registered() if f.name == name), None)
        text = f"last full day read {read['last_full_day']}" if read.get("last_full_day") else "no full day read yet"
        if read.get("last_run"):
            run = read["last_run"]
            text += (f"; last run with {name}: fetched {run.get('fetched', 0)}, new {run.get('new', 0)}, "
                     f"written {run.get('appended', 0)}, posted {run.get('posted', 0)}")
        topics.append((f"{feed.noun.capitalize()}s" if feed is not None else name.capitalize(), text))
    alerts = data["alerts"]
    if alerts:
        topics.append(("Alerts", f"failing since {local(alerts['failing_since'])} ({alerts['failed_runs']} failed "
                       f"runs, last cause {alerts['last_cause']}); {alerts['alerts_sent'] or 0} alert(s) sent"))
    else:
        topics.append(("Alerts", "quiet (no failing streak)"))
    backfill = data.get("backfill")
    if backfill:
        text = f"{backfill.get('from')} to {backfill.get('to')}: {backfill.get('state')}"
        if backfill.get("done_through"):
            text += f", done through {backfill['done_through']}"
        if backfill.get("state") == "running" and data.get("lease") is None:
            # A backfill stopped without a word (its process killed) cannot say so itself.
            text += (" (no run holds the lease now: if no backfill is running, it was stopped; run the same "
                     "command again)")
        topics.append(("Last backfill", text))
    width = max(len(name) for name, _ in topics)
    lines += [f"{name:<{width}}  {text}" for name, text in topics]
    return "\n".join(lines)


def command(args: argparse.Namespace, ctx: Context) -> int:
    """`python -m lib status`: the verdict, the runs and the rest; exit 1 when not healthy. With
    ACCOUNTS and no --account: every account's verdict, a line each (every_account)."""
    if not args.account:
        accounts, code = accounts_of(ctx)
        if accounts is None:
            return code
        if accounts:
            return every_account(args, ctx, accounts)
    settings, store, code = setup(args, ctx, store_only=True, read_only=True)
    if settings is None or store is None:
        return code
    try:
        try:
            data = collect(store, ctx.clock(), runs=args.runs, watch_minutes=args.watch_minutes)
            if settings.account:
                data = {"account": settings.account, **data}
            data["watcher"] = watcher_state(settings, ctx.env).as_dict()
        except SyncError as exc:
            ctx.warn(with_fix(f"error: the state store cannot be read: {exc}", exc.fix))
            return EXIT_FAILED
        if args.json:
            print_json(ctx, data)
        else:
            ctx.say(*([f"Account {settings.account}"] if settings.account else []), format_status(data, settings.chat_timezone))
        return EXIT_OK if data["healthy"] else EXIT_FAILED
    finally:
        store.close()
