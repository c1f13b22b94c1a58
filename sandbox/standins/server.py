"""The machinery every local stand-in shares: a quiet threaded HTTP server, a call log,
added latency and queued fault injection.

A subclass names its endpoints (`route`) and answers requests (`handle`); the base class
records each call, sleeps the configured latency, applies any queued fault and writes the
reply. Handling runs under one lock per stand-in, so helpers that tests call while a client
is talking to the server see a consistent state.

A stand-in that serves several tenants (Moneypenny's users, Sheets' spreadsheets, Slack's bot
tokens) names a request's tenant (`tenant`): calls are recorded with it and a fault may be
queued for one tenant only, so a test can break one account while another runs.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Status:
    """Answer with this HTTP status and the API's usual error body (or `body` if given)."""

    code: int
    body: Any = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Delay:
    """Sleep this long, then answer normally (long enough, the client times out first)."""

    seconds: float


@dataclass(frozen=True)
class Malformed:
    """Answer 200 with this text instead of the real body."""

    body_text: str = "<html><body>Service Unavailable</body></html>"


@dataclass(frozen=True)
class Drop:
    """Close the connection without any response; nothing is done."""


@dataclass(frozen=True)
class LostResponse:
    """Do the work (a Moneypenny cursor moves, Sheets rows are written), then close the
    connection without answering: the client cannot know it succeeded."""


Fault = Status | Delay | Malformed | Drop | LostResponse


# --------------------------------------------------------------------------- records


@dataclass
class Call:
    """One request as the stand-in saw it. `query` maps a parameter to its value, or to a
    list when the parameter was repeated. `status` is None while in flight or when no
    response was written (Drop, LostResponse, client gone)."""

    endpoint: str
    method: str
    path: str
    query: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    fault: str | None = None
    status: int | None = None
    tenant: str | None = None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    endpoint: str
    too_large: bool = False

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def param(self, name: str, default: str | None = None) -> str | None:
        value = self.query.get(name, default)
        return value[-1] if isinstance(value, list) else value


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


@dataclass
class _Queued:
    endpoint: str
    fault: Fault
    remaining: int | None  # None: until clear_faults()
    tenant: str | None = None  # None: any tenant's requests


# --------------------------------------------------------------------------- server


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # A benchmark opens many connections at once; the default backlog of 5 would reset some.
    request_queue_size = 128
    # Tests start and stop many servers quickly; never wait for TIME_WAIT.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], standin: StandIn):
        self.standin = standin
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        # Clients that time out and hang up are part of the tests, not errors.
        pass

    def get_request(self):
        # A request is counted from its accept, not from when its handler thread reads it: on a
        # loaded machine a request the client gave up on may wait unread for a while, and the
        # stand-in still carries it out.
        return self.standin._accept(super().get_request)

    def shutdown_request(self, request):
        try:
            super().shutdown_request(request)
        finally:
            self.standin._ended()


