"""At-least-once Slack (lib/sync/at_least_once.py), as docs/guarantees.md's "Slack" states it.
Real SlackNotifier (slack-sdk) against the Slack stand-in, a real SQLite store and the
harness's hand-moved clock."""

from __future__ import annotations

import pytest

from lib.errors import SlackUnavailable
from lib.state.models import DONE, PENDING
from lib.sync import RunOptions
from sandbox.standins import Status
from tests.harness import Crash, crash_at, slack_text


def journal_chats(harness, n: int, seed: int = 0) -> None:
    """n chats journaled by a plain read after the store's first (whose chats would wait for
    the sheet's key column before any announcement: lib/sync/journal.py UNCHECKED)."""
    if harness.open_store().read_run_state().cursor.last_read is None:
        harness.protocols().fetch.read(harness.report("first"), RunOptions())
    harness.add_chats(n, seed=seed)
    harness.protocols().fetch.read(harness.report("fetch"), RunOptions())


def deliver(harness, run_id: str = "run", checkpoint=None):
    report = harness.report(run_id)
    steps = harness.protocols(checkpoint=checkpoint)
    steps.slack.deliver(report, harness.open_store().journal_pending())
    steps.journal.write_staged()  # the run's one write per delivered entry, as Syncer makes it
    return report


def slack_states(harness) -> list[str]:
    return [e.state("slack") for e in harness.open_store().journal_pending()]


def test_one_summary_announces_every_waiting_chat_and_marks_them(harness):
    """One post for all of the run's chats; each is then done for Slack."""
    journal_chats(harness, 3)
    report = deliver(harness)
    assert report.posted == 3 and report.late == 0
    assert harness.stand.slack.count("chat.postMessage") == 1
    assert "3 new chats" in slack_text(*harness.stand.slack.messages())
    assert slack_states(harness) == [DONE] * 3


def test_a_failed_post_leaves_the_chats_for_the_next_summary_which_counts_them_late(harness):
    """A failed post is retried with the next run's summary, which says how many of its chats are late."""
    journal_chats(harness, 2)
    harness.stand.slack.inject("chat.postMessage", Status(500), times=None)
    with pytest.raises(SlackUnavailable):
        deliver(harness)
    assert slack_states(harness) == [PENDING] * 2
    harness.stand.slack.clear_faults()
    harness.clock.advance(minutes=5)
    journal_chats(harness, 1, seed=9)
    report = deliver(harness, "next")
    assert report.posted == 3 and report.late == 2
    assert "2 of these are late" in slack_text(harness.stand.slack.messages()[-1])


def test_a_crash_after_the_post_posts_again_at_least_once_never_zero_times(harness):
    """At least once: a post whose marks were not written is posted again by the next run."""
    journal_chats(harness, 2)
    with pytest.raises(Crash):
        deliver(harness, checkpoint=crash_at("after_post"))
    harness.clock.advance(minutes=5)
    report = deliver(harness, "next")
    assert report.posted == 2 and len(harness.stand.slack.messages()) == 2


@pytest.mark.parametrize("error", ["msg_blocks_too_long", "invalid_blocks", "msg_too_long"])
def test_a_refused_summary_is_replaced_in_the_same_delivery_and_its_chats_are_marked(harness, error):
    """A summary Slack refuses for its shape or size is replaced by the short message (count,
    time span, sheet link), so its chats are announced and never pile up."""
    journal_chats(harness, 4)
    harness.stand.slack.inject("chat.postMessage", Status(200, body={"ok": False, "error": error}))
    report = deliver(harness)
    assert report.posted == 4 and slack_states(harness) == [DONE] * 4
    [message] = harness.stand.slack.messages()
    assert "4 new chats" in message["text"] and harness.settings().sheet_url in message["text"]


def test_nothing_waiting_posts_nothing(harness):
    """No chat waiting for Slack: no call at all."""
    report = deliver(harness)
    assert report.posted == 0 and harness.stand.slack.count("chat.postMessage") == 0
