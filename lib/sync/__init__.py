"""The sync run, one module per protocol (see docs/development.md, "The run"):

- options.py: RunOptions and Mode (how a run is described), RunReport (RunFailed is in lib/errors.py)
- session.py: the run's state (lease, cursor and intent, schedule names, history), read and
  written once each per run
- fetch.py: the fetch log (Moneypenny's cursor, the fetch intent, the recovery read)
- journal.py: a batch into journal entries and quarantine; delivery states written back
- sheet_delivery.py: exactly-once rows (in-flight marks, settle, key-column check, one retry)
- slack_delivery.py: the at-least-once summary and its marks
- schedule.py: a scheduler retry of a run that succeeded does nothing
- record.py: the run's health flag and its run-history record
- protocols.py: one run's protocols wired to its store, clients and clock (RunProtocols)
- run.py: Syncer, which sequences them (lease, steps, timing, report)
- calls_fetch.py: a feed read by day window (the call messages, any DayRead feed), its read document
- sources.py: each feed's steps and report share, pending split by key, the one summary
- backfill.py: the backfill's logic (a past window in day spans, resumable), used by `python -m lib backfill`
"""

from .calls_fetch import CALLS_READ_DOC, CallsFetch, CallsReadDoc
from .fetch import CURSOR_DOC, RECOVERY_MARGIN, FetchLog, plan_intent, read_settles
from .journal import QUARANTINE_RAW_BYTES, Journal
from .options import Mode, RunOptions, RunReport
from .protocols import RunProtocols
from .record import ALERT_GRACE, check_health, run_record
from .run import Syncer
from .schedule import SCHEDULE_DOC, SCHEDULES_KEPT, ScheduleLog, schedule_key
from .session import RunSession
from .sheet_delivery import ANSWERED, SETTLE_SECONDS, SheetDelivery, settle_time
from .slack_delivery import SlackDelivery
from .sources import FeedSteps, SummaryDelivery

__all__ = [
    "ALERT_GRACE",
    "ANSWERED",
    "CALLS_READ_DOC",
    "CURSOR_DOC",
    "QUARANTINE_RAW_BYTES",
    "RECOVERY_MARGIN",
    "SCHEDULES_KEPT",
    "SCHEDULE_DOC",
    "SETTLE_SECONDS",
    "CallsFetch",
    "CallsReadDoc",
    "FeedSteps",
    "FetchLog",
    "Journal",
    "Mode",
    "RunOptions",
    "RunProtocols",
    "RunReport",
    "RunSession",
    "ScheduleLog",
    "SheetDelivery",
    "SlackDelivery",
    "SummaryDelivery",
    "Syncer",
    "check_health",
    "plan_intent",
    "read_settles",
    "run_record",
    "schedule_key",
    "settle_time",
]
