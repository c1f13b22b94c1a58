"""The core sync: one row per chat in chat-time order and one summary per run, with real requests,
gspread and slack-sdk against the local stand-ins."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest

from lib.destinations.sheet.cells import CELL_LIMIT
from lib.errors import HeaderMismatchError, MoneypennyAuthError, MoneypennyUnavailable, RunFailed
from lib.sources.chats import HEADER
from sandbox.standins.server import LostResponse, Malformed, Status
from sandbox.standins.slack import FakeSlack
from tests.harness import by_header, slack_text


def test_first_run_creates_tab_and_header_and_writes_rows_in_chat_time_order(harness):
    chats = harness.add_chats(5, seed=1)
    report = harness.syncer().run()
    assert report.fetched == 5 and report.new == 5 and report.appended == 5 and report.posted == 5
    rows = harness.rows()
    assert rows[0] == [*HEADER, "Owner", "Claimed at"]
    times = [r["Chat time"] for r in by_header(rows)]
    assert times == sorted(times)
    names = sorted(r["Name"] for r in by_header(rows))
    assert names == sorted((c.get("name") or "").strip() for c in chats)


def test_two_runs_log_in_once_and_the_second_finds_nothing(harness):
    harness.add_chats(3)
    harness.syncer().run()
    harness.clock.advance(minutes=5)
    second = harness.syncer().run()
    assert harness.stand.moneypenny.count("auth") == 1
    assert second.fetched == 0 and second.appended == 0 and second.posted == 0
    assert len(harness.stand.slack.messages()) == 1


def test_expired_token_is_refreshed_when_the_clock_passes_its_lifetime(harness):
    harness.syncer().run()
    harness.clock.advance(hours=24, minutes=1)
    harness.add_chats(2, seed=3)
    report = harness.syncer().run()
    assert harness.stand.moneypenny.count("auth") == 2
    assert report.appended == 2


def test_token_close_to_expiry_is_renewed_before_use(harness):
    harness.syncer().run()
    harness.clock.advance(hours=23, minutes=55)
    harness.syncer().run()
    # Renewed ahead of time: no call was refused for a token that died mid-run.
    assert harness.stand.moneypenny.count("auth") == 2


def test_401_mid_run_refreshes_the_token_once_and_carries_on(harness):
    harness.syncer().run()
    harness.stand.moneypenny.expire_tokens()
    harness.add_chats(2, seed=4)
    report = harness.syncer().run()
    assert report.appended == 2
    assert harness.stand.moneypenny.count("auth") == 2


def test_second_401_after_a_fresh_token_is_a_clear_permanent_error(harness):
    harness.add_chats(2)
    harness.stand.moneypenny.inject("log", Status(401), times=2)
    with pytest.raises(RunFailed) as failed:
        harness.syncer().run()
    assert isinstance(failed.value.error, MoneypennyAuthError)
    assert not failed.value.transient
    assert "refused a freshly issued token" in str(failed.value.error)
    assert harness.stand.moneypenny.count("auth") == 2


def test_wrong_password_names_the_settings_at_fault(harness):
    harness.env_overrides["MONEYPENNY_PASSWORD"] = "not-the-password"
    with pytest.raises(RunFailed) as failed:
        harness.syncer().run()
    message = str(failed.value.error)
    assert "MONEYPENNY_PASSWORD" in message and "not-the-password" not in message


def test_empty_array_writes_nothing_and_posts_nothing(harness):
    report = harness.syncer().run()
    assert report.fetched == 0 and report.appended == 0 and report.posted == 0
    assert harness.stand.sheets.count_writes() == 0
    assert harness.stand.slack.messages() == []


def test_malformed_items_are_set_aside_and_the_rest_of_the_batch_goes_through(harness):
    good = harness.add_chats(3, seed=5)
    harness.stand.moneypenny.add_chats(
        ["not an object", {"name": "No time at all"}, {"chatTime": "yesterday-ish", "name": "Bad time"}, None]
    )
    report = harness.syncer().run()
    assert report.skipped_invalid == 4
    assert report.appended == 3
    assert len(harness.data_rows()) == len(good)
    assert harness.open_store().quarantine_count() == 4


def test_non_array_body_is_a_clear_transient_error_and_nothing_is_written(harness):
    harness.add_chats(2)
    # Both the plain call and the window read that the run makes instead get the bad body.
    harness.stand.moneypenny.inject("log", Malformed('{"message": "maintenance"}'), times=2)
    with pytest.raises(RunFailed) as failed:
        harness.syncer().run()
    assert isinstance(failed.value.error, MoneypennyUnavailable)
    assert "not an array" in str(failed.value.error)
    assert harness.data_rows() == []


def test_missing_and_null_fields_are_tolerated(harness):
    harness.stand.moneypenny.add_chats(
        [{"chatTime": "2026-11-20T10:00:00.123", "name": None, "email": None, "transcript": None,
          "variables": None, "tags": None}]
    )
    report = harness.syncer().run()
    assert report.appended == 1 and report.skipped_invalid == 0
    row = harness.records()[0]
    assert row["Chat time"] == "2026-11-20 10:00:00"


def test_formula_like_text_lands_as_text(harness):
    payloads = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+44 1234", "-2+3", "@SUM(A1:A2)", "=1+1"]
    harness.stand.moneypenny.add_chats(
        [
            {"chatTime": f"2026-11-20T09:0{i}:00.000", "name": p, "companyName": p, "email": p,
             "transcript": [f"1: [Visitor] - {p}"]}
            for i, p in enumerate(payloads)
        ]
    )
    harness.syncer().run()
    cells = harness.stand.sheets.cells(harness.sheet_id, "Chats")
    data = by_header(cells, name=lambda c: c.value)
    assert len(data) == len(payloads)
    assert not any(c.formula for row in cells for c in row)
    assert sorted(row["Name"].value for row in data) == sorted(payloads)


def test_mention_like_text_is_inert_in_slack(harness):
    nasty = ["<!channel> call me", "<@U123> hi", "<http://evil.example|click here>", "<!here|here>", "visit evil.example now"]
    harness.stand.moneypenny.add_chats(
        [
            {"chatTime": f"2026-11-20T09:1{i}:00.000", "name": n, "companyName": n, "pageURL": n,
             "transcript": ["1: [Visitor] - [Visitor has started a chat.]", f"2: [Visitor] - {n}"]}
            for i, n in enumerate(nasty)
        ]
    )
    harness.syncer().run()
    messages = harness.stand.slack.messages()
    assert len(messages) == 1
    text = slack_text(*messages)
    # Our own sheet link is the one live entity allowed.
    live = [e for e in FakeSlack.live_entities(text) if not e.startswith("<" + harness.settings().sheet_url)]
    assert live == []
    assert "&lt;!channel&gt;" in text
    assert "`evil.example`" in text


def test_60000_character_transcript_is_cut_with_a_marker(harness):
    long_line = "2: [Visitor] - " + "x" * 60_000
    harness.stand.moneypenny.add_chats(
        [{"chatTime": "2026-11-20T09:00:00.000", "name": "Long", "transcript": ["1: [Visitor] - hi", long_line]}]
    )
    report = harness.syncer().run()
    assert report.appended == 1
    cell = harness.records()[0]["Transcript"]
    assert len(cell) <= CELL_LIMIT
    assert "[cut:" in cell and cell.startswith("1: [Visitor] - hi")


def test_mismatched_header_is_refused_and_nothing_is_appended(harness):
    harness.stand.sheets.create_spreadsheet("other-sheet", tabs=("Chats",))
    harness.stand.sheets.set_rows("other-sheet", "Chats", [["Date", "Who", "What"]])
    harness.env_overrides["SHEET_ID"] = "other-sheet"
    harness.add_chats(2)
    with pytest.raises(RunFailed) as failed:
        harness.syncer().run()
    assert isinstance(failed.value.error, HeaderMismatchError)
    assert "SHEET_TAB" in str(failed.value.error)
    assert harness.stand.sheets.rows("other-sheet", "Chats") == [["Date", "Who", "What"]]
    # The chats wait in the journal for the header to be fixed.
    assert len(harness.open_store().journal_pending()) == 2


def test_header_on_an_existing_empty_tab_is_written_and_extra_columns_are_kept(harness):
    harness.add_chats(2, seed=8)
    harness.syncer().run()
    rows = harness.rows()
    # The sales team adds a column right of ours and fills it in.
    harness.stand.sheets.set_rows(
        harness.sheet_id, "Chats", [rows[0] + ["Owner"]] + [r + ["Sam"] for r in rows[1:]]
    )
    harness.add_chats(1, seed=9, start=None)
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    after = harness.rows()
    assert after[0][-1] == "Owner"
    assert [r["Owner"] for r in by_header(after)[:2]] == ["Sam", "Sam"]
    assert len(after) == 4 and len(after[3]) <= len(HEADER) + 1


def test_rows_keep_landing_at_the_bottom_after_a_hand_sort(harness):
    harness.add_chats(4, seed=10)
    harness.syncer().run()
    harness.stand.sheets.sort_rows(harness.sheet_id, "Chats", 1, reverse=True)
    harness.add_chats(2, seed=11)
    harness.clock.advance(minutes=5)
    harness.syncer().run()
    rows = harness.rows()
    assert len(rows) == 7
    assert all(len(r) >= len(HEADER) and r["Chat key"] for r in by_header(rows))
    assert len(set(harness.sheet_keys())) == 6


def test_500_chats_make_one_append_call_and_one_valid_slack_message(harness):
    harness.add_chats(500, seed=12)
    harness.stand.sheets.reset_calls()
    report = harness.syncer().run()
    assert report.appended == 500
    assert harness.stand.sheets.count("values.append") == 1
    messages = harness.stand.slack.messages()
    assert len(messages) == 1
    blocks = messages[0]["blocks"]
    assert len(blocks) <= 50 and len(json.dumps(blocks)) < 12_000
    assert "500" in blocks[0]["text"]["text"] and "more" in json.dumps(blocks[-1])


def test_moneypenny_5xx_fails_the_run_as_transient_and_writes_nothing(harness):
    harness.add_chats(3)
    harness.stand.moneypenny.inject("log", Status(503), times=10)
    with pytest.raises(RunFailed) as failed:
        harness.syncer().run()
    assert failed.value.transient
    assert "HTTP 503" in str(failed.value.error)
    assert harness.stand.sheets.count_writes() == 0
    assert harness.stand.slack.messages() == []


def test_slack_rate_limit_is_retried_by_slack_sdk(harness):
    harness.add_chats(2)
    harness.stand.slack.inject("chat.postMessage", Status(429, retry_after=0))
    report = harness.syncer().run()
    assert report.posted == 2
    assert len(harness.stand.slack.messages()) == 1


def test_moneypenny_429_is_retried_after_retry_after_and_the_run_succeeds(harness):
    harness.add_chats(2)
    harness.stand.moneypenny.inject("log", Status(429, retry_after=1))
    report = harness.syncer().run()
    calls = harness.stand.moneypenny.calls("log")
    assert report.appended == 2
    assert [c.fault for c in calls] == ["Status", None]
    assert (calls[1].at - calls[0].at) >= 0.9  # urllib3 waited as Retry-After asked


def test_a_5xx_on_the_cursor_moving_call_is_not_retried_blindly_but_read_by_date_window(harness):
    harness.add_chats(2)
    harness.stand.moneypenny.inject("log", Status(502))
    report = harness.syncer().run()
    calls = harness.stand.moneypenny.calls("log")
    # One plain call only: a retry could have come back empty after the cursor moved.
    assert len([c for c in calls if "startTime" not in c.query]) == 1
    assert [c for c in calls if "startTime" in c.query] and report.appended == 2


def test_a_warm_instance_rereads_the_header_and_refuses_a_column_inserted_before_a(harness):
    syncer = harness.syncer()  # one Syncer for every run, as on a warm function instance
    harness.add_chats(2, seed=13)
    syncer.run()
    harness.stand.sheets.insert_columns(harness.sheet_id, "Chats", "A")
    harness.stand.sheets.set_cell(harness.sheet_id, "Chats", "A1", "Owner")
    before = harness.rows()
    harness.add_chats(2, seed=14)
    harness.clock.advance(minutes=5)
    with pytest.raises(RunFailed) as failed:
        syncer.run()
    assert isinstance(failed.value.error, HeaderMismatchError)
    assert harness.rows() == before  # nothing written under the shifted header
    assert len(harness.open_store().journal_pending()) == 2
    # The column is removed again: the same instance writes the waiting chats, each once.
    harness.stand.sheets.delete_columns(harness.sheet_id, "Chats", "A")
    harness.clock.advance(minutes=5)
    report = syncer.run()
    assert report.appended == 2
    assert harness.rows()[0] == [*HEADER, "Owner", "Claimed at"]
    assert len(harness.sheet_keys()) == len(set(harness.sheet_keys())) == 4


def test_a_warm_instance_checks_the_header_before_reading_the_key_column(harness):
    _warm_instance_checks_the_header_before_the_key_column(harness, harness.syncer())


def test_a_warm_instance_on_firestore_checks_the_header_before_reading_the_key_column(harness, firestore_client):
    from lib.state.firestore.store import FirestoreStore

    _warm_instance_checks_the_header_before_the_key_column(
        harness, harness.syncer(store=FirestoreStore(firestore_client, "warm_header", clock=harness.clock))
    )


def _warm_instance_checks_the_header_before_the_key_column(harness, syncer):
    syncer.run()  # the tab and its header exist; this instance has seen them
    harness.add_chats(3, seed=15)
    harness.stand.sheets.inject("values.append", LostResponse())
    with pytest.raises(RunFailed):
        syncer.run()  # the rows landed, the answer was lost: they stay in flight
    harness.stand.sheets.insert_columns(harness.sheet_id, "Chats", "A")
    harness.clock.advance(minutes=5)
    with pytest.raises(RunFailed) as failed:
        syncer.run()
    # Column N now holds "UTM term": read as the key column it would find none and write all again.
    assert isinstance(failed.value.error, HeaderMismatchError)
    assert len(harness.rows()) == 4
    harness.stand.sheets.delete_columns(harness.sheet_id, "Chats", "A")
    harness.clock.advance(minutes=5)
    report = syncer.run()
    assert report.already_in_sheet == 3 and report.appended == 0
    assert len(harness.sheet_keys()) == len(set(harness.sheet_keys())) == 3
    assert syncer.store.journal_pending() == []


def test_every_writing_run_reads_row_1_once(harness):
    syncer = harness.syncer()
    harness.add_chats(2, seed=16)
    syncer.run()
    for seed in (17, 18):
        harness.add_chats(1, seed=seed)
        harness.clock.advance(minutes=5)
        harness.stand.sheets.reset_calls()
        syncer.run()
        gets = harness.stand.sheets.calls("values.get")
        assert len(gets) == 1 and unquote(gets[0].path).endswith("!1:1")
    harness.clock.advance(minutes=5)
    harness.stand.sheets.reset_calls()
    syncer.run()  # nothing new: the sheet is not read at all
    assert harness.stand.sheets.count_reads() == 0
