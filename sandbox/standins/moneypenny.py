"""A stand-in for Moneypenny's token endpoint, live chat log and call messages.

It serves several users (billing accounts), each with its own chats, call messages, cursor and
tokens. It keeps the behaviour that matters most to the sync: a plain log call returns every chat
added since the previous plain call and moves a server-side cursor as the answer is
produced (even if the answer is then lost), while a date-window call never moves it. The call
messages endpoint has no cursor: it answers whole days, `from` to `to`.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .server import Request, Response, StandIn

AUTH_PATH = "/auth/token"
LOG_PATH = "/clientlivechat/V3/Log"
CALLS_PATH = "/clienttas/V2/Messages"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _User:
    """One Moneypenny login (a billing account) and what is its own: chats, cursor, call messages."""

    password: str
    chats: list[Any] = field(default_factory=list)
    cursor: int = 0
    messages_held: list[Any] = field(default_factory=list)
    odd_calls: list[Any] = field(default_factory=list)


class FakeMoneypenny(StandIn):
    """Moneypenny's `/auth/token`, `/clientlivechat/V3/Log` and `/clienttas/V2/Messages`.
    Endpoints: "auth", "log", "calls".

    It serves several users (`add_user`), as Moneypenny serves many billing accounts: each login
    has its own chats, call messages and cursor, and its tokens read only its own. The user made
    with the stand-in (`username`, `password`) is the default of every helper's `user`. A
    request's tenant (`calls(tenant=...)`, `inject(..., tenant=...)`) is its user: the username
    a login sends, or the owner of the token a read carries (None: no such login or token).

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
        self.token_lifetime = token_lifetime
        self.clock = clock or _utc_now
        self._users: dict[str, _User] = {username: _User(password)}
        self._tokens: dict[str, tuple[str, datetime]] = {}  # token -> (its user, when it expires)
        self.window_moves_cursor = False
        self.end_inclusive = True
        self.calls_to_inclusive = True

    # ----------------------------------------------------------------- helpers

    @property
    def password(self) -> str:
        """The default user's password."""
        return self._user(None).password

    @property
    def auth_url(self) -> str:
        return self.url + AUTH_PATH

    @property
    def chats_url(self) -> str:
        return self.url + LOG_PATH

    @property
    def calls_url(self) -> str:
        return self.url + CALLS_PATH

    def add_user(self, username: str, password: str) -> None:
        """Another login, with no chats or calls yet and its own cursor."""
        with self._lock:
            if username in self._users:
                raise ValueError(f"user {username!r} exists already")
            self._users[username] = _User(password)

    def users(self) -> list[str]:
        """Every user's name, the default first."""
        with self._lock:
            return list(self._users)

    def set_password(self, password: str, user: str | None = None) -> None:
        """Change a user's password (its tokens stay valid, as Moneypenny's would)."""
        with self._lock:
            self._user(user).password = password

    def _user(self, user: str | None) -> _User:
        name = self.username if user is None else user
        try:
            return self._users[name]
        except KeyError:
            raise KeyError(f"no user {name!r}; users: {list(self._users)}") from None

    def add_calls(self, calls: Iterable[Any], user: str | None = None) -> None:
        """Make call messages available to every read whose days hold their date."""
        with self._lock:
            self._user(user).messages_held.extend(copy.deepcopy(list(calls)))

    def add_odd_calls(self, items: Iterable[Any], user: str | None = None) -> None:
        """Items every call-messages answer carries whatever its days (not objects, no date):
        what a parser must set aside."""
        with self._lock:
            self._user(user).odd_calls.extend(copy.deepcopy(list(items)))

    def all_calls(self, user: str | None = None) -> list[Any]:
        """Every call message ever added, in the order added (copies)."""
        with self._lock:
            return copy.deepcopy(self._user(user).messages_held)

    def add_chats(self, chats: Iterable[dict[str, Any]], user: str | None = None) -> None:
        """Make chats available: the next plain log call returns them."""
        with self._lock:
            self._user(user).chats.extend(copy.deepcopy(list(chats)))

    def all_chats(self, user: str | None = None) -> list[dict[str, Any]]:
        """Every chat ever added, in the order added (copies)."""
        with self._lock:
            return copy.deepcopy(self._user(user).chats)

    def pending_chats(self, user: str | None = None) -> list[dict[str, Any]]:
        """The chats the next plain log call would return (copies); the cursor does not move."""
        with self._lock:
            one = self._user(user)
            return copy.deepcopy(one.chats[one.cursor:])

    def delivered_count(self, user: str | None = None) -> int:
        """How many chats plain calls have handed out so far (the cursor position)."""
        with self._lock:
            return self._user(user).cursor

    def skip_to_end(self, user: str | None = None) -> None:
        """Move the cursor past every chat added so far, as if an earlier reader had taken
        them: plain log calls no longer return them, date-window calls still do."""
        with self._lock:
            one = self._user(user)
            one.cursor = len(one.chats)

    def expire_tokens(self, user: str | None = None) -> None:
        """Invalidate every token issued so far (as if 24 hours had passed); with `user`, only
        that user's."""
        with self._lock:
            for token, (owner, _) in list(self._tokens.items()):
                if user is None or owner == user:
                    del self._tokens[token]

    def tokens_issued(self, user: str | None = None) -> int:
        """How many tokens are currently valid or expired-but-remembered (all users', or one's)."""
        with self._lock:
            return sum(1 for owner, _ in self._tokens.values() if user is None or owner == user)

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

    def tenant(self, request: Request) -> str | None:
        if request.endpoint == "auth":
            try:
                body = request.json()
            except (ValueError, UnicodeDecodeError):
                return None
            name = body.get("username") if isinstance(body, dict) else None
            with self._lock:
                return name if isinstance(name, str) and name in self._users else None
        with self._lock:
            owner = self._owner(request)
        return owner

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
        name = body.get("username")
        user = self._users.get(name) if isinstance(name, str) else None
        if user is None or body.get("password") != user.password:
            return Response(401, {"message": "Invalid username or password."})
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (name, self.clock() + timedelta(seconds=self.token_lifetime))
        return Response(
            200,
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"},
        )

    def _owner(self, request: Request) -> str | None:
        """The user whose valid token the request carries (None: no such token)."""
        scheme, _, token = request.header("authorization").partition(" ")
        issued = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return issued[0] if issued is not None and self.clock() < issued[1] else None

    def _log(self, request: Request) -> Response:
        owner = self._owner(request)
        if owner is None:
            return self.error_response(401)
        user = self._users[owner]
        start_text = request.param("startTime")
        end_text = request.param("endTime")
        if start_text is None and end_text is None:
            fresh = user.chats[user.cursor:]
            user.cursor = len(user.chats)
            return Response(200, fresh)
        start, end = _us_date(start_text), _us_date(end_text)
        if start is None or end is None:
            return Response(400, {"message": "startTime and endTime must both be dates as mm/dd/yyyy."})
        if not self.end_inclusive:
            end -= timedelta(days=1)
        # Odd items that tests plant (not objects) have no date and never match a window.
        window = [c for c in user.chats if isinstance(c, dict) and start <= _chat_date(c) <= end]
        window.sort(key=lambda c: str(c.get("chatTime") or ""))
        if self.window_moves_cursor:
            user.cursor = len(user.chats)
        return Response(200, window)

    def _messages(self, request: Request) -> Response:
        owner = self._owner(request)
        if owner is None:
            return self.error_response(401)
        user = self._users[owner]
        start, end = _us_date(request.param("from")), _us_date(request.param("to"))
        if start is None or end is None:
            return Response(400, {"message": "from and to must both be dates as mm/dd/yyyy."})
        if not self.calls_to_inclusive:
            end -= timedelta(days=1)
        # Odd items that tests plant (not objects, no date) never match a window.
        found = [c for c in user.messages_held if isinstance(c, dict) and start <= _call_date(c) <= end]
        return Response(200, found + user.odd_calls)


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
