"""Slack: the slack-sdk client with its retry handlers, posting (a summary, or its fallback when
Slack refuses it), and sorting Slack's errors into ours. The summary itself is in summary.py."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ...counters import SlackCounters
from ...errors import SlackConfigError, SlackMessageRejected, SlackUnavailable, SyncError, cut
from ...http import check_fence
from ...settings import Settings
from .summary import Summary

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.handler import RetryHandler
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
            _fenced(ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=interval)),
            _fenced(RateLimitErrorRetryHandler(max_retry_count=3)),  # waits for Retry-After
            _fenced(ServerErrorRetryHandler(max_retry_count=2, interval_calculator=interval)),
        ],
    )


def _fenced(handler: RetryHandler) -> RetryHandler:
    """`handler` whose wait and re-send check the run's lease (lib/http.check_fence), as the
    Sheets retries do: a post fenced once must not be sent again by slack-sdk after a wait
    (a 429's Retry-After, a back-off) that outlasted the lease, when another run may have
    posted the same summary meanwhile. The check raises LeaseLost; the post is not re-sent."""
    from slack_sdk.http_retry.handler import RetryHandler  # slack-sdk on first use, as in build_client

    class Fenced(RetryHandler):
        def __init__(self, inner: RetryHandler):
            super().__init__(inner.max_retry_count, inner.interval_calculator)
            self.inner = inner

        def can_retry(self, **kw: Any) -> bool:
            return bool(self.inner.can_retry(**kw))

        def prepare_for_next_attempt(self, **kw: Any) -> None:
            wait = _wait_of(self.inner, kw)
            check_fence(wait)  # a wait longer than what is left of the lease renews it first
            log.info("waiting before a Slack retry", extra={"fields": {"seconds": round(wait, 2)}})
            self.inner.prepare_for_next_attempt(**kw)  # slack-sdk's own wait
            check_fence()  # still the holder just before the re-send

    return Fenced(handler)


def _wait_of(handler: RetryHandler, kw: dict[str, Any]) -> float:
    """At least the seconds `handler` is about to wait (Retry-After plus its second of jitter,
    or twice the back-off: the jitter at most doubles it)."""
    response = kw.get("response")
    for name, values in (response.headers.items() if response is not None else ()):
        if name.lower() == "retry-after":
            try:
                return float(values[0] if isinstance(values, list) else values) + 1
            except (TypeError, ValueError, IndexError):
                return 1.0
    state = kw.get("state")
    attempt = state.current_attempt if state is not None else 0
    return 2 * float(handler.interval_calculator.calculate_sleep_duration(attempt))


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
