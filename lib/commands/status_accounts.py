"""`python -m lib status` with ACCOUNTS and no --account: the overview, one verdict line per account."""

from __future__ import annotations

import argparse
from typing import Any

from .. import logs
from ..accounts import store_settings_for
from ..errors import StateStoreMissing, SyncError
from ..state import open_store
from .command import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SETTINGS,
    STORE_UNSET,
    STORE_UNSET_FIX,
    Context,
    log_level,
    print_json,
    store_unset,
    with_fix,
)
from .status_collect import collect


def account_verdict(ctx: Context, account: str, watch_minutes: int) -> dict[str, Any]:
    """One account's verdict, as `status --account` prints it first: {account, healthy, verdict}.
    An account whose settings or store cannot be read has a problem (saying which); one whose
    SQLite file does not exist yet has had no run yet."""
    try:
        settings = store_settings_for(ctx.env, account)
    except SyncError as exc:
        return {"account": account, "healthy": False, "verdict": f"PROBLEM — {exc}"}
    try:
        store = open_store(settings, read_only=True)
    except StateStoreMissing as exc:
        if settings.sqlite_path:
            return {"account": account, "healthy": True,
                    "verdict": f"NO RUNS YET — no state store yet at {settings.sqlite_path} (its first run creates it)"}
        return {"account": account, "healthy": False, "verdict": f"PROBLEM — the state store cannot be opened: {exc}"}
    except SyncError as exc:
        return {"account": account, "healthy": False, "verdict": f"PROBLEM — the state store cannot be opened: {exc}"}
    try:
        data = collect(store, ctx.clock(), runs=1, watch_minutes=watch_minutes)
    except SyncError as exc:
        return {"account": account, "healthy": False, "verdict": f"PROBLEM — the state store cannot be read: {exc}"}
    finally:
        store.close()
    return {"account": account, "healthy": data["healthy"], "verdict": data["verdict"]}


def every_account(args: argparse.Namespace, ctx: Context, accounts: tuple[str, ...]) -> int:
    """`python -m lib status` with ACCOUNTS and no --account: one verdict line per account; exit 1
    when any has a problem (its settings, its store, its runs)."""
    if store_unset(ctx.env):
        ctx.warn(with_fix(f"error: {STORE_UNSET}", STORE_UNSET_FIX))
        return EXIT_SETTINGS
    logs.configure("auto", level=log_level(args.verbose), stream=ctx.err)
    verdicts = [account_verdict(ctx, account, args.watch_minutes) for account in accounts]
    healthy = all(v["healthy"] for v in verdicts)
    if args.json:
        print_json(ctx, {"healthy": healthy, "accounts": verdicts})
    else:
        width = max(len(account) for account in accounts)
        ctx.say(*(f"{v['account']:<{width}}  {v['verdict']}" for v in verdicts))
        ctx.say(f"(`python -m lib status --account {accounts[0]}` shows one account's runs and what is waiting)")
    return EXIT_OK if healthy else EXIT_FAILED
