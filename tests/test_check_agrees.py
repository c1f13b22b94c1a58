"""`python -m lib check` judges the sheet and Slack as a run does: a header the check passes is one
a run writes under, and a Slack failure is sorted as the sync's own posts sort it."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from lib.commands.cli import Context, main
from lib.errors import RunFailed
from lib.sources.chats import HEADER
from sandbox.standins.server import Status

ROW_1 = {
    "ours": list(HEADER),
    "ours and a note to the right": list(HEADER) + ["Notes"],
    "ours with stray spaces": [f" {name} " for name in HEADER],
    "blank": ["", "  "],
    "blank but a note to the right": [""] * len(HEADER) + ["Notes"],
    "the first five columns only": list(HEADER[:5]),
    "column D renamed": list(HEADER[:3]) + ["Mail"] + list(HEADER[4:]),
}


def _check(harness: Any, env: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    out = io.StringIO()
    main(["check", "--json"], Context(env=env or harness.env(), clock=harness.clock, out=out, err=io.StringIO(),
                                      backoff=0.01))
    return {line["name"]: line for line in json.loads(out.getvalue())["checks"]}


@pytest.mark.parametrize("row", ROW_1.values(), ids=list(ROW_1))
def test_the_check_passes_exactly_the_row_1_a_run_writes_under(harness, row):
    harness.stand.sheets.create_spreadsheet(harness.sheet_id, tabs=("Chats",))
    harness.stand.sheets.set_rows(harness.sheet_id, "Chats", [row])
    checked = _check(harness)["sheet"]
    harness.add_chats(1)
    try:
        harness.syncer().run()
        written = True
    except RunFailed as failed:
        assert failed.error.cause == "sheets_header"
        written = False
    assert (checked["status"] == "OK") == written, checked
    assert written == (len(harness.data_rows()) == 1)


def test_the_check_names_a_slack_outage_as_an_outage_not_as_a_refused_token(harness):
    harness.stand.slack.inject("auth.test", Status(500), times=None)
    token = _check(harness)["slack token"]
    assert token["status"] == "FAIL"
    assert "refused" not in token["detail"] and "auth.test" in token["detail"] and "HTTP 500" in token["detail"]
    assert "status.slack.com" in token["fix"]


def test_the_check_and_a_post_word_a_refused_token_alike(harness):
    from lib.destinations.slack.client import SlackNotifier, build_client
    from lib.errors import SlackConfigError

    env = {**harness.env(), "SLACK_BOT_TOKEN": "xoxb-revoked-token"}
    token = _check(harness, env)["slack token"]
    settings = harness.settings().__class__.from_env(env)
    with pytest.raises(SlackConfigError) as refused:
        SlackNotifier(build_client(settings, backoff=0.01), settings.slack_channel).post("hello")
    assert token["status"] == "FAIL" and token["detail"] == str(refused.value)
    assert "xoxb-revoked-token" not in json.dumps(token)
