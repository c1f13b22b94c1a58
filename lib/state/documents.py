"""The small named documents in the store's `get_meta`/`put_meta` space, as typed dataclasses.

Each document class has its name (`NAME`, also a module constant), `to_dict` (the stored shape,
the very dicts the code wrote before these classes existed) and `from_dict`, which reads that
shape and refuses a malformed document with `DocumentError` naming the document and field.
`store.read_doc(CursorDoc)` and `store.write_doc(doc)` (lib/state/base.StoreBase) use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Protocol, Self, TypeVar

from ..errors import DocumentError

CURSOR_DOC = "cursor"
SCHEDULE_DOC = "schedule_runs"
SCHEDULES_KEPT = 50
ALERTS_DOC = "alerts"
BACKFILL_DOC = "backfill"


class Document(Protocol):
    """What `read_doc`/`write_doc` need of a document class."""

    NAME: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self: ...


D = TypeVar("D", bound=Document)
T = TypeVar("T")


# -- reading fields ---------------------------------------------------------------------------------


def _fail(doc: str, name: str, what: str) -> DocumentError:
    return DocumentError(f"the stored {doc!r} document has {what} in {name!r}")


def _text(doc: str, data: dict[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _fail(doc, name, "no text" if value is None else "a value that is not text")
    return value


def _time(doc: str, data: dict[str, Any], name: str, *, optional: bool = False) -> datetime | None:
    text = _text(doc, data, name, optional=optional)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise _fail(doc, name, "a value that is not an ISO time") from None


def _day(doc: str, data: dict[str, Any], name: str, *, optional: bool = False) -> date | None:
    text = _text(doc, data, name, optional=optional)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(doc, name, "a value that is not an ISO date") from None


def _int(doc: str, data: dict[str, Any], name: str, *, optional: bool = False) -> int | None:
    value = data.get(name)
    if value is None:
        if optional:
            return None
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(doc, name, "a value that is not a whole number")
    return value


def _required(value: T | None) -> T:
    assert value is not None  # the readers above raise instead of returning None when required
    return value


# -- the cursor and fetch intent (lib/sync) -------------------------------------------------------


@dataclass(frozen=True)
class FetchIntent:
    """A plain read about to start: until it settles, the next run reads `since` onward by date."""

    since: date
    run_id: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "run_id": self.run_id, "at": self.at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FetchIntent:
        doc = f"{CURSOR_DOC}.intent"
        return cls(
            since=_required(_day(doc, data, "since")),
            run_id=_required(_text(doc, data, "run_id")),
            at=_required(_time(doc, data, "at")),
        )


@dataclass(frozen=True)
class CursorDoc:
    """When Moneypenny's chat log was last read to the journal, a read still to settle, and the
    digests of the unreadable chats already set aside (the newest lib/sync/fetch.SET_ASIDE_KEPT):
    a read by date meets them again, and they are not quarantined twice."""

    NAME: ClassVar[str] = CURSOR_DOC
    last_read: datetime | None = None
    intent: FetchIntent | None = None
    set_aside: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.last_read is not None:
            out["last_read"] = self.last_read.isoformat()
        if self.intent is not None:
            out["intent"] = self.intent.to_dict()
        if self.set_aside:
            out["set_aside"] = list(self.set_aside)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        intent = data.get("intent")
        if intent is not None and not isinstance(intent, dict):
            raise _fail(CURSOR_DOC, "intent", "a value that is not an object")
        set_aside = data.get("set_aside") or []
        if not isinstance(set_aside, list) or not all(isinstance(d, str) for d in set_aside):
            raise _fail(CURSOR_DOC, "set_aside", "a value that is not a list of texts")
        return cls(
            last_read=_time(CURSOR_DOC, data, "last_read", optional=True),
            intent=FetchIntent.from_dict(intent) if intent else None,
            set_aside=tuple(set_aside),
        )


# -- the scheduler-retry dedupe (lib/sync) --------------------------------------------------------


@dataclass(frozen=True)
class ScheduleDoc:
    """The schedule times (Cloud Scheduler's header, as sent) whose run has finished, oldest first."""

    NAME: ClassVar[str] = SCHEDULE_DOC
    done: tuple[str, ...] = ()

    def has(self, schedule_time: str) -> bool:
        return schedule_time in self.done

    def with_done(self, schedule_time: str, keep: int = SCHEDULES_KEPT) -> ScheduleDoc:
        """This log with `schedule_time` added as the newest, keeping the newest `keep`."""
        done = [t for t in self.done if t != schedule_time] + [schedule_time]
        return ScheduleDoc(tuple(done[-keep:]))

    def to_dict(self) -> dict[str, Any]:
        return {"done": list(self.done)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        done = data.get("done") or []
        if not isinstance(done, list) or not all(isinstance(t, str) for t in done):
            raise _fail(SCHEDULE_DOC, "done", "a value that is not a list of texts")
        return cls(tuple(done))


# -- the failing streak (lib/alerts) --------------------------------------------------------------


@dataclass
class AlertState:
    """A failing streak: since when, how many runs, the last failure, and when each cause alerted."""

    NAME: ClassVar[str] = ALERTS_DOC
    failing_since: datetime
    failed_runs: int = 0
    alerted: dict[str, datetime] = field(default_factory=dict)
    alerts_sent: int = 0
    last_failure: datetime | None = None
    last_cause: str | None = None
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "failing_since": self.failing_since.isoformat(),
            "failed_runs": self.failed_runs,
            "alerted": {cause: at.isoformat() for cause, at in self.alerted.items()},
            "alerts_sent": self.alerts_sent,
        }
        if self.last_failure is not None:
            out["last_failure"] = self.last_failure.isoformat()
        if self.last_cause is not None:
            out["last_cause"] = self.last_cause
        if self.last_error is not None:
            out["last_error"] = self.last_error
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        alerted = data.get("alerted") or {}
        if not isinstance(alerted, dict):
            raise _fail(ALERTS_DOC, "alerted", "a value that is not an object")
        return cls(
            failing_since=_required(_time(ALERTS_DOC, data, "failing_since")),
            failed_runs=_required(_int(ALERTS_DOC, data, "failed_runs")),
            alerted={str(cause): _required(_time(ALERTS_DOC, alerted, cause)) for cause in alerted},
            alerts_sent=_required(_int(ALERTS_DOC, data, "alerts_sent")),
            last_failure=_time(ALERTS_DOC, data, "last_failure", optional=True),
            last_cause=_text(ALERTS_DOC, data, "last_cause", optional=True),
            last_error=_text(ALERTS_DOC, data, "last_error", optional=True),
        )


# -- backfill progress (lib/sync/backfill.py, shown by `status`) ------------------------------------------


@dataclass(frozen=True)
class BackfillDoc:
    """A backfill's window and how far it got: state is running, done, failed, lease or interrupted."""

    NAME: ClassVar[str] = BACKFILL_DOC
    start: date
    end: date
    state: str
    started_at: datetime
    done_through: date | None = None
    new: int | None = None
    appended: int | None = None
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "state": self.state,
            "done_through": None if self.done_through is None else self.done_through.isoformat(),
            "started_at": self.started_at.isoformat(),
        }
        if self.new is not None:
            out["new"] = self.new
        if self.appended is not None:
            out["appended"] = self.appended
        if self.finished_at is not None:
            out["finished_at"] = self.finished_at.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(
            start=_required(_day(BACKFILL_DOC, data, "from")),
            end=_required(_day(BACKFILL_DOC, data, "to")),
            state=_required(_text(BACKFILL_DOC, data, "state")),
            started_at=_required(_time(BACKFILL_DOC, data, "started_at")),
            done_through=_day(BACKFILL_DOC, data, "done_through", optional=True),
            new=_int(BACKFILL_DOC, data, "new", optional=True),
            appended=_int(BACKFILL_DOC, data, "appended", optional=True),
            finished_at=_time(BACKFILL_DOC, data, "finished_at", optional=True),
        )
