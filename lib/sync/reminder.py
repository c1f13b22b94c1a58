"""The daily reminder of unclaimed leads (issue #23 item 4), folded into the scheduled run.

With UNCLAIMED_REMINDER_AT set (HH:MM in CHAT_TIMEZONE; off by default), the first scheduled run
after that time on a working day (Monday to Friday, local) posts one Slack message listing the
leads of the last working day still without an Owner (lib/destinations/sheet/owners.py: the
tab's `Owner` column, found by its header, read by key; a name typed by hand counts), by source,
with their row links and Claim buttons (lib/destinations/slack/reminder.py). Nothing is posted
when every lead was claimed.

Which days: from the last working day to before today, so Monday's reminder covers Friday and
the weekend. A day the reminder did not happen (the function was down all day) is caught up by
the next one, which starts where the last reminder left off (at most CATCH_UP_DAYS back): no
lead falls between two reminders, and none is listed by two.

Once a day: the run state keeps the local day of the last reminder that was posted or found
nothing to post (`RunState.reminded_on`), written with the run's last write (no write of its
own); the due check reads only the run state the run read anyway, so a run when the reminder is
not due costs the store nothing more. A reminder whose sheet read or post failed is not noted,
and the next scheduled run makes it again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..destinations.sheet.owners import unclaimed
from ..destinations.sheet.writer import SheetWriter
from ..destinations.slack.client import SlackNotifier
from ..destinations.slack.reminder import ReminderPart, build_reminder
from ..settings import Settings
from ..sources import Feed

__all__ = ["CATCH_UP_DAYS", "due_day", "last_working_day", "post_reminder", "reminder_days"]

CATCH_UP_DAYS = 7  # a reminder looks back at most this many days, however long it was missed


def working_day(day: date) -> bool:
    """Monday to Friday."""
    return day.weekday() < 5


def last_working_day(today: date) -> date:
    """The working day before `today` (Friday, for a Monday)."""
    day = today - timedelta(days=1)
    while not working_day(day):
        day -= timedelta(days=1)
    return day


def due_day(reminded_on: date | None, now: datetime, at: time | None, tz: ZoneInfo) -> date | None:
    """The local day whose reminder a run starting at `now` posts, or None when none is due: `at`
    None (off), a weekend, before `at` today, or today's reminder already made."""
    if at is None:
        return None
    today = now.astimezone(tz).date()
    if not working_day(today) or (reminded_on is not None and reminded_on >= today):
        return None
    return today if datetime.combine(today, at, tzinfo=tz) <= now else None


def reminder_days(reminded_on: date | None, today: date) -> tuple[date, date]:
    """The days the reminder of `today` covers, `first` to before `end` (today): from the last
    working day, or from the last reminder's day when one was missed since (at most
    CATCH_UP_DAYS back)."""
    first = last_working_day(today)
    if reminded_on is not None and reminded_on < first:
        first = max(reminded_on, today - timedelta(days=CATCH_UP_DAYS))
    return first, today


def post_reminder(settings: Settings, feeds: Sequence[Feed], writers: dict[str, SheetWriter],
                  notifier: SlackNotifier, first: date, end: date,
                  claimed: Collection[tuple[str, str]] = ()) -> int:
    """Read each feed's tab for the leads of those days still without an Owner and post one
    message listing them (none when there are none); the number listed in all. `claimed`:
    (feed, key) of the leads claimed in Slack whose Owner is not in the sheet yet (its write
    failed and is still due): claimed all the same, so never listed."""
    parts: list[ReminderPart] = []
    for feed in feeds:
        writer = writers.get(feed.name)
        if writer is None:
            continue
        items = [item for item in unclaimed(writer, first, end) if (feed.name, item.key) not in claimed]
        if items:
            parts.append(ReminderPart(feed=feed.name, noun=feed.noun, tab=writer.tab,
                                      tab_url=writer.tab_url(settings.sheet_url), items=items, gid=writer.tab_id()))
    message = build_reminder(parts, account=settings.account, first=first, end=end,
                             max_listed=settings.slack_max_listed, claim_buttons=settings.slack_claim_buttons)
    if message is None:
        return 0
    notifier.post_summary(message)
    return message.total
