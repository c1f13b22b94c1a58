"""A destination made up here and registered from the test (lib.destinations.register) delivers
beside the sheet and Slack with no change to lib/: a webhook that POSTs each item's row to a tiny
HTTP server this test serves on 127.0.0.1. Declared exactly once, it gets the run's in-flight
batches, settle time and key check (its `keys_present` asks the server which keys it holds);
declared at least once, it is handed every feed's part and marked after it took them. A crash at
any checkpoint of a run, then clean runs, leave each item in it once (or at least once, as
declared) and in the sheet once; on SQLite and on the Firestore emulator."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from lib.destinations import (
    AT_LEAST_ONCE,
    EXACTLY_ONCE,
    BuildContext,
    FeedPart,
    Writer,
    register,
    registered,
    unregister,
)
from lib.errors import NoAnswer, RunFailed, TransientError
from lib.records import Record
from lib.state.models import DONE, INFLIGHT
from lib.sync import RunOptions
from tests.harness import Crash, slack_text

NAME = "webhook"


class Hook(ThreadingHTTPServer):
    """The webhook's receiving end: every item POSTed (key, feed, row), in order; `GET /keys` lists
    the keys it holds. `slow` seconds: it keeps a POST and only then answers (a lost answer)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HookHandler)
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.slow = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def keys(self) -> Counter[str]:
        with self.lock:
            return Counter(item["key"] for item in self.received)


class HookHandler(BaseHTTPRequestHandler):
    server: Hook

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that gave up waiting
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def do_POST(self) -> None:
        items = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["items"]
        with self.server.lock:
            self.server.received.extend(items)
        if self.server.slow:
            time.sleep(self.server.slow)
        self._answer({"ok": True})

    def do_GET(self) -> None:
        self._answer({"keys": sorted(self.server.keys())})


def post(url: str, items: list[dict[str, Any]]) -> None:
    try:
        answer = requests.post(f"{url}/items", json={"items": items}, timeout=0.5)
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise NoAnswer(f"the webhook did not answer ({type(exc).__name__})") from None
    if answer.status_code != 200:
        raise TransientError(f"the webhook answered {answer.status_code}")


class HookWriter:
    """One feed's target of the exactly-once webhook."""

    def __init__(self, url: str, feed: str):
        self.url, self.feed = url, feed

    def ready(self) -> None:
        pass

    def append(self, records: Sequence[Record]) -> int:
        post(self.url, [{"key": r.key, "feed": self.feed, "row": r.row()} for r in records])
        return len(records)

    def keys_present(self) -> Collection[str]:
        return set(requests.get(f"{self.url}/keys", timeout=2).json()["keys"])


class HookTarget:
    """The webhook built for one Syncer: a writer per feed (exactly once), or one POST of every
    feed's part (at least once)."""

    def __init__(self, url: str, feeds: Sequence[str]):
        self.url, self.feeds = url, list(feeds)

    def writer(self, feed: str) -> Writer | None:
        return HookWriter(self.url, feed) if feed in self.feeds else None

    def deliver(self, parts: Sequence[FeedPart]) -> None:
        post(self.url, [{"key": r.key, "feed": p.feed, "row": r.row()} for p in parts for r in p.records])


@dataclass(frozen=True)
class Webhook:
    """The made-up destination: its name is the key of its state in the journal's mapping."""

    url: str
    protocol: str
    name: str = NAME

    def build(self, context: BuildContext) -> HookTarget:
        return HookTarget(self.url, [feed.name for feed in context.feeds])


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(params=[EXACTLY_ONCE, AT_LEAST_ONCE])
def webhook(request, hook) -> Iterator[Webhook]:
    """The webhook, registered as the test declares it, and unregistered after."""
    made = Webhook(hook.url, request.param)
    register(made)
    yield made
    unregister(NAME)


def test_a_registered_destination_takes_every_new_item_beside_the_sheet_and_slack(harness, hook, webhook):
    assert [d.name for d in registered()] == ["sheet", "slack", NAME]
    harness.add_chats(3, seed=1)
    report = harness.syncer().run()
    keys = harness.sheet_keys()
    assert report.appended == 3 and report.posted == 3 and len(keys) == 3
    assert hook.keys() == Counter(keys)
    assert {tuple(item["row"]) for item in hook.received} == {tuple(row) for row in harness.data_rows()}
    store = harness.open_store()
    assert store.journal_pending() == []
    assert all(e.states == {"sheet": DONE, "slack": DONE, NAME: DONE} for e in store.journal_get(keys).values())
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    assert hook.keys() == Counter(keys)  # nothing new: nothing sent again


def test_a_destination_registered_later_takes_what_is_pending_and_leaves_what_was_delivered(harness, hook):
    """Entries delivered before it was registered stay delivered (not pending again, not sent to
    it); entries still pending then are delivered to it too."""
    harness.add_chats(2, seed=1)
    harness.syncer().run()
    before = set(harness.sheet_keys())
    harness.clock.advance(minutes=5)
    later = harness.add_chats(2, seed=2)
    harness.protocols().fetch.read(harness.report("read"), RunOptions())  # journaled, not delivered
    store = harness.open_store()
    assert len(store.journal_pending()) == len(later)
    register(Webhook(hook.url, EXACTLY_ONCE))
    try:
        harness.clock.advance(minutes=5)
        report = harness.syncer().run()
    finally:
        unregister(NAME)
    keys = harness.sheet_keys()
    assert report.appended == 2 and len(keys) == len(set(keys)) == 4
    assert set(hook.keys()) == set(keys) - before and max(hook.keys().values()) == 1
    assert store.journal_pending() == []


