"""Call messages: the typed record, how a raw Moneypenny message is read, and its stable key.

The call key
------------
A message Moneypenny gives a `callId` is keyed ``"call:" + callId`` (text made safe and trimmed;
a number is written as its digits). A message without one (the id is undocumented, so it may
be missing) gets a content key::

    "call:#" + sha256("v1" NUL date NUL caller NUL number digits NUL first line of message)

truncated to 32 hex characters, where `date` is the message's time in UTC written as ISO 8601
with microseconds and its offset (``2024-02-10T04:12:39.793000+00:00``), caller and the message's
first line trimmed, the number reduced to its digits. Every call key starts with ``call:``, so it
can never equal a chat key (32 hex digits): the journal tells the two sources apart by the key.
The Calls tab's **Call id** column holds the key without ``call:``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..destinations.sheet.cells import CELL_LIMIT, fit_cell
from ..destinations.sheet.writer import TabLayout
from ..destinations.slack.summary import inert, line_time, slack_size, trim
from ..errors import InvalidItem
from ..records import CUT_FIELD, JOURNAL_ITEM_BYTES, MIN_CELL, Rejected, Source, parse_each, parse_time
from ..text import ascii_json, json_text, safe_text

KEY_PREFIX = "call:"
KEY_VERSION = "v1"
CONTENT_MARK = "#"
# A callId longer than this is not an id Moneypenny would send: the content key is used instead.
MAX_ID_CHARS = 200

HEADER = ("Call time", "Caller", "Company", "Number", "Action taken", "Taken by", "Message", "Call id")
# Item field of each column after the first (the time) and before the last (the id).
_FIELDS = ("caller", "callerCompany", "callerNumber", "actionTaken", "employee", "message")
_NOT_DIGIT = re.compile(r"\D")



@dataclass(frozen=True)
class Call:
    """One call message as the rest of the system sees it."""

    key: str
    time: datetime  # timezone-aware, in CHAT_TIMEZONE
    caller: str = field(default="", repr=False)
    company: str = field(default="", repr=False)
    number: str = field(default="", repr=False)
    action: str = ""
    employee: str = field(default="", repr=False)
    message: str = field(default="", repr=False)
    call_id: str = ""  # as Moneypenny sent it ("" when it sent none)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    def row(self) -> list[str]:
        """The message's row on the Calls tab, in HEADER order; every cell plain text."""
        cells = [
            self.time.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds"),
            self.caller, self.company, self.number, self.action, self.employee, self.message,
            self.key[len(KEY_PREFIX):],
        ]
        return [fit_cell(c) for c in cells]

    def summary_line(self, limit: int, dated: bool = False) -> str:
        """The message's line in a Slack summary (call_line)."""
        return call_line(self, limit, dated)

    @property
    def former_keys(self) -> tuple[str, ...]:
        """None: the call key has had one recipe, with safe text, from the start."""
        return ()


# Limits (by slack_size, before escaping) of caller, company and message in a line, tried in
# turn until the line fits: escaping can make a short text long.
_LINE_LAYOUTS = ((60, 60, 120), (60, 0, 60), (30, 0, 30), (15, 0, 0))


def call_line(call: Call, limit: int, dated: bool = False) -> str:
    """One mrkdwn line for a message (at most `limit` by slack_size): local time (with its day
    when `dated`), caller, company, the message's first words, the action taken."""
    for layout in _LINE_LAYOUTS:
        line = _call_line(call, *layout, dated=dated)
        if slack_size(line) <= limit:
            return line
    return f"*{line_time(call.time, dated)}*"


def _call_line(call: Call, caller: int, company: int, message: int, *, dated: bool) -> str:
    parts = [f"*{line_time(call.time, dated)}*", f"*{inert(trim(call.caller, caller)) or '(no caller)'}*"]
    shown = inert(trim(call.company, company)) if company else ""
    if shown:
        parts.append(shown)
    line = " · ".join(parts)
    preview = inert(trim(call.message, message)) if message else ""
    if preview:
        line += f" — _{preview}_"
    action = inert(trim(call.action, 30)) if caller > 15 else ""
    return line + f" ({action})" if action else line


def key_from_column(value: str) -> str:
    """The call key of a Call id cell (the key without its prefix)."""
    return KEY_PREFIX + value


