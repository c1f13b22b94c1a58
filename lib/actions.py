"""The public Slack actions entry point (`main.slack_actions`): a click on a summary's Claim button.

It is the one function a stranger can reach (Slack cannot send an OIDC token), so it does
nothing else, and in this order: the raw body (at most MAX_BODY_BYTES) is checked against
Slack's `X-Slack-Signature` with SLACK_SIGNING_SECRET (slack-sdk's SignatureVerifier, which
refuses requests more than 5 minutes old), then the payload's workspace and app against
SLACK_TEAM_ID and SLACK_APP_ID. Anything else is answered 401 before anything is read, stored
or called. A verified click is handed to the claim desk of the button's account
(lib/sync/claims.py); no sync ever runs here.

Slack wants the answer within 3 seconds. The claim is made before the answer, whatever the time
it takes: an answer that came late shows the clicker an error in Slack, but the claim is stored,
written and the message updated all the same (a part that failed is written by the next run).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from . import logs
from .accounts import account_ids
from .accounts import settings_for as accounts_settings_for
from .app import build_claim_desk
from .errors import MalformedAction, SettingsError, SyncError, TransientError, UnknownAccount, cut
from .settings import DEFAULT_SLACK_API_URL, ActionSettings, Settings
from .sync.claims import ClaimDesk, Click

log = logging.getLogger(__name__)

# Slack's block_actions payloads carry the whole message (at most 50 blocks, ~12 KB as JSON),
# form-encoded: well under this. A larger body is no click of ours.
MAX_BODY_BYTES = 128 * 1024
EXECUTION_ID_HEADER = "Function-Execution-Id"
# Settings requires Moneypenny's login; slack_actions never calls Moneypenny, so Terraform gives it none.
MONEYPENNY_LOGIN = ("MONEYPENNY_USERNAME", "MONEYPENNY_PASSWORD")
NO_MONEYPENNY = "unused-by-slack-actions"

_lock = threading.Lock()
_desks: dict[Settings, ClaimDesk] = {}


def settings_for(env: Mapping[str, str], account: str) -> Settings:
    """The settings of the account a button names ("" when ACCOUNTS is unset): lib.accounts'
    settings_for, once the account is known to be one ACCOUNTS lists (a button of an account
    removed since, or of a single-account deployment that became several, is refused).

    The public function never reads Moneypenny, so it need not hold its login: when the
    environment has none, a placeholder stands in (never sent anywhere)."""
    env = dict(env)
    for name in MONEYPENNY_LOGIN:
        for given in [name, *(n for n in env if n.startswith(name + "__"))]:
            if not (env.get(given) or "").strip():
                env[given] = NO_MONEYPENNY
    listed = account_ids(env)
    if (account not in listed) if listed else bool(account):
        known = ", ".join(listed) or "none: ACCOUNTS is not set"
        raise UnknownAccount(f"the button names the account {cut(account)!r}, which ACCOUNTS does not list ({known})",
                             fix="Add the account to ACCOUNTS, or ignore buttons of a removed account.")
    return accounts_settings_for(env, account, signs_in=False)


def _desk_for(settings: Settings) -> ClaimDesk:
    """One desk per account's settings and process: a warm instance reuses its clients and store."""
    with _lock:
        desk = _desks.get(settings)
        if desk is None:
            desk = _desks[settings] = build_claim_desk(settings)
        return desk


def _refused(reason: str) -> tuple[dict[str, Any], int]:
    # The reason goes to the log only: a stranger learns nothing of what failed.
    log.warning("refused a request to the Slack actions entry point", extra={"fields": {"reason": reason}})
    return {"ok": False, "error": "unauthorized"}, 401


def verify(body: bytes, headers: Mapping[str, str], settings: ActionSettings) -> str | None:
    """Why the request is not Slack's for this app (None: it is): size, signature and age."""
    from slack_sdk.signature import SignatureVerifier  # slack-sdk on first use

    if len(body) > MAX_BODY_BYTES:
        return "body over the size limit"
    timestamp, signature = headers.get("X-Slack-Request-Timestamp"), headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return "unsigned"
    try:
        valid = SignatureVerifier(settings.signing_secret.reveal()).is_valid(body, timestamp, signature)
    except (ValueError, UnicodeDecodeError):  # a timestamp that is no number, a body that is no text
        valid = False
    return None if valid else "bad signature or older than 5 minutes"


def parse_payload(body: bytes) -> dict[str, Any]:
    """The form-encoded `payload` JSON of a signed request; MalformedAction when it has none."""
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        raise MalformedAction("the request has no form field 'payload' holding JSON") from None
    if not isinstance(payload, dict):
        raise MalformedAction("the request's 'payload' is not a JSON object")
    return payload


