"""The run state's pending flag, token and alert state (issue #22 item 6: an idle run reads the run
state and nothing else): the flag never promises "nothing pending" while an entry is pending
(a crash, a lease lost or taken over, a late writer, an emptied store), and a run state stored
before them takes the token and alert state of their old documents on its first read."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from lib.errors import RunFailed
from lib.runner import run_and_report
from lib.sources.chats import parse_chat
from lib.state.documents import ALERTS_DOC, AlertState
from lib.state.models import DONE, PENDING, CachedToken, JournalEntry
from lib.sync import RunOptions
from sandbox.standins.samples import sample_chats
from tests.harness import UK, Crash, crash_at


def scheduled(harness):
    """A scheduled run through the function's path (alerts included), 5 minutes after the last."""
    harness.clock.advance(minutes=5)
    at = harness.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    return run_and_report(harness.settings(), RunOptions(), lambda: harness.syncer(),
                          schedule_time=at, schedule_job="moneypenny-sync").report


def late_entry(harness, seed: int = 7) -> JournalEntry:
    """A chat journaled, pending, by a writer the running run knows nothing of (a run that lost
    its lease and journals late); it is not in Moneypenny's log any more."""
    tz = ZoneInfo(UK)
    local = harness.clock().astimezone(tz).replace(tzinfo=None) - timedelta(hours=3)
    item = sample_chats(1, start=local, seed=seed)[0]
    chat = parse_chat(item, tz)
    return JournalEntry(key=chat.key, item=item, item_time=chat.time.astimezone(UTC),
                        fetched_at=harness.clock(), states={"sheet": PENDING, "slack": PENDING})


def idle_reads(harness, store) -> int:
    before = store.counters.snapshot()
    report = scheduled(harness)
    assert report.outcome == "ok" and report.fetched == 0
    return store.counters.since(before).reads


def test_a_delivered_run_promises_nothing_pending_and_the_next_idle_run_reads_one_document(harness, store):
    harness.add_chats(2)
    assert scheduled(harness).appended == 2
    assert store.read_run_state().pending is False
    assert idle_reads(harness, store) == 1


def test_a_crash_after_journaling_leaves_the_flag_set_and_the_next_run_delivers(harness, store):
    scheduled(harness)
    assert store.read_run_state().pending is False
    harness.add_chats(2)
    with pytest.raises(Crash):
        harness.syncer(checkpoint=crash_at("after_journal")).run()
    assert store.read_run_state().pending is True  # written with the entries, before the crash
    harness.clock.advance(seconds=harness.settings().lease_seconds + 1)  # the dead run's lease expires
    assert scheduled(harness).appended == 2
    assert len(harness.sheet_keys()) == 2 and store.read_run_state().pending is False


def test_a_run_that_dies_after_asking_the_journal_and_before_delivering_keeps_the_flag(harness, store):
    """What earlier runs left was read, then the run died before its delivery (its report still
    counted nothing pending): the flag stays set, and the next run delivers."""
    harness.add_chats(2)
    with pytest.raises(Crash):
        harness.syncer(checkpoint=crash_at("after_journal")).run()  # journaled, not delivered
    harness.clock.advance(seconds=harness.settings().lease_seconds + 1)
    with pytest.raises(Crash):
        harness.syncer(checkpoint=crash_at("before_fetch")).run()  # asked the journal, then died
    assert store.read_run_state().pending is True
    harness.clock.advance(seconds=harness.settings().lease_seconds + 1)
    assert scheduled(harness).appended == 2 and store.read_run_state().pending is False


def test_an_entry_journaled_by_a_late_writer_during_a_run_is_never_promised_away(harness, store):
    """The run asked the journal (nothing pending) and delivered all it knew; a run that lost
    its lease journals an entry after that question. The run's last write meets the mark that
    came with the entry, asks again, and leaves the flag set: the next run delivers it."""
    scheduled(harness)
    harness.add_chats(1)
    late = late_entry(harness)

    def journal_late(step: str) -> None:
        if step == "after_journal":
            store.journal_add([late])

    report = harness.syncer(checkpoint=journal_late).run()
    assert report.appended == 1 and late.key not in harness.sheet_keys()
    assert store.read_run_state().pending is True
    assert scheduled(harness).appended == 1
    assert late.key in harness.sheet_keys() and store.read_run_state().pending is False


def test_an_entry_set_back_to_pending_by_a_late_writer_is_never_promised_away(harness, store):
    """A run that lost its lease writes an entry's states back to pending (its delivery failed)
    after the run holding the lease found nothing pending: the flag stays set."""
    harness.add_chats(1)
    scheduled(harness)
    key = harness.sheet_keys()[0]

    def unmark(step: str) -> None:
        if step == "after_journal":
            store.journal_update([key], states={"sheet": DONE, "slack": PENDING})

    harness.syncer(checkpoint=unmark).run()
    assert store.read_run_state().pending is True
    posts = len(harness.stand.slack.messages())
    scheduled(harness)
    assert len(harness.stand.slack.messages()) == posts + 1  # announced again (at least once), not lost
    assert store.read_run_state().pending is False


