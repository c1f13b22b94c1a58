"""A production day for several accounts in one deployment (`benchmarks/run.py --day --accounts 1,10,50`).

Issue #22 item 6: what N accounts cost a day against Firestore's free tier (documents read,
written and deleted) and Cloud Scheduler's 3 free jobs, and how many accounts fit that tier.

Each account has its own Scheduler job every 5 minutes, staggered a minute apart (account i
fires at minute i mod 5 of each 5 minutes, as terraform's per-account jobs do), so the runs of
all accounts interleave in time order on one warm instance (a Syncer per account, as the
handler keeps one per account), each run as the function makes it (`lib.runner.run_and_report`,
its own JobName and ScheduleTime). Each account has its own Moneypenny stand-in (its own user,
chats and cursor), its own spreadsheet and Slack channel on shared Sheets and Slack stand-ins,
its own chats over office hours, and its own state store:

- with lib/accounts.py (lane acc-core): ACCOUNTS and `settings_for(env, account)`, so
  `open_store` scopes the store by `Settings.account` (Firestore: the same collections under
  `{prefix}_accounts/{account}`; SQLite: `state.<account>.db`), exactly as production;
- without it: a collection prefix (Firestore) or a file (SQLite) per account.

Every figure is counted by the stores' own counters (Firestore's billing units); nothing is
estimated but the TTL deletes still to come, which are named as such.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from benchmarks.production_day import (
    CHAT_LENGTH,
    OFFICE,
    RUN_EVERY,
    STARTS_AFTER,
    SYNC_JOB,
    UK,
    MovableClock,
    _schedule_time,
)
from benchmarks.report import Target
from lib.counters import FREE_TIER_PER_DAY

STAGGER = timedelta(minutes=1)  # terraform: each account's job a minute after the previous one
FREE_SCHEDULER_JOBS = 3  # Cloud Scheduler: 3 jobs free per billing account
SCHEDULER_JOB_MONTH_USD = 0.10  # each job beyond them, a month (Cloud Scheduler pricing)
FIT_AT_LEAST = 24  # "dozens of accounts fit Firestore's free tier": two dozen at least
IDLE_READS, IDLE_WRITES = 1, 2  # issue #22: an idle run reads at most 1 document, writes at most 2
SLACK_TOKEN = "xoxb-accounts-benchmark"


def n_accounts(n: int) -> str:
    """`1 account`, `10 accounts`."""
    return f"{n} account{'s' if n != 1 else ''}"


def account_ids(n: int) -> list[str]:
    """`n` account ids as ACCOUNTS takes them (`a01`, `a02`, ...)."""
    return [f"a{i:02d}" for i in range(1, n + 1)]


@dataclass
class AccountDay:
    """One account's day: its store's counters, its runs, and what its idle runs cost."""

    account: str
    chats: int
    store: dict[str, int]
    runs: int = 0
    failed: int = 0
    idle_runs: int = 0
    idle_max: dict[str, int] = field(default_factory=dict)
    idle_median: dict[str, float] = field(default_factory=dict)


@dataclass
class AccountsDayCost:
    day: int
    date: str
    accounts: list[AccountDay]
    seconds: float
    cpu_seconds: float

    def total(self) -> dict[str, int]:
        """The day's billed documents, all accounts together."""
        keys = self.accounts[0].store.keys() if self.accounts else ()
        return {k: sum(a.store[k] for a in self.accounts) for k in keys}

    def share(self) -> dict[str, float]:
        """Each billed figure of the whole day as a percentage of Firestore's free tier."""
        total = self.total()
        return {k: 100 * total[k] / limit for k, limit in FREE_TIER_PER_DAY.items()}


