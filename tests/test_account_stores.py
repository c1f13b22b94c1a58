"""Each account's own state store (open_store scoped by Settings.account), on SQLite and on the
Firestore emulator: its own token, journal, quarantine, run state and history; the store of a
deployment without ACCOUNTS laid out as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lib.accounts import settings_for
from lib.state import JournalEntry, RejectedItem, open_store
from lib.state.models import CachedToken

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ENV = {
    "MONEYPENNY_USERNAME": "u@example.com", "MONEYPENNY_PASSWORD": "password-value", "SHEET_ID": "s",
    "SLACK_BOT_TOKEN": "xoxb-token-value", "SLACK_CHANNEL": "C1", "GOOGLE_CLOUD_PROJECT": "demo-test",
    "FIRESTORE_COLLECTION_PREFIX": "acct", "MONEYPENNY_USERNAME__NORTH": "north@example.com",
    "MONEYPENNY_USERNAME__EAST_LONDON": "east@example.com",  # a login is never shared
}
ACCOUNTS = ("", "north", "east-london")


@pytest.fixture(params=["sqlite", "firestore"])
def env(request, tmp_path):
    """The environment of a deployment with ACCOUNTS=north,east-london on either store."""
    if request.param == "firestore":
        request.getfixturevalue("firestore_client")  # the emulator, emptied
        return {**ENV, "STATE_STORE": "firestore"}
    return {**ENV, "STATE_STORE": f"sqlite:{tmp_path / 'state.db'}"}


def fill(store, name: str) -> None:
    """Every kind of state an account has, each marked with its name."""
    store.put_token(CachedToken(f"token-{name}", T0 + timedelta(hours=1)))
    store.journal_add([JournalEntry(f"key-{name}", {"who": name}, T0, T0)])
    store.quarantine([RejectedItem(raw=f"raw-{name}", reason="unreadable", fetched_at=T0)])
    assert store.acquire_lease(f"run-{name}", T0, T0 + timedelta(minutes=10))
    store.record_run({"run_id": f"run-{name}", "started_at": T0.isoformat()})


def test_each_account_reads_only_its_own_state(env):
    stores = {}
    for account in ACCOUNTS:
        stores[account] = open_store(settings_for({**env, "ACCOUNTS": "north,east-london"}, account)
                                     if account else settings_for(env, ""))
    try:
        for account, store in stores.items():
            fill(store, account or "none")
        for account, store in stores.items():
            name = account or "none"
            assert store.get_token().value == f"token-{name}"
            assert [e.key for e in store.journal_pending()] == [f"key-{name}"]
            assert [item.raw for item in store.quarantine_list()] == [f"raw-{name}"]
            # Each has its own lease: all three were taken at once, none waited for another.
            assert store.get_lease().owner == f"run-{name}"
            assert [r["run_id"] for r in store.recent_runs()] == [f"run-{name}"]
    finally:
        for store in stores.values():
            store.close()


def test_an_account_added_later_starts_with_an_empty_store(env):
    first = open_store(settings_for({**env, "ACCOUNTS": "north"}, "north"))
    try:
        fill(first, "north")
    finally:
        first.close()
    later = open_store(settings_for({**env, "ACCOUNTS": "north,west"}, "west"))
    try:
        assert later.get_token() is None and later.journal_pending() == [] and later.get_lease() is None
        assert later.recent_runs() == [] and later.quarantine_list() == []
    finally:
        later.close()


def test_the_sqlite_store_of_each_account_is_its_own_file(tmp_path):
    env = {**ENV, "ACCOUNTS": "north,east-london", "STATE_STORE": f"sqlite:{tmp_path / 'state.db'}"}
    for account in ("north", "east-london"):
        open_store(settings_for(env, account)).close()
    open_store(settings_for({k: v for k, v in env.items() if k != "ACCOUNTS"}, "")).close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == [
        "state.db", "state.east-london.db", "state.north.db"]


def test_firestore_keeps_each_accounts_collections_under_its_account_document(firestore_client):
    env = {**ENV, "ACCOUNTS": "north", "STATE_STORE": "firestore"}
    for account, settings in (("north", settings_for(env, "north")), ("", settings_for(ENV | {"STATE_STORE": "firestore"}, ""))):
        store = open_store(settings)
        try:
            store.journal_add([JournalEntry(f"key-{account or 'none'}", {}, T0, T0)])
        finally:
            store.close()
    # The same collection id at the top (no ACCOUNTS, as before) and under the account's
    # document: a collection-group TTL policy or index exemption on `acct_journal` covers both.
    paths = sorted(snap.reference.path for snap in firestore_client.collection_group("acct_journal").stream())
    assert paths == ["acct_accounts/north/acct_journal/key-north", "acct_journal/key-none"]