# Every checkpoint a run passes, with which time it is passed there: the exactly-once deliveries
# first (the sheet's, then an exactly-once webhook's), then the at-least-once ones (Slack's
# summary, then an at-least-once webhook's).
CHECKPOINTS = {
    EXACTLY_ONCE: [("before_fetch", 1), ("after_fetch", 1), ("after_journal", 1), ("after_mark_inflight", 1),
                   ("after_append", 1), ("after_mark_inflight", 2), ("after_append", 2), ("after_post", 1)],
    AT_LEAST_ONCE: [("before_fetch", 1), ("after_fetch", 1), ("after_journal", 1), ("after_mark_inflight", 1),
                    ("after_append", 1), ("after_post", 1), (f"after_{NAME}", 1)],
}
CASES = [(protocol, where, nth) for protocol, points in CHECKPOINTS.items() for where, nth in points]


def crash_at_nth(where: str, nth: int):
    seen = Counter[str]()

    def checkpoint(step: str) -> None:
        seen[step] += 1
        if step == where and seen[step] == nth:
            raise Crash(f"{step} #{nth}")

    return checkpoint


@pytest.mark.parametrize("protocol, where, nth", CASES, ids=[f"{p}-{w}#{n}" for p, w, n in CASES])
def test_a_crash_at_any_checkpoint_then_clean_runs_leave_each_item_in_the_made_up_destination_as_declared(
        harness, hook, store_kind, protocol, where, nth):
    register(Webhook(hook.url, protocol))
    try:
        harness.add_chats(3, seed=3)
        with pytest.raises(Crash):
            harness.syncer(checkpoint=crash_at_nth(where, nth)).run()
        # The crashed run's lease runs out; the next run finishes what it left (twice: nothing more).
        harness.clock.advance(minutes=11)
        harness.syncer().run()
        harness.clock.advance(minutes=5)
        harness.syncer().run()
    finally:
        unregister(NAME)
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == 3  # the sheet: once each
    got = hook.keys()
    assert set(got) == set(keys)
    if protocol == EXACTLY_ONCE:
        assert max(got.values()) == 1, got
    assert len(slack_text(*harness.stand.slack.messages())) > 0
    assert harness.open_store().journal_pending() == []


def test_an_unanswered_write_is_checked_by_the_destinations_keys_before_it_is_sent_again(harness, hook):
    """The exactly-once machinery serves the made-up destination as it does the sheet: a POST
    whose answer was lost stays in flight until it has surely ended, then the webhook's own keys
    say it arrived, so it is never sent twice."""
    register(Webhook(hook.url, EXACTLY_ONCE))
    try:
        harness.add_chats(2, seed=5)
        hook.slow = 1.5  # kept, then answered after the client gave up
        with pytest.raises(RunFailed) as failed:
            harness.syncer().run()
        assert [e["step"] for e in failed.value.report.errors] == [NAME]
        assert "did not answer" in failed.value.report.errors[0]["message"]
        hook.slow = 0
        assert sum(hook.keys().values()) == 2
        harness.clock.advance(minutes=1)  # a retry before the settle time leaves it alone
        early = harness.syncer().run()
        assert early.appended == 0 and sum(hook.keys().values()) == 2
        harness.clock.advance(minutes=10)
        harness.syncer().run()
    finally:
        unregister(NAME)
    assert hook.keys() == Counter(harness.sheet_keys())  # each once
    assert harness.open_store().journal_pending() == []


def test_entries_left_pending_by_a_destination_no_longer_registered_are_written_delivered(harness, hook):
    """A destination taken away (unregistered) while it still lacked entries: the next run writes
    them as delivered to the registered ones, so they are not pending forever."""
    harness.syncer().run()  # the first read: the cursor
    harness.clock.advance(minutes=5)
    register(Webhook("http://127.0.0.1:9", EXACTLY_ONCE))  # nothing listens: the webhook is down
    try:
        harness.add_chats(2, seed=6)
        with pytest.raises(RunFailed):
            harness.syncer().run()
    finally:
        unregister(NAME)
    store = harness.open_store()
    assert [(e.state("sheet"), e.state("slack"), e.state(NAME)) for e in store.journal_pending()] == [
        (DONE, DONE, INFLIGHT)] * 2
    assert len(harness.sheet_keys()) == 2
    harness.clock.advance(minutes=5)
    report = harness.syncer().run()
    assert report.appended == 0 and report.pending == 0 and store.journal_pending() == []
    assert all(e.states == {"sheet": DONE, "slack": DONE} for e in store.journal_get(harness.sheet_keys()).values())


@pytest.mark.parametrize(("made", "refusal"), [
    (Webhook("http://127.0.0.1:9", EXACTLY_ONCE, name="sheet"), "a destination named 'sheet' is already registered"),
    (Webhook("http://127.0.0.1:9", "exactly_twice"), "protocol must be one of exactly_once, at_least_once"),
    (Webhook("http://127.0.0.1:9", AT_LEAST_ONCE, name="Web Hook"), "a lower-case word"),
])
def test_register_refuses_a_name_taken_or_a_protocol_the_run_does_not_know(made, refusal):
    with pytest.raises(ValueError, match=refusal):
        register(made)
    assert [d.name for d in registered()] == ["sheet", "slack"]
    with pytest.raises(ValueError, match="built in"):
        unregister("slack")
