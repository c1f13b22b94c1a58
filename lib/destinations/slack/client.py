"""Slack: the slack-sdk client with its retry handlers, posting (a summary, or its fallback when
Slack refuses it), and sorting Slack's errors into ours. The summary itself is in summary.py."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ...counters import SlackCounters
from ...errors import SlackConfigError, SlackMessageRejected, SlackUnavailable, SyncError, cut
from ...settings import Settings
from .summary import Summary

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.jitter import Jitter

log = logging.getLogger(__name__)

T = TypeVar("T")

def build_client(settings: Settings, backoff: float = 0.5) -> WebClient:
    """A slack-sdk WebClient with retries for rate limits, server errors and lost connections."""
    # slack-sdk is imported on first use: a run with nothing to post never loads it.
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )
    from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator

    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff, jitter=_proportional_jitter())

    return WebClient(
        token=settings.slack_bot_token.reveal(),
        base_url=settings.slack_api_url,
        timeout=settings.http_timeout_seconds,  # type: ignore[arg-type]  # urllib takes a float
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
            RateLimitErrorRetryHandler(max_retry_count=3),  # waits for Retry-After
            ServerErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
        ],
    )


def _proportional_jitter() -> Jitter:
    """slack-sdk's default jitter adds up to a whole second to every wait; scale it instead."""
    import random

    from slack_sdk.http_retry.jitter import Jitter  # slack-sdk on first use, as in build_client

    class ProportionalJitter(Jitter):
        def recalculate(self, duration: float) -> float:
            return duration * (1 + random.random())

    return ProportionalJitter()


_AUTH_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission", "missing_scope"}
_CHANNEL_ERRORS = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action"}
# Refusals of the message itself (its shape or size): posting it again can never succeed.
_MESSAGE_ERRORS = {
    "invalid_blocks", "msg_blocks_too_long", "msg_too_long", "invalid_blocks_format", "no_text", "too_many_attachments",
}


class SlackNotifier:
    """Posts messages to one channel through a slack-sdk WebClient.

    `client` may be a function that makes it: then slack-sdk is loaded, and the client made,
    only when the first message is posted (a run with nothing new posts none). `counters`
    (`lib.counters.SlackCounters`) counts the posts.
    """

    def __init__(self, client: Any, channel: str):
        self._client = client
        self.channel = channel
        self.counters = SlackCounters()

    @property
    def client(self) -> Any:
        if callable(self._client) and not hasattr(self._client, "chat_postMessage"):
            self._client = self._client()
        return self._client

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None, channel: str | None = None) -> str:
        """Post a message; return its ts. Errors are sorted into transient and permanent."""
        target = channel or self.channel
        self.counters.posts += 1
        response = call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=target,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                link_names=False,
            ),
            channel=target,
        )
        return str(response.get("ts", ""))

    def post_summary(self, summary: Summary) -> bool:
        """Post a run's summary. When Slack refuses it for its shape or size, post its short
        fallback (counts, time span, sheet link) at once, so that its chats are announced and
        the next run does not carry them into a larger message. True if the fallback was posted."""
        try:
            self.post(summary.text, summary.blocks)
            return False
        except SlackMessageRejected as exc:
            log.warning(
                "Slack refused the summary; posting the short fallback instead",
                extra={"fields": {"error": exc.error, "chats": summary.total, "listed": summary.listed}},
            )
        self.post(summary.fallback or summary.text)
        return True


def call(method: str, fn: Callable[[], T], channel: str = "") -> T:
    """Call the Web API method `method` (`fn` makes the call); its errors sorted by sort_error,
    or a SlackUnavailable when Slack did not answer."""
    from slack_sdk.errors import SlackApiError, SlackClientError  # slack-sdk on first use, as in build_client

    try:
        return fn()
    except SlackApiError as exc:
        raise sort_error(exc, channel, method) from None
    except (SlackClientError, OSError) as exc:
        raise SlackUnavailable(f"Slack did not answer {method} ({type(exc).__name__})") from None


def sort_error(exc: Any, channel: str, method: str = "chat.postMessage") -> SyncError:
    """A SlackApiError as what to do about it: the token or the channel (SlackConfigError), the
    message itself (SlackMessageRejected), or a failure that may pass (SlackUnavailable)."""
    error = str(exc.response.get("error", "")) if exc.response is not None else ""
    status = exc.response.status_code if exc.response is not None else 0
    if error in _AUTH_ERRORS:
        return SlackConfigError(
            f"Slack refused SLACK_BOT_TOKEN ({error})",
            fix="Check SLACK_BOT_TOKEN: a bot token (xoxb-…) with the chat:write scope.",
            error=error,
        )
    if error in _CHANNEL_ERRORS:
        return SlackConfigError(
            f"Slack cannot post to the channel {cut(channel)!r} ({error})",
            fix="Check SLACK_CHANNEL and invite the bot to the channel (/invite @your-bot).",
            error=error,
        )
    if error in _MESSAGE_ERRORS:
        return SlackMessageRejected(f"Slack rejected the message ({error})", error=error)
    return SlackUnavailable(f"Slack answered {method} with HTTP {status} {error}".strip(), error=error)
