"""A third Moneypenny feed, made up here and registered from the test (lib.sources.register),
goes through the run as the built-in ones do, with no change to lib/: MONEYPENNY_SOURCES names
it, its items reach the journal, its own tab exactly once, and the one Slack summary; a crash at
any checkpoint of a run, then the next run, leave each item once; on SQLite and on the Firestore
emulator. The feed is read by day windows from a tiny HTTP endpoint served here on 127.0.0.1,
through the real Moneypenny client (its login, token cache and retries)."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest

from lib.alerts import feed_fix
from lib.commands.cli import main
from lib.commands.command import Context
from lib.destinations.sheet.cells import fit_cell
from lib.destinations.sheet.writer import TabLayout
from lib.destinations.slack.summary import inert, line_time, slack_size, trim
from lib.errors import InvalidItem, RunFailed, SettingsError
from lib.records import Rejected, Source, parse_each, parse_time
from lib.settings import Settings
from lib.sources import DayRead, Feed, register, unregister
from lib.sources.moneypenny import MoneypennyClient
from lib.sync import RunOptions
from sandbox.standins.samples import sample_calls
from tests.harness import Crash, by_header, slack_text, us_date

PREFIX = "note:"
HEADER = ("Noted at", "Note", "Note id")


@dataclass(frozen=True)
class Note:
    """A made-up feed's item: a note taken by a receptionist, keyed by its id."""

    key: str
    time: datetime
    text: str = field(repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def former_keys(self) -> tuple[str, ...]:
        return ()

    def row(self) -> list[str]:
        cells = [self.time.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds"), self.text,
                 self.key[len(PREFIX):]]
        return [fit_cell(c) for c in cells]

    def summary_line(self, limit: int, dated: bool = False) -> str:
        line = f"*{line_time(self.time, dated)}* {inert(trim(self.text, 80))}"
        return line if slack_size(line) <= limit else f"*{line_time(self.time, dated)}*"


def parse_note(item: Any, tz: ZoneInfo) -> Note:
    if not isinstance(item, dict):
        raise InvalidItem("item is not an object")
    if not isinstance(item.get("noteId"), str) or not item["noteId"]:
        raise InvalidItem("noteId is missing")
    text = item.get("text")
    return Note(key=PREFIX + item["noteId"], time=parse_time(item.get("date"), "date", tz, naive=UTC),
                text=text if isinstance(text, str) else "", raw=item)


def parse_notes(items: Sequence[Any], tz: ZoneInfo) -> tuple[list[Note], list[Rejected]]:
    return parse_each(items, tz, parse_note)


class NotesEndpoint:
    """GET /notes?from=MM/DD/YYYY&to=MM/DD/YYYY with a bearer token: the notes of those days."""

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []
        self.reads = 0
        self.status = 200  # what it answers (a 5xx: the feed is down)
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self.headers.get("Authorization", "").startswith("Bearer "):
                    self.send_response(401)
                    self.end_headers()
                    return
                if endpoint.status != 200:
                    self.send_response(endpoint.status)
                    self.end_headers()
                    return
                query = parse_qs(urlparse(self.path).query)
                first, last = (us_date(query[k][0]) for k in ("from", "to"))
                endpoint.reads += 1
                body = json.dumps([n for n in endpoint.notes
                                   if first <= datetime.fromisoformat(n["date"]).date() <= last]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notes"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def notes_feed(url: str) -> Feed:
    def fetch(client: MoneypennyClient, start: date, end: date) -> list[Any]:
        return client.fetch_days(url, start, end, feed="notes", api="notes API", cause="moneypenny_notes")

    return Feed(
        name="notes", title="Notes", key_prefix=PREFIX,
        source=Source(name="note", parse_batch=parse_notes, journal_item=lambda note: note.raw,
                      from_journal=parse_note, with_key=lambda note, key: dataclasses.replace(note, key=key)),
        layout=TabLayout(HEADER, "NOTES_TAB", lambda cell: PREFIX + cell),
        noun="note", summary_noun="new note",
        read=DayRead(fetch=fetch, doc="notes_read"),
        probe=lambda client, day: fetch(client, day, day),
    )


@pytest.fixture
def endpoint() -> Iterator[NotesEndpoint]:
    served = NotesEndpoint()
    yield served
    served.close()


@pytest.fixture
def notes(harness, endpoint):
    """The harness with the notes feed registered and on beside the chats."""
    register(notes_feed(endpoint.url))
    harness.env_overrides["MONEYPENNY_SOURCES"] = "chats,notes"
    yield harness
    unregister("notes")


def add_notes(h, endpoint: NotesEndpoint, n: int, *, seed: int = 0, hours_ago: float = 2) -> list[dict[str, Any]]:
    at = h.clock() - timedelta(hours=hours_ago)
    made = [{"noteId": f"n{seed}-{i}", "date": (at + timedelta(minutes=i)).isoformat(),
             "text": f"Please call back Quillfeather{seed}x{i} about the order"} for i in range(n)]
    endpoint.notes.extend(made)
    return made


def note_records(h) -> list[dict[str, str]]:
    return by_header(h.stand.sheets.rows(h.sheet_id, "Notes"))


def note_ids(h) -> list[str]:
    return [r["Note id"] for r in note_records(h)]


def test_moneypenny_sources_refuses_a_feed_nobody_registered_and_names_the_registered_ones(harness, endpoint):
    env = {**harness.env(), "MONEYPENNY_SOURCES": "chats,notes"}
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert "no feed is called 'notes'" in str(refused.value) and "chats, calls" in str(refused.value)
    register(notes_feed(endpoint.url))
    try:
        settings = Settings.from_env(env)
        assert settings.moneypenny_sources == ("chats", "notes") and settings.tab_of("notes") == "Notes"
        assert Settings.from_env({**env, "NOTES_TAB": "Receptionist notes"}).tab_of("notes") == "Receptionist notes"
        with pytest.raises(SettingsError, match="NOTES_TAB must name another tab than SHEET_TAB"):
            Settings.from_env({**env, "NOTES_TAB": "Chats"})
    finally:
        unregister("notes")


def test_a_registered_feed_fills_its_own_tab_once_and_shares_the_one_summary(notes, endpoint):
    chats = notes.add_chats(2, seed=1)
    made = add_notes(notes, endpoint, 3, seed=2)
    report = notes.syncer().run()
    rows = notes.stand.sheets.rows(notes.sheet_id, "Notes")
    assert rows[0] == [*HEADER, "Owner", "Claimed at"]
    assert sorted(note_ids(notes)) == sorted(n["noteId"] for n in made)
    assert len(notes.data_rows()) == len(chats)
    [message] = notes.stand.slack.messages()
    assert message["blocks"][0]["text"]["text"].startswith("2 new chats · 3 new notes")
    text = slack_text(message)
    assert "Open the Notes tab" in text and all(n["text"].split()[3] in text for n in made)
    assert report.sources["notes"]["appended"] == 3 and report.sources["chats"]["appended"] == 2
    assert report.appended == 5 and report.posted == 5
    assert notes.open_store().get_meta("notes_read") is not None  # its own read document
    # The next run reads the days again and adds nothing: no row, no summary.
    notes.clock.advance(minutes=5)
    again = notes.syncer().run()
    assert again.sources["notes"]["fetched"] == 3 and again.sources["notes"]["new"] == 0 and again.appended == 0
    assert sorted(note_ids(notes)) == sorted(n["noteId"] for n in made)
    assert len(notes.stand.slack.messages()) == 1 and endpoint.reads == 2


def test_a_registered_feed_that_is_down_never_stops_the_chats_and_its_alert_says_what_to_do(notes, endpoint):
    chats = notes.add_chats(2)
    made = add_notes(notes, endpoint, 2)
    endpoint.status = 503
    with pytest.raises(RunFailed) as failed:
        notes.syncer().run()
    assert failed.value.cause == "moneypenny_notes" and "Moneypenny notes" in str(failed.value)
    assert [e["step"] for e in failed.value.report.errors] == ["notes fetch"]
    assert len(notes.data_rows()) == len(chats) and "2 new chats" in slack_text(*notes.stand.slack.messages())
    fix = feed_fix(failed.value.cause)
    assert fix is not None and "notes API is failing" in fix and "the other feeds still go through" in fix
    endpoint.status = 200
    notes.clock.advance(minutes=5)
    notes.syncer().run()
    assert sorted(note_ids(notes)) == sorted(n["noteId"] for n in made)
    assert len(notes.data_rows()) == len(chats)


def test_a_feed_turned_off_keeps_its_items_waiting_until_it_is_on_again(notes, endpoint):
    made = add_notes(notes, endpoint, 2)
    # Journaled by a read of its own (as a run that failed before delivering leaves them), then turned off.
    steps = notes.syncer().protocols().of("notes")
    steps.fetch.read(steps.report, RunOptions())
    notes.env_overrides["MONEYPENNY_SOURCES"] = "chats"
    off = notes.syncer().run()
    assert off.off_waiting == {"notes": 2} and off.healthy and notes.stand.sheets.rows(notes.sheet_id, "Notes") == []
    notes.env_overrides["MONEYPENNY_SOURCES"] = "chats,notes"
    notes.clock.advance(minutes=5)
    notes.syncer().run()
    assert sorted(note_ids(notes)) == sorted(n["noteId"] for n in made)


def test_chats_turned_off_wait_in_the_journal_like_any_feeds_items(notes, endpoint):
    """The chats are a feed like the others: while they are off, what they journaled waits
    (their tab is not written), is reported as theirs and counts toward no health reason."""
    chats = notes.add_chats(2)
    notes.protocols().fetch.read(notes.report("read"), RunOptions())
    notes.env_overrides["MONEYPENNY_SOURCES"] = "notes"
    add_notes(notes, endpoint, 1)
    off = notes.syncer().run()
    assert off.off_waiting == {"chats": 2} and off.healthy and notes.data_rows() == [] and len(note_ids(notes)) == 1
    notes.env_overrides["MONEYPENNY_SOURCES"] = "chats,notes"
    notes.clock.advance(minutes=15)
    notes.syncer().run()
    keys = notes.sheet_keys()
    assert len(keys) == len(set(keys)) == len(chats)  # delivered once, now that the chats are on again


@dataclass
class Feeding:
    """A feed beside the chats in a run scenario: how its items are added, its tab and id column."""

    name: str
    tab: str
    id_column: str
    add: Any  # (harness, n, seed) -> [(id, a word the summary shows)]


@pytest.fixture(params=["calls", "notes"])
def feeding(request, harness, endpoint) -> Iterator[Feeding]:
    """The run scenarios, parametrised over the feeds beside the chats: the built-in calls and
    the made-up notes (registered here)."""
    harness.env_overrides["MONEYPENNY_SOURCES"] = f"chats,{request.param}"
    if request.param == "calls":
        def add_calls(h, n: int, seed: int) -> list[tuple[str, str]]:
            made = sample_calls(n, h.clock() - timedelta(hours=2), seed=seed)
            h.stand.moneypenny.add_calls(made)
            return [(c["callId"], c["caller"]) for c in made]

        yield Feeding("calls", "Calls", "Call id", add_calls)
        return
    register(notes_feed(endpoint.url))

    def add(h, n: int, seed: int) -> list[tuple[str, str]]:
        return [(m["noteId"], m["text"].split()[3]) for m in add_notes(h, endpoint, n, seed=seed)]

    yield Feeding("notes", "Notes", "Note id", add)
    unregister("notes")


# Every checkpoint a run with the chats and one more feed passes, with which time it is passed
# there (the sheet's steps are passed once per feed: the chats' tab first, then the other's).
CHECKPOINTS = [("before_fetch", 1), ("after_fetch", 1), ("after_{feed}_fetch", 1), ("after_journal", 1),
               ("after_mark_inflight", 1), ("after_append", 1), ("after_mark_inflight", 2), ("after_append", 2),
               ("after_post", 1)]


def crash_at_nth(where: str, nth: int):
    seen = {"n": 0}

    def checkpoint(step: str) -> None:
        if step == where:
            seen["n"] += 1
            if seen["n"] == nth:
                raise Crash(f"{step} #{nth}")

    return checkpoint


@pytest.mark.parametrize("where, nth", CHECKPOINTS, ids=[f"{w}#{n}" for w, n in CHECKPOINTS])
def test_a_crash_at_any_checkpoint_then_the_next_run_leave_each_item_of_each_feed_once(harness, feeding, store,
                                                                                       where, nth):
    chats = harness.add_chats(2, seed=3)
    made = feeding.add(harness, 3, 4)
    with pytest.raises(Crash):
        harness.syncer(checkpoint=crash_at_nth(where.format(feed=feeding.name), nth)).run()
    # The crashed run's lease runs out; the next run finishes what it left (twice: nothing more).
    harness.clock.advance(minutes=11)
    harness.syncer().run()
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    ids = [r[feeding.id_column] for r in by_header(harness.stand.sheets.rows(harness.sheet_id, feeding.tab))]
    assert sorted(ids) == sorted(i for i, _ in made)
    keys = harness.sheet_keys()
    assert len(keys) == len(set(keys)) == len(chats)
    text = slack_text(*harness.stand.slack.messages())
    assert all(word in text for _, word in made)  # each item announced (at least once)
    assert harness.open_store().journal_pending() == []


def test_check_status_and_waiting_name_the_registered_feed(notes, endpoint):
    made = add_notes(notes, endpoint, 3)
    notes.syncer().run()

    def cli(*argv: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        ctx = Context(env=notes.env(), clock=notes.clock, out=out, err=err, sleep=lambda s: None, backoff=0.05)
        return main(list(argv), ctx), out.getvalue() + err.getvalue()

    code, text = cli("check", "--json")
    checks = {c["name"]: c for c in json.loads(text)["checks"]}
    assert checks["moneypenny notes"]["status"] == "OK"
    assert "the notes endpoint answers (3 note(s) today)" in checks["moneypenny notes"]["detail"]
    assert checks["notes tab"]["status"] == "OK" and "'Notes' has the right header" in checks["notes tab"]["detail"]
    assert "notes tab 'Notes'" in checks["settings"]["detail"] and "moneypenny calls" not in checks
    code, text = cli("status", "--json")
    assert code == 0
    status = json.loads(text)
    assert status["feeds"]["notes"]["last_run"]["appended"] == 3 and status["feeds"]["notes"]["last_full_day"]
    code, text = cli("status")
    assert "Notes" in text and "last run with notes: fetched 3, new 3, written 3" in text
    # Journaled while the tab cannot take them, then dropped by name.
    more = add_notes(notes, endpoint, 2, seed=7)
    notes.clock.advance(minutes=5)
    steps = notes.syncer().protocols().of("notes")
    steps.fetch.read(steps.report, RunOptions())
    code, text = cli("waiting", "--drop", "notes")
    assert code == 0 and "dropped 2 waiting notes item(s)" in text
    notes.clock.advance(minutes=5)
    notes.syncer().run()
    assert sorted(note_ids(notes)) == sorted(n["noteId"] for n in made)  # the dropped ones are not written
    assert len(more) == 2
