"""The error hierarchy: one base per service, what to do (retry or fix) as the second base."""

import pytest

from lib import errors
from lib.errors import PermanentError, SyncError, TransientError

# (error class, its service's base, retried by the scheduler)
TABLE = [
    (errors.MoneypennyUnavailable, errors.MoneypennyError, True),
    (errors.MoneypennyNoAnswer, errors.MoneypennyError, True),
    (errors.MoneypennyAuthError, errors.MoneypennyError, False),
    (errors.SheetUnavailable, errors.SheetError, True),
    (errors.SheetNoAnswer, errors.SheetError, True),
    (errors.SheetAccessError, errors.SheetError, False),
    (errors.SheetFullError, errors.SheetError, False),
    (errors.HeaderMismatchError, errors.SheetError, False),
    (errors.SlackUnavailable, errors.SlackError, True),
    (errors.SlackConfigError, errors.SlackError, False),
    (errors.SlackMessageRejected, errors.SlackError, False),
    (errors.StateStoreUnavailable, errors.StateStoreError, True),
    (errors.StateStoreAccessError, errors.StateStoreError, False),
    (errors.StateStoreMissing, errors.StateStoreError, False),
    (errors.SettingsError, errors.SettingsError, False),
]


@pytest.mark.parametrize(("kind", "service", "retried"), TABLE, ids=[k.__name__ for k, _, _ in TABLE])
def test_each_error_is_caught_by_its_service_base_and_says_whether_a_retry_helps(kind, service, retried):
    exc = kind("the message")
    with pytest.raises(service):
        raise exc
    assert isinstance(exc, SyncError)
    assert isinstance(exc, TransientError) is retried
    assert isinstance(exc, PermanentError) is not retried
    # The cause names the service (alerts de-duplicate on it), never just "transient"/"permanent".
    assert exc.cause not in ("transient", "permanent", "sync_error")


@pytest.mark.parametrize("kind", [errors.SlackUnavailable, errors.SlackConfigError, errors.SlackMessageRejected])
def test_every_slack_error_carries_slacks_code(kind):
    assert kind("refused", error="channel_not_found").error == "channel_not_found"
    assert kind("no answer").error == ""


def test_the_unavailable_kind_of_moneypenny_is_not_its_refused_login():
    """What the fetch's fallback to a window read catches (MoneypennyUnavailable) never includes
    a refused login: a window read would be refused too, and the run must say so at once."""
    assert not issubclass(errors.MoneypennyAuthError, errors.MoneypennyUnavailable)
    assert issubclass(errors.MoneypennyNoAnswer, errors.MoneypennyUnavailable)
