"""What must never show itself: a Secret (a setting's password or token), and a URL shown only as
scheme://host:port (its user, password, path and query can carry a secret)."""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import cut as _cut

_DEFAULT_PORTS = {"http": 80, "https": 443}


def show_url(url: str) -> str:
    """A URL as `scheme://host:port`, the only form in which a URL is ever shown.

    User, password, path and query are left out: any of them can carry a secret; a host name
    longer than a message shows is cut (errors.cut).
    """
    parts = urlsplit(str(url))
    host = parts.hostname or "?"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or _DEFAULT_PORTS.get(parts.scheme)
    return _cut(f"{parts.scheme or '?'}://{host}" + (f":{port}" if port else ""))


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
