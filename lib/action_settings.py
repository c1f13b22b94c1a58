"""The settings of the public Slack actions entry point (`main.slack_actions`): deployment-wide,
read apart from every account's Settings (lib/settings.py re-exports them)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import SettingsError
from .errors import cut as _cut
from .secret import Secret

# Slack's ids: a workspace (team) id starts with T (or E for an Enterprise Grid org), an app id with A.
_SLACK_ID = re.compile(r"[A-Z][A-Z0-9]{2,30}")


@dataclass(frozen=True)
class ActionSettings:
    """The settings of the public Slack actions entry point (`main.slack_actions`), deployment-wide:
    the app's signing secret and the one workspace and app whose clicks it takes."""

    signing_secret: Secret
    team_id: str
    app_id: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ActionSettings:
        """SLACK_SIGNING_SECRET, SLACK_TEAM_ID and SLACK_APP_ID; one SettingsError names each at fault."""
        env = os.environ if env is None else env
        problems: list[str] = []
        secret = (env.get("SLACK_SIGNING_SECRET") or "").strip()
        if not secret:
            problems.append("SLACK_SIGNING_SECRET is not set (the Slack app's Basic Information > Signing Secret)")
        ids: dict[str, str] = {}
        for name, where, first in (("SLACK_TEAM_ID", "the workspace's id, T…", "TE"), ("SLACK_APP_ID", "the Slack app's App ID, A…", "A")):
            raw = (env.get(name) or "").strip()
            if not raw:
                problems.append(f"{name} is not set ({where})")
            elif not _SLACK_ID.fullmatch(raw) or raw[0] not in first:
                problems.append(f"{name} must be {where} (upper-case letters and digits), got {_cut(raw)!r}")
            ids[name] = raw
        if problems:
            raise SettingsError("; ".join(problems), fix="Set them as docs/deploy.md's Slack app section says.")
        return cls(Secret(secret), ids["SLACK_TEAM_ID"], ids["SLACK_APP_ID"])
