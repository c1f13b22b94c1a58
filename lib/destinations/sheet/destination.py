"""The sheet as a destination plug-in (exactly once): one SheetWriter per feed's tab, all on one
Sheets session."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from ...records import Record
from ..base import EXACTLY_ONCE, BuildContext, Writer
from . import client as sheet_client
from .writer import SheetWriter

NAME = "sheet"
log = logging.getLogger(__name__)


class TabTarget:
    """One feed's tab as an exactly-once target for one run (the run checked nothing before:
    each call reads row 1 where the writer must).

    It keeps the rows this run learnt, by key: from its appends' answers and its key-column
    reads. They are never kept past the run (rows move when a person sorts or inserts): a later
    run finds a row again by its key (`rows_of`)."""

    def __init__(self, writer: SheetWriter):
        self.sheet = writer
        self.rows: dict[str, int] = {}
        self._read_keys = False

    def ready(self) -> None:
        # Row 1 is read on every run that writes: a column inserted since the last run would
        # put every cell under the wrong heading and hide the key column from the check.
        self.sheet.ensure_ready()

    def append(self, records: Sequence[Record]) -> int:
        return self.sheet.append(records, header_checked=True, rows=self.rows)

    def keys_present(self) -> Collection[str]:
        found = self.sheet.key_rows(header_checked=True)
        self._read_keys = True
        for key, row in found.items():
            self.rows.setdefault(key, row)  # an append's answer is the fresher
        return found.keys()

    def rows_of(self, records: Sequence[Record]) -> dict[str, int]:
        """Each record's row (by key) as far as this run can tell: its append's answer, else one
        read of the key column (at most once a run, and only for a record this run did not
        write: one an earlier run wrote and could not announce). A record under a former key
        is found by it. Best effort: a row that cannot be found has no entry (its line then
        links to the tab), and a failed read is logged, never raised."""
        def find(record: Record) -> int | None:
            for key in (record.key, *record.former_keys):
                if key in self.rows:
                    return self.rows[key]
            return None

        if not self._read_keys and any(find(r) is None for r in records):
            self._read_keys = True
            try:
                for key, row in self.sheet.key_rows(header_checked=True).items():
                    self.rows.setdefault(key, row)
            except Exception as exc:  # a row link is no reason to fail a post
                log.warning("could not read the key column for the row links", extra={"fields": {
                    "tab": self.sheet.layout.setting, "error": type(exc).__name__}})
        found = {r.key: find(r) for r in records}
        return {key: row for key, row in found.items() if row is not None}


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
