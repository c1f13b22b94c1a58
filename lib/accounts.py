"""Several Moneypenny accounts in one deployment (ACCOUNTS), each with its own settings.

`ACCOUNTS=north,east-london` names the accounts (ids of lower-case letters, digits and hyphens,
1 to 30 characters); unset or blank, the deployment is one account, exactly as before (its
Settings.account is "" and its store is laid out as before). Each per-account setting
(PER_ACCOUNT) may be given for one account as `NAME__NORTH`, `NAME__EAST_LONDON` (the id in upper
case, hyphens as underscores); the bare NAME is every account's default. Every other setting is
deployment-wide. One account's bad settings never stop another's from loading: each account's
Settings, or the SettingsError that names its variable at fault (`SHEET_ID__NORTH`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import fields, replace

from .errors import SettingsError, cut
from .settings import Settings, tab_settings

ACCOUNTS_VARIABLE = "ACCOUNTS"
# The account id as the function's `?account=` and the command line's `--account` give it.
ACCOUNT_ID = re.compile(r"[a-z0-9-]{1,30}")
# The settings an account may have of its own (besides each feed's tab setting, tab_settings()).
PER_ACCOUNT = (
    "MONEYPENNY_USERNAME", "MONEYPENNY_PASSWORD", "MONEYPENNY_SOURCES", "CHAT_TIMEZONE",
    "SHEET_ID", "SHEET_TAB", "CALLS_TAB", "SLACK_BOT_TOKEN", "SLACK_CHANNEL", "SLACK_ALERT_CHANNEL",
    "SLACK_MAX_LISTED", "SLACK_CLAIM_BUTTONS", "UNCLAIMED_REMINDER_AT",
)
LOGIN = "MONEYPENNY_USERNAME"


def per_account_names() -> tuple[str, ...]:
    """Every setting an account may give for itself: PER_ACCOUNT and every feed's tab setting."""
    return tuple(dict.fromkeys((*PER_ACCOUNT, *tab_settings())))


def suffix(account: str) -> str:
    """The variable-name suffix of an account: `east-london` -> `EAST_LONDON`."""
    return account.upper().replace("-", "_")


def own_name(name: str, account: str) -> str:
    """The name of one account's own value of a setting: `SHEET_ID__NORTH`."""
    return f"{name}__{suffix(account)}"


