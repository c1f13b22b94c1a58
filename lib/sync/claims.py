"""Claims from Slack's "Claim" button (#23): the store decides, then the sheet and the message
show it; whatever of that failed, the next scheduled run writes.

A click (`ClaimDesk.click`), in this order:

1. a claim already stored for the item: nothing changes; the clicker alone is told who has it;
2. the clicker's name (users.info);
3. the item's row, found by its key column now (rows move): gone, the clicker is told and
   nothing is written; an Owner already in the sheet (typed by hand) counts as a claim; the
   store decides, in a transaction (first click wins); the one that lost is told who won;
4. Owner and Claimed at written (RAW), the summary's line updated (chat.update, with every other
   claim the store holds on that message's buttons: one round trip): each marked done
   in the claim once it landed.

A claim whose sheet write or message update failed (or whose function died first) stays due: the
run state's `claims_due` (raised in the claim's transaction) makes the next run call
`retry_due`, which writes what is left and clears it when nothing is.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..clock import utcnow
from ..destinations.sheet.claims import ClaimCells, ClaimRow, cell_text
from ..destinations.slack.claims import SlackClaims, button_item, claimed_blocks, short_key, shown_name
from ..errors import SyncError
from ..state.claims import Claim
from ..state.contract import StateStore
from .session import RunSession

log = logging.getLogger(__name__)

# The message's text when the click did not carry it (chat.update replaces it).
UPDATED_TEXT = "Leads from Moneypenny"


@dataclass(frozen=True)
class Click:
    """One click on a Claim button, as Slack's verified payload gives it."""

    feed: str
    key: str
    user_id: str
    user_name: str  # the payload's name for the clicker (users.info gives the shown one)
    channel: str
    ts: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    response_url: str = ""
    text: str = ""  # the message's own text


@dataclass(frozen=True)
class ClaimAnswer:
    """What a click came to: `claimed` (this click made the claim), `taken` (someone has it),
    `gone` (no row has the key), `unknown` (not a feed of this deployment); who has it; what the
    clicker was told (empty: the updated message says it)."""

    outcome: str
    owner: str = ""
    told: str = ""
    sheet_written: bool = False
    message_updated: bool = False


