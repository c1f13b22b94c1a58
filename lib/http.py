"""HTTP sessions with urllib3's Retry, shared by the Moneypenny and Sheets clients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


def retry_policy(
    *,
    total: int = 4,
    backoff: float = 0.5,
    statuses: Iterable[int] = TRANSIENT_STATUSES,
    methods: Iterable[str] = ("GET", "PUT", "DELETE", "HEAD", "OPTIONS"),
    read: int | None = None,
) -> Retry:
    """A Retry that backs off exponentially and honours Retry-After.

    `methods` decides which requests are retried after a read error or a listed status; a
    request that may have changed something on the server (an append, a cursor move) must
    not be listed, or a retry could repeat it.
    """
    return Retry(
        total=total,
        connect=total,
        read=total if read is None else read,
        status=total,
        other=0,
        backoff_factor=backoff,
        backoff_max=30,
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
