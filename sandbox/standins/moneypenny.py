"""A stand-in for Moneypenny's token endpoint, live chat log and call messages.

It keeps the behaviour that matters most to the sync: a plain log call returns every chat
added since the previous plain call and moves a server-side cursor as the answer is
produced (even if the answer is then lost), while a date-window call never moves it. The call
messages endpoint has no cursor: it answers whole days, `from` to `to`.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .server import Request, Response, StandIn

AUTH_PATH = "/auth/token"
LOG_PATH = "/clientlivechat/V3/Log"
CALLS_PATH = "/clienttas/V2/Messages"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FakeMoneypenny(StandIn):
    """Moneypenny's `/auth/token`, `/clientlivechat/V3/Log` and `/clienttas/V2/Messages`.
    Endpoints: "auth", "log", "calls".

    The guide leaves things open, so they are switchable for tests that must hold either
    way: `window_moves_cursor` (default False: a date-window call leaves the cursor alone),
    `end_inclusive` (default True: chats on the endTime date are included) and
    `calls_to_inclusive` (default True: messages on the `to` date are included). Call messages
    are matched to days by their UTC date."""

    ENDPOINTS = frozenset({"auth", "log", "calls"})

    def __init__(
        self,
        username: str = "demo@example.com",
        password: str = "demo-password",
        token_lifetime: int = 86400,
        clock: Callable[[], datetime] | None = None,
        port: int = 0,
        latency: float = 0.0,
    ):
        super().__init__(port=port, latency=latency)
        self.username = username
        self.password = password
        self.token_lifetime = token_lifetime
        self.clock = clock or _utc_now
        self._tokens: dict[str, datetime] = {}
        self._chats: list[dict[str, Any]] = []
        self._cursor = 0
        self.window_moves_cursor = False
        self.end_inclusive = True
        self._messages_held: list[Any] = []
        self._odd_calls: list[Any] = []
        self.calls_to_inclusive = True

    # ----------------------------------------------------------------- helpers

    @property
    def auth_url(self) -> str:
        return self.url + AUTH_PATH

    @property
    def chats_url(self) -> str:
        return self.url + LOG_PATH

    @property
    def calls_url(self) -> str:
        return self.url + CALLS_PATH

    def add_calls(self, calls: Iterable[Any]) -> None:
        """Make call messages available to every read whose days hold their date."""
        with self._lock:
            self._messages_held.extend(copy.deepcopy(list(calls)))

    def add_odd_calls(self, items: Iterable[Any]) -> None:
        """Items every call-messages answer carries whatever its days (not objects, no date):
        what a parser must set aside."""
        with self._lock:
            self._odd_calls.extend(copy.deepcopy(list(items)))

    def all_calls(self) -> list[Any]:
        """Every call message ever added, in the order added (copies)."""
        with self._lock:
            return copy.deepcopy(self._messages_held)

    def add_chats(self, chats: Iterable[dict[str, Any]]) -> None:
        """Make chats available: the next plain log call returns them."""
        with self._lock:
            self._chats.extend(copy.deepcopy(list(chats)))

    def all_chats(self) -> list[dict[str, Any]]:
        """Every chat ever added, in the order added (copies)."""
        with self._lock:
            return copy.deepcopy(self._chats)

    def pending_chats(self) -> list[dict[str, Any]]:
        """The chats the next plain log call would return (copies); the cursor does not move."""
        with self._lock:
            return copy.deepcopy(self._chats[self._cursor:])

    def delivered_count(self) -> int:
        """How many chats plain calls have handed out so far (the cursor position)."""
        with self._lock:
            return self._cursor

    def skip_to_end(self) -> None:
        """Move the cursor past every chat added so far, as if an earlier reader had taken
        them: plain log calls no longer return them, date-window calls still do."""
        with self._lock:
            self._cursor = len(self._chats)

    def expire_tokens(self) -> None:
        """Invalidate every token issued so far (as if 24 hours had passed)."""
        with self._lock:
            self._tokens.clear()

    def tokens_issued(self) -> int:
        """How many tokens are currently valid or expired-but-remembered."""
        with self._lock:
            return len(self._tokens)

    # ----------------------------------------------------------------- HTTP

    def route(self, method: str, path: str) -> str:
        path = path.rstrip("/")
        if method == "POST" and path == AUTH_PATH:
            return "auth"
        if method == "GET" and path.lower() == LOG_PATH.lower():
            return "log"
        if method == "GET" and path.lower() == CALLS_PATH.lower():
            return "calls"
        return "unknown"

    def error_response(self, code: int, retry_after: float | None = None) -> Response:
        messages = {
            400: "The request is invalid.",
            401: "Authorization has been denied for this request.",
            404: "No HTTP resource was found that matches the request URI.",
            429: "Too many requests.",
        }
        return Response(code, {"message": messages.get(code, "An error has occurred.")})

    def handle(self, request: Request) -> Response:
        if request.endpoint == "auth":
            return self._auth(request)
        if request.endpoint == "log":
            return self._log(request)
        if request.endpoint == "calls":
            return self._messages(request)
        return self.error_response(404)

    def _auth(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self.error_response(400)
        if not isinstance(body, dict):
            return self.error_response(400)
        if body.get("username") != self.username or body.get("password") != self.password:
            return Response(401, {"message": "Invalid username or password."})
        token = secrets.token_urlsafe(32)
        self._tokens[token] = self.clock() + timedelta(seconds=self.token_lifetime)
        return Response(
            200,
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"},
        )

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.header("authorization").partition(" ")
        expires = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return expires is not None and self.clock() < expires

    def _log(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error_response(401)
        start_text = request.param("startTime")
        end_text = request.param("endTime")
        if start_text is None and end_text is None:
            fresh = self._chats[self._cursor:]
            self._cursor = len(self._chats)
            return Response(200, fresh)
        start, end = _us_date(start_text), _us_date(end_text)
        if start is None or end is None:
            return Response(400, {"message": "startTime and endTime must both be dates as mm/dd/yyyy."})
        if not self.end_inclusive:
            end -= timedelta(days=1)
        # Odd items that tests plant (not objects) have no date and never match a window.
        window = [c for c in self._chats if isinstance(c, dict) and start <= _chat_date(c) <= end]
        window.sort(key=lambda c: str(c.get("chatTime") or ""))
        if self.window_moves_cursor:
            self._cursor = len(self._chats)
        return Response(200, window)


    def _messages(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error_response(401)
        start, end = _us_date(request.param("from")), _us_date(request.param("to"))
        if start is None or end is None:
            return Response(400, {"message": "from and to must both be dates as mm/dd/yyyy."})
        if not self.calls_to_inclusive:
            end -= timedelta(days=1)
        # Odd items that tests plant (not objects, no date) never match a window.
        found = [c for c in self._messages_held if isinstance(c, dict) and start <= _call_date(c) <= end]
        return Response(200, found + self._odd_calls)


def _call_date(call: dict[str, Any]) -> date:
    try:
        moment = datetime.fromisoformat(str(call.get("date") or "").strip().replace("Z", "+00:00"))
        return (moment if moment.tzinfo is None else moment.astimezone(UTC)).date()
    except (ValueError, OverflowError):
        return date.min


def _us_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return datetime.strptime(text.strip(), "%m/%d/%Y").date()
    except ValueError:
        return None


def _chat_date(chat: dict[str, Any]) -> date:
    text = str(chat.get("chatTime") or "")
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return date.min
