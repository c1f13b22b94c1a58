"""The day-window read of a feed (lib.sources.DayRead), first made for Moneypenny's call
messages (`CallsFetch` reads any such feed: the calls, or another one registered), read by whole
days into the journal. Each feed has a read document of its own (DayRead.doc; the calls' is
`calls_read`), of the form `CallsReadDoc`.

The Messages endpoint has no cursor: a run asks for days. A scheduled run reads from the last
day it read fully, minus one day (messages taken around midnight or entered late), to tomorrow
(whether `to` is inclusive is undocumented: a window ending after today covers today either
way). Every message is journaled by its key, and the journal adds only keys it has not seen, so
reading a day again adds nothing. The last full day read is written only once the read is in the
journal: a failed read is simply read again by the next run, there is nothing to lose.

Because the same days are read again and again, an unreadable item would be set aside again by
every run: the document also keeps the digests of the items already set aside (the newest
SET_ASIDE_KEPT), and those are not quarantined twice. Likewise it keeps what the journal already
holds of the days the next run reads again (from `last_full_day - LOOK_BACK` on): a digest of
every key read on those days, so that a run re-reading them checks them all against this one
document, read anyway, and makes no journal read for them. 2,000 call messages a day cost an idle
run the same reads as 20. The digests are fixed-width (KNOWN_DIGEST_CHARS, 120 bits of SHA-256:
a new key taken for a known one is as likely as guessing a 120-bit secret), so the document stays
under Firestore's 1 MiB whatever the keys look like; past KNOWN_KEPT keys (12,000 messages a day)
the oldest are left to the journal's own check (a read each). The document is written only when
one of these changes (a new message, a new day), not by every run.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo

from ..errors import DocumentError
from ..records import Rejection, Source
from ..sources import CALLS_FEED, DayRead, Feed
from ..sources.moneypenny import MoneypennyClient
from ..state.contract import StateStore
from .journal import Journal, dump
from .options import PAST_END, Mode, RunOptions, RunReport, asked_days

log = logging.getLogger(__name__)

CALLS_READ_DOC = "calls_read"
# Read this many days before the last full day again: a message taken just before midnight, or
# entered late by the receptionist, can appear after its day was read.
LOOK_BACK = timedelta(days=1)
SET_ASIDE_KEPT = 500
# The keys known on the days read again, as digests of KNOWN_DIGEST_CHARS characters each (15
# bytes of SHA-256, base64): 36,000 of them are 720 kB, inside a Firestore document's 1 MiB.
KNOWN_DIGEST_CHARS = 20
KNOWN_KEPT = 36_000


def key_digest(key: str) -> str:
    """A call key's fixed-width digest, as the calls_read document keeps it."""
    return base64.urlsafe_b64encode(hashlib.sha256(key.encode("utf-8")).digest()[:15]).decode("ascii")


@dataclass(frozen=True)
class CallsReadDoc:
    """The last day whose call messages a scheduled run read whole (in CHAT_TIMEZONE), when it
    became the last, the digests of the unreadable items already set aside, and the digests of
    the keys already journaled on the days from `last_full_day - LOOK_BACK` on (`known`: one
    text of KNOWN_DIGEST_CHARS-character digests, sorted)."""

    NAME: ClassVar[str] = CALLS_READ_DOC
    last_full_day: date | None = None
    read_at: datetime | None = None
    set_aside: tuple[str, ...] = ()
    known: str = ""

    def known_digests(self) -> set[str]:
        """The digests in `known`, as a set."""
        n = KNOWN_DIGEST_CHARS
        return {self.known[i:i + n] for i in range(0, len(self.known), n)}

    def to_dict(self) -> dict[str, Any]:
        return {"last_full_day": self.last_full_day.isoformat() if self.last_full_day else None,
                "read_at": self.read_at.isoformat() if self.read_at else None,
                "set_aside": list(self.set_aside), "known": self.known}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        def read(name: str, kind: type[date] | type[datetime], what: str) -> Any:
            value = data.get(name)
            if value is None:
                return None
            try:
                return kind.fromisoformat(value)
            except (TypeError, ValueError):
                raise DocumentError(f"the stored {CALLS_READ_DOC!r} document has {what} in {name!r}") from None

        def texts(name: str) -> tuple[str, ...]:
            values = data.get(name) or []
            if not isinstance(values, list) or not all(isinstance(d, str) for d in values):
                raise DocumentError(f"the stored {CALLS_READ_DOC!r} document has a value that is not a list of text "
                                    f"in {name!r}")
            return tuple(values)

        known = data.get("known") or ""
        if not isinstance(known, str) or len(known) % KNOWN_DIGEST_CHARS:
            raise DocumentError(f"the stored {CALLS_READ_DOC!r} document has a value that is not a text of "
                                f"{KNOWN_DIGEST_CHARS}-character digests in 'known'")
        # A document written before the digests kept the keys themselves ("journaled").
        known += "".join(sorted(key_digest(k) for k in texts("journaled")))
        return cls(last_full_day=read("last_full_day", date, "a value that is not an ISO date"),
                   read_at=read("read_at", datetime, "a value that is not an ISO time"),
                   set_aside=texts("set_aside"), known=known)


