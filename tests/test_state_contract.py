"""The StateStore contract, run against SqliteStore and FirestoreStore (on the emulator)."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lib.errors import PermanentError, StateStoreAccessError, StateStoreUnavailable, TransientError
from lib.settings import Secret, Settings
from lib.sources.chats import HEADER, chat_row, parse_chat
from lib.state import (
    DONE,
    INFLIGHT,
    PENDING,
    CachedToken,
    InflightBatch,
    JournalEntry,
    RejectedItem,
    UnknownJournalField,
    open_store,
)
from lib.state.documents import (
    ALERTS_DOC,
    BACKFILL_DOC,
    CURSOR_DOC,
    SCHEDULE_DOC,
    SCHEDULES_KEPT,
    AlertState,
    BackfillDoc,
    CursorDoc,
    DocumentError,
    FetchIntent,
    ScheduleDoc,
)
from lib.state.models import Lease, delivered, expiry_for
from lib.state.run_state import PARTS, RUNS_KEPT
from lib.state.sqlite.store import SqliteStore
from tests.conftest import FIRESTORE_PREFIX
from tests.conftest import _emulator_client as emulator_client
from tests.harness import Clock

UTC = UTC
T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
UK = ZoneInfo("Europe/London")
ROOT = Path(__file__).resolve().parent.parent


def settings(**overrides) -> Settings:
    return Settings(
        moneypenny_username=Secret("u"), moneypenny_password=Secret("p"), sheet_id="s",
        slack_bot_token=Secret("x"), slack_channel="c", **overrides,
    )


def entry(key: str, minutes: int = 0, sheet: str = PENDING, slack: str = PENDING, sheet_batch: str | None = None,
          **fields) -> JournalEntry:
    """An entry delivered (or not) to the two built-in destinations, as the run writes it."""
    return JournalEntry(
        key=key,
        item={"chatTime": "2026-11-20T09:30:00", "visitor": f"Visitor {key}", "lines": [1, "two"]},
        item_time=T0 + timedelta(minutes=minutes),
        fetched_at=T0 + timedelta(hours=1),
        states={"sheet": sheet, "slack": slack},
        labels={} if sheet_batch is None else {"sheet": sheet_batch},
        **fields,
    )


def states(sheet: str = PENDING, slack: str = PENDING) -> dict[str, str]:
    return {"sheet": sheet, "slack": slack}


@pytest.fixture
def store_clock():
    """The stores' own clock, moved by hand (the lease is judged by it, never by the caller's)."""
    return Clock(T0)


@pytest.fixture(params=["sqlite", "firestore"])
def make_store(request, tmp_path, store_clock):
    """Make store objects that share one database (the first is the fixture's own), all on
    `store_clock`."""
    made = []
    if request.param == "sqlite":
        first = request.getfixturevalue("sqlite_store")

        def make():
            store = first if not made else SqliteStore(first.path)
            store.clock = store_clock
            made.append(store)
            return store
    else:
        from lib.state.firestore.store import FirestoreStore

        first_client = request.getfixturevalue("firestore_client")

        def make():
            store = FirestoreStore(first_client if not made else emulator_client(), "test", clock=store_clock)
            made.append(store)
            return store

    yield make
    for store in made[1:]:
        store.close()


@pytest.fixture
def store(make_store):
    return make_store()


@pytest.fixture
def fs_stores(firestore_client):
    """Two FirestoreStores on one emptied emulator database, with separate clients."""
    from lib.state.firestore.store import FirestoreStore

    ours, theirs = FirestoreStore(firestore_client, "test"), FirestoreStore(emulator_client(), "test")
    yield ours, theirs
    theirs.close()


def is_firestore(store) -> bool:
    return type(store).__name__ == "FirestoreStore"


# -- token cache ----------------------------------------------------------------------------------


def test_token_put_get_clear(store):
    assert store.get_token() is None
    store.put_token(CachedToken("tok-1", T0))
    store.put_token(CachedToken("tok-2", T0 + timedelta(hours=1)))
    assert store.get_token() == CachedToken("tok-2", T0 + timedelta(hours=1))
    store.clear_token()
    assert store.get_token() is None
    store.clear_token()  # clearing nothing is fine


# -- journal --------------------------------------------------------------------------------------


def test_journal_add_is_insert_if_absent(store):
    assert store.journal_add([entry("a"), entry("b", sheet=DONE)]) == ["a", "b"]
    again = entry("a", minutes=5, sheet=DONE, slack=DONE, sheet_batch="x")
    again.item = {"changed": True}
    assert store.journal_add([again, entry("c"), entry("c")]) == ["c"]
    assert store.journal_add([]) == []
    got = store.journal_get(["a", "b", "c"])
    assert got["a"] == entry("a")
    assert got["b"].state("sheet") == DONE


def test_journal_add_many_in_batches(store):
    keys = [f"k{i:04d}" for i in range(1200)]
    before = store.round_trips
    assert store.journal_add([entry(k, minutes=i % 7) for i, k in enumerate(keys)]) == keys
    assert len(store.journal_pending()) == 1200
    assert set(store.journal_get(keys)) == set(keys)
    assert store.round_trips > before
    assert store.journal_add([entry(k) for k in keys[1100:]] + [entry("new")]) == ["new"]


def test_journal_keeps_awkward_chats_and_keys(store):
    chat = {"a.b": 1, "": "empty key", "big": 2**70, "grid": [[1, 2], [3]], "ünï": "cödé", "f": 1.5,
            "__x__": None, "deep": {"l": [{"m": [True, None]}]}}
    keys = ["a/b", "__weird__", ".", "x" * 2000, "ok key"]
    store.journal_add([JournalEntry(k, chat, T0, T0) for k in keys])
    got = store.journal_get(keys)
    assert set(got) == set(keys)
    assert all(e.item == chat for e in got.values())
    assert [e.key for e in store.journal_pending()] == sorted(keys)


def test_journal_pending_order(store):
    store.journal_add([
        entry("m", minutes=2), entry("z", minutes=1), entry("a", minutes=1),
        entry("done", minutes=0, sheet=DONE, slack=DONE), entry("first", minutes=-3, sheet=DONE),
    ])
    # A non-UTC offset for the same instant must sort as that instant.
    later = entry("b", minutes=0)
    later.item_time = (T0 + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=-5)))
    store.journal_add([later])
    assert [e.key for e in store.journal_pending()] == ["first", "a", "b", "z", "m"]


def test_journal_update_and_delivery(store):
    store.journal_add([entry("a"), entry("b", minutes=1), entry("c", minutes=2)])
    store.journal_update(["a", "b"], states=states(INFLIGHT), labels={"sheet": "batch-1"})
    store.journal_update(["a", "b", "missing"], states=states(DONE), labels={"sheet": "batch-1"})
    assert [e.key for e in store.journal_pending()] == ["a", "b", "c"]
    store.journal_update(["a"], states=states(DONE, DONE), expires_at=T0 + timedelta(days=30))
    store.journal_update(["c"], states=states(PENDING, DONE))
    pending = store.journal_pending()
    assert [e.key for e in pending] == ["b", "c"]
    assert pending[0].state("sheet") == DONE and pending[0].label("sheet") == "batch-1"
    assert pending[1].state("sheet") == PENDING and pending[1].state("slack") == DONE
    a = store.journal_get(["a"])["a"]
    assert a.delivered and a.expires_at == T0 + timedelta(days=30) and a.labels == {}
    store.journal_update(["a"], states=states(PENDING, DONE), expires_at=None)
    a = store.journal_get(["a"])["a"]
    assert (a.state("sheet"), a.expires_at, a.label("sheet")) == (PENDING, None, None)
    assert [e.key for e in store.journal_pending()] == ["a", "b", "c"]
    # A mapping may name any destination: pending while one it names is not done.
    store.journal_update(["b"], states={**states(DONE, DONE), "webhook": PENDING})
    store.journal_update(["c"], states={"webhook": DONE})
    assert [(e.key, e.states) for e in store.journal_pending()] == [
        ("a", states(PENDING, DONE)), ("b", {**states(DONE, DONE), "webhook": PENDING})]
    store.journal_update([], states=states(DONE))
    store.journal_update(["a"])


def test_journal_update_refuses_an_unknown_field_and_writes_nothing(store):
    store.journal_add([entry("a")])
    before = store.counters.snapshot()
    for keys in (["a"], []):
        with pytest.raises(UnknownJournalField, match="journal_update cannot set bogus") as caught:
            store.journal_update(keys, states=states(DONE, DONE), bogus=1)
        assert isinstance(caught.value, ValueError) and "labels" in str(caught.value)  # names what it takes
    assert store.counters.since(before).round_trips == 0
    assert store.journal_get(["a"])["a"] == entry("a")


def test_journal_update_writes_the_whole_mapping_without_a_read_and_skips_missing_keys(store):
    store.journal_add([entry("a"), entry("b", minutes=1)])
    before = store.round_trips
    store.journal_update(["a"], states=states(DONE, DONE), labels={"sheet": "r1"})
    if is_firestore(store):  # the whole mapping named: no read needed
        assert store.round_trips == before + 1
    store.journal_update(["a", "gone"], states=states(DONE, DONE), expires_at=T0)
    assert [e.key for e in store.journal_pending()] == ["b"]
    assert store.journal_get(["gone"]) == {}
    store.journal_update(["a", "b"], expires_at=None)  # neither state named: pending unchanged
    assert [e.key for e in store.journal_pending()] == ["b"]
    assert store.journal_get(["a"])["a"].expires_at is None


def test_journal_update_many(store):
    keys = [f"k{i:04d}" for i in range(1100)]
    store.journal_add([entry(k) for k in keys])
    store.journal_update(keys, states=states(DONE, DONE))
    assert store.journal_pending() == []


def test_journal_get(store):
    store.journal_add([entry("a"), entry("b", sheet=DONE, slack=DONE)])
    got = store.journal_get(["b", "missing", "a", "a"])
    assert set(got) == {"a", "b"}
    assert got["b"].delivered
    assert store.journal_get([]) == {}


def test_journal_prune(store):
    old = T0 - timedelta(days=1)
    store.journal_add([
        entry("gone", sheet=DONE, slack=DONE, expires_at=old),
        entry("kept-future", sheet=DONE, slack=DONE, expires_at=T0 + timedelta(days=1)),
        entry("kept-undelivered", sheet=DONE, expires_at=old),
        entry("kept-no-expiry", sheet=DONE, slack=DONE),
    ])
    removed = store.journal_prune(T0)
    assert isinstance(removed, int)
    left = store.journal_get(["gone", "kept-future", "kept-undelivered", "kept-no-expiry"])
    assert {"kept-future", "kept-undelivered", "kept-no-expiry"} <= set(left)
    if not is_firestore(store):  # Firestore leaves deletion to its TTL policy
        assert removed == 1 and "gone" not in left


# -- in-flight batches ----------------------------------------------------------------------------


def test_a_stored_batch_holds_its_pending_entries_in_flight_until_it_is_deleted(store):
    store.journal_add([entry("a"), entry("b", minutes=1), entry("c", minutes=2)])
    batch = InflightBatch("run-1", "run@1700000000", ("a", "b"), T0 + timedelta(days=30))
    store.batch_put(batch)
    got = {e.key: (e.state("sheet"), e.label("sheet"), e.batch("sheet")) for e in store.journal_pending()}
    assert got == {"a": (INFLIGHT, "run@1700000000", batch), "b": (INFLIGHT, "run@1700000000", batch),
                   "c": (PENDING, None, None)}
    assert store.journal_get(["a"])["a"].state("sheet") == PENDING  # the entry's own document is unchanged
    store.journal_update(["a"], states=states(DONE, PENDING))  # the entry's own DONE wins over the batch
    answered = InflightBatch("run-1", "run@answered", ("a", "b"), T0 + timedelta(days=30))
    store.batch_put(answered)  # replaced under its id
    assert store.batch_list() == [answered]
    assert [(e.key, e.state("sheet"), e.label("sheet")) for e in store.journal_pending()] == [
        ("a", DONE, None), ("b", INFLIGHT, "run@answered"), ("c", PENDING, None)]
    store.batch_delete([answered, InflightBatch("unknown", "x@1", ("c",), T0)])
    assert store.batch_list() == []
    assert [e.state("sheet") for e in store.journal_pending()] == [DONE, PENDING, PENDING]


def test_a_batch_holds_entries_in_flight_for_its_own_destination_only(store):
    store.journal_add([entry("a"), entry("b", minutes=1)])
    hook = InflightBatch("w-1", "run@1700000000", ("a",), T0 + timedelta(days=30), destination="webhook")
    sheet = InflightBatch("s-1", "run@answered", ("a", "b"), T0 + timedelta(days=30))
    store.batch_put(hook)
    store.batch_put(sheet)
    assert sorted(store.batch_list(), key=lambda b: b.id) == [sheet, hook]
    got = {e.key: (e.states, e.labels, e.inflight) for e in store.journal_pending()}
    assert got == {
        "a": ({**states(INFLIGHT), "webhook": INFLIGHT}, {"sheet": "run@answered", "webhook": "run@1700000000"},
              {"sheet": sheet, "webhook": hook}),
        "b": (states(INFLIGHT), {"sheet": "run@answered"}, {"sheet": sheet})}


def test_a_batch_with_more_keys_than_one_document_holds_is_kept_whole(store):
    keys = tuple(f"{i:032x}" for i in range(45_000))  # about 1.6 MB of keys: more than one document holds
    batch = InflightBatch("big", "run@1700000000", keys, T0 + timedelta(days=30))
    store.batch_put(batch)
    assert store.batch_list() == [batch]
    store.batch_delete([batch])
    assert store.batch_list() == []


def test_expired_batches_are_pruned_or_left_to_the_ttl_policy(store):
    store.batch_put(InflightBatch("old", "run@1", ("a",), T0 - timedelta(days=1)))
    kept = InflightBatch("new", "run@2", ("b",), T0 + timedelta(days=1))
    store.batch_put(kept)
    store.journal_prune(T0)
    left = store.batch_list()
    if is_firestore(store):  # its TTL policy on expires_at deletes them
        assert [b.id for b in left] == ["new", "old"] and all(b.expires_at for b in left)
    else:
        assert left == [kept]


def test_sqlite_prune_trims_run_history_to_retention(tmp_path):
    store = SqliteStore(str(tmp_path / "s.sqlite3"), retention=2)
    for i in range(4):
        store.record_run({"started_at": (T0 + timedelta(minutes=i)).isoformat(), "n": i})
    assert store.journal_prune(T0) == 0
    assert [r["n"] for r in store.recent_runs()] == [3, 2]
    store.close()


# -- quarantine -----------------------------------------------------------------------------------


def test_quarantine(store):
    assert store.quarantine_count() == 0
    store.quarantine([RejectedItem('{"chatTime": null}', "chatTime missing", T0)] * 3)
    store.quarantine([])
    assert store.quarantine_count() == 3


def test_quarantine_lists_oldest_first_and_removes_by_id(store):
    assert store.quarantine_list() == [] and store.quarantine_oldest() is None
    store.quarantine([
        RejectedItem('{"b": 1}', "chatTime missing", T0 + timedelta(minutes=5), expires_at=T0 + timedelta(days=30)),
        RejectedItem('[1, 2]', "item is a JSON list, not an object", T0),
    ])
    items = store.quarantine_list()
    assert [(i.raw, i.reason, i.fetched_at) for i in items] == [
        ("[1, 2]", "item is a JSON list, not an object", T0),
        ('{"b": 1}', "chatTime missing", T0 + timedelta(minutes=5)),
    ]
    assert items[0].expires_at is None and items[1].expires_at == T0 + timedelta(days=30)
    assert all(i.id for i in items) and len({i.id for i in items}) == 2
    assert store.quarantine_oldest() == T0
    store.quarantine_remove([items[0].id, "no-such-id"])
    store.quarantine_remove([])
    assert [i.raw for i in store.quarantine_list()] == ['{"b": 1}']
    assert store.quarantine_count() == 1 and store.quarantine_oldest() == T0 + timedelta(minutes=5)


def test_quarantined_items_expire_with_the_journals_retention(store):
    store.quarantine([
        RejectedItem('{"old": 1}', "chatTime missing", T0 - timedelta(days=31), expires_at=T0 - timedelta(days=1)),
        RejectedItem('{"young": 1}', "chatTime missing", T0, expires_at=T0 + timedelta(days=30)),
    ])
    store.journal_prune(T0)
    left = [i.raw for i in store.quarantine_list()]
    if is_firestore(store):
        # Firestore's TTL policy deletes them: the field it reads must be a timestamp on each document.
        docs = [snap.to_dict() for snap in store._quarantine.stream()]
        assert sorted(d["expires_at"] for d in docs) == [T0 - timedelta(days=1), T0 + timedelta(days=30)]
    else:
        assert left == ['{"young": 1}']


def test_sqlite_adds_the_quarantine_expiry_to_an_older_file(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, raw TEXT NOT NULL,"
                     " reason TEXT NOT NULL, fetched_at TEXT NOT NULL)")
        conn.execute("INSERT INTO quarantine (raw, reason, fetched_at) VALUES ('[]', 'r', ?)", (T0.isoformat(),))
    store = SqliteStore(str(path))
    store.quarantine([RejectedItem("{}", "r", T0, expires_at=T0 - timedelta(days=1))])
    store.journal_prune(T0)
    assert [(i.raw, i.expires_at) for i in store.quarantine_list()] == [("[]", None)]
    store.close()


# -- lease ----------------------------------------------------------------------------------------


def test_lease_lifecycle(store, store_clock):
    """Free or expired, and when it ends, by the store's clock; the caller names a length only."""
    assert store.get_lease() is None
    assert store.acquire_lease("run-1", T0, T0 + timedelta(minutes=10))
    assert store.get_lease() == Lease("run-1", T0 + timedelta(minutes=10))
    store_clock.advance(minutes=5)
    assert not store.acquire_lease("run-2", T0 + timedelta(minutes=5), T0 + timedelta(minutes=15))
    # A caller whose clock is 11 minutes fast cannot take it either: the store's says it is held.
    assert not store.acquire_lease("run-2", T0 + timedelta(minutes=16), T0 + timedelta(minutes=26))
    assert store.acquire_lease("run-1", T0 - timedelta(days=1), T0 - timedelta(days=1) + timedelta(minutes=10))
    assert store.get_lease().expires_at == T0 + timedelta(minutes=15)  # the store's now plus the length
    store.release_lease("run-2")
    assert store.get_lease().owner == "run-1"
    # Expired by the store's clock: taken over, whatever the caller's clock says.
    store_clock.advance(minutes=10)
    assert store.acquire_lease("run-3", T0, T0 + timedelta(minutes=10))
    assert store.get_lease() == Lease("run-3", T0 + timedelta(minutes=25))
    store.release_lease("run-3")
    assert store.get_lease() is None
    assert store.acquire_lease("run-4", T0, T0 + timedelta(minutes=10))


def test_lease_race_has_one_winner(make_store):
    stores = [make_store() for _ in range(8)]
    stores[0].get_lease()  # create the schema / connect before the race
    start = threading.Barrier(len(stores))
    results: dict[int, object] = {}

    def race(i: int) -> None:
        start.wait()
        try:
            results[i] = stores[i].acquire_lease(f"run-{i}", T0, T0 + timedelta(minutes=10))
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Under heavy contention a store may give up with StateStoreUnavailable (transient: the function
    # answers 503 and the scheduler retries); it must never let two callers win.
    assert len(results) == len(stores)
    assert [won for won in results.values() if won is True] == [True], results
    assert all(won is False or isinstance(won, StateStoreUnavailable) for won in results.values() if won is not True), results
    winner = next(i for i, won in results.items() if won is True)
    assert stores[0].get_lease().owner == f"run-{winner}"


def test_sqlite_lease_race_across_processes(sqlite_store):
    script = (
        "import sys; from datetime import datetime, timedelta, timezone;"
        "from lib.state.sqlite.store import SqliteStore;"
        "t = datetime(2026, 11, 20, tzinfo=timezone.utc);"
        "print(SqliteStore(sys.argv[1]).acquire_lease(sys.argv[2], t, t + timedelta(minutes=5)))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, sqlite_store.path, f"p{i}"], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outputs == ["False", "False", "False", "True"]


# -- meta and run history -------------------------------------------------------------------------


def test_meta(store):
    assert store.get_meta("notes") is None
    value = {"at": "2026-11-20T09:30:00+00:00", "n": 3, "ok": True, "none": None, "f": 0.5,
             "nested": {"list": [1, {"x": "y"}], "empty": {}}, "rows": [[1, 2]]}
    store.put_meta("notes", value)
    store.put_meta("alerts", {"a": 1})
    assert store.get_meta("notes") == value
    store.put_meta("notes", {"n": 4})
    assert store.get_meta("notes") == {"n": 4}
    store.delete_meta("notes")
    store.delete_meta("notes")
    assert store.get_meta("notes") is None
    assert store.get_meta("alerts") == {"a": 1}


def test_run_history(store):
    assert store.recent_runs() == []
    for i in [0, 1, 2, 4, 3]:
        started = (T0 + timedelta(minutes=i)).isoformat()
        store.record_run({"started_at": started, "n": i, "counts": {"new": i}}, keep=3)
    assert [r["n"] for r in store.recent_runs()] == [4, 3, 2]
    assert [r["n"] for r in store.recent_runs(limit=2)] == [4, 3]
    assert store.recent_runs()[0] == {"started_at": (T0 + timedelta(minutes=4)).isoformat(),
                                      "n": 4, "counts": {"new": 4}}


def _write_legacy(store, cursor: dict, schedules: dict, lease: tuple[str, datetime], records: list[dict]) -> None:
    """The documents a store held before the run state, written as the old code wrote them."""
    import json

    if is_firestore(store):
        state = store.client.collection(f"{store.prefix}_state")
        state.document("meta_cursor").set({"name": "cursor", "value": cursor})
        state.document("meta_schedule_runs").set({"name": "schedule_runs", "value": schedules})
        state.document("lease").set({"owner": lease[0], "expires_at": lease[1]})
        for number, record in enumerate(records):
            sort_key = datetime.fromisoformat(record["started_at"]).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            store.client.collection(f"{store.prefix}_runs").document(f"{sort_key}_{number}").set(
                {"sort_key": sort_key, "record": record})
        return
    conn = store._conn()
    conn.execute("INSERT INTO meta (name, value) VALUES ('cursor', ?), ('schedule_runs', ?)",
                 (json.dumps(cursor), json.dumps(schedules)))
    conn.execute("INSERT INTO lease (id, owner, expires_at) VALUES (1, ?, ?)",
                 (lease[0], lease[1].isoformat(timespec="microseconds")))
    conn.executemany("INSERT INTO runs (started_at, record) VALUES (?, ?)",
                     [(r["started_at"], json.dumps(r)) for r in records])


def test_a_store_from_before_the_run_state_keeps_its_cursor_schedule_log_lease_and_history(store, store_clock):
    """The first read builds the run state from the older documents; the first write keeps it."""
    cursor = {"last_read": T0.isoformat(), "intent": {"since": "2026-11-18", "run_id": "old", "at": T0.isoformat()}}
    records = [{"run_id": f"r{i}", "started_at": (T0 + timedelta(minutes=i)).isoformat()} for i in range(3)]
    _write_legacy(store, cursor, {"done": ["sync 03:15"]}, ("old-run", T0 + timedelta(minutes=5)), records)
    state = store.read_run_state()
    assert state.version is None and state.cursor == CursorDoc.from_dict(cursor)
    assert state.schedules.has("sync 03:15") and state.lease.owner == "old-run"
    assert not store.acquire_lease("new-run", T0, T0 + timedelta(minutes=10))  # the old lease holds
    store_clock.advance(minutes=6)
    assert store.acquire_lease("new-run", T0, T0 + timedelta(minutes=10))
    assert store.read_run_state().version is not None
    assert [r["run_id"] for r in store.recent_runs()] == ["r2", "r1", "r0"]
    assert store.read_doc(CursorDoc) == CursorDoc.from_dict(cursor)
    assert store.read_run_state().quarantine_may_hold_items(T0)  # unknown: the next run counts


def test_a_write_by_version_is_refused_once_another_write_came_between(make_store):
    """Two stores on one database: the write that read the older version writes nothing."""
    ours, theirs = make_store(), make_store()
    seen = ours.read_run_state()
    first = ours.write_run_state(seen.with_record({"run_id": "a", "started_at": T0.isoformat()}), seen)
    assert first is not None
    assert theirs.write_run_state(seen.with_record({"run_id": "b", "started_at": T0.isoformat()}), seen) is None
    mine = first.with_record({"run_id": "c", "started_at": T0.isoformat()})
    assert ours.write_run_state(mine, first) is not None
    other = theirs.read_run_state()
    assert theirs.write_run_state(other.with_record({"run_id": "d", "started_at": T0.isoformat()}), first) is None
    assert [r["run_id"] for r in theirs.recent_runs()] == ["c", "a"]


# -- typed documents ------------------------------------------------------------------------------

# Each document as lib/sync, lib/alerts and lib/sync/backfill.py write it with put_meta today.
STORED_SHAPES = [
    (CursorDoc, {"last_read": "2026-11-20T09:30:00.123456+00:00"}),
    (CursorDoc, {"intent": {"since": "2026-11-18", "run_id": "r1", "at": "2026-11-20T09:30:00+00:00"}}),
    (CursorDoc, {"last_read": "2026-11-20T09:00:00+00:00",
                 "intent": {"since": "2026-11-19", "run_id": "r2", "at": "2026-11-20T10:30:00+01:00"}}),
    (ScheduleDoc, {"done": ["2026-11-20T09:30:00Z", "Fri, 20 Nov 2026 09:35:00 GMT"]}),
    (AlertState, {"failing_since": "2026-11-20T09:30:00+00:00", "failed_runs": 3, "alerted": {},
                  "alerts_sent": 0, "last_failure": "2026-11-20T09:40:00+00:00", "last_cause": "moneypenny",
                  "last_error": "Moneypenny answered 503"}),
    (AlertState, {"failing_since": "2026-11-20T09:30:00+00:00", "failed_runs": 1,
                  "alerted": {"sheets": "2026-11-20T09:31:00+00:00"}, "alerts_sent": 1,
                  "last_failure": "2026-11-20T09:30:00+00:00", "last_cause": "sheets", "last_error": "no access"}),
    (BackfillDoc, {"from": "2026-11-01", "to": "2026-11-03", "state": "running", "done_through": None,
                   "started_at": "2026-11-20T09:30:00+00:00"}),
    (BackfillDoc, {"from": "2026-11-01", "to": "2026-11-03", "state": "done", "done_through": "2026-11-03",
                   "started_at": "2026-11-20T09:30:00+00:00", "new": 4, "appended": 3,
                   "finished_at": "2026-11-20T09:31:00+00:00"}),
]


@pytest.mark.parametrize("kind, stored", STORED_SHAPES, ids=lambda v: getattr(v, "__name__", ""))
def test_typed_documents_read_the_shapes_written_as_dicts(store, kind, stored):
    """A document put as a dict under its name reads back typed, and writes back the same dict."""
    store.put_meta(kind.NAME, stored)
    doc = store.read_doc(kind)
    assert isinstance(doc, kind)
    assert doc.to_dict() == stored
    store.write_doc(doc)
    assert store.get_meta(kind.NAME) == stored
    assert store.read_doc(kind) == doc


def test_typed_documents_round_trip_at_the_cost_of_the_raw_calls(store):
    """Documents of their own cost one read or one write; the cursor and the schedule log are
    parts of the run state, written by version (one read and one write)."""
    store.record_run({"started_at": T0.isoformat()})  # the run state exists from now on
    docs = [
        CursorDoc(last_read=T0, intent=FetchIntent(T0.date(), "run-1", T0 + timedelta(seconds=1))),
        ScheduleDoc(("a", "b")),
        AlertState(failing_since=T0, failed_runs=2, alerted={"slack": T0}, alerts_sent=1, last_cause="slack"),
        BackfillDoc(start=T0.date(), end=T0.date() + timedelta(days=2), state="failed", started_at=T0,
                    done_through=T0.date(), new=0, appended=0, finished_at=T0 + timedelta(hours=1)),
    ]
    for doc in docs:
        kind = type(doc)
        part = kind.NAME in PARTS
        assert _billed(store, lambda: store.read_doc(kind)) == (1, 0, 0)
        assert store.read_doc(kind) is None
        assert _billed(store, lambda: store.write_doc(doc)) == ((1, 1, 0) if part else (0, 1, 0))
        assert store.read_doc(kind) == doc
        assert store.get_meta(kind.NAME) == doc.to_dict()
    names = {CURSOR_DOC, SCHEDULE_DOC, ALERTS_DOC, BACKFILL_DOC}
    assert {type(doc).NAME for doc in docs} == names and len(names) == 4
    for doc in docs:
        part = type(doc).NAME in PARTS
        assert _billed(store, lambda: store.delete_doc(type(doc))) == ((1, 1, 0) if part else (0, 0, 1))
        assert store.read_doc(type(doc)) is None
    assert len(store.recent_runs()) == 1  # the parts share the document, and leave the rest alone


@pytest.mark.parametrize("kind, stored, field", [
    (CursorDoc, {"last_read": "yesterday-ish"}, "last_read"),
    (CursorDoc, {"intent": {"since": "2026-11-18", "at": "2026-11-20T09:30:00+00:00"}}, "run_id"),
    (AlertState, {"failed_runs": 2}, "failing_since"),
    (AlertState, {"failing_since": "2026-11-20T09:30:00+00:00", "failed_runs": "two"}, "failed_runs"),
    (ScheduleDoc, {"done": "2026-11-20T09:30:00Z"}, "done"),
    (BackfillDoc, {"from": "2026-11-01", "to": "Nov 3", "state": "done", "started_at": T0.isoformat()}, "to"),
])
def test_a_malformed_document_is_refused_naming_its_field(store, kind, stored, field):
    """On reading it, or (a part of the run state) on writing it, so that it is never stored."""
    with pytest.raises(DocumentError, match=f"'{kind.NAME}.*'{field}'") as caught:
        store.put_meta(kind.NAME, stored)
        store.read_doc(kind)
    assert "yesterday-ish" not in str(caught.value) and "Nov 3" not in str(caught.value)


def test_the_schedule_log_keeps_the_newest_times_once_each():
    log = ScheduleDoc()
    for number in range(SCHEDULES_KEPT + 5):
        log = log.with_done(f"t{number}")
    log = log.with_done("t10")
    assert len(log.done) == SCHEDULES_KEPT and log.done[-1] == "t10" and log.done.count("t10") == 1
    assert log.has("t10") and not log.has("t4") and log.done[0] == "t5"


@pytest.mark.parametrize(("mapping", "done"), [
    ({}, False),  # no destination took it yet
    (states(PENDING, PENDING), False), (states(INFLIGHT, PENDING), False), (states(DONE, PENDING), False),
    (states(PENDING, DONE), False), (states(INFLIGHT, DONE), False), (states(DONE, DONE), True),
    ({"sheet": DONE}, True), ({**states(DONE, DONE), "webhook": INFLIGHT}, False),
    ({**states(DONE, DONE), "webhook": DONE}, True),
])
def test_an_entry_is_delivered_and_expires_only_once_every_destination_it_names_is_done(mapping, done):
    assert delivered(mapping) is done
    assert JournalEntry("k", {}, T0, T0, states=dict(mapping)).delivered is done
    assert expiry_for(mapping, T0, 30) == (T0 + timedelta(days=30) if done else None)


# -- datetimes and accounting ---------------------------------------------------------------------


def test_datetimes_come_back_aware_utc_and_equal(store):
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 11, 20, 10, 30, 0, 123456, tzinfo=paris)
    store.put_token(CachedToken("t", moment))
    store.journal_add([JournalEntry("a", {}, moment, moment, expires_at=moment)])
    store.clock = lambda: moment  # the lease ends by the store's clock
    store.acquire_lease("me", moment, moment)
    token, got, lease = store.get_token(), store.journal_get(["a"])["a"], store.get_lease()
    for value in (token.expires_at, got.item_time, got.fetched_at, got.expires_at, lease.expires_at):
        assert type(value) is datetime and value.tzinfo == UTC and value == moment
    with pytest.raises(ValueError):
        store.put_token(CachedToken("t", datetime(2026, 1, 1)))


def test_round_trips_increase(store):
    counts = [store.round_trips]
    for call in (
        lambda: store.get_token(),
        lambda: store.journal_add([entry("a")]),
        lambda: store.journal_pending(),
        lambda: store.acquire_lease("me", T0, T0 + timedelta(minutes=1)),
        lambda: store.record_run({"started_at": T0.isoformat()}),
    ):
        call()
        counts.append(store.round_trips)
    assert all(b > a for a, b in zip(counts, counts[1:])), counts


def _billed(store, step) -> tuple[int, int, int]:
    before = store.counters.snapshot()
    step()
    used = store.counters.since(before)
    assert used.round_trips >= 1
    return used.reads, used.writes, used.deletes


def test_counters_read_what_firestore_bills_for_each_operation(store):
    """Reads, writes and deletes per call as Firestore bills documents; SQLite counts rows alike."""
    item = RejectedItem("{}", "no chatTime", T0)
    steps = [  # (call, (reads, writes, deletes))
        # The first read of the run state, in a store without one, also reads what it is built
        # from (the older cursor, schedule log, alert state, lease and token documents, and the
        # run history): once.
        (lambda: store.record_run({"started_at": T0.isoformat()}), (1 + 5 + 1, 1, 0)),
        (lambda: store.put_token(CachedToken("t", T0)), (1, 1, 0)),  # a part of the run state
        (lambda: store.get_token(), (1, 0, 0)),
        # Entries left pending: the run state's pending mark is one write more, in the same commit.
        (lambda: store.journal_add([entry("a"), entry("b"), entry("c")]), (0, 3 + 1, 0)),  # new keys: no read
        (lambda: store.journal_add([entry("c"), entry("d", minutes=1)]), (2, 1 + 1, 0)),  # met a known key: looked up
        (lambda: store.journal_get(["a", "b", "nothing"]), (3, 0, 0)),  # a missing document is a read too
        (lambda: store.journal_update(["a", "b", "c"], states=states(DONE, DONE)), (0, 3, 0)),
        (lambda: store.journal_pending(), (2, 0, 0)),  # one document found, then the (empty) batches
        (lambda: store.journal_any_pending(), (1, 0, 0)),  # at most one document
        (lambda: store.journal_update(["d"], states=states(DONE, PENDING)), (0, 1 + 1, 0)),  # still pending: marked
        (lambda: store.batch_put(InflightBatch("b1", "r@1", ("d",), T0)), (0, 1, 0)),  # one write for its keys
        (lambda: store.batch_list(), (1, 0, 0)),
        (lambda: store.batch_delete([InflightBatch("b1", "r@1", ("d",), T0)]), (0, 0, 1)),
        (lambda: store.quarantine([item, item]), (0, 2, 0)),
        (lambda: store.quarantine_count(), (1, 0, 0)),
        (lambda: store.acquire_lease("me", T0, T0 + timedelta(minutes=5)), (1, 1, 0)),
        (lambda: store.acquire_lease("other", T0, T0 + timedelta(minutes=5)), (1, 0, 0)),  # held: no write
        (lambda: store.get_lease(), (1, 0, 0)),
        (lambda: store.release_lease("me"), (1, 1, 0)),  # a field of the run state: no delete
        (lambda: store.release_lease("me"), (1, 0, 0)),  # not ours (any more): nothing written
        (lambda: store.put_meta("m", {"v": 1}), (0, 1, 0)),
        (lambda: store.get_meta("m"), (1, 0, 0)),
        (lambda: store.get_meta("absent"), (1, 0, 0)),
        (lambda: store.delete_meta("m"), (0, 0, 1)),
        (lambda: store.clear_token(), (1, 1, 0)),  # a field of the run state: no delete
        (lambda: store.clear_token(), (1, 0, 0)),  # none cached: nothing written
        (lambda: store.recent_runs(), (1, 0, 0)),  # one read of the run state, however many runs
        (lambda: store.record_run({"started_at": T0.isoformat()}), (1, 1, 0)),
    ]
    for number, (step, billed) in enumerate(steps):
        assert _billed(store, step) == billed, number
    totals = tuple(sum(billed[i] for _, billed in steps) for i in range(3))
    assert (store.counters.reads, store.counters.writes, store.counters.deletes) == totals  # since opened


def test_the_run_history_is_a_ring_that_costs_one_read_and_one_write_per_record_and_no_offset(store):
    """Recording a run reads and writes the run state once, however long the history; the
    oldest record gives way (none is skipped by a query)."""
    for minute in range(RUNS_KEPT + 5):
        store.record_run({"run_id": f"r{minute}", "started_at": (T0 + timedelta(minutes=minute)).isoformat()})
    last = T0 + timedelta(minutes=RUNS_KEPT + 5)
    assert _billed(store, lambda: store.record_run({"run_id": "last", "started_at": last.isoformat()})) == (1, 1, 0)
    runs = store.recent_runs(RUNS_KEPT * 2)
    assert len(runs) == RUNS_KEPT and runs[0]["run_id"] == "last" and runs[-1]["run_id"] == "r6"
    assert _billed(store, lambda: store.recent_runs(RUNS_KEPT)) == (1, 0, 0)


def test_a_count_costs_one_read_per_thousand_documents(store):
    items = [RejectedItem("{}", "no chatTime", T0)] * 1001
    assert _billed(store, lambda: store.quarantine(items)) == (0, 1001, 0)
    assert store.quarantine_count() == 1001
    assert _billed(store, store.quarantine_count) == (2, 0, 0)


# -- factory --------------------------------------------------------------------------------------


def test_open_store_sqlite(tmp_path):
    store = open_store(settings(state_store=f"sqlite:{tmp_path}/deep/state.sqlite3"))
    assert isinstance(store, SqliteStore)
    store.close()


def test_open_store_firestore(firestore_client):
    from lib.state.firestore.store import FirestoreStore

    store = open_store(settings(google_cloud_project="demo-test", firestore_collection_prefix="fx"))
    try:
        assert isinstance(store, FirestoreStore)
        store.put_meta("m", {"v": 1})
        assert firestore_client.collection("fx_state").document("meta_m").get().exists
    finally:
        store.close()


def test_importing_the_package_does_not_load_firestore():
    code = "import sys, lib.state; print('google.cloud.firestore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


# -- Firestore specifics --------------------------------------------------------------------------


def test_firestore_server_errors_become_state_store_errors(firestore_emulator, monkeypatch):
    from lib.state.firestore.store import FirestoreStore

    with socket.socket() as sock:  # a port with nothing listening on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")
    store = FirestoreStore(emulator_client(), "test", timeout=2, retry=None)
    try:
        with pytest.raises(StateStoreUnavailable) as caught:
            store.journal_add([JournalEntry("visitor-key", {"email": "ann@example.com"}, T0, T0)])
    finally:
        store.close()
    err = caught.value
    assert isinstance(err, TransientError) and not isinstance(err, PermanentError)
    assert "journal_add" in str(err)
    assert "visitor-key" not in str(err) and "ann@example.com" not in str(err)
    assert err.__cause__ is None  # the server's text (document paths) is not chained


def test_firestore_permission_and_contention_errors(fs_stores, monkeypatch):
    from google.api_core import exceptions as gexc

    store, _ = fs_stores

    def refuse(*args, **kwargs):
        raise gexc.PermissionDenied("Missing or insufficient permissions on projects/p/x")

    monkeypatch.setattr(store, "_get", refuse)
    with pytest.raises(StateStoreAccessError) as caught:
        store.get_token()
    assert isinstance(caught.value, PermanentError) and caught.value.fix
    assert "projects/p" not in str(caught.value)

    monkeypatch.undo()
    # Every write of the run state meets a newer version: a transient error, nothing written.
    monkeypatch.setattr(store, "write_run_state", lambda state, seen: None)
    with pytest.raises(TransientError, match="contention"):
        store.acquire_lease("me", T0, T0 + timedelta(minutes=1))


def test_firestore_add_never_overwrites_a_concurrent_create(fs_stores, monkeypatch):
    store, other = fs_stores
    other.journal_add([entry("b", sheet=DONE, slack=DONE)])
    # Our read misses their document, as if they created it just after we looked.
    monkeypatch.setattr(store, "_get_all", lambda refs, field_paths=None: [])
    assert store.journal_add([entry("a"), entry("b"), entry("c")]) == ["a", "c"]
    assert other.journal_get(["b"])["b"].delivered
    assert [e.key for e in other.journal_pending()] == ["a", "c"]


# -- a chat's document operations over its life ---------------------------------------------------


def test_a_chat_costs_at_most_one_read_and_two_writes_from_fetch_to_expiry(store, harness):
    """Fetched, delivered to the sheet and Slack, expired: each chat's own share of a run's
    document operations (the difference between a 45-chat and a 5-chat run, whose fixed costs
    are the same) is at most 1 read and 2 writes, and one delete when it expires; no in-flight
    batch is left behind."""
    harness.add_chats(1, seed=1)
    harness.syncer(store=store).run()  # the first run: tab, header, cursor

    def run(n: int, seed: int):
        harness.clock.advance(minutes=5)
        harness.add_chats(n, seed=seed)
        before = store.counters.snapshot()
        report = harness.syncer(store=store).run()
        assert report.appended == n and report.posted == n
        return store.counters.since(before)

    small, large = run(5, seed=2), run(45, seed=3)
    chats = 40
    assert (large.reads - small.reads) / chats <= 1
    assert (large.writes - small.writes) / chats <= 2
    assert store.journal_pending() == [] and store.batch_list() == []
    keys = harness.sheet_keys()
    assert len(keys) == 51 and all(e.expires_at is not None for e in store.journal_get(keys).values())
    harness.clock.advance(days=harness.settings().retention_days + 1)
    before = store.counters.snapshot()
    store.journal_prune(harness.clock())
    expired = store.counters.since(before)
    if is_firestore(store):  # its TTL policy deletes them, one delete each, billed to nobody's run
        assert expired.deletes == 0
    else:
        assert expired.deletes == 51 and store.journal_get(keys) == {}


# -- the journal's shape before destinations were plug-ins ----------------------------------------

_OLD_SQLITE_JOURNAL = """
CREATE TABLE journal (
    key TEXT PRIMARY KEY, chat TEXT NOT NULL, chat_time TEXT NOT NULL, fetched_at TEXT NOT NULL,
    sheet TEXT NOT NULL, sheet_batch TEXT, slack TEXT NOT NULL, expires_at TEXT);
CREATE INDEX journal_pending ON journal (chat_time, key) WHERE NOT (sheet = 'done' AND slack = 'done');
CREATE TABLE batches (id TEXT PRIMARY KEY, label TEXT NOT NULL, keys TEXT NOT NULL, expires_at TEXT NOT NULL);
"""


def _write_old_shape(store_kind: str, harness, old: list[tuple[dict, str, str | None, str]]) -> None:
    """Journal entries as the code before destinations were plug-ins wrote them (item, sheet,
    sheet_batch, slack), by raw SQL into a file with the old schema, or as raw Firestore documents."""
    now = harness.clock()
    rows = []
    for item, sheet, sheet_batch, slack in old:
        chat = parse_chat(item, UK)
        done = sheet == DONE and slack == DONE
        rows.append((chat.key, item, chat.time.astimezone(UTC), sheet, sheet_batch, slack,
                     now + timedelta(days=30) if done else None))
    if store_kind == "sqlite":
        with sqlite3.connect(harness.tmp / "state.sqlite3") as conn:
            conn.executescript(_OLD_SQLITE_JOURNAL)
            conn.executemany(
                "INSERT INTO journal (key, chat, chat_time, fetched_at, sheet, sheet_batch, slack, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(key, json.dumps(item), at.isoformat(timespec="microseconds"), now.isoformat(timespec="microseconds"),
                  sheet, batch, slack, None if expires is None else expires.isoformat(timespec="microseconds"))
                 for key, item, at, sheet, batch, slack, expires in rows])
        return
    client = harness.store.client
    for key, item, at, sheet, batch, slack, expires in rows:
        doc = {"chat_json": json.dumps(item), "chat_time": at, "fetched_at": now,
               "pending": not (sheet == DONE and slack == DONE)}
        if doc["pending"]:
            doc |= {name: value for name, value in (("sheet", sheet), ("slack", slack)) if value != PENDING}
        if batch is not None:
            doc["sheet_batch"] = batch
        if expires is not None:
            doc["expires_at"] = expires
        client.collection("poison_journal").document(key).set(doc)


