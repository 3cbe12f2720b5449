"""The hub's plain HTTP requests, answered without a socket: request in, response out.

| route | answers |
| --- | --- |
| ``POST /`` | JSON-RPC (rippled's HTTP API), through the same core as the WebSocket side |
| ``GET /`` | the live dashboard page (``hub/dashboard.html``, self-contained) |
| ``GET /health`` | 200 while serving with a fresh ledger, else 503; a small JSON body |
| ``GET /metrics`` | Prometheus text format |

**JSON-RPC.** Each request is a transient :class:`~hub.core.session.Session`: admin by
address or bearer token as on the WebSocket side (by address only with ``Content-Type:
application/json``, which no page can send to another origin unasked:
:mod:`hub.wire.admission`), charged to its IP's load balance
(the same balance its WebSocket connections draw on). A client whose balance reached
``[load] drop`` is answered 503 ``Server is overloaded`` (rippled's reply); under it
every reply carries ``warning: "load"`` from ``[load] warning``, as on WebSocket.
rippled wants a callback ``url`` for ``subscribe`` over JSON-RPC, so a subscribe
without one is ``invalidParams``; the hub sends no callbacks, so with one it is
``noPermission`` (non-admin) or ``notSupported``.

**Connection limits.** ``[limits] max_connections`` and ``max_connections_per_ip``
count every TCP connection, HTTP ones included, and apply to JSON-RPC and the
dashboard with the same 503/429 as an upgrade. ``/health`` and ``/metrics`` are
answered on a full hub: monitoring must see a node that is full. (A socket over its
address's limit is answered 429 before any request is read, :mod:`hub.edge.server`.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.resources import files
from typing import Any, Final, Protocol

from hub.core.dispatch import Outcome
from hub.core.load import Verdict
from hub.core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from hub.core.metrics import Metrics
from hub.core.session import Session
from hub.core.stats import Stats
from hub.wire import jsonrpc
from hub.wire.admission import Identity
from hub.wire.envelope import Extras


class Serving(Protocol):
    """What the HTTP side needs of the node."""

    @property
    def stats(self) -> Stats: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def serving(self) -> bool: ...

    def health_report(self) -> tuple[bool, dict[str, Any]]: ...

    def identify(
        self, peer: str, headers: Iterable[tuple[bytes, bytes]], *, jsonrpc: bool = ...
    ) -> Identity: ...

    def refusal(self, remote: str, admin: bool) -> tuple[int, str] | None: ...

    def transient_session(self, who: Identity) -> Session: ...

    def over_limit(self, session: Session) -> bool: ...

    async def execute(self, session: Session, data: dict[str, Any], size: int = ...) -> Outcome: ...

    def charge(self, session: Session, costs: Iterable[tuple[str, int]]) -> Verdict: ...

    def extras(self, verdict: Verdict = ...) -> Extras: ...


Headers = list[tuple[bytes, bytes]]

_JSON: Final = (b"content-type", b"application/json")
_TEXT: Final = (b"content-type", b"text/plain; charset=utf-8")
_HTML: Final = (b"content-type", b"text/html; charset=utf-8")
_NO_STORE: Final = (b"cache-control", b"no-store")
OVERLOADED: Final = "Server is overloaded"


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    method: str
    target: str
    headers: Headers
    body: bytes
    remote: str


@dataclass(frozen=True, slots=True)
class HTTPResponse:
    """A whole response; ``close`` asks the transport to end the connection after it."""

    status: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    close: bool = False


def text(status: int, message: str, *, close: bool = False) -> HTTPResponse:
    return HTTPResponse(status, [_TEXT], f"{message}\n".encode(), close)


def _json(status: int, body: Any) -> HTTPResponse:
    return HTTPResponse(status, [_JSON, _NO_STORE], json.dumps(body).encode())


@cache
def dashboard_page() -> bytes:
    return files("hub.edge").joinpath("dashboard.html").read_bytes()


async def handle(node: Serving, request: HTTPRequest) -> HTTPResponse:
    """Answer one plain HTTP request; counted in ``hub_http_responses``."""
    route, response = await _route(node, request)
    node.metrics.http.labels(route, str(response.status)).inc()
    if not node.serving:  # shutting down: no keep-alive
        response = replace(response, close=True)
    return response


async def _route(node: Serving, request: HTTPRequest) -> tuple[str, HTTPResponse]:
    path = request.target.partition("?")[0]
    method = request.method
    if path == "/health":
        if method not in ("GET", "HEAD"):
            return "health", _not_allowed("GET, HEAD")
        _charge(node, request)  # charged, but always answered: it is small and vital
        healthy, report = node.health_report()
        return "health", _json(200 if healthy else 503, report)
    if path == "/metrics":
        if method not in ("GET", "HEAD"):
            return "metrics", _not_allowed("GET, HEAD")
        if _charge(node, request) is Verdict.DROP:
            return "metrics", text(503, OVERLOADED, close=True)
        return "metrics", HTTPResponse(
            200, [(b"content-type", METRICS_CONTENT_TYPE.encode())], node.metrics.latest()
        )
    if path not in ("/", "/index.html"):
        return "other", text(404, "Not found.")
    route = "jsonrpc" if method == "POST" else "dashboard"
    if method not in ("GET", "HEAD", "POST"):
        return route, _not_allowed("GET, HEAD, POST")
    who = node.identify(request.remote, request.headers, jsonrpc=method == "POST")
    if method != "POST" and _charge(node, request, who) is Verdict.DROP:
        return route, text(503, OVERLOADED, close=True)
    refusal = node.refusal(who.address, who.admin)
    if refusal is not None:
        node.stats.connections_refused += 1
        return route, text(refusal[0], refusal[1], close=True)
    if method == "POST":
        return route, await json_rpc(node, request.body, who)
    return route, HTTPResponse(200, [_HTML, _NO_STORE], dashboard_page())


def _charge(node: Serving, request: HTTPRequest, who: Identity | None = None) -> Verdict:
    """Charge a plain HTTP request to its client like a WebSocket request; DROP when the
    client's balance is past the drop threshold."""
    session = node.transient_session(who or node.identify(request.remote, request.headers))
    if node.over_limit(session):
        node.stats.load_drops += 1
        return Verdict.DROP
    node.charge(session, (("request", 1),))
    return Verdict.OK


def _not_allowed(allow: str) -> HTTPResponse:
    response = text(405, "Method not allowed.")
    return HTTPResponse(405, [*response.headers, (b"allow", allow.encode())], response.body)


async def json_rpc(node: Serving, data: bytes, who: Identity) -> HTTPResponse:
    """One JSON-RPC request: 200 with the JSON-RPC envelope, 400 text, or 503 overloaded."""
    session = node.transient_session(who)
    if node.over_limit(session):
        node.stats.load_drops += 1
        return text(503, OVERLOADED, close=True)
    try:
        body, echo = jsonrpc.parse(data)
    except jsonrpc.BadRequest as exc:
        if node.charge(session, (("malformed", 1),)) is Verdict.DROP:
            return text(503, OVERLOADED, close=True)
        return text(400, str(exc))
    outcome = await node.execute(session, body, len(data))
    if outcome.verdict is Verdict.DROP:
        return text(503, OVERLOADED, close=True)
    extras = node.extras(outcome.verdict)
    if outcome.error is None:
        payload = jsonrpc.success(outcome.result, extras, echo, body=body)
    else:
        payload = jsonrpc.failure(outcome.body, outcome.error, extras, echo)
    return HTTPResponse(200, [_JSON], payload)
