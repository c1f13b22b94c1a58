"""Text every store, encoder, sheet and Slack can take, the same on every read.

Visitor text comes from a careless sender: lone UTF-16 surrogates (valid JSON escapes that no
UTF-8 encoder takes) and control characters are made safe once, at parse time, for every source.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Text no store, encoder or sheet can be trusted with: C0/C1 control characters (and DEL) other
# than newline and tab, and lone UTF-16 surrogates (valid JSON escapes that no UTF-8 encoder takes).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


def _unsafe_char(match: re.Match[str]) -> str:
    return _REPLACEMENT if match.group(0) >= "\ud800" else ""


def safe_text(text: str) -> str:
    """Text with lone surrogates replaced by U+FFFD and control characters other than newline
    and tab dropped: what every encoder, the sheet and Slack can take, the same on every read."""
    if text.isprintable():  # the common case, checked in C: nothing to replace
        return text
    return _UNSAFE.sub(_unsafe_char, text)


ascii_json = json.JSONEncoder(separators=(",", ":")).encode
_utf8_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_text(value: Any) -> str:
    """Compact JSON that any UTF-8 store takes: non-ASCII kept as is, unless a lone surrogate
    is there (then everything is escaped, which reads back the same)."""
    text = _utf8_json(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return ascii_json(value)
    return text
