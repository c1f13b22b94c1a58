"""Slack: the run summary (Block Kit with a plain-text fallback) and posting it with slack-sdk."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from .chats import Chat
from .counters import SlackCounters
from .errors import PermanentError, SlackConfigError, SlackError
from .settings import Settings

MAX_BLOCKS = 50
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
# Slack rejects messages whose blocks add up to about 12-13k characters (msg_blocks_too_long);
# stay clear of it whatever the chats hold.
BLOCKS_BUDGET = 10_000
LINE_LIMIT = 280
MESSAGE_PREVIEW = 120

# Text that Slack clients would turn into a link: URLs, bare domains, e-mail addresses.
_LINKY = re.compile(
    r"(?:\b(?:https?|ftp|mailto|tel|sms|slack|file):(?://)?\S+)"
    r"|(?:\bwww\.\S+)"
    r"|(?:[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+)"
    r"|(?:\b(?:[a-z0-9\-]+\.)+[a-z]{2,}\b(?:/\S*)?)",
    re.IGNORECASE,
)


def inert(text: str) -> str:
    """Visitor text made safe for mrkdwn: no mention, no channel ping, no link.

    `&`, `<`, `>` are escaped (so `<!channel>`, `<@U…>`, `<http://x|y>` cannot form), and
    anything Slack would auto-link is shown as inline code, which Slack never links.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("`", "ˋ")  # a backtick could close our code span early
    text = " ".join(text.split())  # newlines would break the one-line-per-chat layout
    return _LINKY.sub(lambda m: f"`{m.group(0)}`", text)


def trim(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _span(chats: Sequence[Chat]) -> str:
    first, last = chats[0].time, chats[-1].time
    if first.date() == last.date():
        day = first.strftime("%a %d %b")
        return f"{day} {first:%H:%M}" if first == last else f"{day} {first:%H:%M}–{last:%H:%M}"
    return f"{first:%d %b %H:%M} – {last:%d %b %H:%M}"


def chat_line(chat: Chat) -> str:
    """One mrkdwn line for a chat: local time, name, company, page, first message."""
    parts = [f"*{chat.time:%H:%M}*"]
    who = trim(chat.name, 60) or "(no name)"
    parts.append(f"*{inert(who)}*")
    if chat.company:
        parts.append(inert(trim(chat.company, 60)))
    if chat.page_url:
        parts.append(inert(trim(chat.page_url, 80)))
    line = " · ".join(parts)
    message = chat.first_visitor_message
    if message:
        line += f" — _{inert(trim(message, MESSAGE_PREVIEW))}_"
    if len(line) > LINE_LIMIT:
        # Cutting escaped text could split an entity or a code span; rebuild with less text.
        line = " · ".join(parts[:2]) + (f" — _{inert(trim(message, 60))}_" if message else "")
    return line


@dataclass
class Summary:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    listed: int = 0
    total: int = 0


def build_summary(
    chats: Sequence[Chat],
    *,
    sheet_url: str,
    max_listed: int = 20,
    late: int = 0,
    title: str = "new chat",
) -> Summary:
    """One message for the chats of a run, always inside Slack's limits."""
    chats = sorted(chats, key=lambda c: (c.time, c.key))
    total = len(chats)
    noun = title if total == 1 else title + "s"
    span = _span(chats) if chats else ""
    header = trim(f"{total} {noun} · {span}" if span else f"{total} {noun}", HEADER_LIMIT)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    if late:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f":hourglass: {late} of these {'is' if late == 1 else 'are'} late: "
                        "an earlier run could not post them.",
                    }
                ],
            }
        )
    # Room for the closing context block and its link, whatever the sheet URL is.
    reserve = 400 + len(sheet_url)
    used = len(json.dumps(blocks))
    listed = 0
    section: list[str] = []

    def flush() -> None:
        nonlocal used
        if section:
            block = {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(section)}}
            blocks.append(block)
            used += len(json.dumps(block))
            section.clear()

    for chat in chats[:max_listed]:
        line = chat_line(chat)
        section_len = sum(len(s) + 1 for s in section)
        if section and section_len + len(line) > SECTION_LIMIT - 100:
            flush()
        if used + section_len + len(json.dumps(line)) + 80 + reserve > BLOCKS_BUDGET:
            break
        if len(blocks) + (1 if section else 0) >= MAX_BLOCKS - 2:
            break
        section.append(line)
        listed += 1
    flush()
    more = total - listed
    link = f"<{sheet_url}|Open the sheet>"
    closing = f"…and {more} more. {link}" if more else link
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": closing}]})
    text = f"{total} {noun} from Moneypenny ({span}). Open the sheet: {sheet_url}"
    return Summary(text=text, blocks=blocks, listed=listed, total=total)


def build_client(settings: Settings, backoff: float = 0.5):
    """A slack-sdk WebClient with retries for rate limits, server errors and lost connections."""
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


def _proportional_jitter():
    """slack-sdk's default jitter adds up to a whole second to every wait; scale it instead."""
    import random

    from slack_sdk.http_retry.jitter import Jitter

    class ProportionalJitter(Jitter):
        def recalculate(self, duration: float) -> float:
            return duration * (1 + random.random())

    return ProportionalJitter()


_AUTH_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission", "missing_scope"}
_CHANNEL_ERRORS = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action"}
_MESSAGE_ERRORS = {"invalid_blocks", "msg_blocks_too_long", "invalid_blocks_format", "no_text", "too_many_attachments"}


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
        from slack_sdk.errors import SlackApiError, SlackClientError

        target = channel or self.channel
        self.counters.posts += 1
        try:
            response = self.client.chat_postMessage(
                channel=target,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                link_names=False,
            )
        except SlackApiError as exc:
            raise self._translate(exc, target) from None
        except (SlackClientError, OSError) as exc:
            raise SlackError(f"Slack did not answer chat.postMessage ({type(exc).__name__})") from None
        return str(response.get("ts", ""))

    def _translate(self, exc: Any, channel: str) -> Exception:
        error = str(exc.response.get("error", "")) if exc.response is not None else ""
        status = exc.response.status_code if exc.response is not None else 0
        if error in _AUTH_ERRORS:
            return SlackConfigError(
                f"Slack refused SLACK_BOT_TOKEN ({error})",
                fix="Check SLACK_BOT_TOKEN: a bot token (xoxb-…) with the chat:write scope.",
            )
        if error in _CHANNEL_ERRORS:
            return SlackConfigError(
                f"Slack cannot post to the channel {channel!r} ({error})",
                fix="Check SLACK_CHANNEL and invite the bot to the channel (/invite @your-bot).",
            )
        if error in _MESSAGE_ERRORS:
            return PermanentError(f"Slack rejected the message ({error})", cause="slack_message")
        return SlackError(f"Slack answered chat.postMessage with HTTP {status} {error}".strip())
