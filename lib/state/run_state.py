"""The run state: one small document that holds what every run reads and writes about itself.

It holds the run lease, Moneypenny's cursor and fetch intent (`CursorDoc`), the names of the
scheduled runs that succeeded (`ScheduleDoc`), a quarantine hint, when the last reconcile read
reached the journal (lib/sync/reconcile.py) and the run history (a ring of
RUNS_KEPT records, each slot a JSON text, `seq` counting the records ever added). A run reads it
once, when it takes the lease, and writes it once more at its end (lib/sync/session.py).

The stores keep it as one document (Firestore `P_state/run`) or one row (SQLite `run_state`),
with a *version* (Firestore's update time, a counter in SQLite): a write names the version it
read and is refused when the document changed meanwhile, so nothing is overwritten unseen.

The lease is judged by the store's clock, never the caller's: each read of the state carries
`read_at`, the store's time of that read (Firestore's read time, SQLite's own `now`), and a
lease is taken, checked and renewed against it (`LeaseHold`). A caller whose clock runs fast
cannot take a lease that, by the store's time, is still held.

It also holds what an idle run would otherwise read apart (issue #22: an idle run reads this one
document and nothing else): the Moneypenny token cache (`token`), the failure alerts' state
(`alerts`, lib/alerts.py) and `pending`, whether the journal may hold entries still pending.
`pending` False is a promise: no journal entry is pending. Every store write that leaves an entry
pending sets it to True in the same commit (`PENDING_MARK`), and only a run that saw, after
reading the state at some version, that nothing was pending (a query) and wrote by that very
version (so no mark came between) sets it back to False (lib/sync/session.py). None (a store from
before the field, a document that a mark made) means "not known": the run asks the journal.

`from_legacy` builds the state from the documents a store held before it existed (`cursor`,
`schedule_runs`, the lease, run records), so an upgraded store keeps its cursor and history; a
run state stored before `LAYOUT` (without `layout`) takes its token and alert state from their
old documents (`token`, the named document `alerts`) when it is read, and is written whole, in
this layout, by its next write (`whole`).

To add a part, give RunState a field with a default, write it in `to_dict` only when set, and
read it in `from_dict` (an absent field is its default, so older documents read unchanged).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..errors import DocumentError, LeaseLost
from .common import started_at_utc, stored_time, utc_text
from .documents import ALERTS_DOC, CURSOR_DOC, SCHEDULE_DOC, CursorDoc, ScheduleDoc
from .models import CachedToken, Lease

RUN_STATE_DOC = "run"
RUNS_KEPT = 100
# A quarantine hint that says "may hold items, with no known end" (an item kept for good, a
# store upgraded from before the hint, a run that died after setting items aside).
QUARANTINE_UNKNOWN = datetime.max.replace(tzinfo=UTC)
RECORD_BYTES = 4000  # a run record is cut to this, so that RUNS_KEPT of them fit one document

# The named documents that are parts of the run state (get_meta/put_meta reach them there).
PARTS = (CURSOR_DOC, SCHEDULE_DOC, ALERTS_DOC)
# The run state's layout: a stored state without it (or an older one) holds no token, alert
# state or pending flag: those are read from their old documents, and the state written whole.
LAYOUT = 2
# What a store write that leaves a journal entry pending sets in the run state, in the same
# commit (Firestore: a merge; SQLite: the same transaction).
PENDING_MARK = {"pending": True}


@dataclass(frozen=True)
class RunState:
    """The run state as read (with its `version`, None when never written)."""

    lease: Lease | None = None
    cursor: CursorDoc = field(default_factory=CursorDoc)
    schedules: ScheduleDoc = field(default_factory=ScheduleDoc)
    # Claims from Slack (lib/state/claims.py) that may still be due: 0 none; each new claim adds
    # one (in its transaction), and a run that wrote every due claim clears it when it is still
    # the number it read (lib/sync/claims.py). A run with 0 reads no claim.
    claims_due: int = 0
    # When the last item set aside expires; None: nothing in quarantine that makes a run unhealthy
    # (empty, or only items set aside over lib/sync/record.QUARANTINE_ALARM ago).
    quarantine_until: datetime | None = QUARANTINE_UNKNOWN
    # When the last reconcile read (the daily one, or ?mode=reconcile) reached the journal.
    reconciled_at: datetime | None = None
    # The local day (CHAT_TIMEZONE) of the last reminder of unclaimed leads that was posted, or
    # found nothing to post (lib/sync/reminder.py): the reminder is due once a working day.
    reminded_on: date | None = None
    seq: int = 0
    history: Mapping[str, str] = field(default_factory=dict)  # slot -> {"seq", "record"} as JSON
    # The Moneypenny token cache (every instance shares it for its 24 hours); None: none cached.
    token: CachedToken | None = None
    # The failure alerts' state (documents.AlertState's stored dict); None: all is well.
    alerts: Mapping[str, Any] | None = None
    # Whether the journal may hold pending entries: False is a promise that none is; None: not known.
    pending: bool | None = None
    version: Any = field(default=None, compare=False)
    # The store's time when this state was read (its clock, not the caller's); None if unknown.
    read_at: datetime | None = field(default=None, compare=False)
    # The stored document is not in this LAYOUT (or was made by a mark alone): the next write
    # sends every field, not only what changed.
    whole: bool = field(default=False, compare=False)

    def held_by_other(self, owner: str, now: datetime | None = None) -> bool:
        """Whether a lease of another owner is still running at `now` (default: the store's
        time of this read)."""
        at = now if now is not None else self.read_at
        if at is None:
            raise ValueError("a lease is judged by the store's time: this state carries none")
        return self.lease is not None and self.lease.owner != owner and self.lease.expires_at > at

    def store_now(self) -> datetime:
        """The store's time when this state was read."""
        if self.read_at is None:
            raise ValueError("a lease is judged by the store's time: this state carries none")
        return self.read_at

    def quarantine_may_hold_items(self, now: datetime) -> bool:
        return self.quarantine_until is not None and self.quarantine_until > now

    def with_quarantine_until(self, until: datetime | None) -> RunState:
        """The hint raised to `until` (never lowered: only a count may clear it)."""
        if until is None:
            return self
        current = self.quarantine_until
        return dataclasses.replace(self, quarantine_until=until if current is None else max(current, until))

    def with_reconciled_at(self, at: datetime | None) -> RunState:
        """The reconcile time raised to `at` (never lowered: a slow run finishing late keeps a
        newer reconcile another run recorded)."""
        if at is None or (self.reconciled_at is not None and self.reconciled_at >= at):
            return self
        return dataclasses.replace(self, reconciled_at=at)

    def with_reminded_on(self, day: date | None) -> RunState:
        """The reminder's day raised to `day` (never lowered)."""
        if day is None or (self.reminded_on is not None and self.reminded_on >= day):
            return self
        return dataclasses.replace(self, reminded_on=day)

    def with_record(self, record: dict[str, Any], keep: int = RUNS_KEPT) -> RunState:
        """This state with `record` added as the newest (a record with the same run_id is replaced)."""
        keep = max(keep, 1)
        history = {slot: text for slot, text in self.history.items() if _slot_number(slot) < keep}
        run_id = record.get("run_id")
        seq = self.seq + 1
        slot = _slot(seq % keep)
        if run_id is not None:
            for name, text in history.items():
                if json.loads(text).get("record", {}).get("run_id") == run_id:
                    seq, slot = json.loads(text)["seq"], name
                    break
        history[slot] = json.dumps({"seq": seq, "record": cut_record(record)}, ensure_ascii=False)
        return dataclasses.replace(self, seq=max(self.seq, seq), history=history)

    def trimmed(self, keep: int) -> RunState:
        """The state with only its newest `keep` records."""
        newest = sorted(self.history.items(), key=lambda item: json.loads(item[1])["seq"], reverse=True)
        return dataclasses.replace(self, history=dict(newest[:max(keep, 0)]))

    def records(self) -> list[dict[str, Any]]:
        """The run records, newest first (by started_at, then by the order they were added)."""
        entries = [json.loads(text) for text in self.history.values()]

        def order(entry: dict[str, Any]) -> tuple[str, int]:
            started = started_at_utc(entry["record"].get("started_at", ""))
            return ("" if started is None else utc_text(started)), entry["seq"]

        return [entry["record"] for entry in sorted(entries, key=order, reverse=True)]

    def may_be_pending(self) -> bool:
        """Whether the journal must be asked for pending entries (False only when promised none)."""
        return self.pending is not False

    def part(self, name: str) -> dict[str, Any] | None:
        """The named document `name` (one of PARTS) as its dict, or None when empty."""
        if name == ALERTS_DOC:
            return None if self.alerts is None else dict(self.alerts)
        data = self.cursor.to_dict() if name == CURSOR_DOC else self.schedules.to_dict()
        return data if any(data.values()) else None

    def with_part(self, name: str, data: dict[str, Any] | None) -> RunState:
        if name == ALERTS_DOC:
            return dataclasses.replace(self, alerts=dict(data) if data else None)
        if name == CURSOR_DOC:
            return dataclasses.replace(self, cursor=CursorDoc.from_dict(data) if data else CursorDoc())
        return dataclasses.replace(self, schedules=ScheduleDoc.from_dict(data) if data else ScheduleDoc())

    # -- the stored shape (both stores) ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            CURSOR_DOC: self.cursor.to_dict(), SCHEDULE_DOC: self.schedules.to_dict(),
            "seq": self.seq, "runs": dict(self.history), "layout": LAYOUT,
        }
        if self.token is not None:
            out["token"] = {"value": self.token.value, "expires_at": utc_text(self.token.expires_at)}
        if self.alerts is not None:
            out[ALERTS_DOC] = dict(self.alerts)
        if self.pending is not None:
            out["pending"] = self.pending
        if self.lease is not None:
            out["lease"] = {"owner": self.lease.owner, "expires_at": utc_text(self.lease.expires_at)}
        if self.claims_due:
            out["claims_due"] = self.claims_due
        if self.quarantine_until is not None:
            out["quarantine_until"] = utc_text(self.quarantine_until)
        if self.reconciled_at is not None:
            out["reconciled_at"] = utc_text(self.reconciled_at)
        if self.reminded_on is not None:
            out["reminded_on"] = self.reminded_on.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], version: Any = None, read_at: datetime | None = None) -> RunState:
        lease = data.get("lease")
        runs = data.get("runs") or {}
        seq = data.get("seq") or 0
        if not isinstance(runs, dict) or not all(isinstance(v, str) for v in runs.values()):
            raise DocumentError(f"the stored {RUN_STATE_DOC!r} document has a value that is not a map of texts in 'runs'")
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise DocumentError(f"the stored {RUN_STATE_DOC!r} document has a value that is not a whole number in 'seq'")
        claims_due = data.get("claims_due") or 0
        if isinstance(claims_due, bool) or not isinstance(claims_due, int):
            raise _bad("claims_due", "a value that is not a whole number")
        return cls(
            lease=_lease(lease),
            cursor=CursorDoc.from_dict(_part(data, CURSOR_DOC)),
            schedules=ScheduleDoc.from_dict(_part(data, SCHEDULE_DOC)), claims_due=claims_due,
            quarantine_until=_named_time(data, "quarantine_until"),
            reconciled_at=_named_time(data, "reconciled_at"),
            reminded_on=_named_day(data, "reminded_on"),
            seq=seq, history=dict(runs), version=version, read_at=read_at,
            token=_token(data.get("token")), alerts=_part(data, ALERTS_DOC) or None,
            pending=_pending(data.get("pending")), whole=not in_layout(data),
        )


