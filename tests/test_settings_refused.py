"""Settings: every non-finite or overlong variable is refused at start, named, with at most 100 characters of its value."""

from __future__ import annotations

import pytest

from lib.errors import SettingsError
from lib.settings import Settings

BASE = {
    "MONEYPENNY_USERNAME": "user@example.com",
    "MONEYPENNY_PASSWORD": "pw",
    "SHEET_ID": "sheet",
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_CHANNEL": "C0123456",
}
NUMERIC = ["SLACK_MAX_LISTED", "HTTP_TIMEOUT_SECONDS", "LEASE_SECONDS", "RETENTION_DAYS", "RECONCILE_DAYS",
           "ALERT_REPEAT_MINUTES"]


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_non_finite_numbers_are_refused_naming_the_variable(name, value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BASE, name: value})
    assert name in str(caught.value)


def test_a_long_bad_reconcile_at_is_named_and_echoed_at_most_100_characters():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BASE, "RECONCILE_AT": "03:15" + "x" * 5000})
    message = str(caught.value)
    assert "RECONCILE_AT" in message and "such as 03:15" in message and "x" * 100 not in message and len(message) < 400


def test_a_long_bad_value_is_echoed_at_most_100_characters():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BASE, "LEASE_SECONDS": "9" * 50 + "x" * 5000})
    message = str(caught.value)
    assert "LEASE_SECONDS" in message and "x" * 51 not in message and len(message) < 400


def test_finite_numbers_still_pass():
    settings = Settings.from_env({**BASE, "HTTP_TIMEOUT_SECONDS": "2.5", "LEASE_SECONDS": "600"})
    assert settings.http_timeout_seconds == 2.5 and settings.lease_seconds == 600