# The Calls tab: its columns, the setting that names it, and its Call id cells read as keys.
CALLS_LAYOUT = TabLayout(HEADER, "CALLS_TAB", key_from_column)


def is_call_key(key: str) -> bool:
    """Whether a journal key is a call message's (chat keys are 32 hex digits)."""
    return key.startswith(KEY_PREFIX)


def _text(name: str, value: Any) -> str:
    if type(value) is str:
        return safe_text(value).strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        raise InvalidItem(f"{name} is a JSON boolean, not text")
    if isinstance(value, (int, float)):
        return str(value)
    kind = "array" if isinstance(value, list) else "object" if isinstance(value, dict) else type(value).__name__
    raise InvalidItem(f"{name} is a JSON {kind}, not text")


def parse_call_time(value: Any, tz: ZoneInfo) -> datetime:
    """Read `date` as an aware datetime in `tz`; a value without an offset is read as UTC (the
    API sends UTC offsets)."""
    return parse_time(value, "date", tz, naive=UTC)


def content_key(time: datetime, caller: str, number: str, message: str) -> str:
    """The key of a message without a callId (see the module docstring for the recipe)."""
    lines = message.splitlines()
    parts = (
        KEY_VERSION,
        time.astimezone(UTC).isoformat(timespec="microseconds"),
        caller,
        _NOT_DIGIT.sub("", number),
        lines[0].strip() if lines else "",
    )
    return KEY_PREFIX + CONTENT_MARK + hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]


def parse_call(item: Any, tz: ZoneInfo) -> Call:
    """Turn one raw message into a Call, or raise InvalidItem naming the field at fault."""
    if not isinstance(item, dict):
        raise InvalidItem(f"item is a JSON {type(item).__name__}, not an object")
    time = parse_call_time(item.get("date"), tz)
    caller, company, number, action, employee, message = (_text(f, item.get(f)) for f in _FIELDS)
    call_id = _text("callId", item.get("callId"))
    if call_id and len(call_id) <= MAX_ID_CHARS and not call_id.startswith(CONTENT_MARK):
        key = KEY_PREFIX + call_id
    else:
        key = content_key(time, caller, number, message)
    return Call(key=key, time=time, caller=caller, company=company, number=number, action=action,
                employee=employee, message=message, call_id=call_id, raw=item)


def parse_batch(items: Sequence[Any], tz: ZoneInfo) -> tuple[list[Call], list[Rejected]]:
    """Read a whole answer: good messages (one per key, in time order) and rejects."""
    return parse_each(items, tz, parse_call)


def journal_item(call: Call, max_bytes: int = JOURNAL_ITEM_BYTES) -> dict[str, Any]:
    """What the journal keeps of a message: the item as sent, or, past `max_bytes` of JSON, its
    fields cut as the sheet cuts them and the key of the full message."""
    raw = call.raw
    if CUT_FIELD not in raw and len(ascii_json(raw)) <= max_bytes:
        return raw
    values = dict(zip(_FIELDS, (call.caller, call.company, call.number, call.action, call.employee, call.message)))
    limit = CELL_LIMIT
    while True:
        item = {
            "date": call.time.isoformat(timespec="microseconds"),
            **{name: fit_cell(text, limit) for name, text in values.items()},
            "callId": call.call_id,
            CUT_FIELD: {"key": call.key},
        }
        if len(json_text(item).encode("utf-8")) <= max_bytes or limit <= MIN_CELL:
            return item
        limit = max(limit // 2, MIN_CELL)


def parse_journal_call(item: Any, tz: ZoneInfo) -> Call:
    """A message from the journal: a whole item as parse_call reads it, or a cut one."""
    call = parse_call(item, tz)
    cut = item.get(CUT_FIELD)
    if isinstance(cut, dict) and isinstance(cut.get("key"), str) and is_call_key(cut["key"]):
        return dataclasses.replace(call, key=cut["key"])
    return call


def _with_key(call: Call, key: str) -> Call:
    return dataclasses.replace(call, key=key)


# The call messages as the sync core sees them (lib/records.py).
CALLS = Source(
    name="call",
    parse_batch=parse_batch,
    journal_item=journal_item,
    from_journal=parse_journal_call,
    with_key=_with_key,
)
