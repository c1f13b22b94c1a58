"""`status`'s store-cost figures: what the recorded runs billed the store, summed over a day in
Firestore's units against its free tier, and the line that says so."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..counters import FREE_TIER_PER_DAY

# The run modes that read a past window (the backfill's reads): their cost is shown apart from the day's.
BACKFILL_MODES = ("window",)
# Less history than this gives no estimate of a day: a few runs (the first one writes the whole
# backlog) scaled up by a hundred say nothing about what a day costs.
ESTIMATE_MIN_HOURS = 6
_UNITS = ("reads", "writes", "deletes", "offset_reads")


def parse_time(text: Any) -> datetime | None:
    """A recorded ISO time, or None when it is missing or unreadable."""
    try:
        return datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None


def store_cost(history: list[dict[str, Any]], now: datetime, complete: bool = False) -> dict[str, Any] | None:
    """What the recorded runs of the last 24 hours cost the store, in Firestore's units: the sum
    of their own billed reads, writes and deletes, never one run scaled up. The scheduled runs'
    figure and the backfill's reads (mode window) are summed apart.

    `complete`: the history holds every run ever recorded (none was dropped from the ring), so the
    last 24 hours are known whole even when the first run is younger. Otherwise, while the kept
    runs reach back less than a day, the figure is "from N runs over H hours", and a day's
    estimate (labelled as one) is given only from ESTIMATE_MIN_HOURS of history on.
    None when no recorded run of the last 24 hours carries its counts."""
    day = timedelta(days=1)
    dated = [(moment, r) for r in history if (moment := parse_time(r.get("started_at"))) is not None]
    counted = [(moment, r) for moment, r in dated if isinstance(r.get("store"), dict) and now - moment <= day]
    if not counted:
        return None
    oldest = min(moment for moment, _ in dated)
    whole_day = complete or now - oldest >= day
    span = day if whole_day else now - oldest

    def summed(runs: list[dict[str, Any]]) -> dict[str, int]:
        return {k: sum(int(r["store"].get(k) or 0) for r in runs) for k in _UNITS}

    scheduled = [r for _, r in counted if r.get("mode") not in BACKFILL_MODES]
    backfill = [r for _, r in counted if r.get("mode") in BACKFILL_MODES]
    totals = summed(scheduled)
    hours = round(span.total_seconds() / 3600, 1)
    out: dict[str, Any] = {"runs": len(scheduled), "hours": hours, "whole_day": whole_day, **totals}
    if whole_day:
        out["free_tier_share"] = _shares(totals)
    elif span >= timedelta(hours=ESTIMATE_MIN_HOURS) and scheduled:
        scale = day / span
        per_day = {k: round(v * scale) for k, v in totals.items()}
        out["estimate"] = {"per_day": per_day, "free_tier_share": _shares(per_day)}
    out["backfill"] = None if not backfill else {"runs": len(backfill), **summed(backfill)}
    return out


def _shares(figures: dict[str, int]) -> dict[str, float]:
    return {k: round(100 * figures[k] / limit, 1) for k, limit in FREE_TIER_PER_DAY.items()}


def billed(run: dict[str, Any]) -> str:
    """One run's store reads/writes/deletes, as the runs table shows them ("-" when not counted)."""
    billed = run.get("store")
    if not isinstance(billed, dict):
        return "-"
    return "/".join(str(billed.get(k, 0)) for k in ("reads", "writes", "deletes"))


def cost_text(cost: dict[str, Any]) -> str:
    """The store-cost line: the scheduled runs' reads, writes and deletes summed over the last 24
    hours (or over the hours recorded, with a day's estimate labelled as one), then the backfill's
    reads apart."""
    def runs(n: int, kind: str = "") -> str:
        return f"{n} {kind}run" + ("" if n == 1 else "s")

    def figures(values: dict[str, Any], share: dict[str, Any] | None) -> str:
        parts = []
        for k, limit in FREE_TIER_PER_DAY.items():
            part = f"{int(values[k]):,} {k if int(values[k]) != 1 else k[:-1]}"
            if share is not None:
                part += f" ({share[k]:g}% of the free {limit:,} a day)"
            parts.append(part)
        offset = f" ({int(values['offset_reads']):,} of the reads skipped by a query's offset)" \
            if values.get("offset_reads") else ""
        return ", ".join(parts) + offset

    if cost["whole_day"]:
        text = f"last 24 h, from {runs(cost['runs'], 'scheduled ')}: {figures(cost, cost['free_tier_share'])}"
    else:
        text = (f"from {runs(cost['runs'], 'scheduled ')} over {cost['hours']:g} h (the runs kept reach back "
                f"no further): {figures(cost, None)}")
        estimate = cost.get("estimate")
        if estimate:
            text += f"; estimate for a day at this rate: {figures(estimate['per_day'], estimate['free_tier_share'])}"
        else:
            text += f"; no estimate for a day from less than {ESTIMATE_MIN_HOURS} h"
    backfill = cost.get("backfill")
    if backfill:
        text += f"; backfill reads apart ({runs(backfill['runs'])}): {figures(backfill, None)}"
    return text
