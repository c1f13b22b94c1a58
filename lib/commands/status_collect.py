"""What `status` reads from the state store (`collect`: JSON-able data, chat keys and times only) and
the one verdict line it judges from it (OK, WARN, PROBLEM or NO RUNS YET)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .. import destinations
from ..destinations import SHEET, SLACK
from ..sources import CALLS_FEED, DayRead, feed_of_key, registered
from ..state.contract import StateStore
from ..state.documents import AlertState, BackfillDoc
from ..state.models import DONE
from ..sync import ALERT_GRACE
from ..sync.calls_fetch import CallsReadDoc
from ..sync.record import QUARANTINE_ALARM
from .status_cost import parse_time, store_cost

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


def verdict(data: dict[str, Any], watch: timedelta) -> tuple[bool, str]:
    """(all well, the one line that says so): OK, PROBLEM (with the first cause) or NO RUNS YET."""
    now = datetime.fromisoformat(data["now"])
    if "last_scheduled" in data:
        last = data["last_scheduled"]
    else:
        runs = [r for r in data["runs"] if r.get("outcome") != "skipped"] or data["runs"]
        last = runs[0] if runs else None
    success = data.get("last_success")
    since = parse_time(success["started_at"]) if success else None
    if last is None and success is None:
        other = " (only a backfill or a retry so far)" if data["runs"] else ""
        return True, f"NO RUNS YET — no scheduled run has been recorded{other} (the first scheduled run records one)"
    when = f"last successful run {ago(now - since)} ago" if since else "no successful run recorded"

    problems: list[str] = []
    journal = data["journal"]
    oldest = journal.get("oldest")
    if oldest and now - datetime.fromisoformat(oldest["fetched_at"]) > ALERT_GRACE:
        waited = ago(now - datetime.fromisoformat(oldest["fetched_at"]))
        problems.append(f"{items_text(journal)} waiting, the oldest fetched {waited} ago")
    recent = data.get("quarantine_recent", data.get("quarantined"))
    if recent:
        problems.append(f"{recent} item(s) set aside in quarantine in the last {alarm_hours()} h")
    if success and success.get("healthy") is False:
        problems += [p for p in success.get("unhealthy") or [] if "quarantine" not in p and "undelivered" not in p]

    if last is not None and last.get("outcome") == "failed":
        errors = last.get("errors") or [{}]
        cause = str(errors[0].get("message") or errors[0].get("cause") or "the last run failed")
        length = f"for {ago(now - since)}" if since else "recorded"
        return False, f"PROBLEM — no successful run {length}: {cause}"
    if since is None or now - since > watch:
        last_at = parse_time(last.get("started_at")) if last else None
        idle = f"; the last run was {ago(now - last_at)} ago (is the scheduler job paused?)" if last_at else ""
        return False, f"PROBLEM — {'no successful run for ' + ago(now - since) if since else when}{idle}"
    if problems:
        return False, f"PROBLEM — {when}, but " + "; ".join(problems)
    waiting = "nothing waiting"
    if journal["undelivered"]:
        # "Being delivered" only while a run holds the lease; otherwise they wait in the journal.
        items = items_text(journal)
        waiting = (f"{items} being delivered by run {data['lease']['owner']}" if data.get("lease")
                   else f"{items} in the journal waiting for the next run")
    if data.get("quarantined"):
        # Told once (runs were unhealthy for a day); kept in sight until retried, dropped or expired.
        return True, (f"WARN — {when}, {waiting}; {data['quarantined']} unreadable item(s) in quarantine for over "
                      f"{alarm_hours()} h: {QUARANTINE_COMMANDS}")
    return True, f"OK — {when}, {waiting}"


def items_text(journal: dict[str, Any]) -> str:
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


def alarm_hours() -> int:
    """QUARANTINE_ALARM in whole hours, as the status lines name it."""
    return int(QUARANTINE_ALARM.total_seconds() // 3600)
