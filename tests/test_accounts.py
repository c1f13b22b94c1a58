"""ACCOUNTS (lib/accounts.py): the account ids, each account's environment and Settings, and one
account's bad settings named by its own variable without stopping the others from loading."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from lib.accounts import (
    account_ids,
    env_for,
    load_accounts,
    settings_for,
    shared_logins,
    store_settings_for,
    stray_variables,
    wide_variables,
)
from lib.errors import SettingsError
from lib.settings import Settings

BASE = {
    "MONEYPENNY_USERNAME": "shared@example.com",
    "MONEYPENNY_PASSWORD": "shared-password-value",
    "SHEET_ID": "sheet-default",
    "SLACK_BOT_TOKEN": "xoxb-0000-1111-secret",
    "SLACK_CHANNEL": "C-DEFAULT",
    "STATE_STORE": "sqlite:/data/state.db",
}


@pytest.mark.parametrize("raw, ids", [
    (None, ()),
    ("", ()),
    ("  ", ()),
    ("north", ("north",)),
    ("north, east-london ,west2", ("north", "east-london", "west2")),
    ("a" * 30, ("a" * 30,)),
])
def test_accounts_lists_the_ids_in_order_and_none_when_unset(raw, ids):
    env = dict(BASE) if raw is None else {**BASE, "ACCOUNTS": raw}
    assert account_ids(env) == ids


@pytest.mark.parametrize("raw, shown", [
    ("North", "'North'"),
    ("north,,east", "''"),
    ("east_london", "'east_london'"),
    ("a" * 31, "'" + "a" * 31 + "'"),
    ("north,x y", "'x y'"),
])
def test_an_account_id_that_is_not_lower_case_letters_digits_or_hyphens_is_refused_naming_accounts(raw, shown):
    with pytest.raises(SettingsError) as caught:
        account_ids({**BASE, "ACCOUNTS": raw})
    assert str(caught.value).startswith("ACCOUNTS must be account ids")
    assert shown in str(caught.value)
    assert "north,east-london" in caught.value.fix


def test_a_long_bad_account_list_is_echoed_cut_at_100_characters():
    with pytest.raises(SettingsError) as caught:
        account_ids({"ACCOUNTS": "X" * 500})
    assert "X" * 100 + "…" in str(caught.value) and "X" * 101 not in str(caught.value)


def test_an_account_listed_twice_is_refused():
    with pytest.raises(SettingsError, match="ACCOUNTS lists 'north' more than once"):
        account_ids({"ACCOUNTS": "north,east,north"})


def test_an_accounts_own_variable_overlays_the_default_and_deployment_wide_ones_stay_shared():
    env = {**BASE, "ACCOUNTS": "north,east-london", "SHEET_ID__EAST_LONDON": "sheet-east", "SLACK_CHANNEL__NORTH": "C-NORTH",
           "CHAT_TIMEZONE__EAST_LONDON": "Europe/Paris", "STATE_STORE__NORTH": "sqlite:/elsewhere.db",
           "MONEYPENNY_PASSWORD__NORTH": "north-own-password", "MONEYPENNY_USERNAME__NORTH": "north@example.com"}
    north, east = settings_for(env, "north"), settings_for(env, "east-london")
    assert (north.account, north.sheet_id, north.slack_channel) == ("north", "sheet-default", "C-NORTH")
    assert (east.account, east.sheet_id, east.slack_channel) == ("east-london", "sheet-east", "C-DEFAULT")
    assert north.moneypenny_password.reveal() == "north-own-password"
    assert east.moneypenny_password.reveal() == "shared-password-value"
    assert (north.chat_timezone, east.chat_timezone) == (ZoneInfo("Europe/London"), ZoneInfo("Europe/Paris"))
    # STATE_STORE is deployment-wide: no account has a store of its own choosing.
    assert north.state_store == east.state_store == "sqlite:/data/state.db"
    assert env_for(env, "north")["SLACK_CHANNEL"] == "C-NORTH"
    assert env_for(env, "north")["STATE_STORE"] == "sqlite:/data/state.db"


def test_a_blank_own_variable_leaves_the_default():
    env = {**BASE, "ACCOUNTS": "north", "SHEET_ID__NORTH": "  "}
    assert settings_for(env, "north").sheet_id == "sheet-default"


def test_one_accounts_bad_settings_are_named_by_its_own_variable_and_the_others_still_load():
    env = {**BASE, "ACCOUNTS": "north,east-london,west", "SLACK_MAX_LISTED__NORTH": "400",
           "CHAT_TIMEZONE__WEST": "Mars/Base", "MONEYPENNY_USERNAME__NORTH": "north@example.com",
           "MONEYPENNY_USERNAME__WEST": "west@example.com"}
    del env["SHEET_ID"]
    env["SHEET_ID__EAST_LONDON"] = "sheet-east"
    loaded = load_accounts(env)
    assert list(loaded) == ["north", "east-london", "west"]
    north, east, west = loaded["north"], loaded["east-london"], loaded["west"]
    assert isinstance(east, Settings) and east.sheet_id == "sheet-east"
    assert isinstance(north, SettingsError)
    assert str(north).startswith("Account 'north': Invalid settings: ")
    assert "SLACK_MAX_LISTED__NORTH must be from 1 to 40, got '400'" in str(north)
    # Neither SHEET_ID nor SHEET_ID__NORTH is set: the account's own is what to set.
    assert "SHEET_ID__NORTH is not set" in str(north)
    assert isinstance(west, SettingsError)
    assert "CHAT_TIMEZONE__WEST must be an IANA zone" in str(west) and "SHEET_ID__WEST is not set" in str(west)
    for error in (north, west):
        assert "shared-password-value" not in str(error) and "xoxb-0000" not in str(error)


def test_a_wrong_default_is_named_by_its_bare_variable():
    env = {**BASE, "ACCOUNTS": "north", "CHAT_TIMEZONE": "Nowhere/City"}
    with pytest.raises(SettingsError) as caught:
        settings_for(env, "north")
    assert "CHAT_TIMEZONE must be an IANA zone" in str(caught.value)
    assert "CHAT_TIMEZONE__NORTH" not in str(caught.value)


def test_without_accounts_the_one_account_loads_as_before():
    loaded = load_accounts(BASE)
    assert loaded == {"": Settings.from_env(BASE)}
    assert settings_for(BASE, "").account == ""
    # Per-account variables mean nothing without ACCOUNTS.
    assert settings_for({**BASE, "SHEET_ID__NORTH": "x"}, "") == Settings.from_env(BASE)


def test_bad_accounts_stop_loading_with_one_error():
    with pytest.raises(SettingsError, match=r"^ACCOUNTS must be"):
        load_accounts({**BASE, "ACCOUNTS": "NORTH"})


def test_the_store_settings_of_an_account_name_its_store():
    env = {**BASE, "ACCOUNTS": "north", "CHAT_TIMEZONE__NORTH": "Europe/Paris"}
    settings = store_settings_for(env, "north")
    assert (settings.account, settings.chat_timezone, settings.sqlite_path) == (
        "north", ZoneInfo("Europe/Paris"), "/data/state.north.db")


@pytest.mark.parametrize("store, account, path", [
    ("sqlite:/data/state.db", "", "/data/state.db"),
    ("sqlite:/data/state.db", "north", "/data/state.north.db"),
    ("sqlite:/data/state.sqlite3", "east-london", "/data/state.east-london.sqlite3"),
    ("sqlite:state", "north", "state.north"),
    ("firestore", "north", None),
])
def test_each_account_has_its_own_sqlite_file_beside_the_one_state_store_names(store, account, path):
    env = {**BASE, "STATE_STORE": store, **({"ACCOUNTS": account} if account else {})}
    assert settings_for(env, account).sqlite_path == path


def test_a_per_account_variable_whose_suffix_names_no_account_is_stray():
    env = {**BASE, "ACCOUNTS": "north,east-london", "SHEET_ID__NORTH": "a", "SHEET_ID__NROTH": "b",
           "SLACK_CHANNEL__EAST_LONDON": "c", "SLACK_CHANNEL__EAST-LONDON": "d", "OTHER__NORTH": "e"}
    assert stray_variables(env) == ["SHEET_ID__NROTH", "SLACK_CHANNEL__EAST-LONDON"]


@pytest.mark.parametrize("logins, groups", [
    ({}, [("north", "east-london")]),  # the bare MONEYPENNY_USERNAME, both accounts' default
    ({"MONEYPENNY_USERNAME__NORTH": " Shared@Example.com"}, [("north", "east-london")]),  # its own, the default's login
    ({"MONEYPENNY_USERNAME__NORTH": "north@example.com"}, []),  # east alone takes the default
    ({"MONEYPENNY_USERNAME__NORTH": "a@x", "MONEYPENNY_USERNAME__EAST_LONDON": "a@x"}, [("north", "east-london")]),
])
def test_accounts_that_sign_in_with_one_moneypenny_login_are_found(logins, groups):
    env = {**BASE, "ACCOUNTS": "north,east-london,west", "MONEYPENNY_USERNAME__WEST": "west@example.com", **logins}
    assert shared_logins(env) == groups


def test_a_deployment_wide_setting_given_for_one_account_is_read_by_none():
    env = {**BASE, "ACCOUNTS": "north,east-london", "RECONCILE_AT__NORTH": "04:00", "STATE_STORE__EAST_LONDON": "x",
           "SLACK_SIGNING_SECRET__NORTH": "s", "SHEET_ID__NORTH": "own", "RECONCILE_AT__NROTH": "05:00",
           "ACCOUNT__NORTH": "x", "FEED_TABS__NORTH": "x", "MONEYPENNY_USERNAME__NORTH": "north@example.com"}
    assert wide_variables(env) == ["RECONCILE_AT__NORTH", "SLACK_SIGNING_SECRET__NORTH", "STATE_STORE__EAST_LONDON"]
    assert settings_for(env, "north").reconcile_at == settings_for(BASE, "").reconcile_at


@pytest.mark.parametrize("logins", [
    {},  # the bare MONEYPENNY_USERNAME, both accounts' default
    {"MONEYPENNY_USERNAME__NORTH": "Shared@Example.com "},  # its own, the default's login
])
def test_an_account_that_shares_its_moneypenny_login_does_not_load_naming_its_variable(logins):
    # A login's chat log has one cursor on Moneypenny's side, moved by every read: shared, each
    # account would get part of its chats (and the rest would land in the other's sheet).
    env = {**BASE, "ACCOUNTS": "north,east-london,west", "MONEYPENNY_USERNAME__WEST": "west@example.com", **logins}
    loaded = load_accounts(env)
    assert isinstance(loaded["west"], Settings)
    for account, other, variable in (("north", "east-london", "NORTH"), ("east-london", "north", "EAST_LONDON")):
        error = loaded[account]
        assert isinstance(error, SettingsError)
        assert f"MONEYPENNY_USERNAME__{variable}: account {other!r} signs in with the same Moneypenny login" in str(error)
        assert f"MONEYPENNY_USERNAME__{variable} and MONEYPENNY_PASSWORD__{variable}" in error.fix
        assert "example.com" not in str(error) + error.fix  # the login itself is never echoed
    # The public slack_actions function never signs in: it loads either account.
    assert settings_for(env, "north", signs_in=False).account == "north"