def account_ids(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The accounts ACCOUNTS names, in its order; empty when it is unset or blank (one account,
    as before). SettingsError (naming ACCOUNTS) for an id that is not `[a-z0-9-]{1,30}` or one
    listed twice."""
    env = os.environ if env is None else env
    raw = (env.get(ACCOUNTS_VARIABLE) or "").strip()
    if not raw:
        return ()
    ids = [part.strip() for part in raw.split(",")]
    bad = [part for part in ids if not ACCOUNT_ID.fullmatch(part)]
    if bad:
        raise SettingsError(
            f"ACCOUNTS must be account ids separated by commas, each 1 to 30 lower-case letters, digits or "
            f"hyphens (such as north,east-london); {', '.join(repr(cut(part)) for part in bad[:5])} is not one",
            fix="Set ACCOUNTS to ids such as north,east-london (or leave it unset for one account).")
    twice = sorted({part for part in ids if ids.count(part) > 1})
    if twice:
        raise SettingsError(f"ACCOUNTS lists {', '.join(repr(part) for part in twice)} more than once",
                            fix="Name each account once in ACCOUNTS.")
    return tuple(ids)


def env_for(env: Mapping[str, str] | None, account: str) -> dict[str, str]:
    """The environment as `account` sees it: each per-account `NAME__<ID>` that is set (not
    blank) overlays NAME. For "" (no ACCOUNTS) the environment as it is."""
    env = os.environ if env is None else env
    out = dict(env)
    if not account:
        return out
    for name in per_account_names():
        own = env.get(own_name(name, account))
        if own is not None and own.strip():
            out[name] = own
    return out


def _names_for(env: Mapping[str, str], account: str) -> dict[str, str]:
    # How a problem names a per-account variable: the account's own when it is the one given,
    # or when neither is (the account's own is what to set); the bare name when the default is at fault.
    names: dict[str, str] = {}
    for name in per_account_names():
        own = own_name(name, account)
        if (env.get(own) or "").strip() or not (env.get(name) or "").strip():
            names[name] = own
    return names


def _for_account(exc: SettingsError, account: str) -> SettingsError:
    return SettingsError(f"Account {account!r}: {exc}", fix=exc.fix)


def _login(env: Mapping[str, str], account: str) -> str:
    # The Moneypenny username an account signs in with (its own, else the default), compared
    # without case or surrounding blanks.
    own = (env.get(own_name(LOGIN, account)) or "").strip()
    return (own or (env.get(LOGIN) or "").strip()).casefold()


def shared_logins(env: Mapping[str, str] | None = None) -> list[tuple[str, ...]]:
    """The groups of accounts of ACCOUNTS that sign in to Moneypenny with one username (a bare
    MONEYPENNY_USERNAME that several accounts take as their default, or one login given to two),
    in ACCOUNTS' order. A login's chat log has one cursor, on Moneypenny's side, that every read
    moves: accounts sharing it would each get part of its chats, each in its own sheet."""
    env = os.environ if env is None else env
    groups: dict[str, list[str]] = {}
    for account in account_ids(env):
        login = _login(env, account)
        if login:
            groups.setdefault(login, []).append(account)
    return [tuple(group) for group in groups.values() if len(group) > 1]


def settings_for(env: Mapping[str, str] | None, account: str, signs_in: bool = True) -> Settings:
    """The Settings of one account ("" for a deployment without ACCOUNTS). SettingsError names
    the account and its variable at fault (`SHEET_ID__NORTH`, or the bare name when every
    account's default is wrong), and refuses an account whose Moneypenny login another account
    signs in with too (shared_logins: a login is never shared). `signs_in` False: for a caller
    that never signs in to Moneypenny (the public slack_actions function)."""
    env = os.environ if env is None else env
    if not account:
        return Settings.from_env(env)
    try:
        settings = replace(Settings.from_env(env_for(env, account), names=_names_for(env, account)), account=account)
    except SettingsError as exc:
        raise _for_account(exc, account) from None
    others = [other for group in shared_logins(env) if account in group for other in group if other != account]
    if signs_in and others:
        variable, many = own_name(LOGIN, account), len(others) > 1
        raise SettingsError(
            f"Account {account!r}: {variable}: account{'s' if many else ''} {', '.join(map(repr, others))} "
            f"sign{'' if many else 's'} in with the same Moneypenny login, and a login is never shared "
            "(Moneypenny moves its one cursor on every read: each account would get only part of its chats)",
            fix=f"Give each account its own Moneypenny login: {variable} and "
                f"{own_name('MONEYPENNY_PASSWORD', account)} (the bare {LOGIN} is every account's default).")
    return settings


def read_for(env: Mapping[str, str] | None, account: str,
             reader: Callable[[Mapping[str, str], Mapping[str, str] | None], Settings]) -> Settings:
    """One account's Settings as `reader(environment, names)` reads them (a command that needs
    only some settings); a SettingsError names the account and its variable, as settings_for's."""
    env = os.environ if env is None else env
    if not account:
        return reader(env, None)
    try:
        return replace(reader(env_for(env, account), _names_for(env, account)), account=account)
    except SettingsError as exc:
        raise _for_account(exc, account) from None


def store_settings_for(env: Mapping[str, str] | None, account: str) -> Settings:
    """Settings.for_store for one account: what reading its state store needs, nothing more."""
    env = os.environ if env is None else env
    if not account:
        return Settings.for_store(env)
    try:
        return replace(Settings.for_store(env_for(env, account), names=_names_for(env, account)), account=account)
    except SettingsError as exc:
        raise _for_account(exc, account) from None


def load_accounts(env: Mapping[str, str] | None = None) -> dict[str, Settings | SettingsError]:
    """Every account's Settings, or the SettingsError of an account whose settings are wrong (it
    never stops the others loading), by id in ACCOUNTS' order; without ACCOUNTS the one account
    under "". SettingsError only when ACCOUNTS itself is wrong."""
    env = os.environ if env is None else env
    loaded: dict[str, Settings | SettingsError] = {}
    for account in account_ids(env) or ("",):
        try:
            loaded[account] = settings_for(env, account)
        except SettingsError as exc:
            loaded[account] = exc
    return loaded


def stray_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """Per-account variables whose suffix names no account in ACCOUNTS (a typo such as
    SHEET_ID__NROTH is read by no account), sorted."""
    env = os.environ if env is None else env
    suffixes = {suffix(account) for account in account_ids(env)}
    names = per_account_names()
    stray = []
    for variable in env:
        base, sep, tail = variable.partition("__")
        if sep and base in names and tail not in suffixes:
            stray.append(variable)
    return sorted(stray)


# Deployment-wide settings that are not fields of Settings (the public slack_actions function's).
_WIDE_ELSEWHERE = ("SLACK_SIGNING_SECRET", "SLACK_TEAM_ID", "SLACK_APP_ID")


def wide_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """Deployment-wide settings given for one account (`RECONCILE_AT__NORTH`, `STATE_STORE__NORTH`):
    every account reads the bare name, none reads these, sorted."""
    env = os.environ if env is None else env
    suffixes = {suffix(account) for account in account_ids(env)}
    wide = ({field.name.upper() for field in fields(Settings)} | set(_WIDE_ELSEWHERE)) - set(per_account_names())
    wide -= {"ACCOUNT", "FEED_TABS"}  # not variables
    return sorted(variable for variable in env
                  if (parts := variable.partition("__"))[1] and parts[0] in wide and parts[2] in suffixes)


def unknown_account(given: str, known: tuple[str, ...]) -> str:
    """The message for an account id that ACCOUNTS does not name (the value cut at 100 characters)."""
    return f"no account {cut(given)!r}; ACCOUNTS names {', '.join(known)}"
