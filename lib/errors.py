"""Every error the sync raises on purpose, by service, with what to do as a second base.

Each outside system has one base (`MoneypennyError`, `SheetError`, `SlackError`,
`StateStoreError`; `SettingsError` for the settings), so `except SheetError` catches anything
the sheet did. What the operator or the scheduler should do is the second base, as in dlt's
`DestinationTransientException(DestinationException, TransientException)`:

`TransientError`: try again later (the function answers 503 so Cloud Scheduler retries); each
service's transient kind is its `...Unavailable` (`...NoAnswer` when the call may still land).
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


class UnknownAccount(SettingsError):
    """A Claim button names an account ACCOUNTS does not list (removed since, or a deployment
    that became several accounts): its clicker is told, nothing is written."""


class BadRequest(PermanentError):
    """The HTTP request to the function asks for something it cannot do (a bad mode or date)."""

    cause = "bad_request"


class RunFailed(SyncError):
    """Raised by Syncer.run when a step failed; carries the report and the first error.

    `report` is the run's lib.sync.RunReport (typed Any: this foundation module imports no layer
    above it)."""

    def __init__(self, report: Any, error: SyncError):
        super().__init__(str(error), cause=error.cause, fix=error.fix)
        self.report = report
        self.error = error
        self.transient = isinstance(error, TransientError)


# -- Moneypenny ---------------------------------------------------------------------------------

class MoneypennyError(SyncError):
    """Anything Moneypenny did: it answered with an error or a bad body, did not answer, or refused."""

    cause = "moneypenny"


class MoneypennyUnavailable(MoneypennyError, TransientError):
    """Moneypenny answered with an error, a bad body, or not at all: a later call may pass."""


class MoneypennyNoAnswer(MoneypennyUnavailable):
    """A Moneypenny call got no answer (timeout, dropped connection): it may still be running."""


class MoneypennyTokenUnavailable(MoneypennyUnavailable):
    """The token endpoint (MONEYPENNY_AUTH_URL) did not answer, or answered with an error or no
    token: whichever feed was being read, that endpoint is the one to check."""


class MoneypennyAuthError(MoneypennyError, PermanentError):
    """Moneypenny refused the credentials (or a fresh token) ."""

    cause = "moneypenny_auth"
    fix = "Check MONEYPENNY_USERNAME and MONEYPENNY_PASSWORD (the billing-account login)."


class InvalidItem(ValueError):
    """A source's item (a chat, a call message) that cannot be read; the message names the field,
    never its value."""


# -- the sheet ----------------------------------------------------------------------------------

class SheetError(SyncError):
    """Anything the Sheets API did."""

    cause = "sheets"


class SheetUnavailable(SheetError, TransientError):
    """The Sheets API failed in a way that may pass."""


class NoAnswer(TransientError):
    """A write to a destination got no answer (timeout, dropped connection): it may still land,
    so an exactly-once delivery leaves its items in flight until it has surely ended."""


class SheetNoAnswer(SheetUnavailable, NoAnswer):
    """A Sheets request got no answer (timeout, dropped connection): it may still land."""


class SheetAccessError(SheetError, PermanentError):
    """The sheet does not exist or this identity may not edit it."""

    cause = "sheets_access"


class SheetFullError(SheetError, PermanentError):
    """The spreadsheet holds as many cells as Google allows (10,000,000): no row can be added."""

    cause = "sheets_full"
    fix = ("Archive old rows (copy them to another spreadsheet, then delete them here, or delete tabs you no "
           "longer need), or point SHEET_ID at a new spreadsheet; the rows wait in the journal and the next run "
           "writes them.")


class HeaderMismatchError(SheetError, PermanentError):
    """Row 1 of the worksheet holds a header that is not ours."""

    cause = "sheets_header"


# -- Slack --------------------------------------------------------------------------------------

class SlackError(SyncError):
    """Anything Slack did; `error` holds Slack's code when it answered one (`invalid_auth`, ...)."""

    cause = "slack"

    def __init__(self, message: str, *, error: str = "", cause: str | None = None, fix: str | None = None):
        super().__init__(message, cause=cause, fix=fix)
        self.error = error


class SlackUnavailable(SlackError, TransientError):
    """Slack failed in a way that may pass."""


class SlackConfigError(SlackError, PermanentError):
    """Slack refused the token or the channel."""

    cause = "slack_config"


class SlackMessageRejected(SlackError, PermanentError):
    """Slack refused a message for its shape or size."""

    cause = "slack_message"


# -- the state store ----------------------------------------------------------------------------

class StateStoreError(SyncError):
    """Anything the state store (Firestore or SQLite) did."""

    cause = "state_store"


class StateStoreUnavailable(StateStoreError, TransientError):
    """The state store failed in a way that may pass."""


class StateStoreAccessError(StateStoreError, PermanentError):
    """The state store refused this identity or does not exist (a person must grant or create it)."""

    cause = "state_store_access"


class StateStoreMissing(StateStoreAccessError):
    """A read-only command found no state store where the settings point (it creates none)."""

    cause = "state_store_missing"


class LeaseLost(TransientError):
    """This run no longer holds the run lease (another run took it, or took it and gave it back):
    it must not write to the sheet or Slack; what it carries waits in the journal."""

    cause = "lease_lost"


class DocumentError(ValueError):
    """A stored named document does not have the shape its class reads (names the field, not the value)."""


class UnknownJournalField(ValueError):
    """`journal_update` was given a field that no journal entry has (a programming error)."""


# -- the Slack actions entry point (main.slack_actions, #23) ----------------------------------------


class ClaimColumnsMissing(SheetError, PermanentError):
    """A tab has no Owner or Claimed at column in row 1 (the next run adds them when missing)."""

    cause = "claim_columns"


class RequestRefused(SyncError):
    """A request to the public Slack actions entry point that is not Slack's for this app and
    workspace (bad or missing signature, too old, too large, another team or app): 401."""

    cause = "unauthorized"


class MalformedAction(SyncError):
    """A signed request from Slack whose payload this function cannot read (no button of ours)."""

    cause = "malformed_action"
