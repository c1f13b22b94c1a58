"""Settings: every variable of the README's configuration table, its default, good and bad values.

A bad value is one SettingsError that names the variable (and every other variable at fault),
never a secret's value.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lib.errors import PermanentError, SettingsError
from lib.settings import Secret, Settings

README = Path(__file__).resolve().parent.parent / "README.md"

REQUIRED = {
    "MONEYPENNY_USERNAME": "billing@example.com",
    "MONEYPENNY_PASSWORD": "pa55-word-of-the-account",
    "SHEET_ID": "1AbCdEfGh",
    "SLACK_BOT_TOKEN": "xoxb-0000-1111-secret",
    "SLACK_CHANNEL": "C0123456789",
}


def read(**env: str) -> Settings:
    return Settings.from_env({**REQUIRED, **env})


def refused(**env: str) -> str:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**REQUIRED, **env})
    return str(caught.value)


def plain(value):
    return value.reveal() if isinstance(value, Secret) else value


# (variable, attribute, default): the README's "default" column.
DEFAULTS = [
    ("MONEYPENNY_AUTH_URL", "moneypenny_auth_url", "https://api.moneypenny.com/auth/token"),
    ("MONEYPENNY_CHATS_URL", "moneypenny_chats_url", "https://test-api.moneypenny.com/clientlivechat/V3/Log"),
    ("MONEYPENNY_CALLS_URL", "moneypenny_calls_url", "https://api.moneypenny.com/clienttas/V2/Messages"),
    ("MONEYPENNY_SOURCES", "moneypenny_sources", ("chats",)),
    ("CHAT_TIMEZONE", "chat_timezone", ZoneInfo("Europe/London")),
    ("SHEET_TAB", "sheet_tab", "Chats"),
    ("CALLS_TAB", "calls_tab", "Calls"),
    ("SHEETS_API_URL", "sheets_api_url", "https://sheets.googleapis.com"),
    ("SLACK_API_URL", "slack_api_url", "https://slack.com/api/"),
    ("SLACK_MAX_LISTED", "slack_max_listed", 20),
    ("SLACK_CLAIM_BUTTONS", "slack_claim_buttons", True),
    ("STATE_STORE", "state_store", "firestore"),
    ("GOOGLE_CLOUD_PROJECT", "google_cloud_project", ""),
    ("FIRESTORE_DATABASE", "firestore_database", "(default)"),
    ("FIRESTORE_COLLECTION_PREFIX", "firestore_collection_prefix", "moneypenny_sync"),
    ("HTTP_TIMEOUT_SECONDS", "http_timeout_seconds", 30),
    ("LEASE_SECONDS", "lease_seconds", 600),
    ("RETENTION_DAYS", "retention_days", 30),
    ("RECONCILE_DAYS", "reconcile_days", 2),
    ("RECONCILE_AT", "reconcile_at", time(3, 15)),
    ("UNCLAIMED_REMINDER_AT", "unclaimed_reminder_at", None),
    ("ALERT_REPEAT_MINUTES", "alert_repeat_minutes", 60),
    ("LOG_FORMAT", "log_format", "auto"),
]

# (variable, value as set, attribute, value read).
GOOD = [
    ("MONEYPENNY_USERNAME", " billing@example.com ", "moneypenny_username", "billing@example.com"),
    ("MONEYPENNY_PASSWORD", "pa55 word", "moneypenny_password", "pa55 word"),
    ("MONEYPENNY_AUTH_URL", "http://127.0.0.1:8080/auth/token", "moneypenny_auth_url", "http://127.0.0.1:8080/auth/token"),
    ("MONEYPENNY_CHATS_URL", "https://api.moneypenny.com/clientlivechat/V3/Log", "moneypenny_chats_url",
     "https://api.moneypenny.com/clientlivechat/V3/Log"),
    ("MONEYPENNY_CALLS_URL", "http://127.0.0.1:8080/clienttas/V2/Messages", "moneypenny_calls_url",
     "http://127.0.0.1:8080/clienttas/V2/Messages"),
    ("MONEYPENNY_SOURCES", "chats", "moneypenny_sources", ("chats",)),
    ("MONEYPENNY_SOURCES", "calls", "moneypenny_sources", ("calls",)),
    ("MONEYPENNY_SOURCES", " chats, calls ", "moneypenny_sources", ("chats", "calls")),
    ("MONEYPENNY_SOURCES", "Calls,Chats", "moneypenny_sources", ("chats", "calls")),
    ("CALLS_TAB", "Phone messages", "calls_tab", "Phone messages"),
    ("CHAT_TIMEZONE", "America/New_York", "chat_timezone", ZoneInfo("America/New_York")),
    ("CHAT_TIMEZONE", "UTC", "chat_timezone", ZoneInfo("UTC")),
    ("SHEET_ID", " 1AbCdEfGh ", "sheet_id", "1AbCdEfGh"),
    ("SHEET_TAB", "Leads 2026", "sheet_tab", "Leads 2026"),
    ("SHEETS_API_URL", "http://127.0.0.1:9000", "sheets_api_url", "http://127.0.0.1:9000"),
    ("SLACK_BOT_TOKEN", "xoxb-1-2-3", "slack_bot_token", "xoxb-1-2-3"),
    ("SLACK_CHANNEL", "C0SALES", "slack_channel", "C0SALES"),
    ("SLACK_API_URL", "http://127.0.0.1:9001/api/", "slack_api_url", "http://127.0.0.1:9001/api/"),
    ("SLACK_ALERT_CHANNEL", "C0ALERTS", "slack_alert_channel", "C0ALERTS"),
    ("SLACK_MAX_LISTED", "1", "slack_max_listed", 1),
    ("SLACK_MAX_LISTED", " 40 ", "slack_max_listed", 40),
    ("SLACK_CLAIM_BUTTONS", " OFF ", "slack_claim_buttons", False),
    ("SLACK_CLAIM_BUTTONS", "on", "slack_claim_buttons", True),
    ("STATE_STORE", "firestore", "state_store", "firestore"),
    ("STATE_STORE", "sqlite:/tmp/state.sqlite3", "state_store", "sqlite:/tmp/state.sqlite3"),
    ("GOOGLE_CLOUD_PROJECT", "my-project", "google_cloud_project", "my-project"),
    ("FIRESTORE_DATABASE", "sync-db", "firestore_database", "sync-db"),
    ("FIRESTORE_COLLECTION_PREFIX", "mp_sync", "firestore_collection_prefix", "mp_sync"),
    ("HTTP_TIMEOUT_SECONDS", "0.1", "http_timeout_seconds", 0.1),
    ("HTTP_TIMEOUT_SECONDS", "2.5", "http_timeout_seconds", 2.5),
    ("HTTP_TIMEOUT_SECONDS", "300", "http_timeout_seconds", 300),
    ("LEASE_SECONDS", "90", "lease_seconds", 90),
    ("LEASE_SECONDS", "7200", "lease_seconds", 7200),
    ("RETENTION_DAYS", "5", "retention_days", 5),
    ("RETENTION_DAYS", "3650", "retention_days", 3650),
    ("RECONCILE_DAYS", "1", "reconcile_days", 1),
    ("RECONCILE_DAYS", "27", "reconcile_days", 27),
    ("RECONCILE_AT", "03:15", "reconcile_at", time(3, 15)),
    ("RECONCILE_AT", " 3:05 ", "reconcile_at", time(3, 5)),
    ("RECONCILE_AT", "00:00", "reconcile_at", time(0, 0)),
    ("RECONCILE_AT", "23:59", "reconcile_at", time(23, 59)),
    ("RECONCILE_AT", "off", "reconcile_at", None),
    ("RECONCILE_AT", "Off", "reconcile_at", None),
    ("UNCLAIMED_REMINDER_AT", "09:00", "unclaimed_reminder_at", time(9, 0)),
    ("UNCLAIMED_REMINDER_AT", " 7:30 ", "unclaimed_reminder_at", time(7, 30)),
    ("UNCLAIMED_REMINDER_AT", "OFF", "unclaimed_reminder_at", None),
    ("ALERT_REPEAT_MINUTES", "1", "alert_repeat_minutes", 1),
    ("ALERT_REPEAT_MINUTES", "10080", "alert_repeat_minutes", 10080),
    ("LOG_FORMAT", "json", "log_format", "json"),
    ("LOG_FORMAT", "text", "log_format", "text"),
    ("LOG_FORMAT", "auto", "log_format", "auto"),
]

# (variable, bad value, what the error says about it).
BAD = [
    ("MONEYPENNY_USERNAME", "", "MONEYPENNY_USERNAME is not set"),
    ("MONEYPENNY_USERNAME", "   ", "MONEYPENNY_USERNAME is not set"),
    ("MONEYPENNY_PASSWORD", "", "MONEYPENNY_PASSWORD is not set"),
    ("SHEET_ID", " ", "SHEET_ID is not set"),
    ("SLACK_BOT_TOKEN", "", "SLACK_BOT_TOKEN is not set"),
    ("SLACK_CHANNEL", "", "SLACK_CHANNEL is not set"),
    ("MONEYPENNY_AUTH_URL", "api.moneypenny.com/auth/token", "MONEYPENNY_AUTH_URL must be an http(s) URL with a host"),
    ("MONEYPENNY_AUTH_URL", "https://", "MONEYPENNY_AUTH_URL must be an http(s) URL with a host"),
    ("MONEYPENNY_CHATS_URL", "ftp://api.moneypenny.com/Log", "MONEYPENNY_CHATS_URL must be an http(s) URL with a host"),
    ("MONEYPENNY_CALLS_URL", "https://user:pw@api.moneypenny.com/x", "MONEYPENNY_CALLS_URL must not carry a user name"),
    ("MONEYPENNY_SOURCES", "emails", "MONEYPENNY_SOURCES must name feeds among chats, calls, separated by commas "
                                     "(such as chats,calls); no feed is called 'emails'"),
    ("MONEYPENNY_SOURCES", "chats,", "no feed is called ''"),
    ("MONEYPENNY_SOURCES", "chats;calls", "no feed is called 'chats;calls'"),
    ("SHEETS_API_URL", "file:///tmp/sheets", "SHEETS_API_URL must be an http(s) URL with a host"),
    ("SLACK_API_URL", "slack.com/api/", "SLACK_API_URL must be an http(s) URL with a host"),
    ("CHAT_TIMEZONE", "Mars/Olympus", "CHAT_TIMEZONE must be an IANA zone such as Europe/London, got 'Mars/Olympus'"),
    ("CHAT_TIMEZONE", "GMT+1", "CHAT_TIMEZONE must be an IANA zone"),
    ("CHAT_TIMEZONE", "../etc/passwd", "CHAT_TIMEZONE must be an IANA zone"),
    ("SLACK_MAX_LISTED", "0", "SLACK_MAX_LISTED must be from 1 to 40, got '0'"),
    ("SLACK_MAX_LISTED", "41", "SLACK_MAX_LISTED must be from 1 to 40, got '41'"),
    ("SLACK_MAX_LISTED", "ten", "SLACK_MAX_LISTED must be a whole number, got 'ten'"),
    ("SLACK_CLAIM_BUTTONS", "false", "SLACK_CLAIM_BUTTONS must be on (Claim buttons on the summaries and the reminder) "
     "or off (none: where the slack_actions function is not deployed), got 'false'"),
    ("SLACK_MAX_LISTED", "2.5", "SLACK_MAX_LISTED must be a whole number, got '2.5'"),
    ("STATE_STORE", "postgres", "STATE_STORE must be 'firestore' or 'sqlite:PATH', got 'postgres'"),
    ("STATE_STORE", "sqlite:", "STATE_STORE must be 'firestore' or 'sqlite:PATH', got 'sqlite:'"),
    ("FIRESTORE_COLLECTION_PREFIX", "a/b", "FIRESTORE_COLLECTION_PREFIX must not contain '/' or start with '__'"),
    ("FIRESTORE_COLLECTION_PREFIX", "__sync", "FIRESTORE_COLLECTION_PREFIX must not contain '/' or start with '__'"),
    ("HTTP_TIMEOUT_SECONDS", "0.05", "HTTP_TIMEOUT_SECONDS must be from 0.1 to 300, got '0.05'"),
    ("HTTP_TIMEOUT_SECONDS", "301", "HTTP_TIMEOUT_SECONDS must be from 0.1 to 300, got '301'"),
    ("HTTP_TIMEOUT_SECONDS", "fast", "HTTP_TIMEOUT_SECONDS must be a number, got 'fast'"),
    ("LEASE_SECONDS", "59", "LEASE_SECONDS must be from 60 to 7200, got '59'"),
    ("LEASE_SECONDS", "7201", "LEASE_SECONDS must be from 60 to 7200, got '7201'"),
    ("LEASE_SECONDS", "600s", "LEASE_SECONDS must be a whole number, got '600s'"),
    ("RETENTION_DAYS", "0", "RETENTION_DAYS must be from 1 to 3650, got '0'"),
    ("RETENTION_DAYS", "3651", "RETENTION_DAYS must be from 1 to 3650, got '3651'"),
    ("RECONCILE_DAYS", "0", "RECONCILE_DAYS must be from 1 to 31, got '0'"),
    ("RECONCILE_DAYS", "32", "RECONCILE_DAYS must be from 1 to 31, got '32'"),
    ("RECONCILE_AT", "24:00", "RECONCILE_AT must be a time of day on the 24-hour clock, HH:MM in CHAT_TIMEZONE "
     "(such as 03:15), or off for no daily reconcile, got '24:00'"),
    ("RECONCILE_AT", "3pm", "RECONCILE_AT must be a time of day on the 24-hour clock"),
    ("UNCLAIMED_REMINDER_AT", "9am", "UNCLAIMED_REMINDER_AT must be a time of day on the 24-hour clock, HH:MM in "
     "CHAT_TIMEZONE (such as 09:00), or off for no reminder of unclaimed leads, got '9am'"),
    ("UNCLAIMED_REMINDER_AT", "09:00:00", "UNCLAIMED_REMINDER_AT must be a time of day on the 24-hour clock"),
    ("RECONCILE_AT", "03:60", "RECONCILE_AT must be a time of day on the 24-hour clock"),
    ("RECONCILE_AT", "0315", "RECONCILE_AT must be a time of day on the 24-hour clock"),
    ("RECONCILE_AT", "03:15:00", "RECONCILE_AT must be a time of day on the 24-hour clock"),
    ("RECONCILE_AT", "15 3 * * *", "RECONCILE_AT must be a time of day on the 24-hour clock"),
    ("RECONCILE_AT", "never", "RECONCILE_AT must be a time of day on the 24-hour clock"),
    ("ALERT_REPEAT_MINUTES", "0", "ALERT_REPEAT_MINUTES must be from 1 to 10080, got '0'"),
    ("ALERT_REPEAT_MINUTES", "10081", "ALERT_REPEAT_MINUTES must be from 1 to 10080, got '10081'"),
    ("LOG_FORMAT", "xml", "LOG_FORMAT must be auto, json or text, got 'xml'"),
]


def readme_variables() -> set[str]:
    """Every variable named in the first column of the README's configuration table."""
    section = README.read_text(encoding="utf-8").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_the_tables_here_cover_every_variable_of_the_readme():
    variables = readme_variables()
    assert len(variables) >= 20, sorted(variables)  # the table was found and read
    assert variables == {v for v, *_ in GOOD}
    assert variables == set(REQUIRED) | {v for v, *_ in DEFAULTS} | {"SLACK_ALERT_CHANNEL"}


