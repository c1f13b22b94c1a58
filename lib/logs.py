"""Logging: one JSON line per event in the shape Cloud Logging reads, readable text locally.

Pass structured values with `extra={"fields": {...}}`. Only counts, durations, ids and chat
keys belong there; never a secret or a visitor's data. `context(**fields)` adds fields (a
command name, a backfill read's first day) to every line logged inside it.

One owner: `configure` makes our handler the only one that writes the process's log. In Cloud
Run, functions-framework (with LOG_EXECUTION_ID=true, which Google sets on every function)
installs a root handler of its own that would write each record a second time, in its own shape
and unscrubbed; a library's `logging.basicConfig` would do the same. `configure` removes every
such console handler (and takes over gunicorn's error and access loggers), so each record comes
out once, in our shape, through the scrubber. Cloud Run's execution id (functions-framework's
`Function-Execution-Id` header) goes into the log context with `context(execution_id=...)` and
becomes the `execution_id` label of each JSON line, as functions-framework's own lines carry it.

Two guards stand behind that rule:
- third-party loggers that print request or response bodies at DEBUG (slack_sdk prints the
  message, which lists visitors' names; requests-oauthlib prints tokens) are held at WARNING
  whatever the root level is;
- every line is scrubbed of the secrets we know (the settings' secrets, bearer tokens, Slack
  tokens) before it is written.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}

# Loggers of libraries we call that print bodies, headers or tokens below WARNING.
QUIET_LOGGERS = (
    "slack_sdk",
    "slack",
    "urllib3",
    "requests",
    "requests_oauthlib",
    "oauthlib",
    "google",
    "google_auth_httplib2",
    "gspread",
    "grpc",
)

# Above every level: the libraries' loggers say nothing at a command's default verbosity.
LIBRARIES_SILENT = logging.CRITICAL + 10

# An Authorization header, or an access_token in a JSON or form body.
_BEARER = re.compile(r"(?i)(\bbearer\s+|access_token\\?[\"']?\s*[:=]\s*\\?[\"']?)([\w.~+/\-]+=*)")
_SLACK_TOKEN = re.compile(r"\bxox[a-z]-[A-Za-z0-9\-]+")
_MASK = "***"

# The context field (and Cloud Logging label) naming one request to the function.
EXECUTION_ID = "execution_id"
# The context field (and Cloud Logging label) naming the account a line is about (ACCOUNTS).
ACCOUNT = "account"
# Loggers of the servers that run the function, which gunicorn gives handlers of their own.
SERVER_LOGGERS = ("gunicorn.error", "gunicorn.access")

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039 (never mutated: context() sets a new dict)
_secrets: set[str] = set()


@contextlib.contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Add these fields to every log line written inside the block."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def register_secrets(values: Iterable[Any]) -> None:
    """Remember secret values (str or settings.Secret) so that no log line can show them."""
    for value in values:
        text = value.reveal() if hasattr(value, "reveal") else value
        # Very short values would mask ordinary words; no real secret is that short.
        if isinstance(text, str) and len(text) >= 6:
            _secrets.add(text)


def scrub(text: str) -> str:
    """Mask every known secret, bearer token and Slack token in a piece of text."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _MASK)
    text = _BEARER.sub(lambda m: m.group(1) + _MASK, text)
    return _SLACK_TOKEN.sub("xox?-" + _MASK, text)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out = dict(_context.get())
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        out.update(fields)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: Cloud Logging reads severity, message, time and labels."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        fields = _fields(record)
        # The execution id is a label only (Cloud Logging groups a request's lines by it).
        execution_id = fields.pop(EXECUTION_ID, None)
        entry.update(fields)
        labels = {k: str(fields[k]) for k in ("run_id", "command", ACCOUNT) if fields.get(k)}
        if execution_id:
            labels[EXECUTION_ID] = str(execution_id)
        if labels:
            # Labels are indexed by Cloud Logging: `labels.run_id="…"` finds one run's lines.
            entry["logging.googleapis.com/labels"] = labels
        entry["logging.googleapis.com/sourceLocation"] = {
            "file": record.pathname, "line": record.lineno, "function": record.funcName,
        }
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type only: a traceback's locals or messages could carry data.
            entry["exception"] = record.exc_info[0].__name__
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO    run ok  run_id=… fetched=3`, for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        fields.pop(EXECUTION_ID, None)  # Cloud Logging's label; noise at a terminal
        tail = ""
        if fields:
            tail = "  " + " ".join(f"{k}={_short(v)}" for k, v in fields.items())
        if record.exc_info and record.exc_info[0] is not None:
            tail += f"  exception={record.exc_info[0].__name__}"
        stamp = datetime.fromtimestamp(record.created).astimezone().strftime("%H:%M:%S")
        return scrub(f"{stamp} {record.levelname:<7} {record.getMessage()}{tail}")


def _short(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    return str(value)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the write (test capture swaps it)."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property
    def stream(self) -> Any:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        self._fixed = value


_CONSOLE_STREAM_TYPES = ("LoggingHandlerAddExecutionId", "_LoggingHandler", "LocalProxy")


def _writes_to_console(handler: logging.Handler) -> bool:
    """Whether a handler that is not ours writes to the process's stdout or stderr.

    A plain StreamHandler (what basicConfig and dictConfig install, functions-framework's
    included) is taken to write to the console whatever stream it holds: functions-framework's
    stream is a proxy that resolves to stderr only inside a request. Subclasses (a FileHandler,
    a test's capture handler) are judged by their stream.
    """
    if getattr(handler, "_moneypenny_sync", False) or not isinstance(handler, logging.StreamHandler):
        return False
    if type(handler) is logging.StreamHandler:
        return True
    if isinstance(handler, logging.FileHandler):
        return False
    stream = handler.__dict__.get("stream")
    consoles = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    return any(stream is c for c in consoles) or type(stream).__name__ in _CONSOLE_STREAM_TYPES


def configure(
    log_format: str = "auto",
    level: int = logging.INFO,
    stream: Any = None,
    secrets: Iterable[Any] = (),
) -> None:
    """Send every log line to stderr in JSON (in the cloud) or text (at a terminal).

    `level` is our own loggers' level; the libraries' (QUIET_LOGGERS) show their warnings only
    when it is INFO or lower (the function; a command's -v), else nothing.

    Idempotent: calling it again replaces the handler it installed before. Any other handler
    that writes to the console (functions-framework's, a library's basicConfig) is removed, so
    that no record is written twice or unscrubbed; handlers that write elsewhere (a file, a
    test's capture) stay.
    """
    if log_format == "auto":
        # K_SERVICE is set by Cloud Run, which runs 2nd-gen Cloud Functions.
        log_format = "json" if os.environ.get("K_SERVICE") else "text"
    register_secrets(secrets)
    handler = _StderrHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler._moneypenny_sync = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for logger in (root, logging.getLogger("lib")):
        for old in list(logger.handlers):
            if getattr(old, "_moneypenny_sync", False) or _writes_to_console(old):
                logger.removeHandler(old)
    for name in SERVER_LOGGERS:
        # gunicorn writes these in text through its own handlers: through ours instead.
        server = logging.getLogger(name)
        for old in list(server.handlers):
            if _writes_to_console(old):
                server.removeHandler(old)
        server.propagate = True
    # A logging.config.dictConfig run by someone else (functions-framework runs one when
    # LOG_EXECUTION_ID is set) disables every logger that existed before it: ours must write.
    for name, existing in list(logging.root.manager.loggerDict.items()):
        if isinstance(existing, logging.Logger) and (name == "lib" or name.startswith("lib.")):
            existing.disabled = False
    # On the root logger, so that a library's warnings come out in the same shape.
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    lib = logging.getLogger("lib")
    lib.setLevel(level)
    lib.propagate = True
    # The libraries' own lines (urllib3's "Retrying (…)", slack-sdk's "Failed to send a request")
    # are chatter a person at a terminal need not read: our message names what failed. They are
    # shown from -v on (level INFO, as the function logs), never below WARNING (see above).
    library_level = logging.WARNING if level <= logging.INFO else LIBRARIES_SILENT
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(library_level)