def _stored_shape(store_kind: str, harness, key: str) -> dict:
    if store_kind == "sqlite":
        with sqlite3.connect(harness.tmp / "state.sqlite3") as conn:
            conn.row_factory = sqlite3.Row
            return dict(conn.execute("SELECT * FROM journal WHERE key = ?", (key,)).fetchone())
    return harness.store.client.collection("poison_journal").document(key).get().to_dict()


@pytest.fixture(params=["sqlite", "firestore"])
def harness_kind(request, harness) -> str:
    """The harness's store on SQLite or on the emulator, by name (this file's own `store` is the
    contract's, so conftest's `store_kind` cannot name it here)."""
    if request.param == "firestore":
        request.getfixturevalue("firestore_client")  # an emptied emulator database
        from lib.state.firestore.store import FirestoreStore

        harness.store = FirestoreStore(emulator_client(), FIRESTORE_PREFIX, clock=harness.clock)
    return str(request.param)


def test_entries_of_the_old_shape_read_into_the_mapping_are_delivered_once_and_rewritten_in_the_new_shape(
        harness, harness_kind):
    store_kind = harness_kind
    """A store written before destinations were plug-ins (SQLite's `sheet`/`sheet_batch`/`slack`
    columns, Firestore's `sheet`/`slack`/`sheet_batch`/`pending` fields): each entry reads into the
    mapping, the next run delivers what it still lacks once (rows and Slack lines), and each
    entry it writes is written in the new shape; a delivered one stays delivered, untouched."""
    waiting, half, delivered, unchecked = harness.add_chats(4, seed=7)
    _write_old_shape(store_kind, harness, [
        (waiting, PENDING, None, PENDING),
        (half, DONE, None, PENDING),  # in the sheet, not yet announced
        (delivered, DONE, None, DONE),
        (unchecked, INFLIGHT, "old@unchecked", PENDING),  # journaled by a window read, in the sheet already
    ])
    keys = {name: parse_chat(item, UK).key for name, item in
            (("waiting", waiting), ("half", half), ("delivered", delivered), ("unchecked", unchecked))}
    settings = harness.settings()
    harness.syncer().writers["chats"].ensure_ready()  # the tab and its header
    harness.stand.sheets.set_rows(harness.sheet_id, settings.sheet_tab, [list(HEADER)] + [
        chat_row(parse_chat(item, UK)) for item in (half, delivered, unchecked)])
    store = harness.open_store()

    read = store.journal_get(keys.values())
    assert {name: (read[key].states, read[key].labels) for name, key in keys.items()} == {
        "waiting": (states(), {}), "half": (states(DONE), {}), "delivered": (states(DONE, DONE), {}),
        "unchecked": (states(INFLIGHT), {"sheet": "old@unchecked"})}
    assert {e.key for e in store.journal_pending()} == {keys["waiting"], keys["half"], keys["unchecked"]}

    report = harness.syncer().run()
    assert (report.new, report.appended, report.already_in_sheet, report.posted) == (0, 1, 1, 2)
    assert sorted(harness.sheet_keys()) == sorted(keys.values())  # each once
    assert store.journal_pending() == []
    for name in ("waiting", "half", "unchecked"):
        shape = _stored_shape(store_kind, harness, keys[name])
        assert shape["pending"] in (0, False)
        assert json_of(shape["states"]) == states(DONE, DONE) and json_of(shape["labels"]) == {}
        if store_kind == "firestore":
            assert not {"sheet", "slack", "sheet_batch"} & set(shape)
    old = _stored_shape(store_kind, harness, keys["delivered"])  # never written again: as it was
    assert ("states" not in old) if store_kind == "firestore" else (old["states"] is None and old["pending"] == 0)

    harness.clock.advance(minutes=5)
    again = harness.syncer().run()
    assert (again.appended, again.posted) == (0, 0) and len(harness.data_rows()) == 4


def json_of(value):
    return json.loads(value) if isinstance(value, str) else value


def test_a_read_only_sqlite_store_reads_a_file_not_yet_migrated(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(_OLD_SQLITE_JOURNAL + "CREATE TABLE token (id INTEGER PRIMARY KEY, value TEXT, expires_at TEXT);"
                           "CREATE TABLE quarantine (id INTEGER PRIMARY KEY, raw TEXT, reason TEXT, fetched_at TEXT);"
                           "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);")
        conn.execute("INSERT INTO journal VALUES ('a', '{}', ?, ?, 'pending', NULL, 'pending', NULL)",
                     (T0.isoformat(), T0.isoformat()))
        conn.execute("INSERT INTO batches VALUES ('b1', 'r@1', '[\"a\"]', ?)", (T0.isoformat(),))
    store = SqliteStore(str(path), read_only=True)
    [got] = store.journal_pending()
    assert (got.key, got.states, got.inflight["sheet"].destination) == ("a", states(INFLIGHT), "sheet")
    store.close()
    with sqlite3.connect(path) as conn:  # opened read-only: not migrated
        assert "states" not in {row[1] for row in conn.execute("PRAGMA table_info(journal)")}
