"""What a destination is (dlt's destinations/impl/<name>/ is the model): the plug-in protocol and
what a run hands it.

A destination is registered once (lib/destinations/__init__.py `register`) under its `name`,
the key of each journal entry's state mapping, with its `protocol`:

- `EXACTLY_ONCE` (the sheet): the run writes each item once. Before a write it stores an
  in-flight batch (its keys, its time), and an item found in flight later is written again only
  if the destination's `keys_present` does not hold its key, once the write has surely ended
  (lib/sync/exactly_once.py does all of that for any such destination). Its built form gives,
  for each feed, a `Writer` (`ready`, `append`, `keys_present`); an `append` that got no answer
  raises `lib.errors.NoAnswer`.
- `AT_LEAST_ONCE` (Slack): the run hands it every feed's part (`deliver(parts)`) and marks the
  items done only after it took them; a crash in between delivers them again.

`build(context)` makes the destination for one Syncer from the settings (and the feeds' tabs);
it returns a `Writers` (exactly once) or a `Deliverer` (at least once). Destinations never import the run (lib.sync),
the wiring (lib.app), the sources or the commands: the layer rule.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..records import Record
from ..settings import Settings

EXACTLY_ONCE = "exactly_once"
AT_LEAST_ONCE = "at_least_once"
PROTOCOLS = (EXACTLY_ONCE, AT_LEAST_ONCE)


@dataclass(frozen=True)
class FeedTab:
    """What a destination knows of one feed that is on: its name, its tab in these settings,
    its tab layout (a sheet TabLayout) and its noun in a summary ("new chat")."""

    name: str
    tab: str
    layout: Any
    noun: str


@dataclass(frozen=True)
class BuildContext:
    """What a destination is built from: the settings, the feeds that are on, and how its HTTP
    sessions wait (the backfill waits longer on the Sheets quota and shows the wait)."""

    settings: Settings
    feeds: Sequence[FeedTab]
    backoff: float = 0.5
    quota_wait: float | None = None
    on_quota_wait: Callable[[float], None] | None = None


@dataclass(frozen=True)
class FeedPart:
    """One feed's share of an at-least-once delivery: the records not yet delivered there (time
    order), how many of them an earlier run fetched (`late`), and the feed's noun, tab and the
    link that opens the sheet at its tab ("" when the feed has nothing); `row_links`: by key,
    the link that opens a record's row, for the records whose row is known."""

    feed: str
    noun: str
    tab: str
    records: Sequence[Record]
    late: int = 0
    link: str = ""
    row_links: Mapping[str, str] = field(default_factory=dict)


class Writer(Protocol):
    """One feed's target in an exactly-once destination (the sheet: the feed's tab)."""

    def ready(self) -> None:
        """Make sure the target can take rows (the sheet: the tab and its header); raises if not."""

    def append(self, records: Sequence[Record]) -> int:
        """Write one row per record, in order; return how many. `NoAnswer` when the write got
        no answer (it may still land); any other SyncError when it was answered with an error."""

    def keys_present(self) -> Collection[str]:
        """Every key the target already holds (one read): the last word on what was written."""


@runtime_checkable
class Writers(Protocol):
    """An exactly-once destination built for one Syncer: a target per feed."""

    def writer(self, feed: str) -> Writer | None:
        """The feed's target (None when this destination does not take the feed)."""


@runtime_checkable
class Deliverer(Protocol):
    """An at-least-once destination built for one Syncer."""

    def deliver(self, parts: Sequence[FeedPart]) -> None:
        """Deliver every feed's part at once (raises if it could not; the run tries again later)."""


Built = Writers | Deliverer


class Destination(Protocol):
    """A destination plug-in: registered once, built for each Syncer."""

    @property
    def name(self) -> str:
        """The key of its state in each journal entry's mapping ("sheet", "slack")."""

    @property
    def protocol(self) -> str:
        """EXACTLY_ONCE or AT_LEAST_ONCE."""

    def build(self, context: BuildContext) -> Built:
        """The destination for one Syncer, from the settings."""


@dataclass(frozen=True)
class BuiltDestination:
    """A registered destination as one Syncer holds it: its name, protocol and built form."""

    name: str
    protocol: str
    built: Built


def build_each(destinations: Sequence[Destination], context: BuildContext) -> list[BuiltDestination]:
    """Build every destination for one Syncer, exactly-once ones first (an at-least-once delivery
    waits for their key checks), else in the order given."""
    built = [BuiltDestination(d.name, d.protocol, d.build(context)) for d in destinations]
    return sorted(built, key=lambda b: b.protocol != EXACTLY_ONCE)
