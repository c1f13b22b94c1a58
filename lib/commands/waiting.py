"""`python -m lib waiting`: what waits in the journal, by source; `--drop SOURCE` lets a source's go.

A source turned off (MONEYPENNY_SOURCES) leaves what it journaled and had not delivered waiting:
no run delivers it (its tab's writer is not built) and none counts it as stuck (lib/sync/record.py),
but each run reports it as that source's (`off_waiting`) and `status` names it. Turning the source
back on delivers it, once. `--drop SOURCE` is the other way out: the source's waiting entries are
taken as delivered (never written, never announced) and expire after RETENTION_DAYS like any
delivered entry. It takes the run lease for its one write, so no run delivers them meanwhile.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from .. import destinations
from ..errors import SyncError, cut
from ..sources import feed_of_key, registered
from ..state.contract import StateStore
from ..state.models import DONE, JournalEntry
from ..sync.session import RunSession
from .command import EXIT_BUSY, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context, print_json, setup

DROP_LEASE = timedelta(minutes=2)


def source_of(key: str) -> str:
    """The feed a journal key belongs to, by its key prefix ("calls" for a call key, "chats"
    for a chat key, any registered feed's name for its own)."""
    return feed_of_key(key, registered()).name


def by_source(entries: Iterable[JournalEntry]) -> dict[str, list[JournalEntry]]:
    """The undelivered entries grouped by source (only the sources that have some)."""
    out: dict[str, list[JournalEntry]] = {}
    for entry in entries:
        if not entry.delivered:
            out.setdefault(source_of(entry.key), []).append(entry)
    return out


def drop(store: StateStore, source: str, now: datetime, retention_days: int, owner: str | None = None) -> int | None:
    """Take every undelivered entry of `source` as delivered (done for every registered
    destination, expiring
    after `retention_days`), under the run lease. Returns how many, or None when a run holds
    the lease (nothing written)."""
    session = RunSession(store, owner or f"drop-{uuid.uuid4().hex[:8]}")
    if not session.begin(DROP_LEASE):
        return None
    try:
        keys = [e.key for e in by_source(store.journal_pending()).get(source, [])]
        if keys:
            store.journal_update(keys, states=dict.fromkeys((d.name for d in destinations.registered()), DONE),
                                 labels={}, expires_at=now + timedelta(days=retention_days))
        return len(keys)
    finally:
        session.finish(None)


def command(args: argparse.Namespace, ctx: Context) -> int:
    """List what waits by source; with --drop SOURCE, take that source's as delivered first."""
    names = [feed.name for feed in registered()]
    if args.drop and args.drop not in names:
        ctx.warn(f"error: --drop takes a source's name, one of {', '.join(names)}; got {cut(args.drop)!r}")
        return EXIT_USAGE
    # Listing only reads (nothing created, migrated or locked, as `status`); a drop writes to a
    # store that must exist already (as `quarantine --drop`).
    settings, store, code = setup(args, ctx, store_only=True, read_only=not args.drop, create=not args.drop)
    if settings is None or store is None:
        return code
    try:
        result: dict[str, Any] = {}
        code = EXIT_OK
        try:
            if args.drop:
                dropped = drop(store, args.drop, ctx.clock(), settings.retention_days)
                if dropped is None:
                    ctx.warn("error: a run holds the lease; run the same command again in a few minutes")
                    return EXIT_BUSY
                result["dropped"] = {args.drop: dropped}
            waiting = by_source(store.journal_pending())
        except SyncError as exc:
            ctx.warn(f"error: the state store cannot be read or written: {exc}")
            return EXIT_FAILED
        result["waiting"] = {source: len(entries) for source, entries in waiting.items()}
        if args.json:
            print_json(ctx, result)
            return code
        if args.drop:
            ctx.say(f"dropped {result['dropped'][args.drop]} waiting {args.drop} item(s): taken as delivered, "
                    "not written to the sheet, not announced")
        if not waiting:
            ctx.say("Nothing waits in the journal.")
        for source, entries in waiting.items():
            oldest = min(e.fetched_at for e in entries)
            ctx.say(f"{len(entries)} {source} item(s) wait to be delivered, the oldest fetched "
                    f"{oldest.astimezone(settings.chat_timezone):%Y-%m-%d %H:%M}")
        return code
    finally:
        store.close()
