"""The settle rule of exactly-once delivery (lib/sync/exactly_once.py), pure and table-driven: no
store, no stand-in. Whether an entry may be checked and written again now depends only on its
state for the destination, its in-flight label and the time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lib.state.models import DONE, INFLIGHT, PENDING
from lib.sync.exactly_once import ANSWERED, batch_time, settle_time, settled

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
SETTLE = timedelta(seconds=120)


def at(seconds_ago: float) -> str:
    return f"run1@{int((NOW - timedelta(seconds=seconds_ago)).timestamp())}"


@pytest.mark.parametrize(("state", "label", "may"), [
    (PENDING, None, True),
    (DONE, at(1), True),  # done wins over any label
    (INFLIGHT, at(1), False),  # a write that may still be running
    (INFLIGHT, at(119), False),
    (INFLIGHT, at(120), True),  # surely ended
    (INFLIGHT, at(3600), True),
    (INFLIGHT, at(-600), False),  # labelled by a clock ahead of ours: not yet over
    (INFLIGHT, f"run1@{ANSWERED}", True),  # the destination answered: nothing of it still runs
    (INFLIGHT, "run1@unchecked", True),  # journaled unchecked: no write to wait for
    (INFLIGHT, None, True),
    (INFLIGHT, "no time at all", True),
    (INFLIGHT, "run1@99999999999999999999", True),  # a time past any date: long settled
])
def test_an_in_flight_entry_may_be_checked_only_once_its_write_has_surely_ended(state, label, may):
    assert settled(state, label, NOW, SETTLE) is may


@pytest.mark.parametrize(("label", "when"), [
    (at(30), NOW - timedelta(seconds=30)),
    ("x@answered", NOW - timedelta(days=365)),
    ("", NOW - timedelta(days=365)),
])
def test_a_batch_label_gives_the_time_of_its_write(label, when):
    assert batch_time(label, NOW) == when


@pytest.mark.parametrize(("http_timeout", "settle"), [(2, 120), (30, 120), (60, 120), (61, 122), (90, 180)])
def test_the_settle_time_is_at_least_120_s_and_twice_the_http_timeout(http_timeout, settle):
    assert settle_time(http_timeout) == timedelta(seconds=settle)
