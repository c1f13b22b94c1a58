"""Logging: one JSON line per event in the shape Cloud Logging reads, readable text locally.

Pass structured values with `extra={"fields": {...}}`. Only counts, durations, ids and chat
keys belong there; never a secret or a visitor's data.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type only: a traceback's locals or messages could carry data.
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        tail = ""
        if isinstance(fields, dict) and fields:
            tail = "  " + " ".join(f"{k}={v}" for k, v in fields.items())
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        return f"{stamp} {record.levelname:<7} {record.getMessage()}{tail}"


def configure(log_format: str = "auto", level: int = logging.INFO, stream=None) -> None:
    """Send this package's logs to stderr in JSON (in the cloud) or text (at a terminal)."""
    if log_format == "auto":
        # K_SERVICE is set by Cloud Run, which runs 2nd-gen Cloud Functions.
        log_format = "json" if os.environ.get("K_SERVICE") else "text"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logger = logging.getLogger("lib")
    for old in list(logger.handlers):
        if getattr(old, "_moneypenny_sync", False):
            logger.removeHandler(old)
    handler._moneypenny_sync = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = True
