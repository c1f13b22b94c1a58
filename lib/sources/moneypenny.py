"""Moneypenny API client: the bearer token (cached in the state store), the live chat log and
the call messages."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import requests

from ..clock import utcnow
from ..counters import MoneypennyCounters
from ..errors import MoneypennyAuthError, MoneypennyNoAnswer, MoneypennyTokenUnavailable, MoneypennyUnavailable
from ..http import mount_retry, retry_policy
from ..settings import DEFAULT_CALLS_URL, Secret, show_url
from ..state.contract import StateStore
from ..state.models import CachedToken

log = logging.getLogger(__name__)

DEFAULT_TOKEN_LIFETIME = timedelta(hours=24)
# Renew a little before expiry so that a token never dies in the middle of a run.
REFRESH_MARGIN = timedelta(minutes=10)


def _where(url: str) -> str:
    return show_url(url)


class MoneypennyClient:
    """Logs in, keeps the token in the state store, and reads the chat log.

    Two sessions on purpose: the plain log call moves Moneypenny's cursor, so a retry after a
    read timeout or a 5xx could return nothing where the lost answer held chats. That call is
    retried only where the request surely did nothing (connection refused, 429); everything else
    is retried freely. `counters` (`lib.counters.MoneypennyCounters`) counts the requests sent.
    """

    def __init__(
        self,
        *,
        auth_url: str,
        chats_url: str,
        username: Secret,
        password: Secret,
        store: StateStore,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        cursor_session: requests.Session | None = None,
        clock: Callable[[], datetime] = utcnow,
        backoff: float = 0.5,
        calls_url: str = DEFAULT_CALLS_URL,
    ):
        self.auth_url = auth_url
        self.chats_url = chats_url
        self.calls_url = calls_url
        self._username = username
        self._password = password
        self.store = store
        self.timeout = (min(10.0, timeout), timeout)
        self.clock = clock
        self.session = session or mount_retry(
            requests.Session(), retry_policy(backoff=backoff, methods=("GET", "POST"))
        )
        self.cursor_session = cursor_session or mount_retry(
            requests.Session(), retry_policy(backoff=backoff, statuses=(429,), methods=("GET",), read=0)
        )
        self.counters = MoneypennyCounters()
        # The cached token as this client last read, renewed or cleared it (None: cleared or
        # absent); _seen says whether it has looked since forget_token (a run's start).
        self._held: CachedToken | None = None
        self._seen = False

    # -- token ---------------------------------------------------------------------------------
    def token(self) -> str:
        """A token valid for at least REFRESH_MARGIN, from the cache or a new login (the cache
        is read once after forget_token, unless the run handed it over: use_token)."""
        cached = self._held if self._seen else self._hold(self.store.get_token())
        if cached is not None and cached.expires_at - REFRESH_MARGIN > self.clock():
            return cached.value
        return self.login()

    def forget_token(self) -> None:
        """Forget the token this client saw: another instance may renew it before the next run."""
        self._held, self._seen = None, False

    def use_token(self, token: CachedToken | None) -> None:
        """Take `token` as the cached one, just read from the store with the run state (so the
        run reads it no more); forget_token at the next run's start."""
        self._hold(token)

    def held_token(self) -> CachedToken | None:
        """The cached token as this client last saw it since forget_token (read, renewed or
        cleared), without reading it again; read from the store when it has not looked."""
        return self._held if self._seen else self.store.get_token()

    def _hold(self, token: CachedToken | None) -> CachedToken | None:
        self._held, self._seen = token, True
        return token

    def login(self) -> str:
        """Ask for a new token and cache it."""
        self.counters.auth += 1
        body = {"username": self._username.reveal(), "password": self._password.reveal()}
        try:
            response = self.session.post(self.auth_url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise MoneypennyTokenUnavailable(
                f"Moneypenny token endpoint {_where(self.auth_url)} did not answer ({type(exc).__name__})"
            ) from None
        if response.status_code in (400, 401, 403):
            raise MoneypennyAuthError(
                f"Moneypenny refused the login (HTTP {response.status_code} from {_where(self.auth_url)}); "
                "check MONEYPENNY_USERNAME and MONEYPENNY_PASSWORD"
            )
        if response.status_code != 200:
            raise MoneypennyTokenUnavailable(
                f"Moneypenny token endpoint {_where(self.auth_url)} answered HTTP {response.status_code}"
            )
        try:
            payload = response.json()
            value = payload["access_token"]
            if not isinstance(value, str) or not value:
                raise KeyError
        except (ValueError, KeyError, TypeError):
            raise MoneypennyTokenUnavailable(
                f"Moneypenny token endpoint {_where(self.auth_url)} answered without an access_token"
            ) from None
        lifetime = DEFAULT_TOKEN_LIFETIME
        try:
            if payload.get("expires_in") is not None:
                lifetime = timedelta(seconds=int(payload["expires_in"]))
        except (TypeError, ValueError):
            pass  # a token without a readable lifetime is assumed to live the documented 24 h
        token = CachedToken(value=value, expires_at=self.clock() + lifetime)
        self.store.put_token(token)
        self._hold(token)
        return value

    # -- chat log ------------------------------------------------------------------------------
    def fetch_new(self) -> list[Any]:
        """Every chat since the previous plain call. This moves Moneypenny's cursor."""
        return self._get_log(None, self.cursor_session)

    def fetch_window(self, start: date, end: date) -> list[Any]:
        """Every chat whose date is between start and end (whole days, as the API takes them)."""
        if end < start:
            raise ValueError("the window's end is before its start")
        params = {"startTime": start.strftime("%m/%d/%Y"), "endTime": end.strftime("%m/%d/%Y")}
        return self._get_log(params, self.session)

    # -- call messages -------------------------------------------------------------------------
    def fetch_calls(self, start: date, end: date) -> list[Any]:
        """Every call message dated from start to end (whole days; whether `to` is inclusive is
        undocumented). Reading moves nothing at Moneypenny, so it is retried freely."""
        return self.fetch_days(self.calls_url, start, end, feed="call messages", api="call messages API",
                               cause="moneypenny_calls", kind="calls")

    def fetch_days(self, url: str, start: date, end: date, *, feed: str, api: str, cause: str,
                   kind: str = "window") -> list[Any]:
        """Every item of a day-window feed at `url` dated from start to end (whole days, as `from`
        and `to` in the API's MM/DD/YYYY), with this client's token and retries. `feed` and `api`
        name it in errors ("call messages", "call messages API"), `cause` is its errors' cause,
        `kind` the request counter it counts in (MoneypennyCounters). Moves nothing at Moneypenny."""
        if end < start:
            raise ValueError("the window's end is before its start")
        params = {"from": start.strftime("%m/%d/%Y"), "to": end.strftime("%m/%d/%Y")}
        return self._get(url, feed, params, self.session, kind, cause=cause, api=api)

    def _get_log(self, params: dict[str, str] | None, session: requests.Session) -> list[Any]:
        return self._get(self.chats_url, "chat log", params, session, "log" if params is None else "window",
                         cause="moneypenny", api="live chat API")

    def _get(self, url: str, feed: str, params: dict[str, str] | None, session: requests.Session,
             kind: str, *, cause: str, api: str) -> list[Any]:
        for attempt in (1, 2):
            token = self.token()
            setattr(self.counters, kind, getattr(self.counters, kind) + 1)
            try:
                response = session.get(
                    url,
                    params=params,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise MoneypennyNoAnswer(
                    f"Moneypenny {feed} {_where(url)} did not answer ({type(exc).__name__})", cause=cause
                ) from None
            if response.status_code == 401:
                # The cached token was revoked or expired early: one fresh login, one retry.
                self.store.clear_token()
                self._hold(None)
                if attempt == 1:
                    self.login()
                    continue
                raise MoneypennyAuthError(
                    f"Moneypenny {feed} {_where(url)} refused a freshly issued token (HTTP 401); "
                    f"check that the account behind MONEYPENNY_USERNAME may use the {api}"
                )
            return self._read_body(response, url, feed, cause)
        raise AssertionError("unreachable")

    def _read_body(self, response: requests.Response, url: str, feed: str, cause: str) -> list[Any]:
        where = _where(url)
        if response.status_code == 204 or (response.status_code == 200 and not response.content.strip()):
            return []
        if response.status_code == 403:
            raise MoneypennyAuthError(f"Moneypenny {feed} {where} answered HTTP 403 (forbidden)")
        if response.status_code != 200:
            raise MoneypennyUnavailable(f"Moneypenny {feed} {where} answered HTTP {response.status_code}", cause=cause)
        try:
            payload = json.loads(response.content)
        except ValueError:
            raise MoneypennyUnavailable(f"Moneypenny {feed} {where} answered with a body that is not JSON", cause=cause) from None
        if not isinstance(payload, list):
            raise MoneypennyUnavailable(
                f"Moneypenny {feed} {where} answered with a JSON {type(payload).__name__}, not an array", cause=cause
            )
        return payload

