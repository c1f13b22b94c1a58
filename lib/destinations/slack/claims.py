"""A claim in Slack: the summary's line that says who claimed the item (its button gone), the
clicker's name (users.info), and a word to the clicker alone (the action's response_url,
ephemeral).

The summary's buttons (lane sales-links) carry `action_id` "claim" and the value
`{"a": account, "f": feed, "k": key}`; a button is a section's accessory or an element of an
actions block, and the line it belongs to shows the item's short key (its last 8 characters).
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from ...errors import SlackUnavailable
from .client import call
from .summary import SECTION_LIMIT, inert, trim

log = logging.getLogger(__name__)

CLAIM_ACTION = "claim"
SHORT_KEY = 8
NAME_SHOWN = 60  # characters of a name in a Slack line
SLACK_HOOKS = "hooks.slack.com"


def short_key(key: str) -> str:
    """The item's short key as its summary line shows it."""
    return key[-SHORT_KEY:]


def button_item(element: Any) -> tuple[str, str, str] | None:
    """(account, feed, key) of a Claim button (its value), or None for anything else."""
    if not isinstance(element, dict) or element.get("type") != "button" or element.get("action_id") != CLAIM_ACTION:
        return None
    try:
        value = json.loads(str(element.get("value") or ""))
    except ValueError:
        return None
    if not isinstance(value, dict) or not all(isinstance(value.get(f), str) for f in ("a", "f", "k")) or not value["k"]:
        return None
    return value["a"], value["f"], value["k"]


def shown_name(name: str) -> str:
    """A person's name (a Slack display name, or an Owner cell typed in the sheet) as mrkdwn
    shows it: inert (never a mention or a link), cut to NAME_SHOWN."""
    return trim(inert(name), NAME_SHOWN)


def claimed_line(name: str) -> str:
    """What a claimed item's line gets at its end."""
    return f" · :white_check_mark: claimed by *{shown_name(name)}*"


def claimed_blocks(blocks: list[dict[str, Any]], feed: str, key: str, name: str) -> list[dict[str, Any]] | None:
    """The message's blocks with the item's Claim button gone and its line saying who claimed
    it; None when the message has no button for this item (already updated: nothing to do)."""
    out = copy.deepcopy(blocks)
    for i, block in enumerate(out):
        accessory = block.get("accessory")
        item = button_item(accessory)
        if item is not None and item[1:] == (feed, key):
            del block["accessory"]
            _mark(block, key, name)
            return out
        elements: list[Any] = block.get("elements") or [] if block.get("type") == "actions" else []
        for j, element in enumerate(elements):
            item = button_item(element)
            if item is not None and item[1:] == (feed, key):
                del elements[j]
                sections = [b for b in reversed(out[:i]) if b.get("type") == "section" and b.get("text")]
                line_of = next((b for b in sections if short_key(key) in str(b["text"].get("text", ""))), None)
                if line_of is not None or sections:
                    _mark(line_of or sections[0], key, name)
                if not elements:
                    del out[i]
                return out
    return None


def _mark(block: dict[str, Any], key: str, name: str) -> None:
    text = block.get("text")
    if not isinstance(text, dict) or text.get("type") != "mrkdwn":
        return
    lines = str(text.get("text", "")).split("\n")
    at = next((n for n, line in enumerate(lines) if short_key(key) in line), len(lines) - 1)
    lines[at] += claimed_line(name)
    joined = "\n".join(lines)
    text["text"] = joined if len(joined) <= SECTION_LIMIT else trim(joined, SECTION_LIMIT)


def response_url_allowed(url: str, api_url: str) -> bool:
    """Whether a response_url may be posted to: Slack's own hooks over https, or (a local
    stand-in) the host SLACK_API_URL names. Anything else is never called."""
    parts, api = urlsplit(url), urlsplit(api_url)
    if parts.scheme == "https" and parts.hostname == SLACK_HOOKS:
        return True
    return api.hostname != "slack.com" and (parts.scheme, parts.netloc) == (api.scheme, api.netloc)


class SlackClaims:
    """The Slack calls of a claim, through the run's slack-sdk WebClient (`client`, or a function
    that makes it) and slack-sdk's WebhookClient for response URLs."""

    def __init__(self, client: Any, api_url: str, timeout: float = 10.0):
        self._client = client
        self.api_url = api_url
        self.timeout = timeout

    @property
    def client(self) -> Any:
        if callable(self._client) and not hasattr(self._client, "chat_update"):
            self._client = self._client()
        return self._client

    def user_name(self, user_id: str, fallback: str) -> str:
        """The clicker's name as Slack shows it (display name, else real name), or `fallback`
        (the payload's user name) when users.info cannot say."""
        try:
            answer = call("users.info", lambda: self.client.users_info(user=user_id))
        except Exception as exc:  # the claim is still made, under the name the payload gave
            log.warning("users.info failed; the claim uses the name in the click", extra={"fields": {
                "error": type(exc).__name__}})
            return fallback
        user = answer.get("user") or {}
        profile = user.get("profile") or {}
        for name in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"), user.get("name")):
            if isinstance(name, str) and name.strip():
                return name.strip()
        return fallback

    def update(self, channel: str, ts: str, blocks: list[dict[str, Any]], text: str) -> None:
        """Replace the summary message's blocks (chat.update)."""
        call("chat.update", lambda: self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks),
             channel=channel)

    def tell(self, response_url: str, text: str) -> bool:
        """Say `text` to the clicker only (ephemeral, the message left as it is). False when the
        URL is not one of Slack's or Slack did not take it."""
        if not response_url or not response_url_allowed(response_url, self.api_url):
            log.warning("the click's response_url is not Slack's; nothing told")
            return False
        from slack_sdk.webhook import WebhookClient  # slack-sdk on first use, as in client.build_client

        try:
            answer = WebhookClient(response_url, timeout=int(max(1, self.timeout))).send(
                text=text, response_type="ephemeral", replace_original=False)
        except OSError as exc:
            raise SlackUnavailable(f"Slack did not answer the response URL ({type(exc).__name__})") from None
        return bool(200 <= answer.status_code < 300)
