"""HTTP sessions with urllib3's Retry, shared by the Moneypenny and Sheets clients."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
# The longest single back-off between two tries (Retry-After may ask for longer, up to the budget).
BACKOFF_MAX_SECONDS = 30


# The running delivery's lease check (lib/sync/session.RunSession.hold), set by `fenced`: called
# with the seconds about to be waited before a retry's wait, and with 0 just before the retried
# request is sent, so that a run that may have lost its lease while it waited (a 429 storm
# outlasting the lease) never sends the write; it raises LeaseLost instead.
_fence: contextvars.ContextVar[Callable[[float], None] | None] = contextvars.ContextVar("fence", default=None)


@contextlib.contextmanager
def fenced(check: Callable[[float], None]) -> Iterator[None]:
    """Run the block with `check` as the lease check of every retry wait and chunked write."""
    token = _fence.set(check)
    try:
        yield
    finally:
        _fence.reset(token)


def check_fence(wait: float = 0.0) -> None:
    """The running delivery's lease check (nothing outside `fenced`): raises LeaseLost."""
    check = _fence.get()
    if check is not None:
        check(wait)


class BudgetRetry(Retry):
    """urllib3's Retry whose waits (back-off or Retry-After) add up to at most `budget` seconds.

    Retry bounds the number of tries, not the time they take: a quota that frees up only after
    a minute needs a bound in seconds. The last wait is cut to what is left of the budget; once
    it is spent, the retry is exhausted and the last answer (a 429) is returned.

    `on_wait`, when given, hears the seconds left of each wait, once a second and 0 at its end,
    so that a person watching (the backfill's bar) knows why nothing moves.
    """

    def __init__(self, *args: Any, budget: float | None = None, waited: float = 0.0,
                 on_wait: Callable[[float], None] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.waited = waited
        self.on_wait = on_wait

    def new(self, **kw: Any) -> BudgetRetry:
        return super().new(**{"budget": self.budget, "waited": self.waited, "on_wait": self.on_wait, **kw})

    def is_exhausted(self) -> bool:
        return super().is_exhausted() or (self.budget is not None and self.waited >= self.budget)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        wait: float | None = None
        if self.respect_retry_after_header and response is not None:
            try:
                wait = self.get_retry_after(response)
            except InvalidHeader:
                wait = None
        if not wait:
            wait = self.get_backoff_time()
        if self.budget is not None:
            wait = min(wait, max(self.budget - self.waited, 0.0))
        if wait <= 0:
            return
        status = response.status if response is not None else "no answer"
        check_fence(wait)  # a wait longer than what is left of the lease renews it first
        log.info("waiting before a retry", extra={"fields": {
            "status": status, "seconds": round(wait, 2), "waited": round(self.waited, 2), "budget": self.budget}})
        if self.on_wait is None:
            time.sleep(wait)
        else:
            left = wait
            while left > 0:
                self.on_wait(left)
                step = min(left, 1.0)
                time.sleep(step)
                left -= step
            self.on_wait(0.0)
        self.waited += wait
        check_fence()  # still the holder (another run may have taken the lease during the wait)


def retry_policy(
    *,
    total: int = 4,
    backoff: float = 0.5,
    statuses: Iterable[int] = TRANSIENT_STATUSES,
    methods: Iterable[str] = ("GET", "PUT", "DELETE", "HEAD", "OPTIONS"),
    read: int | None = None,
    status_tries: int | None = None,
    wait_budget: float | None = None,
    on_wait: Callable[[float], None] | None = None,
) -> Retry:
    """A Retry that backs off exponentially and honours Retry-After.

    `methods` decides which requests are retried after a read error or a listed status; a
    request that may have changed something on the server (an append, a cursor move) must
    not be listed, or a retry could repeat it. `status_tries` (default `total`) retries after a
    listed status; `wait_budget` bounds the seconds all waits of one request add up to;
    `on_wait` hears the seconds left of each wait (BudgetRetry).
    """
    statuses_left = total if status_tries is None else status_tries
    return BudgetRetry(
        total=max(total, statuses_left),
        connect=total,
        read=total if read is None else read,
        status=statuses_left,
        other=0,
        budget=wait_budget,
        on_wait=on_wait,
        backoff_factor=backoff,
        backoff_max=BACKOFF_MAX_SECONDS,
        status_forcelist=tuple(statuses),
        allowed_methods=frozenset(m.upper() for m in methods),
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def mount_retry(session: requests.Session, retry: Retry) -> requests.Session:
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=8)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class RebasedSession(requests.Session):
    """A Session that sends requests for one URL root to another root.

    gspread builds its URLs from fixed Google constants; this lets the same gspread code talk
    to a local Sheets stand-in (or any proxy) without patching the library.
    """

    def __init__(self, original_root: str, new_root: str):
        super().__init__()
        self.original_root = original_root.rstrip("/")
        self.new_root = new_root.rstrip("/")

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if isinstance(url, str) and url.startswith(self.original_root):
            url = self.new_root + url[len(self.original_root):]
        return super().request(method, url, *args, **kwargs)
