"""After a run: whether it is healthy (the watcher's signal) and what the run history keeps of it."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from ..sources import feed_of_key, registered
from ..sources.moneypenny import REFRESH_MARGIN
from ..state.contract import StateStore
from ..state.models import CachedToken
from .options import RunReport

# A chat still undelivered this long after it was fetched makes a run unhealthy (the same grace
# the Slack alerts give a failure that usually passes).
ALERT_GRACE = timedelta(minutes=10)
# An item set aside makes runs unhealthy (so the watcher mails) for this long after it was
# fetched, then no longer: the owner has been told, and `status` keeps showing it (a WARN, with
# the commands that retry or drop it) until it is retried, dropped or expires (RETENTION_DAYS).
QUARANTINE_ALARM = timedelta(hours=24)


def check_health(report: RunReport, store: StateStore, now: datetime, *,
                 token: Callable[[], CachedToken | None] | None = None, quarantine: bool = True,
                 on: Collection[str] | None = None) -> int | None:
    """Mark the run unhealthy if it failed or something is stuck (counts only, no chat data).

    `token` gives the cached token as the run's Moneypenny client last saw it (default: read
    from the store); `quarantine` False says the run state's hint rules out unexpired items
    in quarantine, so it is not counted. Only items fetched within QUARANTINE_ALARM count.
    `on`: the names of the feeds that are on (default: every registered feed); the entries of a
    feed that is off are not stuck but held in the journal, and count toward no reason.
    Returns the quarantine count, or None if not counted.
    """
    problems: list[str] = []
    quarantined: int | None = None
    try:
        if report.pending:
            stale = [e for e in store.journal_pending() if not e.delivered and now - e.fetched_at > ALERT_GRACE]
            minutes = int(ALERT_GRACE.total_seconds() // 60)
            feeds = registered()
            for feed in feeds:
                count = sum(1 for e in stale if feed_of_key(e.key, feeds) is feed)
                if count and (on is None or feed.name in on):
                    problems.append(f"{count} {feed.noun}(s) undelivered for over {minutes} min")
        if quarantine or report.skipped_invalid:
            quarantined = store.quarantine_count(since=now - QUARANTINE_ALARM)
            if quarantined:
                hours = int(QUARANTINE_ALARM.total_seconds() // 3600)
                problems.append(f"{quarantined} item(s) set aside in quarantine in the last {hours} h")
        # The token this run used must still serve the next one: one that is gone, or that
        # lives less than the refresh margin, means every run logs in again.
        token_now = (token or store.get_token)()
        if token_now is None or token_now.expires_at - REFRESH_MARGIN <= now:
            problems.append("no Moneypenny token cached for the next run (token renewal is not working)")
    except Exception as exc:
        problems.append(f"the state store could not be read ({type(exc).__name__})")
    report.unhealthy = problems
    report.healthy = report.outcome not in ("failed", "interrupted") and not problems
    return quarantined


def run_record(report: RunReport) -> dict[str, Any]:
    """The run history's record of a run: counts and causes, no `fix`, no chat data."""
    record = {
        **({"account": report.account} if report.account else {}),
        "run_id": report.run_id,
        "mode": report.mode,
        "started_at": report.started_at.isoformat(),
        "duration_ms": report.duration_ms,
        "outcome": report.outcome,
        **report.counts(),
        "healthy": report.healthy,
        **report.notes(),
        "store": report.store_recorded,
    }
    if report.errors:
        record["errors"] = [{k: v for k, v in e.items() if k != "fix"} for e in report.errors]
    return record
