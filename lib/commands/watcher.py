"""Whether the outside watcher is there: the Cloud Monitoring alert policies Terraform creates.

Terraform labels each of the watcher's policies `watcher_for = <FIRESTORE_COLLECTION_PREFIX,
lower case>`, so the policies found are the ones watching the state store the command reads.
Asking needs credentials that may read alert policies (roles/monitoring.viewer); without them,
or for a local SQLite store, the answer is "unknown" and says why. MONITORING_API_URL (used by
the command line only) points at another host; a non-Google host is a local stand-in, asked
without credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests

from ..errors import cut
from ..settings import Settings

MONITORING_API_URL = "https://monitoring.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/monitoring.read"
FOUND, NONE, UNKNOWN = "found", "none", "unknown"
MAX_PAGES = 20


@dataclass
class WatcherState:
    """What `status` and `check` say about the watcher."""

    state: str  # found | none | unknown
    detail: str
    policies: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "policies": self.policies}


def watcher_label(settings: Settings) -> str:
    """The `watcher_for` label value Terraform gives the policies (terraform/locals.tf)."""
    return settings.firestore_collection_prefix.lower()[:63]


def list_policies(session: requests.Session, base_url: str, project: str, label: str,
                  timeout: float = 10.0) -> list[dict[str, Any]]:
    """The project's alert policies labelled watcher_for=label: name, display name, enabled."""
    url = f"{base_url.rstrip('/')}/v3/projects/{project}/alertPolicies"
    found: list[dict[str, Any]] = []
    token = None
    for _ in range(MAX_PAGES):
        params = {"pageSize": "100", **({"pageToken": token} if token else {})}
        response = session.get(url, params=params, timeout=timeout)
        response.raise_for_status()
        body = response.json()
        for policy in body.get("alertPolicies") or []:
            if (policy.get("userLabels") or {}).get("watcher_for") == label:
                found.append({"name": policy.get("name"), "display_name": policy.get("displayName"),
                              "enabled": policy.get("enabled", True) is not False})
        token = body.get("nextPageToken")
        if not token:
            break
    return found


def _session(base_url: str) -> tuple[requests.Session | None, str, str]:
    """(a session for the Monitoring API, the credentials' project, why there is no session)."""
    host = urlparse(base_url).hostname or ""
    if not (host == "googleapis.com" or host.endswith(".googleapis.com")):
        return requests.Session(), "", ""  # a local stand-in: no credentials
    try:
        # google-auth only for Google itself: a local stand-in needs no credentials.
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, project = google.auth.default(scopes=[SCOPE])
    except Exception:
        return None, "", "no credentials"
    return AuthorizedSession(credentials), project or "", ""  # type: ignore[no-untyped-call]


def watcher_state(settings: Settings, env: Mapping[str, str] | None = None,
                  session: requests.Session | None = None) -> WatcherState:
    """Whether the watcher's alert policies exist, as far as these settings and credentials tell."""
    env = os.environ if env is None else env
    base_url = env.get("MONITORING_API_URL") or MONITORING_API_URL
    emulator = env.get("FIRESTORE_EMULATOR_HOST") or os.environ.get("FIRESTORE_EMULATOR_HOST")
    if base_url == MONITORING_API_URL and (settings.sqlite_path or emulator):
        return WatcherState(UNKNOWN, "unknown (a local state store: no Cloud project to look in)")
    project = settings.google_cloud_project
    if session is None:
        session, default_project, why = _session(base_url)
        if session is None:
            return WatcherState(UNKNOWN, f"unknown ({why})")
        project = project or default_project
    if not project:
        return WatcherState(UNKNOWN, "unknown (no project: set GOOGLE_CLOUD_PROJECT)")
    try:
        policies = list_policies(session, base_url, project, watcher_label(settings))
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        hint = "; reading them needs roles/monitoring.viewer" if code in (401, 403) else ""
        return WatcherState(UNKNOWN, f"unknown (the Monitoring API answered HTTP {code}{hint})")
    except (requests.RequestException, ValueError) as exc:
        return WatcherState(UNKNOWN, f"unknown (the Monitoring API did not answer: {type(exc).__name__})")
    if not policies:
        return WatcherState(NONE, f"no alert policies watch this state store in project {cut(project)}: nobody hears "
                            "if the function stops running (deploy with watcher_enabled = true)")
    names = ", ".join(f"'{p['display_name']}'" + ("" if p["enabled"] else " (disabled)") for p in policies)
    return WatcherState(FOUND, f"{len(policies)} alert policies in project {cut(project)}: {names}", policies)
