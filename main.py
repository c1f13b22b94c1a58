"""Cloud Function entry point. All logic lives in lib/."""

import gc
from collections.abc import Mapping
from typing import Any, cast

import flask
import functions_framework

from lib import logs
from lib.actions import MAX_BODY_BYTES, handle_action
from lib.handler import handle, refuse_method

# functions-framework installed its own root handler before importing this module (with
# LOG_EXECUTION_ID set, as in Cloud Run): take the root logger over now, so that even a line
# logged before the first request comes out once, in our shape. Each request configures again
# with the settings' format and secrets.
logs.configure("auto")

# A large run allocates hundreds of thousands of short-lived objects (Firestore's protobuf
# messages above all) while it holds its items in memory. At CPython's default thresholds (a
# pass every 700 allocations, a full one every 100 passes or so) the collector scans those
# items over and over: a tenth of the 10,000-chat Firestore run's CPU (benchmarks/run.py,
# the ratio to the Firestore client's floor). Reference counting frees nearly all of a run's
# garbage at once; the collector is for cycles, which a run makes few of, so it runs rarely.
gc.set_threshold(50_000, 20, 20)


@functions_framework.http
def sync_chats(request: flask.Request) -> Any:
    """HTTP entry: one sync run; JSON counts, or a JSON error with a 4xx/5xx status."""
    refused = refuse_method(request.method)
    if refused is not None:
        return refused
    # werkzeug's Headers: a case-insensitive mapping of str to str.
    body, status = handle(request.args, cast(Mapping[str, str], request.headers))
    return body, status, {"Cache-Control": "no-store"}


@functions_framework.http
def slack_actions(request: flask.Request) -> Any:
    """Public HTTP entry: a click on a Slack summary's Claim button (lib/actions.py). The raw
    body is read first (one byte past the limit at most) and verified before anything else."""
    body = request.stream.read(MAX_BODY_BYTES + 1)
    answer, status = handle_action(request.method, body, cast(Mapping[str, str], request.headers))
    return answer, status, {"Cache-Control": "no-store"}