@dataclass
class AccountsResult:
    store_kind: str
    layout: str  # "Settings.account" (lib/accounts.py) or "prefix per account"
    accounts: int
    chats_per_day: int
    runs_per_day: int
    days: list[AccountsDayCost]
    delivered: dict[str, tuple[int, int, int]]  # account -> (rows, distinct keys, chats added)

    def per_account_day(self) -> dict[str, float]:
        """The costliest day's billed documents per account (the mean account of that day)."""
        return {k: max(d.total()[k] for d in self.days) / self.accounts for k in FREE_TIER_PER_DAY}

    def fit(self) -> tuple[int, str]:
        """How many accounts like these fit Firestore's free tier, and the figure that limits it."""
        per = self.per_account_day()
        fits = {k: (math.inf if per[k] == 0 else FREE_TIER_PER_DAY[k] / per[k]) for k in per}
        limit = min(fits, key=lambda k: fits[k])
        return (int(fits[limit]) if fits[limit] != math.inf else 10**9), limit

    def failed_runs(self) -> int:
        return sum(a.failed for d in self.days for a in d.accounts)

    def lost_or_doubled(self) -> list[str]:
        """Accounts whose sheet does not hold each of their chats exactly once."""
        return [acc for acc, (rows, keys, added) in self.delivered.items() if not rows == keys == added]


# --------------------------------------------------------------------------- the harness


def schedule(accounts: int, runs_per_day: int, midnight: datetime) -> list[tuple[datetime, int]]:
    """Every scheduled run of a day, in time order: (ScheduleTime, account index). Account i's
    job fires every RUN_EVERY at minute i mod 5 of it (staggered STAGGER apart); jobs firing in
    the same minute go in account order."""
    every = int(RUN_EVERY / STAGGER)
    return sorted((midnight + RUN_EVERY * tick + STAGGER * (i % every), i)
                   for tick in range(runs_per_day) for i in range(accounts))


def arrivals(day: date, n: int, seed: int, office: tuple[tuple[int, int], tuple[int, int]] = OFFICE,
             ) -> list[tuple[datetime, dict[str, Any]]]:
    """`n` chats spread over `office` hours (local) of `day`, each with the moment it reaches the log."""
    from sandbox.standins.samples import sample_chats

    (h0, m0), (h1, m1) = office
    start = datetime.combine(day, dtime(h0, m0))  # naive local time, as Moneypenny writes chatTime
    span = datetime.combine(day, dtime(h1, m1)) - start
    chats = sample_chats(n, start=start, seed=seed, spacing=span / max(n, 1)) if n else []
    return [(datetime.fromisoformat(chat["chatTime"]).replace(tzinfo=UK).astimezone(UTC) + CHAT_LENGTH, chat)
            for chat in chats]


@dataclass
class _Account:
    id: str
    index: int
    moneypenny: Any
    settings: Any
    store: Any
    syncer: Any = None
    arriving: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    added: int = 0


def _has_accounts() -> bool:
    try:
        import lib.accounts  # noqa: F401
    except ImportError:
        return False
    return True


def username(account: str) -> str:
    """The Moneypenny login of an account of the benchmark (each its own stand-in)."""
    return f"{account}@example.com"


def open_account(account: str, accounts: list[str], env: dict[str, str], store_kind: str, tmp: Path,
                 tag: str) -> tuple[Any, Any, str]:
    """One account's Settings and state store; the layout used.

    `env` is the environment as this account sees it (its own Moneypenny user, sheet, channel).
    With lib/accounts.py, ACCOUNTS names every account and the store is scoped by
    Settings.account (one STATE_STORE for all, as deployed); without it, this account's store
    is set apart by its own collection prefix or SQLite file."""
    from benchmarks.scenarios import store_env
    from lib.settings import Settings
    from lib.state import open_store

    if _has_accounts():
        from lib.accounts import own_name, settings_for

        # As deployed, every account's login is in the one environment (a login is never shared:
        # the others' must not fall back on this account's bare MONEYPENNY_USERNAME).
        logins = {own_name("MONEYPENNY_USERNAME", other): username(other) for other in accounts}
        full = {**env, **store_env(store_kind, tmp, tag), **logins, "ACCOUNTS": ",".join(accounts)}
        settings = settings_for(full, account)
        layout = "Settings.account"
    else:
        full = {**env, **store_env(store_kind, tmp, f"{tag}-{account}")}
        settings = Settings.from_env(full)
        layout = "prefix per account"
    return settings, open_store(settings), layout


