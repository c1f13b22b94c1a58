"""What the clients and the state store have done, counted where it happens.

Each client and store holds one counter object, public as `.counters`, that only ever grows
while the object lives: `MoneypennyClient.counters`, `SheetWriter.counters`,
`SlackNotifier.counters`, and `StateStore.counters` (both stores). To cost one run, take a
`snapshot()` before it and `since(snapshot)` after it; `reset()` starts again from zero.

The store's figures are what Firestore bills: see `StoreCounters`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

C = TypeVar("C", bound="Counters")

# Firestore's free tier, per day, for the (default) database (named databases bill from the
# first document; TTL deletes are never free).
FREE_TIER_PER_DAY = {"reads": 50_000, "writes": 20_000, "deletes": 20_000}


class Counters:
    """snapshot / since / reset / as_dict for the counter dataclasses below (int fields only)."""

    def snapshot(self: C) -> C:
        """A copy of the figures as they are now."""
        return dataclasses.replace(self)  # type: ignore[type-var]

    def since(self: C, earlier: C) -> C:
        """What was counted after `earlier` (a snapshot of this object)."""
        return type(self)(**{
            f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in dataclasses.fields(self)  # type: ignore[arg-type]
        })

    def reset(self) -> None:
        """Set every figure back to zero."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            setattr(self, f.name, 0)

    def as_dict(self) -> dict[str, int]:
        """The figures by name."""
        return {f.name: int(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass
class StoreCounters(Counters):
    """A state store's cost, in the units Firestore bills.

    - `round_trips`: server calls (Firestore: each get, batch get, commit, query, count and
      transaction attempt; SQLite: each transaction or query).
    - `reads`: documents read. A batch get of n documents is n reads; a query is one read per
      document it returns, at least one, plus every document its `offset` skips (when such a
      query returns nothing, the whole offset is counted: Firestore bills at most that); a
      count is one read per 1,000 documents counted, at least one. A transaction's read is
      counted on every attempt, as Firestore bills it.
    - `writes`: documents created, set or updated by a commit that succeeded.
    - `deletes`: documents deleted by a commit that succeeded (a delete by name counts even
      when nothing was there, as Firestore bills it).
    - `offset_reads`: the part of `reads` billed for documents a query's `offset` skipped
      (read and thrown away: the cost a query without an offset avoids).

    SQLite counts its rows the same way (a row for a document), so a local run shows what the
    same run would cost on Firestore. Firestore's TTL deletes happen outside the store and are
    not counted.
    """

    round_trips: int = 0
    reads: int = 0
    writes: int = 0
    deletes: int = 0
    offset_reads: int = 0


@dataclass
class MoneypennyCounters(Counters):
    """Requests the Moneypenny client sent, by kind: `auth` (logins), `log` (plain log calls,
    which move Moneypenny's cursor), `window` (date-window reads) and `calls` (call-message
    reads). Retries that urllib3 makes
    inside one request are not counted apart."""

    auth: int = 0
    log: int = 0
    window: int = 0
    calls: int = 0


@dataclass
class SheetCounters(Counters):
    """Sheets API requests the writer sent: `reads` (header, spreadsheet metadata, Chat key
    column), `writes` (new tab, header, appends), `appends` (the writes that add rows) and
    `rows_written` (rows in the appends that Sheets answered with success)."""

    reads: int = 0
    writes: int = 0
    appends: int = 0
    rows_written: int = 0


@dataclass
class SlackCounters(Counters):
    """`chat.postMessage` calls the notifier made (each counted once, whatever slack-sdk's retry
    handlers did)."""

    posts: int = 0
