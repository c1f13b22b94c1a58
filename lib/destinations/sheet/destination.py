"""The sheet as a destination plug-in (exactly once): one SheetWriter per feed's tab, all on one
Sheets session."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ...records import Record
from ..base import EXACTLY_ONCE, BuildContext, Writer
from . import client as sheet_client
from .writer import SheetWriter

NAME = "sheet"


class TabTarget:
    """One feed's tab as an exactly-once target (the run checked nothing before: each call
    reads row 1 where the writer must)."""

    def __init__(self, writer: SheetWriter):
        self.sheet = writer

    def ready(self) -> None:
        # Row 1 is read on every run that writes: a column inserted since the last run would
        # put every cell under the wrong heading and hide the key column from the check.
        self.sheet.ensure_ready()

    def append(self, records: Sequence[Record]) -> int:
        return self.sheet.append(records, header_checked=True)

    def keys_present(self) -> Collection[str]:
        return self.sheet.keys_present(header_checked=True)


class SheetTabs:
    """The sheet built for one Syncer: a writer per feed that is on (`writers`, by feed name)."""

    def __init__(self, writers: dict[str, SheetWriter]):
        self.writers = writers

    def writer(self, feed: str) -> Writer | None:
        writer = self.writers.get(feed)
        return None if writer is None else TabTarget(writer)


class SheetDestination:
    """The Google Sheet: each feed's rows on its own tab, exactly once (the key column decides)."""

    name = NAME
    protocol = EXACTLY_ONCE

    def build(self, context: BuildContext) -> SheetTabs:
        settings = context.settings
        # Credentials are looked up now (a missing one fails at start); gspread is loaded, and
        # its client made, only when a run has something to write.
        quota = sheet_client.SHEETS_QUOTA_WAIT_SECONDS if context.quota_wait is None else context.quota_wait
        session = sheet_client.build_session(settings, backoff=context.backoff, quota_wait=quota,
                                             on_quota_wait=context.on_quota_wait)
        tab_ids: dict[str, int] = {}  # the spreadsheet's tab ids (for links), shared by its writers
        writers = {
            feed.name: SheetWriter(
                lambda: sheet_client.client_on(session, settings),
                settings.sheet_id,
                feed.tab,
                identity=lambda: sheet_client.sheets_identity(settings),
                layout=feed.layout,
                tab_ids=tab_ids,
            )
            for feed in context.feeds
        }
        return SheetTabs(writers)


SHEET = SheetDestination()
