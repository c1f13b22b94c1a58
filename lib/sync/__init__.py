"""The sync run, one module per protocol (see docs/development.md, "The run"):

- options.py: RunOptions and Mode (how a run is described), RunReport (RunFailed is in lib/errors.py)
- session.py: the run's state (lease, cursor and intent, schedule names, history), read and
  written once each per run
- fetch.py: the fetch log (Moneypenny's cursor, the fetch intent, the recovery read)
- journal.py: a batch into journal entries and quarantine; delivery states written back
- exactly_once.py: exactly-once delivery to any exactly-once destination, the sheet's rows among
  them (in-flight marks, settle, key check, one retry)
- at_least_once.py: at-least-once delivery to any at-least-once destination (the one Slack
  summary of every feed) and its marks
- schedule.py: a scheduler retry of a run that succeeded does nothing
- record.py: the run's health flag and its run-history record
- protocols.py: one run's protocols wired to its store, clients and clock (RunProtocols)
- run.py: Syncer, which sequences them (lease, steps, timing, report)
- calls_fetch.py: a feed read by day window (the call messages, any DayRead feed), its read document
- sources.py: each feed's steps and report share, pending split by key
- backfill.py: the backfill's logic (a past window in day spans, resumable), used by `python -m lib backfill`
"""

from .at_least_once import AtLeastOnceDelivery, SlackDelivery
from .calls_fetch import CALLS_READ_DOC, CallsFetch, CallsReadDoc
from .exactly_once import ANSWERED, SETTLE_SECONDS, ExactlyOnceDelivery, settle_time
from .fetch import CURSOR_DOC, RECOVERY_MARGIN, FetchLog, plan_intent, read_settles
from .journal import QUARANTINE_RAW_BYTES, Journal
from .options import Mode, RunOptions, RunReport
from .protocols import RunProtocols
from .record import ALERT_GRACE, check_health, run_record
from .run import Syncer
from .schedule import SCHEDULE_DOC, SCHEDULES_KEPT, ScheduleLog, schedule_key
from .session import RunSession
from .sources import FeedSteps

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
    "AtLeastOnceDelivery",
    "CallsFetch",
    "CallsReadDoc",
    "ExactlyOnceDelivery",
    "FeedSteps",
    "FetchLog",
    "Journal",
    "Mode",
    "RunOptions",
    "RunProtocols",
    "RunReport",
    "RunSession",
    "ScheduleLog",
    "SlackDelivery",
    "Syncer",
    "check_health",
    "plan_intent",
    "read_settles",
    "run_record",
    "schedule_key",
    "settle_time",
]
