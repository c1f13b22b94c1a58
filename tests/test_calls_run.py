"""Call messages through a whole run (MONEYPENNY_SOURCES=chats,calls), with the real clients
against the stand-ins: the Calls tab filled exactly once beside the chats tab, one Slack summary
of both, day windows re-read safely, and a failure of one feed never stopping the other."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lib.errors import HeaderMismatchError, RunFailed
from lib.sources.calls import HEADER as CALLS_HEADER
from lib.sync.calls_fetch import CallsReadDoc
from sandbox.standins.samples import sample_calls, tricky_calls
from sandbox.standins.server import Drop, LostResponse, Malformed, Status
from tests.harness import Crash, by_header, crash_at, slack_text


@pytest.fixture
def both(harness):
    harness.env_overrides["MONEYPENNY_SOURCES"] = "chats,calls"
    return harness


def add_calls(h, n: int, *, seed: int = 0, hours_ago: float = 2, **kw) -> list[dict]:
    calls = sample_calls(n, h.clock() - timedelta(hours=hours_ago), seed=seed, **kw)
    h.stand.moneypenny.add_calls(calls)
    return calls


def call_rows(h) -> list[list[str]]:
    return h.stand.sheets.rows(h.sheet_id, "Calls")


def call_records(h) -> list[dict[str, str]]:
    return by_header(call_rows(h))


def call_ids(h) -> list[str]:
    return [r["Call id"] for r in call_records(h)]


def test_chats_and_calls_fill_their_own_tabs_and_share_one_summary(both):
    chats = both.add_chats(3, seed=1)
    calls = add_calls(both, 2, seed=2)
    report = both.syncer().run()
    assert call_rows(both)[0] == [*CALLS_HEADER, "Owner", "Claimed at"]
    assert sorted(call_ids(both)) == sorted(c["callId"] for c in calls)
    assert len(both.data_rows()) == len(chats)
    record = call_records(both)[0]
    first = min(calls, key=lambda c: c["date"])
    local = datetime.fromisoformat(first["date"]).astimezone(both.settings().chat_timezone)
    assert record["Call time"] == local.strftime("%Y-%m-%d %H:%M:%S")
    assert (record["Caller"], record["Taken by"], record["Action taken"]) == (
        first["caller"], first["employee"], first["actionTaken"])
    [message] = both.stand.slack.messages()
    assert message["blocks"][0]["text"]["text"].startswith("3 new chats · 2 new calls")
    text = slack_text(message)
    assert "Open the Calls tab" in text and "Open the Chats tab" in text
    assert all(c["caller"] in text for c in calls)
    assert report.sources["calls"]["appended"] == 2 and report.sources["chats"]["appended"] == 3
    assert report.appended == 5 and report.posted == 5
    assert json.loads(json.dumps(report.as_dict()))["sources"]["calls"]["new"] == 2


def test_a_run_with_nothing_new_reads_the_days_again_and_adds_nothing(both):
    add_calls(both, 4)
    both.syncer().run()
    both.clock.advance(minutes=5)
    again = both.syncer().run()
    assert again.appended == 0 and again.sources["calls"]["fetched"] == 4 and again.sources["calls"]["new"] == 0
    assert len(call_ids(both)) == 4 and len(both.stand.slack.messages()) == 1
    assert both.stand.moneypenny.count("auth") == 1  # one login, one token for both feeds


def test_re_reading_days_of_known_calls_costs_no_journal_read_and_no_write(both):
    """With calls on, a run that finds only calls it already journaled reads one document more
    than a chats-only idle run (the calls_read document) and writes nothing more: the known keys
    come from that document, not from the journal."""
    add_calls(both, 6)
    both.syncer().run()
    both.clock.advance(minutes=5)
    both.syncer().run()  # the document now holds the keys of the days read again
    store = both.open_store()
    before = store.counters.snapshot()
    both.clock.advance(minutes=5)
    idle = both.syncer().run()
    cost = store.counters.since(before).as_dict()
    assert idle.sources["calls"]["fetched"] == 6 and idle.sources["calls"]["new"] == 0
    # An idle chats-only run: 4 reads (run state, token, pending, alert state), 2 writes.
    assert cost["reads"] <= 4 + 1 and cost["writes"] <= 2, cost
    assert len(call_ids(both)) == 6


@pytest.mark.parametrize("inclusive", [True, False])
def test_a_message_re_read_for_a_week_never_adds_a_duplicate_row(both, inclusive):
    both.stand.moneypenny.calls_to_inclusive = inclusive
    # Taken a minute before midnight: the day after, it is still in the window that is read again.
    late = both.clock().replace(hour=23, minute=59) - timedelta(days=1)
    both.stand.moneypenny.add_calls(sample_calls(1, late, seed=9, spacing=timedelta(seconds=1)))
    reads = []
    for _ in range(7 * 4):
        both.syncer().run()
        reads.append(both.stand.moneypenny.calls("calls")[-1].query)
        both.clock.advance(hours=6)
    assert len(call_ids(both)) == 1
    assert len(both.stand.slack.messages()) == 1
    # Each read starts a day before the last full day: never more than a few days.
    for query in reads:
        start, end = (datetime.strptime(query[k], "%m/%d/%Y").replace(tzinfo=UTC) for k in ("from", "to"))
        assert timedelta(days=1) <= end - start <= timedelta(days=4)


def test_the_calls_api_down_still_writes_and_announces_the_chats_and_answers_retryably(both):
    both.add_chats(2, seed=4)
    calls = add_calls(both, 2, seed=5)
    both.stand.moneypenny.inject("calls", Status(503), times=None)
    with pytest.raises(RunFailed) as failed:
        both.syncer().run()
    assert failed.value.transient and "call messages" in str(failed.value)
    assert [e["step"] for e in failed.value.report.errors] == ["calls fetch"]
    assert len(both.data_rows()) == 2 and call_rows(both) == []
    [message] = both.stand.slack.messages()
    assert message["blocks"][0]["text"]["text"].startswith("2 new chats")
    # Nothing was recorded as read: the next run reads the same days and carries the calls.
    assert both.open_store().read_doc(CallsReadDoc) is None
    both.stand.moneypenny.clear_faults()
    both.clock.advance(minutes=5)
    both.syncer().run()
    assert sorted(call_ids(both)) == sorted(c["callId"] for c in calls)


def test_the_chat_log_down_still_writes_the_calls(both):
    both.add_chats(1)
    add_calls(both, 2, seed=6)
    both.stand.moneypenny.inject("log", Status(500), times=None)
    with pytest.raises(RunFailed) as failed:
        both.syncer().run()
    assert "chat log" in str(failed.value)
    assert len(call_ids(both)) == 2


@pytest.mark.parametrize("fault", [Malformed(), Drop(), LostResponse(), Status(500)])
def test_a_failed_calls_read_is_read_again_next_run(both, fault):
    calls = add_calls(both, 3, seed=7)
    both.stand.moneypenny.inject("calls", fault, times=None)
    with pytest.raises(RunFailed):
        both.syncer().run()
    assert call_rows(both) == []
    both.stand.moneypenny.clear_faults()
    both.clock.advance(minutes=5)
    both.syncer().run()
    assert sorted(call_ids(both)) == sorted(c["callId"] for c in calls)


@pytest.mark.parametrize("step", ["after_calls_fetch", "after_mark_inflight", "after_append", "after_post"])
def test_a_crash_at_any_step_leaves_every_call_on_the_tab_exactly_once(both, step):
    calls = add_calls(both, 3, seed=8)
    with pytest.raises(Crash):
        both.syncer(checkpoint=crash_at(step)).run()
    for _ in range(3):
        both.clock.advance(minutes=5)
        both.syncer().run()
    assert sorted(call_ids(both)) == sorted(c["callId"] for c in calls)
    text = slack_text(*both.stand.slack.messages())
    assert all(c["caller"] in text for c in calls)


def test_missing_and_repeated_call_ids_give_one_row_per_message(both):
    calls = add_calls(both, 20, seed=11, missing_ids=0.5)
    both.stand.moneypenny.add_calls(calls[:5])  # the same messages answered twice
    both.syncer().run()
    both.clock.advance(minutes=5)
    both.syncer().run()
    ids = call_ids(both)
    assert len(ids) == 20 and len(set(ids)) == 20
    assert sum(1 for i in ids if i.startswith("#")) == sum(1 for c in calls if not c.get("callId"))


def test_hostile_call_text_stays_text_on_the_tab_and_inert_in_slack(both):
    both.stand.moneypenny.add_calls(tricky_calls(both.clock() - timedelta(hours=1)))
    inside = (both.clock() - timedelta(hours=1)).isoformat()
    both.stand.moneypenny.add_odd_calls(["not an object", {"caller": "no date"}, {"date": inside, "caller": {"a": 1}}])
    report = both.syncer().run()
    records = {r["Call id"]: r for r in call_records(both)}
    assert records["T-FORMULA"]["Caller"].startswith("=HYPERLINK")
    assert len(records["T-LONG"]["Message"]) == 50_000
    text = slack_text(*both.stand.slack.messages())
    assert "<!channel>" not in text and "<http://phish.example" not in text
    assert report.sources["calls"]["skipped_invalid"] == 3
    assert len(both.open_store().quarantine_list()) == 3
    for _ in range(3):  # the same days read again: nothing is set aside twice
        both.clock.advance(minutes=5)
        both.syncer().run()
    assert len(both.open_store().quarantine_list()) == 3
    assert report.sources["calls"]["appended"] == 6


def test_a_foreign_header_on_the_calls_tab_is_refused_and_the_chats_go_through(both):
    both.stand.sheets.create_spreadsheet("other-sheet", tabs=("Chats", "Calls"))
    both.stand.sheets.set_rows("other-sheet", "Calls", [["Date", "Who", "What"]])
    both.env_overrides["SHEET_ID"] = "other-sheet"
    both.add_chats(2)
    add_calls(both, 2)
    with pytest.raises(RunFailed) as failed:
        both.syncer().run()
    assert isinstance(failed.value.error, HeaderMismatchError) and "CALLS_TAB" in str(failed.value)
    assert len(both.data_rows()) == 2
    assert call_rows(both) == [["Date", "Who", "What"]]


def test_extra_columns_to_the_right_of_the_calls_tab_are_kept(both):
    add_calls(both, 1)
    both.syncer().run()
    both.stand.sheets.set_cell(both.sheet_id, "Calls", "K1", "Follow-up", user_entered=False)
    add_calls(both, 1, seed=3, hours_ago=1)
    both.clock.advance(minutes=5)
    both.syncer().run()
    assert call_rows(both)[0] == [*CALLS_HEADER, "Owner", "Claimed at", "Follow-up"] and len(call_ids(both)) == 2


def test_calls_alone_read_no_chat_log(harness):
    harness.env_overrides["MONEYPENNY_SOURCES"] = "calls"
    add_calls(harness, 2)
    harness.add_chats(2)
    harness.syncer().run()
    assert harness.stand.moneypenny.count("log") == 0 and len(call_ids(harness)) == 2
    [message] = harness.stand.slack.messages()
    assert message["blocks"][0]["text"]["text"].startswith("2 new calls")


def test_a_window_run_and_the_reconcile_read_the_calls_of_their_days(both):
    old = sample_calls(2, datetime(2026, 11, 10, 9, 0, tzinfo=UTC), seed=12)
    both.stand.moneypenny.add_calls(old)
    both.syncer().run(mode="window", start=datetime(2026, 11, 10).date(), end=datetime(2026, 11, 11).date())
    assert sorted(call_ids(both)) == sorted(c["callId"] for c in old)
    assert both.open_store().read_doc(CallsReadDoc) is None  # a window run records no full day
    both.syncer().run(mode="reconcile")
    # RECONCILE_DAYS=2 before today through today, a day wider on each side (only those days kept).
    query = both.stand.moneypenny.calls("calls")[-1].query
    assert (query["from"], query["to"]) == ("11/17/2026", "11/21/2026")


def test_a_quarantine_retry_delivers_call_messages_that_now_read_to_the_calls_tab(both):
    from lib.state.models import RejectedItem

    [call] = sample_calls(1, both.clock() - timedelta(hours=1), seed=13)
    now = both.clock()
    both.open_store().quarantine([RejectedItem(raw=json.dumps(call), reason="date is not an ISO 8601 date-time",
                                               fetched_at=now, expires_at=now + timedelta(days=30))])
    both.syncer().run(mode="quarantine")
    assert call_ids(both) == [call["callId"]] and both.data_rows() == []
    assert both.open_store().quarantine_count() == 0
    assert both.stand.moneypenny.count("calls") == 0  # Moneypenny is not read
    both.clock.advance(minutes=5)
    both.syncer().run()  # the same message read by its day: already on the tab
    assert call_ids(both) == [call["callId"]]


def test_a_backfill_past_the_journals_retention_adds_only_the_calls_missing_from_the_tab(both):
    import io

    from lib.commands.cli import Context, main

    day = both.clock().date() - timedelta(days=3)
    calls = sample_calls(4, datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=9), seed=14)
    both.stand.moneypenny.add_calls(calls[:3])
    both.syncer().run(mode="window", start=day, end=day + timedelta(days=1))
    both.clock.advance(days=40)  # the delivered entries expire from the journal
    both.syncer().run()
    assert both.open_store().journal_get([f"call:{i}" for i in call_ids(both)]) == {}
    both.stand.moneypenny.add_calls(calls[3:])
    out = io.StringIO()
    code = main(["backfill", "--from", str(day), "--to", str(day), "--json"],
                Context(env=both.env(), clock=both.clock, out=out, err=io.StringIO(), backoff=0.01))
    assert code == 0, out.getvalue()
    assert sorted(call_ids(both)) == sorted(c["callId"] for c in calls)


def test_the_function_answers_503_naming_the_calls_feed_and_still_delivers_the_chats(both, client):
    both.add_chats(2, seed=15)
    both.stand.moneypenny.inject("calls", Status(502), times=None)
    response = client.get("/")
    body = response.get_json()
    assert response.status_code == 503 and body["ok"] is False and body["retryable"] is True
    assert "call messages" in body["error"] and "HTTP 502" in body["error"]
    assert body["cause"] == "moneypenny_calls"
    assert body["sources"]["chats"]["appended"] == 2 and body["appended"] == 2
    assert len(both.data_rows()) == 2 and len(both.stand.slack.messages()) == 1


def test_check_reads_the_calls_endpoint_and_judges_the_calls_tab_without_moving_anything(both):
    import io

    from lib.commands.cli import Context, main

    add_calls(both, 2)
    both.stand.sheets.create_spreadsheet("other-sheet", tabs=("Chats", "Calls"))
    both.stand.sheets.set_rows("other-sheet", "Calls", [["Date", "Who"]])
    both.env_overrides["SHEET_ID"] = "other-sheet"
    out = io.StringIO()
    code = main(["check", "--json"], Context(env=both.env(), clock=both.clock, out=out, err=io.StringIO(), backoff=0.01))
    checks = {c["name"]: c for c in json.loads(out.getvalue())["checks"]}
    assert code != 0
    assert checks["moneypenny calls"]["status"] == "OK" and "2 message(s)" in checks["moneypenny calls"]["detail"]
    assert checks["calls tab"]["status"] == "FAIL" and "CALLS_TAB" in checks["calls tab"]["detail"]
    assert checks["sheet"]["status"] == "OK"
    assert both.open_store().read_doc(CallsReadDoc) is None and both.open_store().journal_pending() == []
    both.stand.moneypenny.inject("calls", Status(503), times=None)
    out = io.StringIO()
    main(["check", "--json"], Context(env=both.env(), clock=both.clock, out=out, err=io.StringIO(), backoff=0.01))
    checks = {c["name"]: c for c in json.loads(out.getvalue())["checks"]}
    assert checks["moneypenny calls"]["status"] == "FAIL" and "call messages" in checks["moneypenny calls"]["detail"]


def test_an_idle_run_with_2000_call_messages_a_day_costs_the_reads_of_one_with_a_handful(both):
    """The days read again are checked against what the store knows in one bounded read (the
    calls_read document's digests), not a list capped by text order: the idle cost does not grow
    with the volume (2,000 messages a day on each of the three days read again: 6,000)."""
    today = both.clock().astimezone(both.settings().chat_timezone).replace(hour=0, minute=0, second=0, microsecond=0)
    for days_ago, spacing in ((2, 43), (1, 43), (0, 21)):
        both.stand.moneypenny.add_calls(sample_calls(2000, (today - timedelta(days=days_ago)).astimezone(UTC),
                                                     seed=days_ago, spacing=timedelta(seconds=spacing)))
    both.syncer().run()
    both.clock.advance(minutes=5)
    both.syncer().run()
    store = both.open_store()
    before = store.counters.snapshot()
    both.clock.advance(minutes=5)
    idle = both.syncer().run()
    cost = store.counters.since(before).as_dict()
    assert idle.sources["calls"]["fetched"] == 6000 and idle.sources["calls"]["new"] == 0
    assert cost["reads"] <= 4 + 1 and cost["writes"] <= 2, cost
    assert len(call_ids(both)) == 6000 == len(set(call_ids(both)))
    # A new message among them is journaled and written, once.
    add_calls(both, 1, seed=99, hours_ago=0.1)
    both.clock.advance(minutes=5)
    assert both.syncer().run().sources["calls"]["new"] == 1
    assert len(call_ids(both)) == 6001 == len(set(call_ids(both)))


def test_the_calls_read_document_at_its_bound_fits_a_firestore_document(firestore_client):
    """KNOWN_KEPT digests (and the set-aside digests at theirs) are one document Firestore stores
    and gives back whole: the bounded read stays one read."""
    from lib.state.firestore.store import FirestoreStore
    from lib.sync.calls_fetch import KNOWN_KEPT, SET_ASIDE_KEPT, key_digest

    store = FirestoreStore(firestore_client, "calls-bound")
    known = "".join(sorted(key_digest(f"call:{'x' * 190}{i}") for i in range(KNOWN_KEPT)))
    doc = CallsReadDoc(last_full_day=datetime(2026, 12, 6).date(), read_at=datetime(2026, 12, 7, tzinfo=UTC),
                       set_aside=tuple(f"{i:032x}" for i in range(SET_ASIDE_KEPT)), known=known)
    store.write_doc(doc)
    before = store.counters.snapshot()
    assert store.read_doc(CallsReadDoc) == doc
    assert store.counters.since(before).as_dict()["reads"] == 1
    assert len(doc.known_digests()) == KNOWN_KEPT


def test_a_calls_read_document_of_the_earlier_form_keeps_its_keys_as_digests():
    """Written before the digests, the document listed the keys ("journaled"): they stay known."""
    from lib.sync.calls_fetch import key_digest

    old = CallsReadDoc.from_dict({"last_full_day": "2026-12-06", "journaled": ["call:M3VZkR", "call:#ab"]})
    assert old.known_digests() == {key_digest("call:M3VZkR"), key_digest("call:#ab")}
    assert "journaled" not in old.to_dict() and CallsReadDoc.from_dict(old.to_dict()) == old
