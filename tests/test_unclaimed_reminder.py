"""The daily reminder of unclaimed leads (issue #23 item 4, lib/sync/reminder.py): with
UNCLAIMED_REMINDER_AT set, the first scheduled run after it on a working day posts one Slack
message listing the last working day's chats and calls still without an Owner (the tab's `Owner`
column, found by its header, a name typed by hand counting), with row links and Claim buttons;
nothing when all were claimed; once a day; Monday covers Friday and the weekend; a failed post is
made by the next run; a missed day is caught up; a run when it is not due costs the store nothing more.

Runs are scheduled syncs through the real Syncer on the stand-ins (real gspread and slack-sdk), on
a hand-moved clock, on SQLite and the Firestore emulator. What the reminder must list is worked out
from the sheet as the stand-in holds it (each row's day and Owner cell), never written down here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from lib.errors import RunFailed
from lib.sources.calls import CALLS_LAYOUT
from lib.sync import RunOptions, RunReport
from sandbox.standins.samples import sample_calls, sample_chats
from sandbox.standins.server import Status
from tests.harness import by_header

UK = ZoneInfo("Europe/London")
JOB = "moneypenny-sync"
THU, FRI, SAT, SUN, MON, TUE = (date(2026, 11, 19) + timedelta(days=n) for n in range(6))
OWNER_COLUMN = 17  # column R: to the right of both tabs' columns, with a gap (found by its name)
TABS = {"chats": ("Chats", "Chat key"), "calls": ("Calls", "Call id")}


@pytest.fixture
def sales(harness):
    harness.env_overrides.update({"MONEYPENNY_SOURCES": "chats,calls", "UNCLAIMED_REMINDER_AT": "09:00"})
    return harness


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UK).astimezone(UTC)


def scheduled(h) -> RunReport:
    at = h.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    return h.syncer().run(options=RunOptions(daily_reconcile=True), schedule_time=at, schedule_job=JOB)


def run_at(h, day: date, hour: int, minute: int = 0) -> RunReport:
    h.clock.value = local(day, hour, minute)
    return scheduled(h)


def leads_on(h, day: date, chats: int, calls: int, seed: int) -> None:
    """Chats and call messages of `day` from 10:00, delivered by that day's 18:00 run."""
    h.stand.moneypenny.add_chats(sample_chats(chats, start=datetime.combine(day, time(10)), seed=seed,
                                              spacing=timedelta(minutes=min(20, 400 // max(chats, 1)))))
    h.stand.moneypenny.add_calls(sample_calls(calls, local(day, 10, 5), seed=seed, spacing=timedelta(minutes=25)))
    run_at(h, day, 18)


def rows(h, feed: str) -> list[list[str]]:
    return h.stand.sheets.rows(h.sheet_id, TABS[feed][0])


def drop_owner_headers(h) -> None:
    """Blank every `Owner` header cell the sync made (a person who removed the column's name)."""
    for tab, _ in TABS.values():
        table = h.stand.sheets.rows(h.sheet_id, tab)
        for n, name in enumerate(table[0] if table else []):
            if name.strip().casefold() == "owner":
                h.stand.sheets.set_cell(h.sheet_id, tab, f"{chr(ord('A') + n)}1", "")


def type_owner_header(h) -> None:
    """Move the Owner column's header to column R, away from where the sync put it: the reminder
    must find it by its name."""
    drop_owner_headers(h)
    for tab, _ in TABS.values():
        if h.stand.sheets.rows(h.sheet_id, tab):
            h.stand.sheets.add_column_values(h.sheet_id, tab, OWNER_COLUMN, ["Owner"], start_row=1)


def claim_by_hand(h, feed: str, row: int, name: str = "Ann") -> None:
    h.stand.sheets.add_column_values(h.sheet_id, TABS[feed][0], OWNER_COLUMN, [name], start_row=row)


def expected_unclaimed(h, days: set[date]) -> set[tuple[str, str]]:
    """(feed, key) of every row of `days` whose Owner cell (by its header) is empty, as the sheet holds them."""
    out = set()
    for feed, (_, key_header) in TABS.items():
        table = rows(h, feed)
        if not table:
            continue
        header = table[0]
        owner = header.index("Owner") if "Owner" in header else None
        for row in table[1:]:
            cells = row + [""] * (len(header) - len(row))
            claimed = owner is not None and owner < len(row) and row[owner].strip()
            if date.fromisoformat(cells[0][:10]) in days and not claimed:
                key = cells[header.index(key_header)]
                out.add((feed, key if feed == "chats" else CALLS_LAYOUT.key_of_cell(key)))
    return out


def reminders(h) -> list[dict]:
    return [m for m in h.stand.slack.messages() if m["text"].startswith("Still unclaimed")]


def listed(message: dict) -> set[tuple[str, str]]:
    """(feed, key) of each Claim button of a reminder."""
    out = set()
    for block in message["blocks"]:
        button = block.get("accessory")
        if button and button.get("action_id") == "claim":
            value = json.loads(button["value"])
            assert value["a"] == ""  # no ACCOUNTS
            out.add((value["f"], value["k"]))
    return out


def row_links(message: dict) -> list[tuple[str, int, str]]:
    """(gid, row, short key) of each listed line."""
    found = []
    for block in message["blocks"]:
        if block.get("accessory"):
            text = block["text"]["text"]
            link = re.search(r"#gid=(\d+)&range=A(\d+)\|([^>|]+)>$", text)
            assert link, text
            found.append((link[1], int(link[2]), link[3]))
    return found


# -- what it lists ----------------------------------------------------------------------------------


def test_the_reminder_lists_exactly_the_last_working_days_leads_without_an_owner(sales, store):
    from lib.destinations.slack.reminder import short_key

    leads_on(sales, WED := THU - timedelta(days=1), 2, 1, seed=1)
    leads_on(sales, THU, 4, 3, seed=2)
    type_owner_header(sales)
    claim_by_hand(sales, "chats", 2 + 2 + 1)  # one of Thursday's chats (rows 2-3 are Wednesday's)
    claim_by_hand(sales, "calls", 2 + 1, name="  Bob (typed by hand)")
    sales.stand.slack.clear_messages()
    friday_early = run_at(sales, FRI, 8, 55)
    before_nine = reminders(sales)
    friday_late_lead = sample_chats(1, start=datetime.combine(FRI, time(8, 58)), seed=3)
    sales.stand.moneypenny.add_chats(friday_late_lead)

    report = run_at(sales, FRI, 9, 1)

    assert friday_early.reminded_on is None and before_nine == []
    [message] = reminders(sales)
    expected = expected_unclaimed(sales, {THU})
    assert listed(message) == expected and len(expected) == 4 + 3 - 2
    assert report.reminded == len(expected) and report.reminded_on == FRI
    assert report.as_dict()["reminder"] == {"day": FRI.isoformat(), "unclaimed": len(expected)}
    assert not expected & expected_unclaimed(sales, {WED, FRI})  # Wednesday's and today's: not listed
    # Every line's link names the row that holds its key, in its own tab.
    gids = {str(sales.syncer().writers[feed].tab_id()): feed for feed in TABS}
    for gid, row, short in row_links(message):
        table = rows(sales, gids[gid])
        key = table[row - 1][13] if gids[gid] == "chats" else CALLS_LAYOUT.key_of_cell(table[row - 1][7])
        assert short_key(key) == short
    text = sales.stand.slack.message_text(message)
    assert "3 chats" in text and "2 call messages" in text, text
    # Visitor text is inert: the only live entities are this tool's links to the sheet.
    live = sales.stand.slack.message_live_entities(message)
    assert live and all(e.startswith(f"<{sales.settings().sheet_url}#gid=") for e in live), live


def test_rows_sorted_by_hand_are_found_by_key_and_linked_where_they_now_stand(sales, store):
    from lib.destinations.slack.reminder import short_key

    leads_on(sales, THU, 5, 0, seed=4)
    sales.stand.sheets.sort_rows(sales.sheet_id, "Chats", 1, reverse=True)  # by Name, rows move
    type_owner_header(sales)
    claim_by_hand(sales, "chats", 3)

    run_at(sales, FRI, 9, 30)

    [message] = reminders(sales)
    assert listed(message) == expected_unclaimed(sales, {THU}) and len(listed(message)) == 4
    table = rows(sales, "chats")
    for _, row, short in row_links(message):
        assert short_key(table[row - 1][13]) == short and len(table[row - 1]) <= 14  # no Owner on it


def test_a_tab_without_an_owner_column_lists_every_lead_of_the_day(sales, store):
    leads_on(sales, THU, 2, 2, seed=5)
    drop_owner_headers(sales)
    run_at(sales, FRI, 10)
    [message] = reminders(sales)
    assert listed(message) == expected_unclaimed(sales, {THU}) and len(listed(message)) == 4


def test_nothing_is_posted_when_every_lead_was_claimed_and_the_sheet_is_not_read_again_that_day(sales, store):
    leads_on(sales, THU, 2, 1, seed=6)
    type_owner_header(sales)
    for row in (2, 3):
        claim_by_hand(sales, "chats", row)
    claim_by_hand(sales, "calls", 2)
    posts = len(sales.stand.slack.messages())

    report = run_at(sales, FRI, 9, 5)
    reads = sales.stand.sheets.count("values.batchGet")
    later = run_at(sales, FRI, 11)

    assert expected_unclaimed(sales, {THU}) == set()
    assert report.reminded_on == FRI and report.reminded == 0 and len(sales.stand.slack.messages()) == posts
    assert later.reminded_on is None and sales.stand.sheets.count("values.batchGet") == reads


def test_a_long_reminder_stays_within_slacks_limits_and_counts_the_rest(sales):
    sales.env_overrides["SLACK_MAX_LISTED"] = "40"
    leads_on(sales, THU, 45, 12, seed=19)
    hostile = "<!channel> 見積もりをお願いします *bold* https://evil.example/x " * 8
    for feed, count in (("chats", 45), ("calls", 12)):
        sales.stand.sheets.add_column_values(sales.sheet_id, TABS[feed][0], 1, [hostile] * count, start_row=2)
    sales.stand.slack.clear_messages()

    report = run_at(sales, FRI, 9, 5)

    [message] = reminders(sales)
    shown = listed(message)
    expected = expected_unclaimed(sales, {THU})
    more = sum(int(m) for m in re.findall(r"…and (\d+) more", sales.stand.slack.message_text(message)))
    assert shown <= expected and len(shown) + more == len(expected) == 57 == report.reminded
    assert {feed for feed, _ in shown} == {"chats", "calls"} and len(shown) >= 15
    assert len(message["blocks"]) <= 50 and len(shown) <= 40
    live = sales.stand.slack.message_live_entities(message)
    assert all(e.startswith(f"<{sales.settings().sheet_url}#gid=") for e in live), live


# -- once a day, working days -------------------------------------------------------------------------


def test_the_reminder_is_posted_once_a_day_and_again_the_next_working_day(sales, store):
    leads_on(sales, THU, 2, 0, seed=7)
    sales.stand.slack.clear_messages()
    for hour in (8, 9, 10, 13, 17):
        run_at(sales, FRI, hour, 2)
    friday = reminders(sales)
    leads_on(sales, FRI, 1, 0, seed=8)  # after Friday's reminder: Monday's to list

    run_at(sales, MON, 9, 2)

    assert [listed(m) for m in friday] == [expected_unclaimed(sales, {THU})]
    assert [listed(m) for m in reminders(sales)[1:]] == [expected_unclaimed(sales, {FRI})]


def test_the_weekend_posts_nothing_and_monday_covers_friday_and_the_weekend(sales, store):
    leads_on(sales, THU, 1, 0, seed=9)
    run_at(sales, FRI, 9, 10)  # Thursday's reminder
    leads_on(sales, FRI, 2, 1, seed=10)
    sales.stand.slack.clear_messages()
    leads_on(sales, SAT, 1, 1, seed=11)
    run_at(sales, SUN, 9, 30)
    leads_on(sales, SUN, 1, 0, seed=12)
    assert reminders(sales) == []

    monday = run_at(sales, MON, 9, 1)

    [message] = reminders(sales)
    expected = expected_unclaimed(sales, {FRI, SAT, SUN})
    assert listed(message) == expected and len(expected) == 6 and monday.reminded_on == MON
    assert not listed(message) & expected_unclaimed(sales, {THU})


def test_a_missed_day_is_caught_up_by_the_next_reminder_and_nothing_is_listed_twice(sales, store):
    wed, fri = TUE + timedelta(days=1), TUE + timedelta(days=3)
    leads_on(sales, MON, 2, 0, seed=13)  # its 18:00 run makes Monday's reminder (nothing before)
    leads_on(sales, TUE, 1, 1, seed=14)  # its 18:00 run makes Tuesday's: Monday's leads
    tuesday = reminders(sales)
    sales.stand.moneypenny.add_chats(sample_chats(2, start=datetime.combine(wed, time(11)), seed=15))
    sales.stand.slack.clear_messages()
    # No run on Wednesday nor Thursday (the function was down): Friday's first run catches up.
    report = run_at(sales, fri, 9, 30)

    [caught_up] = reminders(sales)
    assert [listed(m) for m in tuesday] == [expected_unclaimed(sales, {MON})]
    assert listed(caught_up) == expected_unclaimed(sales, {TUE, wed, wed + timedelta(days=1)})
    assert len(listed(caught_up)) == 4 and report.reminded_on == fri


def test_a_failed_post_is_made_by_the_next_run(sales, store):
    leads_on(sales, THU, 2, 1, seed=17)
    sales.stand.slack.clear_messages()
    sales.stand.slack.inject("chat.postMessage", Status(500), times=None)

    with pytest.raises(RunFailed) as failed:
        run_at(sales, FRI, 9, 5)
    sales.stand.slack.clear_faults()
    again = run_at(sales, FRI, 9, 10)

    assert failed.value.report.reminded_on is None
    assert [e["step"] for e in failed.value.report.errors] == ["remind"]
    [message] = reminders(sales)
    assert listed(message) == expected_unclaimed(sales, {THU}) and again.reminded_on == FRI


def test_a_run_when_the_reminder_is_not_due_costs_the_store_what_it_did_without_it(harness, store):
    from tests.test_run_state import IDLE_READS, IDLE_WRITES

    def idle_cost(reminder: str, at: datetime) -> dict[str, int]:
        harness.env_overrides["UNCLAIMED_REMINDER_AT"] = reminder
        harness.clock.value = at
        return scheduled(harness).store

    leads_on(harness, THU, 1, 0, seed=18)
    run_at(harness, FRI, 7)
    without = idle_cost("off", local(FRI, 7, 10))
    before_time = idle_cost("09:00", local(FRI, 7, 20))
    assert run_at(harness, FRI, 9, 1).reminded_on == FRI  # the day's reminder
    reads = harness.stand.sheets.count("values.batchGet")
    after_it = idle_cost("09:00", local(FRI, 9, 30))
    idle_cost("off", local(SAT, 10))  # (the day's first run: its reconcile and login)
    saturday = idle_cost("09:00", local(SAT, 10, 10))

    for cost in (before_time, after_it, saturday):
        assert (cost["reads"], cost["writes"], cost["deletes"]) == (without["reads"], without["writes"], without["deletes"])
    assert without["reads"] <= IDLE_READS and without["writes"] <= IDLE_WRITES
    assert harness.stand.sheets.count("values.batchGet") == reads  # nor the sheet


def test_the_command_lines_run_reminds_when_due_and_says_so(sales):
    import io

    from lib.commands.cli import Context, main

    def cli_run(*argv: str) -> str:
        out = io.StringIO()
        assert main(["run", *argv], Context(env=sales.env(), clock=sales.clock, out=out, err=io.StringIO(),
                                            backoff=0.01)) == 0
        return out.getvalue()

    leads_on(sales, THU, 2, 1, seed=20)
    sales.clock.value = local(FRI, 9, 15)
    text = cli_run()
    sales.clock.advance(minutes=5)
    again = cli_run("--json")

    assert f"reminder of unclaimed leads: {len(expected_unclaimed(sales, {THU}))} listed" in text
    assert len(reminders(sales)) == 1 and "reminder" not in json.loads(again)


# -- the rules, without a store -------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "reminded_on", "due"), [
    (local(FRI, 8, 59), THU, None),  # before the time
    (local(FRI, 9, 0), THU, FRI),  # at it
    (local(FRI, 23, 59), THU, FRI),  # the first run after, however late
    (local(FRI, 9, 30), FRI, None),  # done today
    (local(SAT, 9, 30), THU, None),  # weekend
    (local(SUN, 23, 0), None, None),
    (local(MON, 9, 30), FRI, MON),
    (local(MON, 9, 30), None, MON),  # never reminded: due
])
def test_when_the_reminder_is_due(now, reminded_on, due):
    from lib.sync.reminder import due_day

    assert due_day(reminded_on, now, time(9, 0), UK) == due
    assert due_day(reminded_on, now, None, UK) is None  # off


@pytest.mark.parametrize(("today", "reminded_on", "days"), [
    (FRI, THU, (THU, FRI)),
    (MON, FRI, (FRI, MON)),  # Friday and the weekend
    (TUE, None, (MON, TUE)),  # the first reminder: the last working day
    (FRI + timedelta(days=7), MON, (MON, FRI + timedelta(days=7))),  # a week missed: from Monday
    (date(2026, 12, 31), date(2026, 11, 2), (date(2026, 12, 24), date(2026, 12, 31))),  # capped at 7 days
])
def test_which_days_a_reminder_covers(today, reminded_on, days):
    from lib.sync.reminder import reminder_days

    assert reminder_days(reminded_on, today) == days


# (UNCLAIMED_REMINDER_AT's reading and refusals are rows of tests/test_settings.py's tables.)


@pytest.mark.parametrize(("index", "letters"), [(0, "A"), (13, "N"), (25, "Z"), (26, "AA"), (51, "AZ"), (52, "BA"),
                                                (701, "ZZ"), (702, "AAA")])
def test_an_owner_column_anywhere_is_read_by_its_a1_letters(index, letters):
    from lib.destinations.sheet.owners import column_letter

    assert column_letter(index) == letters


# -- a claim from Slack waiting for the sheet when the reminder is due -----------------------------


def summary_with_buttons(h) -> dict:
    return next(m for m in reversed(h.stand.slack.messages()) if not m["text"].startswith("Still unclaimed")
                and listed(m))


@pytest.mark.parametrize("sheet_back", [True, False], ids=["sheet back", "sheet write still failing"])
def test_a_lead_claimed_in_slack_whose_sheet_write_waits_is_not_in_the_reminder_of_that_run(sales, store, sheet_back):
    from tests.test_slack_claims import click

    leads_on(sales, THU, 2, 1, seed=19)
    summary = summary_with_buttons(sales)
    feed, key = sorted(listed(summary))[0]
    sales.stand.sheets.inject("values.batchUpdate", Status(503), times=None)  # the click's write fails
    assert click(sales, summary, key, store=store) == ("", 200)
    assert store.read_run_state().claims_due == 1
    if sheet_back:
        sales.stand.sheets.clear_faults()
    sales.stand.slack.clear_messages()

    report = run_at(sales, FRI, 9, 1)  # writes the due claim, then reminds: in that order

    [message] = reminders(sales)
    assert (feed, key) not in listed(message)
    assert listed(message) == expected_unclaimed(sales, {THU}) - {(feed, key)}
    assert report.reminded == len(listed(message)) == 2
    assert (store.read_run_state().claims_due == 0) is sheet_back
    if sheet_back:  # the sheet shows it now: the reminder read it there
        assert (feed, key) not in expected_unclaimed(sales, {THU})


def test_a_claim_from_the_reminder_marks_its_line_and_leaves_the_rest_of_the_message_as_it_was(sales):
    from tests.test_slack_claims import click

    leads_on(sales, THU, 2, 1, seed=20)
    run_at(sales, FRI, 9, 1)
    [message] = reminders(sales)
    feed, key = sorted(listed(message))[1]

    assert click(sales, message, key) == ("", 200)

    [updated] = reminders(sales)
    assert updated["text"] == message["text"] and listed(updated) == listed(message) - {(feed, key)}
    changed = [(a, b) for a, b in zip(message["blocks"], updated["blocks"], strict=True) if a != b]
    [(before, after)] = changed  # only the claimed lead's line
    assert "accessory" not in after and after["text"]["text"].startswith(before["text"]["text"])
    assert after["text"]["text"].endswith("claimed by *Ann*")
    assert (feed, key) not in expected_unclaimed(sales, {THU})


def test_a_due_claim_of_a_source_turned_off_since_still_reaches_its_row_and_idle_runs_read_no_claims_again(sales):
    from tests.test_slack_claims import click

    leads_on(sales, THU, 1, 1, seed=21)
    summary = summary_with_buttons(sales)
    [(feed, key)] = [item for item in listed(summary) if item[0] == "calls"]
    sales.stand.sheets.inject("values.batchUpdate", Status(503), times=None)
    click(sales, summary, key)
    sales.stand.sheets.clear_faults()
    sales.env_overrides["MONEYPENNY_SOURCES"] = "chats"  # the calls tab is no longer synced

    run_at(sales, THU, 18, 10)

    store = sales.open_store()
    assert store.read_run_state().claims_due == 0 and store.claims_due() == []
    # The lead is still a lead: its Owner reached its row in the Calls tab, synced or not.
    [row] = [r for r in by_header(rows(sales, "calls")) if CALLS_LAYOUT.key_of_cell(r["Call id"]) == key]
    assert row["Owner"].strip() and row["Claimed at"].strip()