def simulate_accounts(n: int, store_kind: str, tmp: Path, *, days: int = 1, chats_per_day: int = 50,
                      runs_per_day: int = 288, seed: int = 7, start: date | None = None,
                      office: tuple[tuple[int, int], tuple[int, int]] = OFFICE,
                      progress: Callable[[str], None] = lambda text: None) -> AccountsResult:
    """`days` production days of `n` accounts, their staggered runs interleaved in time order,
    from local midnight of `start` (default: `days` days ago), on fresh stand-ins and stores."""
    from lib.app import build_syncer
    from lib.runner import run_and_report
    from lib.sync import RunOptions
    from sandbox.standins import FakeMoneypenny, FakeSheets, FakeSlack

    first = start or datetime.now(UK).date() - timedelta(days=days)
    clock = MovableClock(datetime(first.year, first.month, first.day, tzinfo=UK).astimezone(UTC))
    ids = account_ids(n)
    sheets = FakeSheets()
    slack = FakeSlack(tokens=(SLACK_TOKEN,), channels={f"C{acc.upper()}": f"chats-{acc}" for acc in ids})
    started: list[Any] = [sheets.start(), slack.start()]
    accounts: list[_Account] = []
    tag = f"acc{n}-{int(time.time())}"
    layout = ""
    try:
        for index, acc in enumerate(ids):
            mp = FakeMoneypenny(username=username(acc), password=f"pw-{acc}", clock=clock)
            started.append(mp.start())
            sheet_id = f"sheet-{acc}"
            sheets.create_spreadsheet(sheet_id, tabs=("Sheet1",), title=f"Chats of {acc}")
            env = {"MONEYPENNY_USERNAME": mp.username, "MONEYPENNY_PASSWORD": mp.password,
                   "MONEYPENNY_AUTH_URL": mp.auth_url, "MONEYPENNY_CHATS_URL": mp.chats_url,
                   "MONEYPENNY_CALLS_URL": mp.calls_url, "SHEET_ID": sheet_id, "SHEETS_API_URL": sheets.url,
                   "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_CHANNEL": f"C{acc.upper()}", "SLACK_API_URL": slack.api_url,
                   "HTTP_TIMEOUT_SECONDS": "30", "LOG_FORMAT": "text"}
            settings, store, layout = open_account(acc, ids, env, store_kind, tmp, tag)
            account = _Account(acc, index, mp, settings, store)
            accounts.append(account)
            account.syncer = build_syncer(settings, store=store, clock=clock, backoff=0.01)  # one warm instance
        out: list[AccountsDayCost] = []
        for number in range(days):
            out.append(_day(accounts, clock, first + timedelta(days=number), number, chats_per_day, runs_per_day,
                            seed, office, run_and_report, RunOptions, progress))
        delivered = {}
        for account in accounts:
            rows = sheets.rows(account.settings.sheet_id, account.settings.sheet_tab)
            column = rows[0].index("Chat key") if rows else 0
            keys = [row[column] for row in rows[1:] if len(row) > column]
            delivered[account.id] = (len(keys), len(set(keys)), account.added)
    finally:
        for account in accounts:
            account.store.close()
        for standin in started:
            standin.stop()
    return AccountsResult(store_kind, layout, n, chats_per_day, runs_per_day, out, delivered)