def in_layout(data: Mapping[str, Any]) -> bool:
    """Whether a stored run state is in this LAYOUT (else its token and alert state are read
    from their old documents, and its next write is whole)."""
    layout = data.get("layout")
    return isinstance(layout, int) and not isinstance(layout, bool) and layout >= LAYOUT


def with_old_parts(state: RunState, token: CachedToken | None, alerts: dict[str, Any] | None) -> RunState:
    """A state stored before LAYOUT, with the token and alert state of their old documents."""
    return dataclasses.replace(state, token=state.token or token, alerts=state.alerts or alerts or None,
                               whole=True)


def _bad(name: str, what: str) -> DocumentError:
    return DocumentError(f"the stored {RUN_STATE_DOC!r} document has {what} in {name!r}")


def _part(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise _bad(name, "a value that is not a map")
    return value


def _named_time(data: Mapping[str, Any], name: str) -> datetime | None:
    """The optional time `name`, or a DocumentError naming it when it is not a time."""
    value = data.get(name)
    if value is None:
        return None
    try:
        moment = stored_time(value)
    except (TypeError, ValueError, AttributeError):
        moment = None
    if moment is None:
        raise _bad(name, "a value that is not a time")
    return moment


def _named_day(data: Mapping[str, Any], name: str) -> date | None:
    """The optional day `name` (YYYY-MM-DD), or a DocumentError naming it when it is not a day."""
    value = data.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise _bad(name, "a value that is not a day (YYYY-MM-DD)") from None
def _pending(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _bad("pending", "a value that is not true or false")


def _token(value: Any) -> CachedToken | None:
    if not value:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("value"), str) or value.get("expires_at") is None:
        raise _bad("token", "a value that is not a token (a value and an expiry)")
    try:
        expires = _named_time(value, "expires_at")
    except DocumentError:
        raise _bad("token", "an expiry that is not a time") from None
    assert expires is not None
    return CachedToken(value["value"], expires)


def _lease(value: Any) -> Lease | None:
    if not value:
        return None
    if not isinstance(value, dict) or not value.get("owner") or value.get("expires_at") is None:
        raise _bad("lease", "a value that is not a lease (an owner and an expiry)")
    try:
        expires = _named_time(value, "expires_at")
    except DocumentError:
        raise _bad("lease", "an expiry that is not a time") from None
    assert expires is not None
    return Lease(str(value["owner"]), expires)


@dataclass(frozen=True)
class LeaseHold:
    """A run's claim on the lease, checked by the store just before a write to the sheet or
    Slack (and made good in the same transaction as an in-flight batch document).

    The claim holds only while `owner` is the lease's owner: a lease another run took (even
    one it gave back since) is lost for good, as that run may have delivered what this one
    carries. With less than `margin` (plus the `wait` the caller is about to spend) left by
    the store's clock, the lease is renewed for `length` from the store's now.
    """

    owner: str
    length: timedelta
    margin: timedelta

    def applied(self, state: RunState, wait: timedelta = timedelta(0)) -> RunState | None:
        """The state with the lease renewed, None when it needs nothing; LeaseLost when the
        lease is not (or no longer) this owner's."""
        lease = state.lease
        if lease is None or lease.owner != self.owner:
            since = "another run took it and gave it back" if lease is None else f"run {lease.owner} took it"
            raise LeaseLost(f"this run (run {self.owner}) no longer holds the run lease ({since}): it wrote "
                            "nothing more to the sheet or Slack; what it carries waits in the journal for the next run")
        now = state.store_now()
        if lease.expires_at - now >= self.margin + wait:
            return None
        return dataclasses.replace(state, lease=Lease(self.owner, now + max(self.length, wait + self.margin)))


def from_legacy(cursor: dict[str, Any] | None, schedules: dict[str, Any] | None, lease: Lease | None,
                records: Iterable[dict[str, Any]]) -> RunState:
    """The state of a store that kept these parts apart (before the run state existed).

    `records` newest first, as the old history listed them. The quarantine hint starts unknown
    when any part was there (the old code kept no hint); a store with none is new, and empty.
    """
    records = list(records)[:RUNS_KEPT]
    new = cursor is None and schedules is None and lease is None and not records
    state = RunState(lease=lease, quarantine_until=None if new else QUARANTINE_UNKNOWN)
    state = state.with_part(CURSOR_DOC, cursor).with_part(SCHEDULE_DOC, schedules)
    for record in reversed(records):
        state = state.with_record(record)
    return state


def cut_record(record: dict[str, Any]) -> dict[str, Any]:
    """A run record small enough for its slot: long messages cut, then the errors left out."""
    if len(json.dumps(record, ensure_ascii=False)) <= RECORD_BYTES:
        return record
    out = dict(record)
    out["errors"] = [{**e, "message": str(e.get("message", ""))[:200]} for e in record.get("errors") or []]
    out["unhealthy"] = [str(p)[:200] for p in record.get("unhealthy") or []]
    if len(json.dumps(out, ensure_ascii=False)) > RECORD_BYTES:
        out["errors"] = [{"step": e.get("step"), "cause": e.get("cause")} for e in record.get("errors") or []][:10]
        out["unhealthy"] = out["unhealthy"][:5]
    return out


def _slot(number: int) -> str:
    return f"r{number:02d}"


def _slot_number(slot: str) -> int:
    try:
        return int(slot[1:])
    except ValueError:
        return RUNS_KEPT  # a slot this code did not write: dropped on the next record


def _time(value: Any) -> datetime:
    moment = stored_time(value)
    if moment is None:
        raise DocumentError(f"the stored {RUN_STATE_DOC!r} document has no time where one is needed")
    return moment
