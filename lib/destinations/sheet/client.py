"""The Sheets API session and gspread client: urllib3 retries, Google credentials or a local
stand-in's base URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import requests

from ...errors import PermanentError
from ...http import RebasedSession, mount_retry, retry_policy
from ...settings import Settings

if TYPE_CHECKING:
    import gspread
    from gspread.exceptions import APIError

GOOGLE_SHEETS_ROOT = "https://sheets.googleapis.com"
# How long one Sheets request waits out 429 answers in all (back-off, or Retry-After when sent)
# before the run fails with a transient error. Sheets' quota is 60 writes a minute per user over
# a rolling minute, so a minute without our writes frees it whole: 65 s covers that with a
# margin. Sized for a scheduled run: its appends (at most two passes) then still end inside the
# function's timeout (300 s by default). The backfill passes a longer wait.
SHEETS_QUOTA_WAIT_SECONDS = 65.0
# Enough tries for the back-off to reach the wait above (1, 2, 4, … capped at 30 s each).
QUOTA_TRIES = 16
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)


def _api_error() -> type[APIError]:
    # gspread is imported on first use: a run with nothing to write never loads it.
    from gspread.exceptions import APIError

    return APIError


def build_client(settings: Settings, backoff: float = 0.5, quota_wait: float = SHEETS_QUOTA_WAIT_SECONDS) -> gspread.Client:
    """A gspread client on a session with urllib3 retries; local stand-ins get no credentials."""
    return client_on(build_session(settings, backoff=backoff, quota_wait=quota_wait), settings)


def client_on(session: requests.Session, settings: Settings) -> gspread.Client:
    """A gspread client on a session from build_session."""
    import gspread  # on first use: a run with nothing to write never loads it

    client = gspread.Client(None, session=session)  # type: ignore[arg-type]
    client.set_timeout((10, settings.http_timeout_seconds))
    return client


def build_session(settings: Settings, backoff: float = 0.5, quota_wait: float = SHEETS_QUOTA_WAIT_SECONDS,
                  on_quota_wait: Callable[[float], None] | None = None) -> requests.Session:
    """The Sheets API session with urllib3 retries; credentials are looked up now, so that a
    missing one fails at start. Local stand-ins get no credentials.

    A 429 (quota) is waited out, backing off exponentially (or as Retry-After says), for up to
    `quota_wait` seconds in all per request; `on_quota_wait` hears the seconds left of each wait."""
    # Appends (POST) are retried only on 429, which Google sends before doing anything: a retry
    # after a 5xx or a timeout could add the rows twice. The sync recovers those itself.
    retry = retry_policy(backoff=backoff, methods=("GET", "PUT", "POST"), statuses=(429,), read=0,
                         status_tries=QUOTA_TRIES, wait_budget=quota_wait, on_wait=on_quota_wait)
    if settings.sheets_is_google:
        # google-auth only for Google itself: local stand-ins (tests, the sandbox) never load it.
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        try:
            credentials, _ = google.auth.default(scopes=SCOPES)
        except google.auth.exceptions.DefaultCredentialsError:
            raise PermanentError(
                "No Google credentials found for the Sheets API",
                cause="sheets_credentials",
                fix="Run `gcloud auth application-default login` locally, or give the function a service account.",
            ) from None
        session: requests.Session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        if settings.sheets_api_url.rstrip("/") != GOOGLE_SHEETS_ROOT:
            raise PermanentError("SHEETS_API_URL must be https://sheets.googleapis.com for Google hosts")
    else:
        session = RebasedSession(GOOGLE_SHEETS_ROOT, settings.sheets_api_url)
    mount_retry(session, retry)
    return session


def sheets_identity(settings: Settings) -> str:
    """Who the sheet must be shared with, as far as can be told without a network call."""
    if not settings.sheets_is_google:
        return "the local stand-in (anonymous)"
    try:
        import google.auth  # only for Google itself: local stand-ins never load it

        credentials, _ = google.auth.default(scopes=SCOPES)
    except Exception:
        return ""
    email = getattr(credentials, "service_account_email", "") or ""
    return "" if email == "default" else email
