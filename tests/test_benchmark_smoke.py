"""Smoke test of the benchmark (benchmarks/run.py): it runs, prints its tables, and its targets
logic reports call counts. No timing is asserted: the benchmark itself is not part of the suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.measure import Run
from benchmarks.production_day import IDLE_READS, IDLE_WRITES, DayResult, day_targets
from benchmarks.report import targets
from benchmarks.scenarios import FunctionResult

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_runs_small_and_reports_the_call_targets(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--sizes", "20", "--latency-ms", "0",
         "--naive-limit", "20", "--quota-chats", "0", "--import-repeats", "0", "--days", "1", "--day-runs", "12",
         "--json", str(out)],
        capture_output=True, text=True, cwd=str(ROOT), timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    for heading in ("Machine:", "Our function", "Naive baseline", "Naive / ours", "A production day on sqlite",
                    "Targets (issue #7)", "Targets (issue #12"):
        assert heading in text, heading
    assert "20 new chats" in text

    data = json.loads(out.read_text())
    main = data["function"][0]["runs"]["main"]
    assert main["status"] == 200 and main["body"]["appended"] == 20 and main["body"]["posted"] == 20
    assert (main["calls"]["moneypenny"], main["calls"]["sheets_writes"], main["calls"]["slack"]) == (1, 1, 1)
    assert main["round_trips"] > 0 and main["store"]["writes"] >= 20  # each new chat journaled
    assert main["body"]["store"]["writes"] <= main["store"]["writes"]  # the JSON report's own count

    naive = data["naive"][0]
    assert naive["done"] == 20 and naive["error"] is None
    assert (naive["calls"]["sheets_writes"], naive["calls"]["slack"], naive["calls"]["moneypenny"]) == (20, 20, 2)

    verdicts = {t["name"]: t["met"] for t in data["targets"]}
    for name, met in verdicts.items():
        if "10,000 chats," in name:
            assert met is None, name  # time and memory are judged at 10,000 chats only
        else:
            assert met is True, (name, [t["detail"] for t in data["targets"] if t["name"] == name])
    store = {t["name"]: t for t in data["store_targets"]}
    assert store["10,000-chat run: function CPU <= 3 s (sqlite)"]["met"] is None  # not measured at 20 chats
    assert all(t["met"] in (True, False) for name, t in store.items() if name.startswith(("An idle", "A production")))


def _run(label: str, n: int, *, mp=(1, 0), reads=0, writes=1, slack=1, trips=14) -> Run:
    c = {"moneypenny_log": mp[0], "moneypenny_login": mp[1], "moneypenny": sum(mp), "sheets_reads": reads,
         "sheets_writes": writes, "sheets_appends": writes, "sheets": reads + writes, "slack": slack}
    c["total"] = c["moneypenny"] + c["sheets"] + c["slack"]
    return Run(label=label, chats=n, status=200, body={}, wall=0.5, cpu=0.4, calls=c, round_trips=trips,
               maxrss_kb=100_000, peak_bytes=10 * 2**20, standins_busy=None)


def _result(n: int, **main) -> FunctionResult:
    r = FunctionResult(n)
    r.runs = {
        "first": _run("first", 1, mp=(1, 1), reads=2, writes=3, trips=16),
        "main": _run("main", n, **main),
        "idle": _run("idle", 0, writes=0, slack=0, trips=10),
        "expired": _run("expired", 0, mp=(1, 1), writes=0, slack=0, trips=11),
        "memory": _run("memory", n),
    }
    return r


def test_targets_report_calls_that_grow_with_the_chats():
    good = {t.name: t for t in targets([_result(10_000)], latency=0.05)}
    assert all(t.met for t in good.values()), [t.line() for t in good.values() if not t.met]

    # One Slack post and one Sheets write per chat, a store round trip per chat, a login per run.
    bad = {t.name: t for t in targets([_result(500, mp=(1, 1), writes=500, slack=500, trips=514)], latency=0.05)}
    assert bad["Slack calls per run = 1"].met is False and "N=500: 500" in bad["Slack calls per run = 1"].detail
    assert bad["Moneypenny calls per run = 1 (warm token)"].met is False
    writes = next(t for name, t in bad.items() if name.startswith("Sheets write calls"))
    assert writes.met is False and "N=500: 500" in writes.detail
    batched = next(t for name, t in bad.items() if name.startswith("State store writes batched"))
    assert batched.met is False and "514 round trips" in batched.detail


def test_a_production_day_prints_the_store_counters_and_the_calls_it_made(tmp_path):
    """The day scenario walks every scheduled run of a day (the first after 03:15 also the
    reconcile) through the function's run path; the figures it prints are the store's own counters and the requests
    the stand-ins received."""
    from datetime import UTC, datetime

    from benchmarks.production_day import UK, MovableClock, day_targets, day_text, simulate
    from lib.settings import Settings
    from lib.state.sqlite.store import SqliteStore
    from sandbox.standins import StandIns

    clock = MovableClock(datetime(2026, 11, 20, tzinfo=UK).astimezone(UTC))
    with StandIns(clock=clock) as stand:
        settings = Settings.from_env({**stand.env(), "STATE_STORE": f"sqlite:{tmp_path / 'day.sqlite3'}"})
        store = SqliteStore(str(tmp_path / "day.sqlite3"))
        before = store.counters.snapshot()
        result = simulate(stand, settings, store, clock, days=1, chats_per_day=5, runs_per_day=288, seed=3)
        counted = store.counters.since(before).as_dict()
        received = {"moneypenny": stand.moneypenny.count(), "slack": stand.slack.count(),
                    "sheets_writes": stand.sheets.count_writes()}
        store.close()

    day = result.days[0]
    assert day.store == counted and counted["reads"] > 0 and counted["writes"] > 0
    assert {k: day.calls[k] for k in received} == received
    # One job: 288 runs. A new store reconciles in its first run, then once after 03:15.
    assert len(day.runs) == 288 and [r.at for r in day.runs if r.reconciled] == ["00:00", "03:15"]
    assert {k: sum(r.store[k] for r in day.runs) for k in counted} == counted  # the runs are the whole day
    for run in day.runs:  # each run's own JSON report saw no more than was counted around it
        assert all(run.reported[k] <= run.store[k] for k in run.reported)
    assert result.failed_runs == 0 and result.sheet_rows == result.unique_keys == result.chats_added == 5

    text = day_text([result])
    row = next(line for line in text.splitlines() if line.startswith("  1 "))
    for figure in (counted["reads"], counted["offset_reads"], counted["writes"], counted["deletes"],
                   counted["round_trips"], received["moneypenny"], received["slack"]):
        assert f" {figure:,} " in f"{row} ", figure
    verdicts = {t.name: t.met for t in day_targets(result)}
    assert verdicts["A production day: <= 2,000 document reads (sqlite)"] is (counted["reads"] <= 2_000)
    assert "[MET    ]" in text or "[NOT MET]" in text


def test_the_day_option_runs_a_short_day_and_writes_its_figures(tmp_path):
    out = tmp_path / "day.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--day", "--days", "1", "--day-runs", "12",
         "--day-chats", "0", "--json", str(out)],
        capture_output=True, text=True, cwd=str(ROOT), timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "A production day on sqlite" in proc.stdout and "Targets (issue #12" in proc.stdout
    data = json.loads(out.read_text())["day"][0]
    assert data["store"] == "sqlite" and len(data["days"][0]["runs"]) == 12
    assert data["days"][0]["store"]["reads"] == sum(r["store"]["reads"] for r in data["days"][0]["runs"])


def _day(reads: int, writes: int, idle: dict) -> DayResult:
    from benchmarks.production_day import SYNC_JOB, DayCost, RunCost

    calls = {"moneypenny": 1, "moneypenny_login": 0, "sheets_reads": 0, "sheets_writes": 0, "slack": 0}
    runs = [RunCost(at=f"00:{5 * i:02d}", job=SYNC_JOB, outcome="ok", fetched=0, appended=0, posted=0, logins=0,
                    store={"round_trips": 3, "deletes": 0, "offset_reads": 0, **idle}, calls=calls, reported={})
            for i in range(3)]
    cost = DayCost(1, "2026-11-20", 0, {"reads": reads, "writes": writes, "deletes": 0, "offset_reads": 0,
                                        "round_trips": 9}, calls, 0.1, 0.1, runs)
    return DayResult("firestore", 0, 3, [cost], 0, 0, 0, 0)


def test_day_targets_are_met_within_the_limits_and_not_met_past_them():
    good = day_targets(_day(2_000, 1_000, {"reads": IDLE_READS, "writes": IDLE_WRITES}))
    assert [t.met for t in good] == [True] * 5, [t.line() for t in good]
    past = {"reads": IDLE_READS + 1, "writes": IDLE_WRITES + 1, "offset_reads": 100}
    bad = {t.name: t for t in day_targets(_day(2_001, 1_001, past))}
    assert [t.met for t in bad.values()] == [False] * 5
    assert "day 1: 2,001" in bad["A production day: <= 2,000 document reads (firestore)"].detail
    assert "max 100" in bad["An idle scheduled run of the day: 0 offset reads (firestore)"].detail


# -- issue #22: several accounts' day, and the Firestore client's floor -------------------------------


def test_each_accounts_job_fires_at_its_own_minute_and_the_runs_interleave_in_time_order():
    from datetime import UTC, datetime, timedelta

    from benchmarks.accounts_day import schedule

    midnight = datetime(2026, 11, 20, tzinfo=UTC)
    runs = schedule(7, 3, midnight)
    assert len(runs) == 7 * 3 and runs == sorted(runs)
    minutes = {index: sorted({int((at - midnight) / timedelta(minutes=1)) for at, i in runs if i == index})
               for index in range(7)}
    # 5 minutes apart, each account a minute after the previous one, the sixth back at minute 0.
    assert minutes == {0: [0, 5, 10], 1: [1, 6, 11], 2: [2, 7, 12], 3: [3, 8, 13], 4: [4, 9, 14], 5: [0, 5, 10],
                       6: [1, 6, 11]}
    assert [i for at, i in runs[:7]] == [0, 5, 1, 6, 2, 3, 4]  # one minute: its accounts in order


def test_an_accounts_day_delivers_each_accounts_chats_to_its_own_sheet_and_counts_its_own_store(tmp_path):
    """Two accounts through the function's run path, their runs interleaved: each account's chats
    land once in its own sheet, and its idle runs are counted by its own store."""
    from benchmarks.accounts_day import accounts_text, simulate_accounts

    result = simulate_accounts(2, "sqlite", tmp_path, days=1, chats_per_day=3, runs_per_day=12, seed=5,
                               office=((0, 0), (0, 30)))
    assert result.delivered == {"a01": (3, 3, 3), "a02": (3, 3, 3)} and result.failed_runs() == 0
    day = result.days[0]
    assert [a.runs for a in day.accounts] == [12, 12]
    for account in day.accounts:
        assert account.store["writes"] > 0 and account.idle_runs > 0
        assert 0 < account.idle_max["reads"] <= account.store["reads"]
    assert day.total() == {k: sum(a.store[k] for a in day.accounts) for k in day.accounts[0].store}
    text = accounts_text([result])
    assert "A production day for 2 accounts on sqlite" in text
    assert f" {day.total()['reads']:,} " in text and "2 Scheduler jobs (one per account) against 3 free" in text
    assert "[MET    ] 2 accounts, a day: every chat once in its own account's sheet" in text


def _accounts_result(accounts: int, reads: int, writes: int, deletes: int):
    from benchmarks.accounts_day import AccountDay, AccountsDayCost, AccountsResult

    store = {"reads": reads, "writes": writes, "deletes": deletes, "offset_reads": 0, "round_trips": 0}
    day = AccountsDayCost(1, "2026-11-20", [AccountDay(f"a{i:02d}", 50, dict(store), runs=288, idle_runs=280,
                                                       idle_max={"reads": 1, "writes": 2})
                                            for i in range(accounts)], 1.0, 1.0)
    return AccountsResult("firestore", "Settings.account", accounts, 50, 288, [day],
                          {f"a{i:02d}": (50, 50, 50) for i in range(accounts)})


def test_the_accounts_that_fit_are_set_by_the_figure_nearest_its_free_tier_limit():
    from benchmarks.accounts_day import accounts_targets, scheduler_line

    cases = [  # per account a day: reads, writes, deletes -> accounts that fit, limited by, >= 24 met
        ((1_000, 800, 10), 25, "writes", True),
        ((1_000, 900, 10), 22, "writes", False),
        ((2_500, 100, 10), 20, "reads", False),
        ((300, 600, 0), 33, "writes", True),
    ]
    for (reads, writes, deletes), fits, limit, met in cases:
        result = _accounts_result(10, reads, writes, deletes)
        assert result.fit() == (fits, limit), (reads, writes, deletes)
        verdict = {t.name: t for t in accounts_targets([result])}["Accounts that fit Firestore's free tier: >= 24 (firestore)"]
        assert verdict.met is met and f"{fits} accounts, limited by {limit}" in verdict.detail
    assert scheduler_line(1).endswith("0 billed, $0.00 a month")
    assert scheduler_line(50).endswith("47 billed, $4.70 a month")


def test_the_accounts_option_runs_a_short_day_for_each_number_of_accounts(tmp_path, capsys):
    from benchmarks import run

    out = tmp_path / "accounts.json"
    assert run.main(["--day", "--accounts", "1,2", "--days", "1", "--day-runs", "6", "--day-chats", "0",
                     "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "A production day for 1 account on sqlite" in text and "A production day for 2 accounts" in text
    assert "Targets (issue #22" in text and "Accounts that fit Firestore's free tier" in text
    data = json.loads(out.read_text())
    assert [(r["accounts"], sum(a["runs"] for a in r["days"][0]["accounts"])) for r in data["accounts"]] == [(1, 6), (2, 12)]


def test_the_floor_replays_the_same_documents_in_the_same_batches(firestore_client):
    """The floor's bare loop writes exactly what the store's commits wrote (compared document by
    document), in as many commits."""
    from datetime import UTC, datetime, timedelta

    from benchmarks.floor import WriteRecorder, replay
    from lib.state.firestore.store import FirestoreStore
    from lib.state.models import DONE, PENDING, JournalEntry

    store = FirestoreStore(firestore_client, "rec")
    at = datetime(2026, 11, 20, 9, tzinfo=UTC)
    entries = [JournalEntry(key=f"k{i:04d}", item={"n": i}, item_time=at + timedelta(seconds=i), fetched_at=at,
                            states={"sheet": PENDING, "slack": PENDING}) for i in range(12)]
    recorder = WriteRecorder()
    with recorder.recording():
        store.journal_add(entries[:7])
        store.journal_add(entries[7:])
        store.journal_update([e.key for e in entries[:9]], states={"sheet": DONE, "slack": DONE},
                             expires_at=at + timedelta(days=30))
    # Each journal_add also marks the run state pending in its own commit (a set, merged).
    assert recorder.summary() == {"commits": 3, "writes": 23, "create": 12, "set": 2, "update": 9, "delete": 0}
    assert [len(c.writes) for c in recorder.commits] == [7 + 1, 5 + 1, 9]
    floor = replay(firestore_client, recorder.commits, "rec", "recfloor")
    assert (floor["commits"], floor["writes"]) == (3, 23) and floor["cpu"] > 0

    def documents(collection: str) -> dict[str, dict]:
        return {snap.id: snap.to_dict() for snap in firestore_client.collection(collection).stream()}

    assert documents("recfloor_journal") == documents("rec_journal") and len(documents("rec_journal")) == 12


def test_the_floor_target_is_the_runs_cpu_over_the_floors_at_10000_chats_on_firestore():
    from benchmarks.store_targets import floor_target

    floor = {"commits": 44, "writes": 20_004, "kinds": {"create": 10_000, "update": 10_004}, "gc_cpu": 0.0}
    cases = [  # run CPU 0.4 s (the _run helper's); floor CPU -> met
        (0.4 / 1.5, True),
        (0.26, False),
        (0.4, True),
    ]
    for floor_cpu, met in cases:
        result = _result(10_000)
        result.floor = {**floor, "cpu": floor_cpu}
        verdict = floor_target([result], "firestore")
        assert verdict.met is met, (floor_cpu, verdict.line())
        assert f"= {0.4 / floor_cpu:.2f}x" in verdict.detail and "10,000 create" in verdict.detail
    assert floor_target([_result(10_000)], "firestore").met is None  # no floor measured
    assert floor_target([], "sqlite").met is None