@pytest.mark.parametrize("variable, attribute, default", DEFAULTS, ids=[d[0] for d in DEFAULTS])
def test_an_unset_or_blank_variable_takes_its_default(variable, attribute, default):
    assert getattr(read(), attribute) == default
    assert getattr(read(**{variable: "  "}), attribute) == default


@pytest.mark.parametrize("variable, value, attribute, expected", GOOD, ids=[f"{g[0]}={g[1]!r}" for g in GOOD])
def test_a_good_value_is_read_and_trimmed(variable, value, attribute, expected):
    assert plain(getattr(read(**{variable: value}), attribute)) == expected


@pytest.mark.parametrize("variable, value, message", BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_a_bad_value_is_a_settings_error_naming_the_variable(variable, value, message):
    error = refused(**{variable: value})
    assert error.startswith("Invalid settings: ")
    assert message in error
    for secret in ("MONEYPENNY_USERNAME", "MONEYPENNY_PASSWORD", "SLACK_BOT_TOKEN"):
        assert REQUIRED[secret] not in error


def test_a_missing_required_variable_is_named_as_not_set():
    for variable in REQUIRED:
        env = {k: v for k, v in REQUIRED.items() if k != variable}
        with pytest.raises(SettingsError, match=f"{variable} is not set"):
            Settings.from_env(env)


def test_one_error_names_every_variable_at_fault_and_says_where_to_look():
    env = {"MONEYPENNY_PASSWORD": "pa55", "LEASE_SECONDS": "5", "LOG_FORMAT": "xml", "SLACK_API_URL": "nope"}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    error = caught.value
    for variable in ("MONEYPENNY_USERNAME", "SHEET_ID", "SLACK_BOT_TOKEN", "SLACK_CHANNEL",
                     "LEASE_SECONDS", "LOG_FORMAT", "SLACK_API_URL"):
        assert variable in str(error)
    assert "MONEYPENNY_PASSWORD" not in str(error) and "pa55" not in str(error)
    assert isinstance(error, PermanentError) and error.cause == "settings"
    assert "configuration table" in error.fix


def test_secrets_never_show_in_repr_or_describe():
    settings = read()
    shown = repr(settings) + str(settings.describe())
    for variable in ("MONEYPENNY_USERNAME", "MONEYPENNY_PASSWORD", "SLACK_BOT_TOKEN"):
        assert REQUIRED[variable] not in shown
    assert settings.describe()["moneypenny_password"] == "***"


def test_the_alert_channel_defaults_to_the_slack_channel():
    assert read().alert_channel == REQUIRED["SLACK_CHANNEL"]
    assert read(SLACK_ALERT_CHANNEL="C0ALERTS").alert_channel == "C0ALERTS"


@pytest.mark.parametrize("url, google", [
    ("https://sheets.googleapis.com", True),
    ("https://sheets.googleapis.com/", True),
    ("http://127.0.0.1:9000", False),
    ("https://googleapis.com.example.org", False),
])
def test_a_non_google_sheets_host_is_a_local_stand_in(url, google):
    assert read(SHEETS_API_URL=url).sheets_is_google is google


def test_a_sqlite_state_store_names_its_path():
    assert read(STATE_STORE="sqlite:/tmp/state.sqlite3").sqlite_path == "/tmp/state.sqlite3"
    assert read().sqlite_path is None