def test_a_run_that_loses_its_lease_before_delivery_leaves_its_entries_flagged(harness, store):
    scheduled(harness)
    harness.add_chats(1)

    def overtaken(step: str) -> None:
        if step == "after_journal":
            harness.clock.advance(seconds=harness.settings().lease_seconds + 1)
            now = harness.clock()
            assert store.acquire_lease("new-holder", now, now + timedelta(minutes=10))

    with pytest.raises(RunFailed) as failed:
        harness.syncer(checkpoint=overtaken).run()
    assert failed.value.error.cause == "lease_lost"
    assert store.read_run_state().pending is True and harness.sheet_keys() == []
    store.release_lease("new-holder")
    assert scheduled(harness).appended == 1 and store.read_run_state().pending is False


def test_a_run_state_removed_while_entries_wait_is_read_as_not_known(harness, store, store_kind):
    """An emptied run state (the document deleted by hand, the SQLite row lost) promises
    nothing: the next run asks the journal and delivers what waits."""
    scheduled(harness)
    harness.add_chats(2)
    with pytest.raises(Crash):
        harness.syncer(checkpoint=crash_at("after_journal")).run()
    if store_kind == "sqlite":
        with store._write() as conn:
            conn.execute("DELETE FROM run_state")
    else:
        store._state.document("run").delete()
    assert store.read_run_state().pending is None
    assert scheduled(harness).appended == 2 and store.read_run_state().pending is False


def test_an_entry_journaled_before_any_run_state_keeps_the_older_parts_and_is_delivered(harness, store):
    """A journal write into a store with no run state leaves the mark alone; the state read
    from it is not known to be empty, and keeps what older documents hold (the token here)."""
    store.journal_add([late_entry(harness)])
    state = store.read_run_state()
    assert state.may_be_pending() and state.cursor.last_read is None
    assert scheduled(harness).appended == 1
    assert store.read_run_state().pending is False and store.read_run_state().seq == 1


def test_an_emptied_journal_lets_the_flag_clear_with_nothing_lost(harness, store, store_kind):
    harness.add_chats(1)
    with pytest.raises(Crash):
        harness.syncer(checkpoint=crash_at("after_journal")).run()
    if store_kind == "sqlite":
        with store._write() as conn:
            conn.execute("DELETE FROM journal")
    else:
        for snap in store._journal.stream():
            snap.reference.delete()
    harness.clock.advance(seconds=harness.settings().lease_seconds + 1)
    assert scheduled(harness).outcome == "ok"
    assert store.read_run_state().pending is False


def test_the_token_lives_in_the_run_state_and_an_idle_run_neither_reads_nor_logs_in_again(harness, store):
    harness.add_chats(1)
    scheduled(harness)
    token = store.read_run_state().token
    assert token is not None and store.get_token() == token
    logins = harness.stand.moneypenny.count("auth")
    assert idle_reads(harness, store) == 1
    assert harness.stand.moneypenny.count("auth") == logins
    assert "value" not in repr(store.read_run_state().token)  # the secret stays out of reprs


def test_the_alert_state_lives_in_the_run_state_and_a_recovery_is_still_posted(harness, store):
    harness.add_chats(1)
    store.write_doc(AlertState(failing_since=harness.clock(), failed_runs=3, alerts_sent=1,
                               last_cause="sheets"))
    assert store.read_run_state().alerts is not None and store.get_meta(ALERTS_DOC)["failed_runs"] == 3
    posts = len(harness.stand.slack.messages())
    assert scheduled(harness).outcome == "ok"
    assert store.read_run_state().alerts is None and store.read_doc(AlertState) is None
    assert "working again" in json.dumps(harness.stand.slack.messages()[posts:])


def _old_layout(store, store_kind, token: CachedToken, alerts: AlertState) -> None:
    """The run state, token and alert state as the code before issue #22 stored them."""
    store._put_named(ALERTS_DOC, alerts.to_dict())
    if store_kind == "sqlite":
        with store._write() as conn:
            conn.execute("INSERT OR REPLACE INTO token (id, value, expires_at) VALUES (1, ?, ?)",
                         (token.value, token.expires_at.isoformat()))
            conn.execute("UPDATE run_state SET state = json_remove(state, '$.layout', '$.pending', '$.token', '$.alerts')")
    else:
        from google.cloud import firestore

        store._state.document("token").set({"value": token.value, "expires_at": token.expires_at})
        store._state.document("run").update({name: firestore.DELETE_FIELD
                                             for name in ("layout", "pending", "token", "alerts")})


def test_a_run_state_stored_before_these_parts_takes_them_from_their_old_documents_once(harness, store, store_kind):
    harness.add_chats(1)
    scheduled(harness)
    token = store.read_run_state().token  # the stand-in's own token, kept as the old code kept it
    assert token is not None
    alerts = AlertState(failing_since=harness.clock(), failed_runs=2, alerts_sent=0, last_cause="slack")
    _old_layout(store, store_kind, token, alerts)

    state = store.read_run_state()
    assert state.token == token and state.alerts == alerts.to_dict() and state.pending is None
    logins = harness.stand.moneypenny.count("auth")
    assert scheduled(harness).outcome == "ok"  # the old token serves: no login
    assert harness.stand.moneypenny.count("auth") == logins
    migrated = store.read_run_state()
    assert migrated.token == token and migrated.alerts is None  # the streak closed (no alert had been sent)
    assert migrated.pending is False
    assert idle_reads(harness, store) == 1  # the old documents are not read again
