"""A claim on an item from Slack's "Claim" button (lib/sync/claims.py): who took it and what of it
is done yet.

The store decides a claim: the first click on an item makes its claim, in a transaction
(`Claims.claim_take`); every later click finds it. A claim is *due* until its Owner and Claimed
at cells are in the sheet and its Slack line says who has it; the run state's `claims_due` tells
a scheduled run that some claim may be due (lib/sync/claims.py retries it), so a run with none
reads nothing more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..errors import DocumentError
from .common import stored_time, utc_text

CLAIMS_DOC = "claim"


@dataclass(frozen=True)
class Claim:
    """A claim on the item `key` of the feed `feed`: `owner` (the clicker's name, as Slack shows
    it) with Slack's user id, when, and the summary message it came from (`channel`, `ts`,
    `blocks`: the message as the claim's update makes it). `sheet_done`, `message_done`: what
    of it has been written."""

    feed: str
    key: str
    owner: str
    user_id: str
    claimed_at: datetime
    channel: str = ""
    ts: str = ""
    blocks: tuple[dict[str, Any], ...] = ()
    text: str = ""  # the message's own text (its notification and fallback), kept by chat.update
    sheet_done: bool = False
    message_done: bool = False

    @property
    def id(self) -> str:
        """The claim's id in the store: one claim per item of a feed."""
        return f"{self.feed}:{self.key}"

    @property
    def due(self) -> bool:
        """Whether some of it is not written yet (the sheet's cells or the message)."""
        return not (self.sheet_done and self.message_done)

    def done(self, *, sheet: bool | None = None, message: bool | None = None) -> Claim:
        return replace(self, sheet_done=self.sheet_done if sheet is None else sheet,
                       message_done=self.message_done if message is None else message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed, "key": self.key, "owner": self.owner, "user_id": self.user_id,
            "claimed_at": utc_text(self.claimed_at), "channel": self.channel, "ts": self.ts,
            # Text: Firestore cannot hold every block shape as fields (lists in lists).
            "blocks": json.dumps(list(self.blocks), ensure_ascii=False), "text": self.text,
            "sheet_done": self.sheet_done, "message_done": self.message_done,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Claim:
        try:
            claimed_at = stored_time(data["claimed_at"])
            blocks = json.loads(data.get("blocks") or "[]")
            if claimed_at is None or not isinstance(blocks, list):
                raise ValueError
            return cls(
                feed=str(data["feed"]), key=str(data["key"]), owner=str(data["owner"]),
                user_id=str(data.get("user_id", "")), claimed_at=claimed_at,
                channel=str(data.get("channel", "")), ts=str(data.get("ts", "")), blocks=tuple(blocks),
                text=str(data.get("text", "")),
                sheet_done=bool(data.get("sheet_done")), message_done=bool(data.get("message_done")),
            )
        except (KeyError, TypeError, ValueError):
            raise DocumentError(f"the stored {CLAIMS_DOC!r} document is not a claim (feed, key, owner, claimed_at)") from None
