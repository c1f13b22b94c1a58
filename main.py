"""Cloud Function entry point. All logic lives in lib/."""

from collections.abc import Mapping
from typing import Any, cast

import flask
import functions_framework

from lib.handler import handle, refuse_method


@functions_framework.http
def sync_chats(request: flask.Request) -> Any:
    """HTTP entry: one sync run; JSON counts, or a JSON error with a 4xx/5xx status."""
    refused = refuse_method(request.method)
    if refused is not None:
        return refused
    # werkzeug's Headers: a case-insensitive mapping of str to str.
    body, status = handle(request.args, cast(Mapping[str, str], request.headers))
    return body, status, {"Cache-Control": "no-store"}