class StandIn:
    """A local HTTP stand-in for a third-party API, serving on 127.0.0.1 in a daemon thread."""

    #: every endpoint name `route` can return; `inject` rejects any other name
    ENDPOINTS: ClassVar[frozenset[str]] = frozenset()
    #: request bodies above this size are read, discarded and refused by `handle`
    MAX_BODY: ClassVar[int] = 10 * 1024 * 1024

    def __init__(self, port: int = 0, latency: float = 0.0):
        self.latency = latency
        self._port = port
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._calls: list[Call] = []
        self._faults: list[_Queued] = []
        self._stopping = threading.Event()
        self._server: _QuietServer | None = None
        self._thread: threading.Thread | None = None
        #: tracebacks of unexpected exceptions inside the stand-in (answered as 500)
        self.errors: list[str] = []
        #: seconds spent answering requests (the added latency included), summed over requests;
        #: `reset_calls` sets it back to 0. The benchmark reads it to tell the stand-ins' own time.
        self.busy_seconds = 0.0
        self._busy = 0
        self._idle = threading.Condition()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> StandIn:
        """Bind 127.0.0.1 and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _QuietServer(("127.0.0.1", self._port), self._handler_class(), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; in-flight delays are cut short."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The root URL, e.g. http://127.0.0.1:54321 (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------- call log

    def calls(self, endpoint: str | None = None, tenant: str | None = None) -> list[Call]:
        """Every request received so far, oldest first, optionally for one endpoint and one tenant."""
        with self._log_lock:
            return [c for c in self._calls if (endpoint is None or c.endpoint == endpoint)
                    and (tenant is None or c.tenant == tenant)]

    def count(self, endpoint: str | None = None, tenant: str | None = None) -> int:
        """How many requests were received, optionally for one endpoint and one tenant."""
        return len(self.calls(endpoint, tenant))

    def counts(self) -> dict[str, int]:
        """Requests received per endpoint name."""
        out: dict[str, int] = {}
        for c in self.calls():
            out[c.endpoint] = out.get(c.endpoint, 0) + 1
        return out

    def reset_calls(self) -> None:
        """Forget the call log and the busy time (faults and data are kept)."""
        with self._log_lock:
            self._calls.clear()
        with self._idle:
            self.busy_seconds = 0.0

    # ----------------------------------------------------------------- faults

    def inject(self, endpoint: str, fault: Fault, times: int | None = 1, tenant: str | None = None) -> None:
        """Apply `fault` to the next `times` requests to `endpoint` ("*" for any endpoint);
        `times=None` keeps applying it until `clear_faults()`. Faults apply in queue order.
        With `tenant`, only that tenant's requests (see `tenant`) take it; others pass it by."""
        if endpoint != "*" and endpoint not in self.ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; known: {sorted(self.ENDPOINTS)}")
        if not isinstance(fault, (Status, Delay, Malformed, Drop, LostResponse)):
            raise TypeError(f"not a fault: {fault!r}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for unlimited)")
        with self._log_lock:
            self._faults.append(_Queued(endpoint, fault, times, tenant))

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._log_lock:
            self._faults.clear()

    def faults_pending(self) -> int:
        """How many queued fault applications are left (an unlimited fault counts once)."""
        with self._log_lock:
            return sum(1 if q.remaining is None else q.remaining for q in self._faults)

    def queued_faults(self, reaching: str | None = None) -> list[Fault]:
        """The faults still queued, in the order they apply; with `reaching`, only those that
        tenant's requests would take (its own and those queued for any tenant)."""
        with self._log_lock:
            return [q.fault for q in self._faults if reaching is None or q.tenant in (None, reaching)]

    def _take_fault(self, endpoint: str, tenant: str | None = None) -> Fault | None:
        with self._log_lock:
            for queued in self._faults:
                if queued.endpoint in ("*", endpoint) and queued.tenant in (None, tenant):
                    if queued.remaining is not None:
                        queued.remaining -= 1
                        if queued.remaining == 0:
                            self._faults.remove(queued)
                    return queued.fault
        return None

    # ----------------------------------------------------------------- subclass API

    def route(self, method: str, path: str) -> str:
        """The endpoint name for a request ("unknown" when none matches)."""
        raise NotImplementedError

    def handle(self, request: Request) -> Response:
        """Answer one request; runs under the stand-in's lock."""
        raise NotImplementedError

    def tenant(self, request: Request) -> str | None:
        """Whose request this is, for stand-ins that serve several (None: not known, or one
        tenant only). Runs before `handle`, outside the stand-in's lock."""
        return None

    def error_response(self, code: int, retry_after: float | None = None) -> Response:
        """The API's own error reply for an HTTP status (used by Status faults)."""
        return Response(code, {"error": {"code": code, "message": "Injected fault"}})

    # ----------------------------------------------------------------- plumbing

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            # One request per connection: a dropped response can never poison a pooled
            # keep-alive connection that the client reuses later.
            protocol_version = "HTTP/1.0"

            def log_message(self, format, *args):
                pass

            def do_GET(self):
                try:
                    standin._serve(self)
                except Exception:  # keep the traceback: a silent hang-up would hide the bug
                    standin.errors.append(traceback.format_exc())
                    self.close_connection = True

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        return Handler

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being handled (a delayed one included) and none waits to be
        accepted; False on timeout.

        Between two scheduled runs minutes pass, and a request the client gave up on has long
        been finished by then; tests call this to model that. A request counts from the moment
        its client connected: one still in the listen queue, or accepted but not yet read (a
        starved thread on a loaded machine), is carried out later all the same.
        """
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy or self._queued():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                # Short waits: a connection leaving the listen queue notifies no one.
                self._idle.wait(min(left, 0.01))
        return True

    def _queued(self) -> bool:
        # A connection in the listen queue makes the listening socket readable.
        server = self._server
        if server is None:
            return False
        with contextlib.suppress(OSError, ValueError):
            return bool(select.select([server.socket], [], [], 0)[0])
        return False

    def _accept(self, accept: Callable[[], tuple[socket.socket, Any]]) -> tuple[socket.socket, Any]:
        # Under the lock wait_idle reads: a connection leaves the listen queue and is counted at once.
        with self._idle:
            connection = accept()
            self._busy += 1
            return connection

    def _ended(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        started = time.perf_counter()
        try:
            self._serve_one(h)
        finally:
            with self._idle:
                self.busy_seconds += time.perf_counter() - started

    def _serve_one(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query: dict[str, Any] = {}
        for key, values in parse_qs(parts.query, keep_blank_values=True).items():
            query[key] = values[0] if len(values) == 1 else values
        headers = {k.lower(): v for k, v in h.headers.items()}
        length = int(headers.get("content-length") or 0)
        too_large = length > self.MAX_BODY
        body = _read_body(h, length, keep=not too_large)
        endpoint = self.route(h.command, parts.path)
        request = Request(h.command, parts.path, query, headers, body, endpoint, too_large)
        tenant = self.tenant(request)
        call = Call(endpoint, h.command, parts.path, query, tenant=tenant)
        with self._log_lock:
            self._calls.append(call)

        self._wait(self.latency)
        fault = self._take_fault(endpoint, tenant)
        call.fault = type(fault).__name__ if fault is not None else None

        if isinstance(fault, Drop):
            _hang_up(h)
            return
        if isinstance(fault, Status):
            response = self.error_response(fault.code, fault.retry_after)
            if fault.body is not None:
                response.body = fault.body
            if fault.retry_after is not None:
                response.headers["Retry-After"] = _seconds_text(fault.retry_after)
            self._reply(h, call, response)
            return
        if isinstance(fault, Malformed):
            self._reply(h, call, Response(200, fault.body_text))
            return
        if isinstance(fault, Delay):
            self._wait(fault.seconds)

        try:
            with self._lock:
                response = self.handle(request)
        except Exception:  # a bug in the stand-in must not look like a network failure
            self.errors.append(traceback.format_exc())
            response = self.error_response(500)
        if isinstance(fault, LostResponse):
            _hang_up(h)
            return
        self._reply(h, call, response)

    def _reply(self, h: BaseHTTPRequestHandler, call: Call, response: Response) -> None:
        payload = response.encoded()
        # Recorded before the answer goes out: a client that has read it may look at once (on a
        # loaded machine this thread can lag behind the client's next step).
        call.status = response.status
        try:
            h.send_response(response.status)
            h.send_header("Content-Type", response.content_type)
            h.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(payload)
            h.wfile.flush()
        except OSError:
            # The client gave up (timeout) before the answer was ready.
            call.status = None
            h.close_connection = True


def _read_body(h: BaseHTTPRequestHandler, length: int, keep: bool) -> bytes:
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = h.rfile.read(min(remaining, 1 << 20))
        if not chunk:
            break
        remaining -= len(chunk)
        if keep:
            chunks.append(chunk)
    return b"".join(chunks)


def _hang_up(h: BaseHTTPRequestHandler) -> None:
    h.close_connection = True
    with contextlib.suppress(OSError):
        h.connection.shutdown(socket.SHUT_RDWR)


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)