def _day(accounts: list[_Account], clock: MovableClock, day: date, number: int, chats_per_day: int,
         runs_per_day: int, seed: int, office: Any, run_and_report: Any, options: Any,
         progress: Callable[[str], None]) -> AccountsDayCost:
    midnight = datetime(day.year, day.month, day.day, tzinfo=UK).astimezone(UTC)
    progress(f"{n_accounts(len(accounts))}, day {number + 1} ({day}): {runs_per_day} runs each, "
             f"{chats_per_day} chats each")
    for account in accounts:  # each account its own chats (its own seed)
        account.arriving = arrivals(day, chats_per_day, seed + 1000 * account.index + number, office)
    starting = {a.id: a.store.counters.snapshot() for a in accounts}
    idle: dict[str, list[dict[str, int]]] = {a.id: [] for a in accounts}
    runs = dict.fromkeys(starting, 0)
    failed = dict.fromkeys(starting, 0)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for at, index in schedule(len(accounts), runs_per_day, midnight):
        account = accounts[index]
        due = [chat for when, chat in account.arriving if when <= at]
        account.arriving = [(when, chat) for when, chat in account.arriving if when > at]
        account.moneypenny.add_chats(due)
        account.added += len(due)
        clock.now = at + STARTS_AFTER
        logins = account.moneypenny.count("auth")
        before = account.store.counters.snapshot()
        result = run_and_report(account.settings, options(daily_reconcile=True), lambda a=account: a.syncer,
                                schedule_time=_schedule_time(at), schedule_job=f"{SYNC_JOB}-{account.id}")
        report = result.report
        runs[account.id] += 1
        failed[account.id] += report is None or report.outcome == "failed"
        quiet = (report is not None and report.outcome == "ok" and not report.reconciled
                 and not (report.fetched or report.appended or report.posted)
                 and account.moneypenny.count("auth") == logins)
        if quiet and not (number == 0 and runs[account.id] == 1):  # a fresh store's first run is no idle run
            idle[account.id].append(account.store.counters.since(before).as_dict())
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    days = []
    for account in accounts:
        spent = idle[account.id]
        keys = ("reads", "writes", "deletes", "offset_reads")
        days.append(AccountDay(
            account=account.id, chats=chats_per_day, store=account.store.counters.since(starting[account.id]).as_dict(),
            runs=runs[account.id], failed=failed[account.id], idle_runs=len(spent),
            idle_max={k: max((s[k] for s in spent), default=0) for k in keys},
            idle_median={k: statistics.median(s[k] for s in spent) if spent else 0 for k in keys}))
    return AccountsDayCost(number + 1, day.isoformat(), days, seconds, cpu)


# --------------------------------------------------------------------------- verdicts and text


def scheduler_line(accounts: int) -> str:
    """Cloud Scheduler jobs for `accounts` accounts against the 3 free ones."""
    billed = max(0, accounts - FREE_SCHEDULER_JOBS)
    return (f"{accounts} Scheduler job{'s' if accounts != 1 else ''} (one per account) against {FREE_SCHEDULER_JOBS} "
            f"free: {billed} billed, ${billed * SCHEDULER_JOB_MONTH_USD:.2f} a month")


def accounts_targets(results: list[AccountsResult]) -> list[Target]:
    """Issue #22 item 6's targets on the accounts days: nothing lost or doubled, the idle run,
    and dozens of accounts fitting the free tier (judged on the largest number measured)."""
    out: list[Target] = []
    for r in results:
        bad = r.lost_or_doubled()
        out.append(Target(f"{n_accounts(r.accounts)}, a day: every chat once in its own account's sheet, no failed run "
                          f"({r.store_kind})", not bad and not r.failed_runs(),
                          f"{sum(v[2] for v in r.delivered.values()):,} chats, {r.failed_runs()} failed runs"
                          + (f"; not exactly once: {', '.join(bad[:5])}" if bad else "")))
    for what, limit in (("reads", IDLE_READS), ("writes", IDLE_WRITES)):
        for r in results:
            worst = max((a.idle_max.get(what, 0) for d in r.days for a in d.accounts), default=0)
            counted = sum(a.idle_runs for d in r.days for a in d.accounts)
            out.append(Target(f"{n_accounts(r.accounts)}: an idle run <= {limit} {what} ({r.store_kind})",
                              worst <= limit if counted else None,
                              f"max {worst} over {counted:,} idle runs" if counted else "no idle run measured"))
    for kind in dict.fromkeys(r.store_kind for r in results):  # each store asked for (--store both)
        largest = max((r for r in results if r.store_kind == kind), key=lambda r: r.accounts)
        fits, limit = largest.fit()
        per = largest.per_account_day()
        out.append(Target(f"Accounts that fit Firestore's free tier: >= {FIT_AT_LEAST} ({largest.store_kind})",
                          fits >= FIT_AT_LEAST,
                          f"{fits} accounts, limited by {limit} ({per[limit]:,.0f} an account a day, from the "
                          f"{largest.accounts}-account day)"))
    return out