class ClaimDesk:
    """Claims of one account: its store, each feed's tab (`cells`, by feed name) and Slack."""

    def __init__(self, store: StateStore, cells: Mapping[str, ClaimCells], slack: SlackClaims, *,
                 tz: ZoneInfo, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.cells = dict(cells)
        self.slack = slack
        self.tz = tz
        self.clock = clock

    def _tell(self, click: Click, text: str) -> str:
        try:
            self.slack.tell(click.response_url, text)
        except Exception as exc:  # the answer to the clicker is a courtesy: nothing depends on it
            log.warning("could not answer the clicker", extra={"fields": {"error": type(exc).__name__}})
        return text

    def _when(self, claim: Claim) -> str:
        return f"{claim.claimed_at.astimezone(self.tz):%Y-%m-%d %H:%M}"

    def click(self, click: Click) -> ClaimAnswer:
        """Claim the item for the clicker, or tell them why not (see the module's docstring)."""
        held = self.store.claim_get(click.feed, click.key)
        if held is not None:
            return ClaimAnswer("taken", held.owner, self._tell(
                click, f"{shown_name(held.owner)} claimed this lead ({short_key(click.key)}) at {self._when(held)}."))
        cells = self.cells.get(click.feed)
        if cells is None:
            return ClaimAnswer("unknown", told=self._tell(
                click, f"This lead ({short_key(click.key)}) is from a source this deployment no longer syncs: nothing was written."))
        # The clicker's name first: the row is found by number as late as can be, so a sort by
        # a person while Slack answers users.info never puts the name on another lead.
        name = cell_text(self.slack.user_name(click.user_id, click.user_name)) or cell_text(click.user_name) or click.user_id
        row: ClaimRow | None = None
        try:
            row = cells.find(click.key)
        except SyncError as exc:  # the sheet is not reachable now: the claim is still decided, written later
            log.warning("could not find the claimed row now; the next run writes it",
                        extra={"fields": {"feed": click.feed, "error": type(exc).__name__}})
            unreachable = True
        else:
            unreachable = False
            if row is None:
                return ClaimAnswer("gone", told=self._tell(
                    click, f"This lead ({short_key(click.key)}) is no longer in the sheet (its row was deleted): "
                    "nothing was written."))
            if row.owner:
                return ClaimAnswer("taken", row.owner, self._tell(
                    click, f"{shown_name(row.owner)} has this lead ({short_key(click.key)}): the sheet's Owner says so."))
        blocks = claimed_blocks(click.blocks, click.feed, click.key, name)
        claim = Claim(click.feed, click.key, name, click.user_id, self.clock(), click.channel, click.ts,
                      tuple(blocks if blocks is not None else click.blocks), click.text)
        claim, first = self.store.claim_take(claim)
        if not first:
            return ClaimAnswer("taken", claim.owner, self._tell(
                click, f"{shown_name(claim.owner)} claimed this lead ({short_key(click.key)}) just before you."))
        claim = self._write(claim, cells, None if unreachable else row)
        told = ""
        if not claim.sheet_done:
            told = self._tell(click, f"You have this lead ({short_key(click.key)}). The sheet could not be written "
                              "just now: the next scheduled run writes your name there.")
        return ClaimAnswer("claimed", claim.owner, told, claim.sheet_done, claim.message_done)

    def _write(self, claim: Claim, cells: ClaimCells | None, row: ClaimRow | None, *, find: bool = False) -> Claim:
        """Write what is not done of `claim` (the row found again when `find`), store what landed."""
        before = claim
        if not claim.sheet_done and cells is None:
            # A feed no longer registered at all (every registered feed's tab has cells, on or off):
            # no tab to write, as a click on it now is told. Kept due, every run would query for it.
            log.warning("a claim of a feed this deployment does not know; its Owner is not written",
                        extra={"fields": {"feed": claim.feed}})
            claim = claim.done(sheet=True)
        elif not claim.sheet_done and cells is not None:
            try:
                if find:
                    row = cells.find(claim.key)
                if row is None and find:
                    log.warning("a claimed row is gone from the sheet; nothing written", extra={"fields": {"feed": claim.feed}})
                    claim = claim.done(sheet=True)
                elif row is not None and row.owner:
                    claim = claim.done(sheet=True)  # a name is there (ours, or typed by hand): never overwritten
                elif row is not None:
                    cells.write(row, claim.owner, self._when(claim))
                    claim = claim.done(sheet=True)
            except SyncError as exc:
                log.warning("could not write a claim to the sheet; the next run does",
                            extra={"fields": {"feed": claim.feed, "cause": exc.cause}})
        if not claim.message_done and not (claim.channel and claim.ts):
            claim = claim.done(message=True)  # no message to update
        if not claim.message_done and not find:
            # The message as this click saw it, with the claims made since on it too: two leads
            # of one message claimed in the same moment both carry the message before either
            # update, and the later update must not bring the other's button back.
            claim = self._update_message(claim, self._with_every_claim(list(claim.blocks)), [claim])
        if claim != before:
            self.store.claim_put(claim)
        return claim

    def _update_message(self, claim: Claim, blocks: list[dict[str, Any]], group: list[Claim]) -> Claim:
        try:
            self.slack.update(claim.channel, claim.ts, blocks, claim.text or UPDATED_TEXT)
        except SyncError as exc:
            log.warning("could not update the summary message; the next run does",
                        extra={"fields": {"cause": exc.cause, "claims": len(group)}})
            return claim
        return claim.done(message=True)

    def retry_due(self) -> bool:
        """Write every due claim (the sheet's cells found again by key, each message updated once
        with every claim on it). True when none is left due."""
        due = self.store.claims_due()
        left = 0
        messages: dict[tuple[str, str], list[Claim]] = {}
        for stored in due:
            claim = self._write(stored, self.cells.get(stored.feed), None, find=True)
            if not claim.message_done:
                messages.setdefault((claim.channel, claim.ts), []).append(claim)
            elif claim.due:
                left += 1
        for group in messages.values():
            newest = max(group, key=lambda c: c.claimed_at)
            blocks = self._with_every_claim(list(newest.blocks))
            if self._update_message(newest, blocks, group).message_done:
                for claim in group:
                    self.store.claim_put(claim.done(message=True))
                    left += claim.done(message=True).due
            else:
                left += len(group)
        return left == 0

    def _with_every_claim(self, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The message's blocks with every item still showing a button that has a claim marked
        (a later click's update may have been built on a message that still showed them)."""
        items = [item[1:] for block in blocks for element in [block.get("accessory"), *(block.get("elements") or [])]
                 if (item := button_item(element)) is not None]
        for claim in self.store.claims_of(items).values() if items else ():
            blocks = claimed_blocks(blocks, claim.feed, claim.key, claim.owner) or blocks
        return blocks


def write_claims_due(session: RunSession, store: StateStore, claims: ClaimDesk | None) -> None:
    """Write the claims from Slack still due when the run state says some may be (a run with
    none reads nothing for them), then clear `claims_due` if no claim came meanwhile (one
    write, only on a run that had claims to write)."""
    due = session.seen.claims_due
    if not due or claims is None:
        return
    try:
        if claims.retry_due():
            session.seen = store.update_run_state(
                lambda state: dataclasses.replace(state, claims_due=0) if state.claims_due == due else None)
    except SyncError as exc:  # the claims stay due for the next run; the run's own work is done
        log.warning("could not write the claims still due", extra={"fields": {"cause": exc.cause}})
