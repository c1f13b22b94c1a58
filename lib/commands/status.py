"""`python -m lib status`: what the last runs did and what is waiting, read from the state store only."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .. import destinations, logs
from ..accounts import store_settings_for
from ..counters import FREE_TIER_PER_DAY
from ..destinations import SHEET, SLACK
from ..errors import StateStoreMissing, SyncError
from ..sources import CALLS_FEED, DayRead, feed_of_key, registered
from ..state import open_store
from ..state.contract import StateStore
from ..state.documents import BACKFILL_DOC as BACKFILL_DOC  # named here before lib/state/documents
from ..state.documents import AlertState, BackfillDoc
from ..state.models import DONE
from ..sync import ALERT_GRACE
from ..sync.calls_fetch import CallsReadDoc
from ..sync.record import QUARANTINE_ALARM
from .command import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SETTINGS,
    STORE_UNSET,
    STORE_UNSET_FIX,
    Context,
    accounts_of,
    log_level,
    print_json,
    setup,
    store_unset,
    table,
    with_fix,
)
from .watcher import watcher_state

# How long without a successful run before `status` calls it a problem; the watcher's default.
WATCH_MINUTES = 30
RUNS_READ = 100  # the store keeps the last 100 runs: the last success is found among them


# The modes of the scheduled runs (a sync, with the daily reconcile when due; a reconcile by
# hand): what the headline's last successful run and failure are judged on.
SCHEDULED_MODES = ("new", "reconcile")
# The other runs, shown apart: a backfill's spans and windows by hand, quarantine retries.
OTHER_RUNS = {"backfill or window": ("window",), "quarantine retry": ("quarantine",)}


def scheduled(run: dict[str, Any]) -> bool:
    """Whether a recorded run is a scheduled run (SCHEDULED_MODES), not a backfill or retry."""
    return str(run.get("mode") or "new") in SCHEDULED_MODES


def _parse(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None


def ago(delta: timedelta) -> str:
    """A duration in words a person reads at a glance: 45 s, 12 min, 3 h 20 min, 2 d 4 h."""
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def collect(store: StateStore, now: datetime, runs: int = 10, watch_minutes: int = WATCH_MINUTES) -> dict[str, Any]:
    """Everything `status` shows, as JSON-able data (chat keys and times only, no chat content)."""
    out: dict[str, Any] = {"now": now.isoformat()}
    state = store.read_run_state()  # the runs, the lease and the cursor: one read
    history = state.records()[:max(runs, RUNS_READ)]
    out["runs"] = history[:runs]
    # The headline speaks of the scheduled runs only: a backfill's spans and a quarantine retry
    # succeeding must not hide that no scheduled run ran (or that they fail).
    success = next((r for r in history if r.get("outcome") == "ok" and scheduled(r)), None)
    out["last_success"] = None if success is None else {
        k: success.get(k) for k in ("run_id", "started_at", "healthy", "unhealthy")}
    out["last_scheduled"] = next((r for r in history if scheduled(r) and r.get("outcome") != "skipped"), None)
    # The newest run of each other kind, each on its own line.
    out["other_runs"] = {kind: {k: run.get(k) for k in ("run_id", "started_at", "outcome", "errors")}
                         for kind, modes in OTHER_RUNS.items()
                         if (run := next((r for r in history if r.get("mode") in modes), None)) is not None}
    token = store.get_token()
    if token is None:
        out["token"] = {"cached": False}
    else:
        out["token"] = {
            "cached": True,
            "expires_at": token.expires_at.isoformat(),
            "valid": token.expires_at > now,
        }
    everything = store.journal_pending()
    # A source the last run had off (its record's off_waiting): its items are held, not stuck.
    ran = next((r for r in history if r.get("outcome") != "skipped"), None)
    off = dict((ran or {}).get("off_waiting") or {})
    feeds = registered()
    pending = [e for e in everything if feed_of_key(e.key, feeds).name not in off]
    oldest = min(pending, key=lambda e: (e.item_time, e.key)) if pending else None
    out["journal"] = {
        "undelivered": len(pending),
        "sheet_pending": sum(1 for e in pending if e.state(SHEET.name) != DONE),
        "slack_pending": sum(1 for e in pending if e.state(SLACK.name) != DONE),
        # Every registered destination's count of what it has still to take.
        "by_destination": {d.name: sum(1 for e in pending if e.state(d.name) != DONE) for d in destinations.registered()},
        "oldest": None if oldest is None else {
            "key": oldest.key,
            "chat_time": oldest.item_time.isoformat(),
            "fetched_at": oldest.fetched_at.isoformat(),
            **{d.name: oldest.state(d.name) for d in destinations.registered()},
        },
    }
    out["journal"]["calls_undelivered"] = sum(1 for e in pending if CALLS_FEED.owns(e.key))
    # Every feed's own count: what is undelivered of each (only the feeds that have some).
    out["journal"]["by_feed"] = {f.name: n for f in feeds
                                 if (n := sum(1 for e in pending if feed_of_key(e.key, feeds) is f))}
    held = {f.name: sum(1 for e in everything if feed_of_key(e.key, feeds) is f) for f in feeds if f.name in off}
    out["journal"]["off_waiting"] = {k: v for k, v in held.items() if v}
    # Each feed read by days: its read document and its share of the last run that had it on.
    days: dict[str, Any] = {}
    for feed in feeds:
        if not isinstance(feed.read, DayRead):
            continue
        data = store.get_meta(feed.read.doc)
        read = None if data is None else CallsReadDoc.from_dict(data)
        last = next((r.get("sources", {}).get(feed.name) for r in history if r.get("sources", {}).get(feed.name)),
                    None)
        days[feed.name] = None if read is None and last is None else {
            "last_full_day": read.last_full_day.isoformat() if read and read.last_full_day else None,
            "read_at": read.read_at.isoformat() if read and read.read_at else None,
            "last_run": last}
    out["calls"] = days.pop(CALLS_FEED.name, None)
    out["feeds"] = {name: value for name, value in days.items() if value is not None}
    out["quarantined"] = store.quarantine_count()
    # Only items set aside within QUARANTINE_ALARM make runs unhealthy; older ones are a WARN.
    out["quarantine_recent"] = store.quarantine_count(since=now - QUARANTINE_ALARM) if out["quarantined"] else 0
    oldest_set_aside = store.quarantine_oldest() if out["quarantined"] else None
    out["quarantine_oldest"] = None if oldest_set_aside is None else oldest_set_aside.isoformat()
    lease = state.lease
    # Held or not by the store's clock (as the runs judge it), not this machine's.
    out["lease"] = None if lease is None or lease.expires_at <= (state.read_at or now) else {
        "owner": lease.owner, "expires_at": lease.expires_at.isoformat(),
    }
    cursor = state.cursor.to_dict()
    out["cursor"] = {"last_read": cursor.get("last_read"), "intent": cursor.get("intent")}
    alert_state = store.read_doc(AlertState)
    alerts = {} if alert_state is None else alert_state.to_dict()
    out["alerts"] = {k: alerts.get(k) for k in ("failing_since", "failed_runs", "last_cause", "last_failure",
                                                 "alerts_sent", "alerted")} if alerts else None
    backfill = store.read_doc(BackfillDoc)
    out["backfill"] = None if backfill is None else backfill.to_dict()
    # Complete: no run has left the ring (a store written before `seq` was kept counts as not).
    out["store_cost"] = store_cost(history, now, complete=0 < state.seq <= len(state.history))
    out["healthy"], out["verdict"] = verdict(out, timedelta(minutes=watch_minutes))
    return out


# The run modes that read a past window (the backfill's reads): their cost is shown apart from the day's.
BACKFILL_MODES = ("window",)
# Less history than this gives no estimate of a day: a few runs (the first one writes the whole
# backlog) scaled up by a hundred say nothing about what a day costs.
ESTIMATE_MIN_HOURS = 6
_UNITS = ("reads", "writes", "deletes", "offset_reads")


def store_cost(history: list[dict[str, Any]], now: datetime, complete: bool = False) -> dict[str, Any] | None:
    """What the recorded runs of the last 24 hours cost the store, in Firestore's units: the sum
    of their own billed reads, writes and deletes, never one run scaled up. The scheduled runs'
    figure and the backfill's reads (mode window) are summed apart.

    `complete`: the history holds every run ever recorded (none was dropped from the ring), so the
    last 24 hours are known whole even when the first run is younger. Otherwise, while the kept
    runs reach back less than a day, the figure is "from N runs over H hours", and a day's
    estimate (labelled as one) is given only from ESTIMATE_MIN_HOURS of history on.
    None when no recorded run of the last 24 hours carries its counts."""
    day = timedelta(days=1)
    dated = [(moment, r) for r in history if (moment := _parse(r.get("started_at"))) is not None]
    counted = [(moment, r) for moment, r in dated if isinstance(r.get("store"), dict) and now - moment <= day]
    if not counted:
        return None
    oldest = min(moment for moment, _ in dated)
    whole_day = complete or now - oldest >= day
    span = day if whole_day else now - oldest

    def summed(runs: list[dict[str, Any]]) -> dict[str, int]:
        return {k: sum(int(r["store"].get(k) or 0) for r in runs) for k in _UNITS}

    scheduled = [r for _, r in counted if r.get("mode") not in BACKFILL_MODES]
    backfill = [r for _, r in counted if r.get("mode") in BACKFILL_MODES]
    totals = summed(scheduled)
    hours = round(span.total_seconds() / 3600, 1)
    out: dict[str, Any] = {"runs": len(scheduled), "hours": hours, "whole_day": whole_day, **totals}
    if whole_day:
        out["free_tier_share"] = _shares(totals)
    elif span >= timedelta(hours=ESTIMATE_MIN_HOURS) and scheduled:
        scale = day / span
        per_day = {k: round(v * scale) for k, v in totals.items()}
        out["estimate"] = {"per_day": per_day, "free_tier_share": _shares(per_day)}
    out["backfill"] = None if not backfill else {"runs": len(backfill), **summed(backfill)}
    return out


def _shares(figures: dict[str, int]) -> dict[str, float]:
    return {k: round(100 * figures[k] / limit, 1) for k, limit in FREE_TIER_PER_DAY.items()}


def verdict(data: dict[str, Any], watch: timedelta) -> tuple[bool, str]:
    """(all well, the one line that says so): OK, PROBLEM (with the first cause) or NO RUNS YET."""
    now = datetime.fromisoformat(data["now"])
    if "last_scheduled" in data:
        last = data["last_scheduled"]
    else:
        runs = [r for r in data["runs"] if r.get("outcome") != "skipped"] or data["runs"]
        last = runs[0] if runs else None
    success = data.get("last_success")
    since = _parse(success["started_at"]) if success else None
    if last is None and success is None:
        other = " (only a backfill or a retry so far)" if data["runs"] else ""
        return True, f"NO RUNS YET — no scheduled run has been recorded{other} (the first scheduled run records one)"
    when = f"last successful run {ago(now - since)} ago" if since else "no successful run recorded"

    problems: list[str] = []
    journal = data["journal"]
    oldest = journal.get("oldest")
    if oldest and now - datetime.fromisoformat(oldest["fetched_at"]) > ALERT_GRACE:
        waited = ago(now - datetime.fromisoformat(oldest["fetched_at"]))
        problems.append(f"{_items(journal)} waiting, the oldest fetched {waited} ago")
    recent = data.get("quarantine_recent", data.get("quarantined"))
    if recent:
        problems.append(f"{recent} item(s) set aside in quarantine in the last {_alarm_hours()} h")
    if success and success.get("healthy") is False:
        problems += [p for p in success.get("unhealthy") or [] if "quarantine" not in p and "undelivered" not in p]

    if last is not None and last.get("outcome") == "failed":
        errors = last.get("errors") or [{}]
        cause = str(errors[0].get("message") or errors[0].get("cause") or "the last run failed")
        length = f"for {ago(now - since)}" if since else "recorded"
        return False, f"PROBLEM — no successful run {length}: {cause}"
    if since is None or now - since > watch:
        last_at = _parse(last.get("started_at")) if last else None
        idle = f"; the last run was {ago(now - last_at)} ago (is the scheduler job paused?)" if last_at else ""
        return False, f"PROBLEM — {'no successful run for ' + ago(now - since) if since else when}{idle}"
    if problems:
        return False, f"PROBLEM — {when}, but " + "; ".join(problems)
    waiting = "nothing waiting"
    if journal["undelivered"]:
        # "Being delivered" only while a run holds the lease; otherwise they wait in the journal.
        items = _items(journal)
        waiting = (f"{items} being delivered by run {data['lease']['owner']}" if data.get("lease")
                   else f"{items} in the journal waiting for the next run")
    if data.get("quarantined"):
        # Told once (runs were unhealthy for a day); kept in sight until retried, dropped or expired.
        return True, (f"WARN — {when}, {waiting}; {data['quarantined']} unreadable item(s) in quarantine for over "
                      f"{_alarm_hours()} h: {QUARANTINE_COMMANDS}")
    return True, f"OK — {when}, {waiting}"


def _items(journal: dict[str, Any]) -> str:
    """The undelivered items by feed, in words: "2 chat(s) and 3 call message(s)"."""
    by_feed = journal.get("by_feed")
    if by_feed is None:  # data from before each feed was counted: the calls apart
        calls = int(journal.get("calls_undelivered") or 0)
        by_feed = {"chats": journal["undelivered"] - calls, "calls": calls}
    nouns = {f.name: f.noun for f in registered()}
    parts = [f"{n} {nouns.get(name, name + ' item')}(s)" for name, n in by_feed.items() if n]
    return " and ".join(parts) or f"{journal['undelivered']} item(s)"


QUARANTINE_COMMANDS = ("`python -m lib quarantine` lists them, `--retry` reads them again after an upgrade, "
                       "`--drop-all` deletes them")


def _alarm_hours() -> int:
    return int(QUARANTINE_ALARM.total_seconds() // 3600)


def format_status(data: dict[str, Any], tz: ZoneInfo) -> str:
    """The status as text: a table of runs, then one line per topic."""
    now = datetime.fromisoformat(data["now"])

    def local(text: Any) -> str:
        moment = _parse(text)
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
            str(run.get("posted", 0)), f"{int(run.get('duration_ms') or 0) / 1000:.1f} s", _billed(run), cause,
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
            text += f" ({recent} in the last {_alarm_hours()} h: runs are unhealthy until then)"
        else:
            text += f" (over {_alarm_hours()} h ago: runs are healthy again)"
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


def _billed(run: dict[str, Any]) -> str:
    billed = run.get("store")
    if not isinstance(billed, dict):
        return "-"
    return "/".join(str(billed.get(k, 0)) for k in ("reads", "writes", "deletes"))


def cost_text(cost: dict[str, Any]) -> str:
    """The store-cost line: the scheduled runs' reads, writes and deletes summed over the last 24
    hours (or over the hours recorded, with a day's estimate labelled as one), then the backfill's
    reads apart."""
    def runs(n: int, kind: str = "") -> str:
        return f"{n} {kind}run" + ("" if n == 1 else "s")

    def figures(values: dict[str, Any], share: dict[str, Any] | None) -> str:
        parts = []
        for k, limit in FREE_TIER_PER_DAY.items():
            part = f"{int(values[k]):,} {k if int(values[k]) != 1 else k[:-1]}"
            if share is not None:
                part += f" ({share[k]:g}% of the free {limit:,} a day)"
            parts.append(part)
        offset = f" ({int(values['offset_reads']):,} of the reads skipped by a query's offset)" \
            if values.get("offset_reads") else ""
        return ", ".join(parts) + offset

    if cost["whole_day"]:
        text = f"last 24 h, from {runs(cost['runs'], 'scheduled ')}: {figures(cost, cost['free_tier_share'])}"
    else:
        text = (f"from {runs(cost['runs'], 'scheduled ')} over {cost['hours']:g} h (the runs kept reach back "
                f"no further): {figures(cost, None)}")
        estimate = cost.get("estimate")
        if estimate:
            text += f"; estimate for a day at this rate: {figures(estimate['per_day'], estimate['free_tier_share'])}"
        else:
            text += f"; no estimate for a day from less than {ESTIMATE_MIN_HOURS} h"
    backfill = cost.get("backfill")
    if backfill:
        text += f"; backfill reads apart ({runs(backfill['runs'])}): {figures(backfill, None)}"
    return text


def account_verdict(ctx: Context, account: str, watch_minutes: int) -> dict[str, Any]:
    """One account's verdict, as `status --account` prints it first: {account, healthy, verdict}.
    An account whose settings or store cannot be read has a problem (saying which); one whose
    SQLite file does not exist yet has had no run yet."""
    try:
        settings = store_settings_for(ctx.env, account)
    except SyncError as exc:
        return {"account": account, "healthy": False, "verdict": f"PROBLEM — {exc}"}
    try:
        store = open_store(settings, read_only=True)
    except StateStoreMissing as exc:
        if settings.sqlite_path:
            return {"account": account, "healthy": True,
                    "verdict": f"NO RUNS YET — no state store yet at {settings.sqlite_path} (its first run creates it)"}
        return {"account": account, "healthy": False, "verdict": f"PROBLEM — the state store cannot be opened: {exc}"}
    except SyncError as exc:
        return {"account": account, "healthy": False, "verdict": f"PROBLEM — the state store cannot be opened: {exc}"}
    try:
        data = collect(store, ctx.clock(), runs=1, watch_minutes=watch_minutes)
    except SyncError as exc:
        return {"account": account, "healthy": False, "verdict": f"PROBLEM — the state store cannot be read: {exc}"}
    finally:
        store.close()
    return {"account": account, "healthy": data["healthy"], "verdict": data["verdict"]}


def every_account(args: argparse.Namespace, ctx: Context, accounts: tuple[str, ...]) -> int:
    """`python -m lib status` with ACCOUNTS and no --account: one verdict line per account; exit 1
    when any has a problem (its settings, its store, its runs)."""
    if store_unset(ctx.env):
        ctx.warn(with_fix(f"error: {STORE_UNSET}", STORE_UNSET_FIX))
        return EXIT_SETTINGS
    logs.configure("auto", level=log_level(args.verbose), stream=ctx.err)
    verdicts = [account_verdict(ctx, account, args.watch_minutes) for account in accounts]
    healthy = all(v["healthy"] for v in verdicts)
    if args.json:
        print_json(ctx, {"healthy": healthy, "accounts": verdicts})
    else:
        width = max(len(account) for account in accounts)
        ctx.say(*(f"{v['account']:<{width}}  {v['verdict']}" for v in verdicts))
        ctx.say(f"(`python -m lib status --account {accounts[0]}` shows one account's runs and what is waiting)")
    return EXIT_OK if healthy else EXIT_FAILED


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