def click_of(payload: dict[str, Any]) -> tuple[str, Click]:
    """The account and the click of a block_actions payload on a Claim button; MalformedAction else."""
    from .destinations.slack.claims import button_item

    if payload.get("type") != "block_actions":
        raise MalformedAction(f"payload type {cut(payload.get('type'))!r} is not block_actions")
    actions = payload.get("actions")
    item = next((button_item(a) for a in actions if button_item(a) is not None), None) if isinstance(actions, list) else None
    user, container = payload.get("user"), payload.get("container")
    message, channel = payload.get("message"), payload.get("channel")
    if item is None or not isinstance(user, dict) or not isinstance(user.get("id"), str):
        raise MalformedAction("the payload holds no Claim button of this app (action_id 'claim' with its value) or no user")
    ts = (container or {}).get("message_ts") if isinstance(container, dict) else None
    if not isinstance(message, dict):
        message = {}
    found = message.get("blocks")
    blocks: list[dict[str, Any]] = [b for b in found if isinstance(b, dict)] if isinstance(found, list) else []
    channel_id = (channel or {}).get("id") if isinstance(channel, dict) else None
    if not channel_id and isinstance(container, dict):
        channel_id = container.get("channel_id")
    account, feed, key = item
    return account, Click(
        feed=feed, key=key, user_id=user["id"], user_name=str(user.get("name") or user.get("username") or ""),
        channel=str(channel_id or ""), ts=str(ts or message.get("ts") or ""), blocks=list(blocks),
        response_url=str(payload.get("response_url") or ""), text=str(message.get("text") or ""))


def handle_action(method: str, body: bytes, headers: Mapping[str, str], env: Mapping[str, str] | None = None, *,
                  desk_for: Callable[[Settings], ClaimDesk] = _desk_for) -> tuple[dict[str, Any] | str, int]:
    """Answer one request to the Slack actions entry point: (body, status).

    401: not Slack's for this app (nothing read or touched); 405: not a POST; 400: a signed
    payload that holds no click of ours; 500: settings at fault (named in the log only when the
    request cannot be verified yet); 503: the store did not
    answer (Slack shows the clicker an error; nothing was claimed); 200 (empty): the click is
    handled (the clicker sees the updated message or a word for them alone). `desk_for` makes
    an account's claim desk (one per process and settings; tests pass their store's)."""
    env = os.environ if env is None else env
    execution_id = (headers.get(EXECUTION_ID_HEADER) or "").strip()[:100]
    with logs.context(**({logs.EXECUTION_ID: execution_id} if execution_id else {})):
        if method.upper() != "POST":
            return {"ok": False, "error": "Slack sends clicks by POST"}, 405
        try:
            settings = ActionSettings.from_env(env)
        except SettingsError as exc:
            # The request is not verified (it cannot be): a stranger learns nothing of the
            # settings; the log names each one at fault and its fix.
            logs.configure("auto")
            log.error("the Slack actions settings are invalid", extra={"fields": {
                "cause": exc.cause, "error": str(exc), "fix": exc.fix}})
            return {"ok": False, "error": "slack_actions is not set up: its log names the setting at fault",
                    "cause": exc.cause}, 500
        logs.configure(env.get("LOG_FORMAT") or "auto", secrets=(settings.signing_secret,))
        problem = verify(body, headers, settings)
        if problem is not None:
            return _refused(problem)
        try:
            payload = parse_payload(body)
        except MalformedAction as exc:
            return {"ok": False, "error": str(exc), "cause": exc.cause}, 400
        team = payload.get("team")
        if not isinstance(team, dict) or team.get("id") != settings.team_id:
            return _refused("another workspace (SLACK_TEAM_ID)")
        if payload.get("api_app_id") != settings.app_id:
            return _refused("another app (SLACK_APP_ID)")
        try:
            account, click = click_of(payload)
        except MalformedAction as exc:
            return {"ok": False, "error": str(exc), "cause": exc.cause}, 400
        return _claim(env, account, click, desk_for, settings)


def _claim(env: Mapping[str, str], account: str, click: Click, desk_for: Callable[[Settings], ClaimDesk],
           actions: ActionSettings) -> tuple[dict[str, Any] | str, int]:
    with logs.context(**({"account": account} if account else {})):
        try:
            settings = settings_for(env, account)
            logs.configure(settings.log_format, secrets=(*settings.secrets(), actions.signing_secret))
            answer = desk_for(settings).click(click)
        except UnknownAccount as exc:
            # A button of an account removed since: the clicker is told why nothing happens
            # (an error from Slack would say nothing), the log names ACCOUNTS for the owner.
            log.warning("a click on a button of an account ACCOUNTS does not list", extra={"fields": {
                "cause": exc.cause, "error": str(exc), "fix": exc.fix}})
            _tell_unknown_account(env, click)
            return "", 200
        except SyncError as exc:
            level = logging.WARNING if isinstance(exc, TransientError) else logging.ERROR
            log.log(level, "a claim could not be made", extra={"fields": {"cause": exc.cause, "error": str(exc)}})
            body: dict[str, Any] = {"ok": False, "error": str(exc), "cause": exc.cause}
            if exc.fix:
                body["fix"] = exc.fix
            return body, 503 if isinstance(exc, TransientError) else 500
        log.info("claim click handled", extra={"fields": {
            "outcome": answer.outcome, "feed": click.feed, "sheet_written": answer.sheet_written,
            "message_updated": answer.message_updated}})
        return "", 200


def _tell_unknown_account(env: Mapping[str, str], click: Click) -> None:
    from .destinations.slack.claims import SlackClaims

    try:
        SlackClaims(None, env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL).tell(
            click.response_url, "This lead is from an account this deployment no longer syncs: nothing was written.")
    except SyncError as exc:  # a courtesy: nothing depends on it
        log.warning("could not answer the clicker", extra={"fields": {"cause": exc.cause}})
