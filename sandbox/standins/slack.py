"""A stand-in for the Slack Web API methods the sync uses, with Slack's own validation.

Errors come back as HTTP 200 {"ok": false, "error": ...} like Slack, except rate limiting
(HTTP 429 with Retry-After). Message limits follow Slack's published and observed numbers,
each counted the larger way Slack might count it: a text object's "characters" as UTF-16 code
units (an emoji counts 2), and the blocks' total as their ASCII-escaped JSON (a CJK letter
counts 6, an emoji 12), which is how slack_sdk sends them.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode

from .server import Request, Response, StandIn

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELD = 2000
MAX_HEADER_TEXT = 150
# Slack counts a message's text, not its block containers ("12,000 text characters with a
# buffer for block containers", Slack's answer on bolt-js #2509): every text object's text,
# each measured as ASCII-escaped JSON. Button values and action ids have limits of their own.
MAX_BLOCKS_TEXT = 12_000
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_TEXT = 40_000
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
TEAM_ID = "T0DEMO"
APP_ID = "A0DEMO"
SIGNING_SECRET = "demo-signing-secret"
# The people of the demo workspace (users.info): id -> (user name, real name, display name).
USERS = {"U0ANN": ("ann", "Ann Archer", "Ann"), "U0BOB": ("bob", "Bob Baker", "Bob B"),
         "U0EVE": ("eve", "Eve <!channel> Evans", "=HYPERLINK(\"http://x\";\"eve\")")}

METHODS = frozenset(
    {"chat.postMessage", "auth.test", "conversations.info", "conversations.join", "chat.update", "chat.delete",
     "users.info"}
)
# Where a click's response_url points (POST JSON: Slack's ephemeral answer to the clicker).
RESPONSE_PATH = "/actions/"
_KNOWN_BLOCKS = {"section", "header", "divider", "context", "actions", "image", "rich_text", "input", "file", "video"}
_ENTITY = re.compile(r"<[^<>\n]*>")


class SlackFail(Exception):
    def __init__(self, error: str, **extra: Any):
        super().__init__(error)
        self.error = error
        self.extra = extra


class FakeSlack(StandIn):
    """Slack Web API under /api/. Endpoint names are the method names ("chat.postMessage",
    "auth.test", "conversations.info", "conversations.join", "chat.update", "chat.delete",
    "users.info"), and "response_url" for the clicks' response URLs (/actions/<n>).

    Interactivity the way Slack sends it: `click(...)` builds a block_actions payload for a
    button of a stored message, form-encoded and signed with the app's signing secret
    (`interactivity_request`), with a response URL here; `responses()` lists what was posted to
    those URLs."""

    ENDPOINTS = METHODS | {"response_url"}

    def __init__(
        self,
        tokens: Iterable[str] = ("xoxb-demo-token",),
        channels: Mapping[str, str] | None = None,
        member_of: Iterable[str] | None = None,
        port: int = 0,
        latency: float = 0.0,
    ):
        super().__init__(port=port, latency=latency)
        self.tokens = set(tokens)
        self.channels: dict[str, str] = dict(channels if channels is not None else {"C0DEMO": "sales-chats"})
        self.member_of: set[str] = set(self.channels if member_of is None else member_of)
        self._messages: list[dict[str, Any]] = []
        self._ts = itertools.count(1)
        self.users: dict[str, tuple[str, str, str]] = dict(USERS)
        self._responses: list[dict[str, Any]] = []
        self._clicks = itertools.count(1)

    @property
    def api_url(self) -> str:
        """The base_url for slack_sdk.WebClient (ends with a slash)."""
        return self.url + "/api/"

    # ----------------------------------------------------------------- test helpers

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Accepted messages, oldest first: dicts with channel (id), text, blocks, ts,
        thread_ts. `channel` may be an id or a name."""
        with self._lock:
            if channel is None:
                return copy.deepcopy(self._messages)
            wanted = self._channel_id(channel)
            return [copy.deepcopy(m) for m in self._messages if m["channel"] == wanted]

    def clear_messages(self) -> None:
        """Forget every stored message."""
        with self._lock:
            self._messages.clear()

    def add_channel(self, channel_id: str, name: str, member: bool = True) -> None:
        """Another channel (with the bot in it unless `member` is False)."""
        with self._lock:
            self.channels[channel_id] = name
            if member:
                self.member_of.add(channel_id)

    def add_token(self, token: str) -> None:
        """Another valid bot token (another app install, as another account's bot)."""
        with self._lock:
            self.tokens.add(token)

    def kick(self, channel: str) -> None:
        """Remove the bot from a channel (later posts fail with not_in_channel)."""
        with self._lock:
            self.member_of.discard(self._channel_id(channel) or channel)

    @staticmethod
    def live_entities(text: str) -> list[str]:
        """Every `<...>` control sequence Slack would act on in mrkdwn text: mentions
        (<!channel>, <!here>, <@U1>), channel links (<#C1>) and links (<http://x|y>,
        <mailto:a@b>). Correctly escaped text (&lt; &gt; &amp;) has none."""
        return _ENTITY.findall(text or "")

    @staticmethod
    def mrkdwn_texts(message: Mapping[str, Any]) -> list[str]:
        """Every string of a message that Slack parses as mrkdwn: the top-level text and
        the mrkdwn text objects in its blocks."""
        out = [message.get("text") or ""]
        for obj in _text_objects(message.get("blocks") or []):
            if obj.get("type") == "mrkdwn":
                out.append(str(obj.get("text", "")))
        return out

    @classmethod
    def message_live_entities(cls, message: Mapping[str, Any]) -> list[str]:
        """`live_entities` over every mrkdwn string of a message."""
        return [e for text in cls.mrkdwn_texts(message) for e in cls.live_entities(text)]

    @staticmethod
    def message_problem(text: str | None, blocks: list[Any] | None) -> str | None:
        """The error chat.postMessage would answer for this content (invalid_blocks,
        msg_blocks_too_long, no_text, ...), or None when it would be accepted."""
        try:
            _validated_content({"text": text, "blocks": blocks})
        except SlackFail as fail:
            return fail.error
        return None

    @staticmethod
    def message_text(message: Mapping[str, Any]) -> str:
        """A message's blocks rendered as plain text, one line per line (its text when it
        has no blocks); for printing in the local demo."""
        blocks = message.get("blocks") or []
        if not blocks:
            return str(message.get("text") or "")
        lines: list[str] = []
        for block in blocks:
            kind = block.get("type")
            if kind == "divider":
                lines.append("-" * 40)
            elif kind == "header":
                title = str((block.get("text") or {}).get("text", ""))
                lines += [title.upper(), "=" * min(len(title), 40)]
            elif kind == "section":
                if block.get("text"):
                    lines += str(block["text"].get("text", "")).splitlines()
                button = block.get("accessory") or {}
                if button.get("type") == "button" and lines:
                    lines[-1] += f"  [{(button.get('text') or {}).get('text', '')}]"
                for f in block.get("fields") or []:
                    lines += ["  " + line for line in str(f.get("text", "")).splitlines()]
            elif kind == "context":
                parts = [str(e.get("text", "")) for e in block.get("elements") or [] if "text" in e]
                lines.append("  " + " | ".join(parts))
            else:
                lines.append(f"[{kind}]")
        return "\n".join(lines)

    # ----------------------------------------------------------------- interactivity

    def responses(self) -> list[dict[str, Any]]:
        """What was posted to the clicks' response URLs, oldest first: the JSON body with `url`."""
        with self._lock:
            return copy.deepcopy(self._responses)

    def message(self, ts: str) -> dict[str, Any]:
        """The stored message with this ts (as chat.update left it)."""
        with self._lock:
            return copy.deepcopy(next(m for m in self._messages if m["ts"] == ts))

    @staticmethod
    def buttons(message: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every button of a message's blocks (section accessories and actions elements)."""
        out: list[dict[str, Any]] = []
        for block in message.get("blocks") or []:
            for element in [block.get("accessory"), *(block.get("elements") or [])]:
                if isinstance(element, dict) and element.get("type") == "button":
                    out.append(element)
        return out

    def click_payload(self, message: Mapping[str, Any], button: Mapping[str, Any], user: str = "U0ANN", *,
                      team: str = TEAM_ID, app: str = APP_ID) -> dict[str, Any]:
        """The block_actions payload Slack sends when `user` clicks `button` of `message`."""
        name = self.users.get(user, (user.lower(), "", ""))[0]
        n = next(self._clicks)
        channel = message["channel"]
        shown = {"type": "message", "text": message.get("text", ""), "user": BOT_USER_ID, "bot_id": BOT_ID,
                 "ts": message["ts"], "blocks": copy.deepcopy(message.get("blocks") or [])}
        return {
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": team},
            "api_app_id": app, "token": "verification-token-unused",
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False},
            "trigger_id": f"{n}.trigger", "team": {"id": team, "domain": "demo-workspace"},
            "enterprise": None, "is_enterprise_install": False,
            "channel": {"id": channel, "name": self.channels.get(channel, "")},
            "message": shown, "state": {"values": {}},
            "response_url": f"{self.url}{RESPONSE_PATH}{team}/{n}/hook",
            "actions": [{**copy.deepcopy(dict(button)), "block_id": str(button.get("block_id", "b")),
                         "action_ts": f"{time.time():.6f}"}],
        }

    @staticmethod
    def interactivity_request(payload: Mapping[str, Any] | str, secret: str = SIGNING_SECRET,
                              timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers of Slack's POST to the interactivity URL: `payload=<JSON>`,
        form-encoded, signed as Slack signs (v0:timestamp:body, HMAC-SHA256). A str payload is
        sent as it is (a malformed one)."""
        text = payload if isinstance(payload, str) else json.dumps(payload)
        body = urlencode({"payload": text}).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
                      "X-Slack-Signature": f"v0={digest}"}

    # ----------------------------------------------------------------- HTTP

    def tenant(self, request: Request) -> str | None:
        """A request's tenant is its bot token (each account may post with its own)."""
        try:
            args = _arguments(request)
        except (SlackFail, UnicodeDecodeError):
            args = {}
        return _token(request, args) or None

    def route(self, method: str, path: str) -> str:
        if path.startswith(RESPONSE_PATH) and method == "POST":
            return "response_url"
        if not path.startswith("/api/"):
            return "unknown"
        name = path[len("/api/"):].strip("/")
        return name if name in METHODS else "unknown"

    def error_response(self, code: int, retry_after: float | None = None) -> Response:
        if code == 429:
            return Response(429, {"ok": False, "error": "ratelimited"})
        if code >= 500:
            return Response(code, "<html><body><h1>Slack is having trouble</h1></body></html>",
                            content_type="text/html; charset=utf-8")
        return Response(code, {"ok": False, "error": "request_failed"})

    def handle(self, request: Request) -> Response:
        if request.endpoint == "response_url":
            try:
                body = request.json()
            except ValueError:
                return Response(400, "invalid_payload", content_type="text/plain")
            with self._lock:
                self._responses.append({**(body if isinstance(body, dict) else {}), "url": request.path})
            return Response(200, "ok", content_type="text/html")
        if request.endpoint == "unknown":
            return Response(200, {"ok": False, "error": "unknown_method"})
        try:
            args = _arguments(request)
            token = _token(request, args)
            if not token:
                raise SlackFail("not_authed")
            if token not in self.tokens:
                raise SlackFail("invalid_auth")
            method = getattr(self, "_" + request.endpoint.replace(".", "_"))
            return Response(200, {"ok": True, **method(args)})
        except SlackFail as fail:
            return Response(200, {"ok": False, "error": fail.error, **fail.extra})

    # ----------------------------------------------------------------- methods

    def _channel_id(self, channel: str | None) -> str | None:
        if not channel:
            return None
        if channel in self.channels:
            return channel
        name = channel[1:] if channel.startswith("#") else channel
        for cid, cname in self.channels.items():
            if cname == name:
                return cid
        return None

    def _target(self, args: dict[str, Any]) -> str:
        cid = self._channel_id(args.get("channel"))
        if cid is None:
            raise SlackFail("channel_not_found")
        if cid not in self.member_of:
            raise SlackFail("not_in_channel")
        return cid

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://demo-workspace.slack.com/",
            "team": "Demo Workspace",
            "user": "moneypenny-sync",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _channel_object(self, cid: str) -> dict[str, Any]:
        return {
            "id": cid,
            "name": self.channels[cid],
            "is_channel": True,
            "is_private": False,
            "is_archived": False,
            "is_member": cid in self.member_of,
        }

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        # Slack looks conversations up by id only; a name is channel_not_found here.
        cid = args.get("channel")
        if cid not in self.channels:
            raise SlackFail("channel_not_found")
        return {"channel": self._channel_object(cid)}

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = args.get("channel")
        if cid not in self.channels:
            raise SlackFail("channel_not_found")
        already = cid in self.member_of
        self.member_of.add(cid)
        out: dict[str, Any] = {"channel": self._channel_object(cid)}
        if already:
            out["warning"] = "already_in_channel"
        return out

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._target(args)
        text, blocks = _validated_content(args)
        ts = self._next_ts()
        message = {"channel": cid, "text": text, "blocks": blocks, "ts": ts, "thread_ts": args.get("thread_ts")}
        self._messages.append(message)
        shown = {"type": "message", "text": text, "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts}
        if blocks:
            shown["blocks"] = copy.deepcopy(blocks)
        return {"channel": cid, "ts": ts, "message": shown}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._target(args)
        for message in self._messages:
            if message["channel"] == cid and message["ts"] == args.get("ts"):
                text, blocks = _validated_content(args)
                message.update(text=text, blocks=blocks)
                return {"channel": cid, "ts": message["ts"], "text": text}
        raise SlackFail("message_not_found")

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user") or "")
        if user not in self.users:
            raise SlackFail("user_not_found")
        name, real, display = self.users[user]
        return {"user": {"id": user, "team_id": TEAM_ID, "name": name, "real_name": real, "deleted": False,
                         "profile": {"real_name": real, "display_name": display}}}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._target(args)
        for message in self._messages:
            if message["channel"] == cid and message["ts"] == args.get("ts"):
                self._messages.remove(message)
                return {"channel": cid, "ts": message["ts"]}
        raise SlackFail("message_not_found")


# --------------------------------------------------------------------------- parsing


def _arguments(request: Request) -> dict[str, Any]:
    """Query string, form body or JSON body, merged (slack_sdk uses the last two)."""
    args: dict[str, Any] = {k: (v[-1] if isinstance(v, list) else v) for k, v in request.query.items()}
    ctype = request.header("content-type").lower()
    if not request.body:
        return args
    if "application/json" in ctype:
        try:
            body = request.json()
        except ValueError:
            raise SlackFail("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackFail("invalid_json")
        args.update(body)
    elif "multipart/form-data" in ctype:
        raise SlackFail("invalid_form_data")
    else:
        for key, values in parse_qs(request.body.decode("utf-8"), keep_blank_values=True).items():
            args[key] = values[-1]
    return args


def _token(request: Request, args: dict[str, Any]) -> str:
    scheme, _, token = request.header("authorization").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return str(args.get("token") or "")


def _validated_content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks) if blocks.strip() else None
        except ValueError:
            raise SlackFail("invalid_blocks_format") from None
    if blocks is not None and not isinstance(blocks, list):
        raise SlackFail("invalid_blocks_format")
    blocks = blocks or []
    text = args.get("text")
    text = "" if text is None else str(text)
    if not text.strip() and not blocks:
        raise SlackFail("no_text")
    problems = _block_problems(blocks)
    if problems:
        raise SlackFail("invalid_blocks", errors=problems)
    if sum(len(json.dumps(obj["text"])) - 2 for obj in _all_text_objects(blocks)) > MAX_BLOCKS_TEXT:
        raise SlackFail("msg_blocks_too_long")
    return text[:MAX_TEXT], blocks


def _block_problems(blocks: list[Any]) -> list[str]:
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in _KNOWN_BLOCKS:
            problems.append(f"failed to match all allowed schemas [json-pointer:{where}]")
            continue
        kind = block["type"]
        if len(str(block.get("block_id", ""))) > 255:
            problems.append(f"must be less than 256 characters [json-pointer:{where}/block_id]")
        if kind == "header":
            obj = block.get("text")
            if not isinstance(obj, dict) or obj.get("type") != "plain_text":
                problems.append(f"must be a plain_text object [json-pointer:{where}/text]")
            else:
                problems += _text_problems(obj, MAX_HEADER_TEXT, f"{where}/text")
        elif kind == "section":
            obj, fields = block.get("text"), block.get("fields")
            if obj is None and not fields:
                problems.append(f"must provide text or fields [json-pointer:{where}]")
            if obj is not None:
                problems += _text_problems(obj, MAX_SECTION_TEXT, f"{where}/text")
            if block.get("accessory") is not None:
                problems += _element_problems(block["accessory"], f"{where}/accessory")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > 10:
                    problems.append(f"no more than 10 items allowed [json-pointer:{where}/fields]")
                else:
                    for j, f in enumerate(fields):
                        problems += _text_problems(f, MAX_SECTION_FIELD, f"{where}/fields/{j}")
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 10:
                problems.append(f"must have 1 to 10 elements [json-pointer:{where}/elements]")
            else:
                for j, e in enumerate(elements):
                    if isinstance(e, dict) and e.get("type") in ("mrkdwn", "plain_text"):
                        problems += _text_problems(e, MAX_SECTION_TEXT, f"{where}/elements/{j}")
    return problems


def _element_problems(element: Any, where: str) -> list[str]:
    """A section's accessory: only buttons are checked (their label, action id and value)."""
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"failed to match all allowed schemas [json-pointer:{where}]"]
    if element["type"] != "button":
        return []
    problems = _text_problems(element.get("text"), MAX_BUTTON_TEXT, f"{where}/text")
    if isinstance(element.get("text"), dict) and element["text"].get("type") != "plain_text":
        problems.append(f"must be a plain_text object [json-pointer:{where}/text]")
    if len(str(element.get("action_id", ""))) > MAX_ACTION_ID:
        problems.append(f"must be less than {MAX_ACTION_ID + 1} characters [json-pointer:{where}/action_id]")
    if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
        problems.append(f"must be less than {MAX_BUTTON_VALUE + 1} characters [json-pointer:{where}/value]")
    return problems


def _all_text_objects(node: Any) -> Iterable[dict[str, Any]]:
    """Every text object anywhere in the blocks (section and header texts, context elements,
    button labels)."""
    if isinstance(node, list):
        for item in node:
            yield from _all_text_objects(item)
    elif isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield node
        for value in node.values():
            if isinstance(value, (dict, list)):
                yield from _all_text_objects(value)


def _text_problems(obj: Any, limit: int, where: str) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("mrkdwn", "plain_text"):
        return [f"failed to match all allowed schemas [json-pointer:{where}]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{where}/text]"]
    if _utf16_units(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _text_objects(blocks: list[Any]) -> Iterable[dict[str, Any]]:
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), dict):
            yield block["text"]
        for f in block.get("fields") or []:
            if isinstance(f, dict):
                yield f
        for e in block.get("elements") or []:
            if isinstance(e, dict) and "text" in e and isinstance(e.get("text"), str):
                yield e