def accounts_text(results: list[AccountsResult], with_targets: bool = True) -> str:
    """Per number of accounts: each day's billed documents against the free tier, the idle run,
    the Scheduler jobs, and how many accounts fit; then the targets."""
    from benchmarks.report import _table

    lines: list[str] = []
    for r in results:
        lines.append(f"A production day for {n_accounts(r.accounts)} on {r.store_kind} "
                     f"(stores: {r.layout}): each {r.runs_per_day} scheduled runs "
                     f"{int(RUN_EVERY.total_seconds() // 60)} min apart, jobs staggered "
                     f"{int(STAGGER.total_seconds() // 60)} min, runs interleaved on one warm instance; "
                     f"{r.chats_per_day} chats an account over office hours")
        rows = []
        for d in r.days:
            total, share = d.total(), d.share()
            rows.append([str(d.day), d.date, f"{sum(a.runs for a in d.accounts):,}", f"{r.chats_per_day * r.accounts:,}",
                         f"{total['reads']:,}", f"{total['writes']:,}", f"{total['deletes']:,}",
                         f"{total['offset_reads']:,}",
                         f"{share['reads']:.1f}% / {share['writes']:.1f}% / {share['deletes']:.1f}%",
                         "yes" if max(share.values()) <= 100 else "NO", f"{d.seconds:.0f}"])
        lines.append(_table(["day", "date", "runs", "chats", "reads", "writes", "deletes", "of reads offset",
                             "free tier r/w/d", "within it", "wall s"], rows))
        per = r.per_account_day()
        idle = [a for d in r.days for a in d.accounts if a.idle_runs]
        if idle:
            med = {k: statistics.median(a.idle_median[k] for a in idle) for k in ("reads", "writes", "deletes")}
            lines.append(f"  An idle run (median over accounts): {med['reads']:g} reads, {med['writes']:g} writes, "
                         f"{med['deletes']:g} deletes")
        lines.append(f"  Per account a day (costliest day): {per['reads']:,.0f} reads, {per['writes']:,.0f} writes, "
                     f"{per['deletes']:,.0f} deletes; TTL deletes still to come, never free: about one per chat "
                     f"journaled ({r.chats_per_day} an account a day)")
        fits, limit = r.fit()
        lines.append(f"  Accounts that fit Firestore's free tier ({', '.join(f'{v:,} {k}' for k, v in FREE_TIER_PER_DAY.items())} "
                     f"a day): {fits}, limited by {limit}")
        lines.append(f"  {scheduler_line(r.accounts)}")
        lines.append(f"  Delivered: {sum(v[0] for v in r.delivered.values()):,} rows for "
                     f"{sum(v[2] for v in r.delivered.values()):,} chats; {r.failed_runs()} failed runs")
        lines.append("")
    if with_targets:
        lines.append("Targets (issue #22: accounts that fit the free tier)")
        lines += [t.line() for t in accounts_targets(results)]
    return "\n".join(lines).rstrip("\n")


def accounts_data(results: list[AccountsResult]) -> dict[str, Any]:
    """Every figure, for --json."""
    return {"accounts": [{
        "accounts": r.accounts, "store": r.store_kind, "layout": r.layout, "runs_per_day": r.runs_per_day,
        "chats_per_day": r.chats_per_day, "per_account_day": r.per_account_day(), "fit": r.fit()[0],
        "fit_limited_by": r.fit()[1], "scheduler": scheduler_line(r.accounts), "failed_runs": r.failed_runs(),
        "delivered": r.delivered,
        "days": [{"day": d.day, "date": d.date, "total": d.total(), "free_tier_share": d.share(), "seconds": d.seconds,
                  "cpu_seconds": d.cpu_seconds, "accounts": [vars(a) for a in d.accounts]} for d in r.days],
    } for r in results], "accounts_targets": [vars(t) for t in accounts_targets(results)]}