class CallsFetch:
    """Reads the items of a day-window feed (default: the call messages) of a run's days into the journal."""

    def __init__(self, store: StateStore, moneypenny: MoneypennyClient, journal: Journal, *,
                 clock: Callable[[], datetime], tz: ZoneInfo, reconcile_days: int,
                 checkpoint: Callable[[str], None] = lambda step: None, feed: Feed = CALLS_FEED):
        assert isinstance(feed.read, DayRead), "a day-window read is for a feed read by days"
        self.feed = feed
        self.read_by: DayRead = feed.read
        self.source: Source = feed.source
        self.store = store
        self.moneypenny = moneypenny
        self.journal = journal
        self.clock = clock
        self.tz = tz
        self.reconcile_days = reconcile_days
        self.checkpoint = checkpoint

    def window(self, opts: RunOptions, done: CallsReadDoc | None = None) -> tuple[date, date]:
        """The days a run reads: a window run's own, a day wider on each side (whether `to` is
        inclusive is undocumented, and which day's date Moneypenny files a message under, UTC's
        or ours, too; only the days asked for are kept), else from the last full day read (less
        LOOK_BACK, or from the daily reconcile's first day when it is due and earlier) to
        tomorrow. `done`: the calls_read document, if already read."""
        if opts.mode != Mode.NEW:
            assert opts.start is not None and opts.end is not None
            return opts.start - PAST_END, opts.end + PAST_END
        today = self.clock().astimezone(self.tz).date()
        if done is None:
            done = self.read_doc()
        if done is not None and done.last_full_day is not None:
            start = done.last_full_day - LOOK_BACK
        else:
            start = today - timedelta(days=max(self.reconcile_days, 1))
        if opts.reconcile_start is not None:
            # The daily reconcile is due (lib/sync/reconcile.py): the same one read reaches back to its first day.
            start = min(start, opts.reconcile_start)
        return min(start, today), today + timedelta(days=1)

    def read(self, report: RunReport, opts: RunOptions) -> None:
        """Read the run's days into the journal; then, for a scheduled run, record yesterday
        as the last full day read."""
        started = self.clock()
        stored = self.read_doc()
        done = stored or CallsReadDoc()
        start, end = self.window(opts, done)
        items = self.read_by.fetch(self.moneypenny, start, end)
        self.checkpoint(f"after_{self.feed.name}_fetch")
        records, rejected = self.source.parse_batch(items, self.tz)  # parsed once here; ingest parses only the fresh
        read = {r.key for r in records}  # added to report.read_keys once journaled (counted there, once)
        items, digests = _not_set_aside(items, rejected, done.set_aside)
        keep = None
        if opts.mode != Mode.NEW:
            assert opts.start is not None and opts.end is not None
            keep = asked_days(opts.start, opts.end, started.astimezone(self.tz).date(), self.tz)
            outside = {id(r.raw) for r in records if not keep(r)}
            items = [item for item in items if id(item) not in outside]
            records = [r for r in records if id(r.raw) not in outside]
        # Messages already journaled (known by the document's digests) need no journal read.
        known = done.known_digests()
        digest = {r.key: key_digest(r.key) for r in records}
        skip = {id(r.raw) for r in records if digest[r.key] in known}
        fresh = [item for item in items if id(item) not in skip]
        report.fetched += len(items) - len(fresh)
        # A window or reconcile read, or the first (calls turned on, a new or emptied store),
        # meets messages an earlier run may have delivered: the key column decides (journal.py).
        first = stored is None or stored.last_full_day is None
        self.journal.ingest(report, fresh, opts, check_sheet=first or opts.mode != Mode.NEW, keep=keep)
        report.read_keys |= read
        # Only now that the read is in the journal: a crash before this reads it again.
        if opts.mode == Mode.NEW:
            yesterday = started.astimezone(self.tz).date() - timedelta(days=1)
            # What the journal holds of the days the next run reads again: all of it was read just
            # now. Past KNOWN_KEPT, the newest are kept (the oldest day leaves the window first).
            again = yesterday - LOOK_BACK
            newest = sorted((r for r in records if r.time.date() >= again), key=lambda r: (r.time, r.key), reverse=True)
            kept = "".join(sorted({digest[r.key] for r in newest[:KNOWN_KEPT]}))
            moved = yesterday != done.last_full_day
            after = CallsReadDoc(last_full_day=yesterday, read_at=started if moved else done.read_at,
                                 set_aside=digests, known=kept)
        else:
            after = CallsReadDoc(done.last_full_day, done.read_at, set_aside=digests, known=done.known)
        if after != done:
            self.store.put_meta(self.read_by.doc, after.to_dict())
        log.info(f"read the {self.feed.noun}s", extra={"fields": {
            "run_id": report.run_id, "from": start.isoformat(), "to": end.isoformat(), "items": len(items)}})


    def read_doc(self) -> CallsReadDoc | None:
        """The feed's read document (DayRead.doc), or None; DocumentError if malformed."""
        data = self.store.get_meta(self.read_by.doc)
        return None if data is None else CallsReadDoc.from_dict(data)


def _not_set_aside(items: list[Any], rejected: Sequence[Rejection], kept: tuple[str, ...]) -> tuple[list[Any], tuple[str, ...]]:
    """The items less the unreadable ones (`rejected`, by index) already set aside, and the
    digests to keep."""
    if not rejected:
        return items, kept
    seen = set(kept)
    digests = {r.index: hashlib.sha256(dump(r.item).encode("utf-8")).hexdigest()[:32] for r in rejected}
    fresh = [d for d in dict.fromkeys(digests.values()) if d not in seen]
    keep = [item for i, item in enumerate(items) if i not in digests or digests[i] not in seen]
    return keep, (kept + tuple(fresh))[-SET_ASIDE_KEPT:]
