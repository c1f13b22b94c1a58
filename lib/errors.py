"""The errors the sync raises, sorted by what the operator or the scheduler should do.

`TransientError`: try again later (the function answers 503 so Cloud Scheduler retries).
`PermanentError`: a person must fix something; the message says what.
Messages never carry a secret or a visitor's personal data.
"""

from __future__ import annotations

from typing import Any

# A value shown in a message (a bad setting, an argument) is cut to this many characters: a
# pasted file or a runaway variable must not flood the terminal or the log (README's promise).
SHOWN_VALUE_LIMIT = 100


def cut(value: object, limit: int = SHOWN_VALUE_LIMIT) -> str:
    """At most `limit` characters of a value a message shows, "…" marking a cut: the one helper
    every message that echoes a setting or an argument uses (as `{cut(value)!r}`)."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


class SyncError(Exception):
    """Base of every error this package raises on purpose."""

    #: a short machine-readable cause, used for alert de-duplication and the JSON reply
    cause: str = "sync_error"
    #: what the operator should do about it (empty when retrying is enough)
    fix: str = ""

    def __init__(self, message: str, *, cause: str | None = None, fix: str | None = None):
        super().__init__(message)
        if cause is not None:
            self.cause = cause
        if fix is not None:
            self.fix = fix


class TransientError(SyncError):
    """A failure that a later attempt may not meet (429, 5xx, timeouts, contention)."""

    cause = "transient"


class PermanentError(SyncError):
    """A failure that repeats until a person changes something."""

    cause = "permanent"


class SettingsError(PermanentError):
    """A setting is missing or malformed; the message names the variable."""

    cause = "settings"


class MoneypennyError(TransientError):
    """Moneypenny answered with an error, a bad body, or not at all."""

    cause = "moneypenny"


class MoneypennyNoAnswer(MoneypennyError):
    """A Moneypenny call got no answer (timeout, dropped connection): it may still be running."""


class MoneypennyAuthError(PermanentError):
    """Moneypenny refused the credentials (or a fresh token) ."""

    cause = "moneypenny_auth"
    fix = "Check MONEYPENNY_USERNAME and MONEYPENNY_PASSWORD (the billing-account login)."


class SheetError(TransientError):
    """The Sheets API failed in a way that may pass."""

    cause = "sheets"


class SheetNoAnswer(SheetError):
    """A Sheets request got no answer (timeout, dropped connection): it may still land."""


class SheetAccessError(PermanentError):
    """The sheet does not exist or this identity may not edit it."""

    cause = "sheets_access"


class SheetFullError(PermanentError):
    """The spreadsheet holds as many cells as Google allows (10,000,000): no row can be added."""

    cause = "sheets_full"
    fix = ("Archive old rows (copy them to another spreadsheet, then delete them here, or delete tabs you no "
           "longer need), or point SHEET_ID at a new spreadsheet; the rows wait in the journal and the next run "
           "writes them.")


class HeaderMismatchError(PermanentError):
    """Row 1 of the worksheet holds a header that is not ours."""

    cause = "sheets_header"


class SlackError(TransientError):
    """Slack failed in a way that may pass (`error` holds Slack's code, if it answered one)."""

    cause = "slack"

    def __init__(self, message: str, *, error: str = "", cause: str | None = None, fix: str | None = None):
        super().__init__(message, cause=cause, fix=fix)
        self.error = error


class SlackConfigError(PermanentError):
    """Slack refused the token or the channel (`error` holds Slack's code)."""

    cause = "slack_config"

    def __init__(self, message: str, *, error: str = "", cause: str | None = None, fix: str | None = None):
        super().__init__(message, cause=cause, fix=fix)
        self.error = error


class SlackMessageRejected(PermanentError):
    """Slack refused a message for its shape or size (`error` holds Slack's code)."""

    cause = "slack_message"

    def __init__(self, message: str, *, error: str, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.error = error


class StateStoreError(TransientError):
    """The state store (Firestore or SQLite) failed."""

    cause = "state_store"


class LeaseLost(TransientError):
    """This run no longer holds the run lease (another run took it, or took it and gave it back):
    it must not write to the sheet or Slack; what it carries waits in the journal."""

    cause = "lease_lost"


class InvalidChat(ValueError):
    """A chat item that cannot be read; the message names the field, never its value."""


class StateStoreAccessError(PermanentError):
    """The state store refused this identity or does not exist (a person must grant or create it)."""

    cause = "state_store_access"


class StateStoreMissing(StateStoreAccessError):
    """A read-only command found no state store where the settings point (it creates none)."""

    cause = "state_store_missing"
