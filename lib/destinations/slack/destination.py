"""Slack as a destination plug-in (at least once): one summary of every feed's part."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ...errors import SlackMessageRejected
from ..base import AT_LEAST_ONCE, BuildContext, FeedPart
from . import client as slack_client
from .client import SlackNotifier
from .combined import SummaryPart, build_combined
from .summary import BLOCKS_BUDGET, Summary

NAME = "slack"
# What a summary lists when Slack refused a longer list: the default SLACK_MAX_LISTED's lines in
# at most 6,000 characters of text, so that its blocks stay under 12,000 characters even counted
# as their whole JSON (a section per line, with its link and button).
SAFE_LISTED = 20
SAFE_BUDGET = 6_000
log = logging.getLogger(__name__)


class SlackSummary:
    """Slack built for one Syncer: `deliver` posts one summary of every feed's part (a summary
    Slack refuses for its size or shape is replaced by its short fallback, SlackNotifier.post_summary)."""

    def __init__(self, notifier: SlackNotifier, *, sheet_url: str, max_listed: int, account: str = "",
                 claim_buttons: bool = True):
        self.notifier = notifier
        self.sheet_url = sheet_url
        self.max_listed = max_listed
        self.account = account  # named in every Claim button's value ("" without ACCOUNTS)
        self.claim_buttons = claim_buttons  # SLACK_CLAIM_BUTTONS

    def deliver(self, parts: Sequence[FeedPart]) -> None:
        def build(max_listed: int, budget: int = BLOCKS_BUDGET) -> Summary:
            return build_combined(
                [SummaryPart(part.records, part.noun, part.tab, part.link if part.records else "", feed=part.feed,
                             row_links=part.row_links) for part in parts],
                sheet_url=self.sheet_url, max_listed=max_listed, late=sum(part.late for part in parts),
                account=self.account, budget=budget, claim_buttons=self.claim_buttons)

        summary = build(self.max_listed)
        if summary.listed > SAFE_LISTED:
            # Slack does not publish how it counts a message's size; should it refuse a long
            # list (up to 40 lines, each with its link and button), it gets the shorter list
            # every summary fits in, before the short fallback.
            try:
                self.notifier.post(summary.text, summary.blocks)
                return
            except SlackMessageRejected as exc:
                log.warning("Slack refused the summary; posting it with fewer lines", extra={"fields": {
                    "error": exc.error, "listed": summary.listed, "now": SAFE_LISTED}})
            summary = build(SAFE_LISTED, SAFE_BUDGET)
        self.notifier.post_summary(summary)


class SlackDestination:
    """Slack: one summary of each run's new items, at least once."""

    name = NAME
    protocol = AT_LEAST_ONCE

    def build(self, context: BuildContext) -> SlackSummary:
        settings = context.settings
        backoff = context.backoff
        notifier = SlackNotifier(lambda: slack_client.build_client(settings, backoff=backoff), settings.slack_channel)
        return SlackSummary(notifier, sheet_url=settings.sheet_url, max_listed=settings.slack_max_listed,
                            account=settings.account, claim_buttons=settings.slack_claim_buttons)



SLACK = SlackDestination()
