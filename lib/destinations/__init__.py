"""The destinations as plug-ins (dlt's destinations/impl/<name>/ is the model): each one is
described in its own package (`sheet/`, `slack/`) by a `Destination` (lib/destinations/base.py),
and registered here, in one place.

The run (lib/sync) loops over the registered destinations with their protocol: exactly once
(in-flight batches, the settle time, the key check; the sheet) or at least once (marked after it
took the items; Slack). Each journal entry keeps its state per destination under the
destination's name. A new destination is one more `register(...)`, with no change elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import (
    AT_LEAST_ONCE,
    EXACTLY_ONCE,
    PROTOCOLS,
    BuildContext,
    Built,
    BuiltDestination,
    Deliverer,
    Destination,
    FeedPart,
    FeedTab,
    Writer,
    Writers,
    build_each,
)
from .sheet.destination import SHEET
from .slack.destination import SLACK

__all__ = ["AT_LEAST_ONCE", "EXACTLY_ONCE", "PROTOCOLS", "SHEET", "SLACK", "BuildContext", "Built", "BuiltDestination", "Deliverer",
           "Destination", "FeedPart", "FeedTab", "Writer", "Writers", "build_each", "named", "protocols", "register",
           "registered", "unregister"]

_DESTINATIONS: dict[str, Destination] = {}


def register(destination: Destination) -> Destination:
    """Add a destination (a test's made-up one, or a new service): every Syncer built after it
    delivers to it, with its protocol. A name already taken, or a protocol other than
    EXACTLY_ONCE and AT_LEAST_ONCE, is refused. Entries delivered before it was registered stay
    delivered (they are not pending again); entries still pending are delivered to it too."""
    name = destination.name
    if not name or not name.isidentifier() or name != name.lower():
        raise ValueError(f"a destination's name is a lower-case word, got {name[:100]!r}")
    if name in _DESTINATIONS:
        raise ValueError(f"a destination named {name!r} is already registered")
    if destination.protocol not in PROTOCOLS:
        raise ValueError(f"the {name} destination's protocol must be one of {', '.join(PROTOCOLS)}, "
                         f"got {str(destination.protocol)[:100]!r}")
    _DESTINATIONS[name] = destination
    return destination


def unregister(name: str) -> None:
    """Remove a registered destination (a test's, when it is done); the built-in ones stay."""
    if name in (SHEET.name, SLACK.name):
        raise ValueError(f"the {name} destination is built in")
    _DESTINATIONS.pop(name, None)


def registered() -> list[Destination]:
    """Every registered destination, in the order registered (the order a run delivers in)."""
    return list(_DESTINATIONS.values())


def named(name: str) -> Destination:
    """The registered destination of this name (KeyError if none)."""
    return _DESTINATIONS[name]


def protocols() -> Mapping[str, str]:
    """Each registered destination's protocol, by name."""
    return {d.name: d.protocol for d in _DESTINATIONS.values()}


register(SHEET)
register(SLACK)
