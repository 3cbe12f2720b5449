"""Plain HTTP on the hub's port: h11 on a trio stream, keep-alive, bounded bodies.

The hub serves HTTP and WebSocket on one port, as Clio does. :func:`read_head` reads
the first request's head with h11; the server answers an upgrade from that head
(:mod:`hub.wire.handshake`), and hands anything else to :func:`serve`, which answers requests one
after another on the connection through an ``answer`` function
(:func:`hub.edge.routes.handle`, which never sees the socket).

Bounds: a request body over ``[server] max_message_size`` answers 413 and closes; a
request must arrive whole, and the next one start, within ``[server]
handshake_timeout`` (the idle timeout of a kept-alive connection), else the
connection is closed. Malformed HTTP answers 400 (h11's status hint) and closes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

import h11
import trio

from hub.config import ServerConfig
from hub.edge.routes import HTTPRequest, HTTPResponse, text

Answer = Callable[[HTTPRequest], Awaitable[HTTPResponse]]

log = logging.getLogger(__name__)

_READ_SIZE = 65536
_SERVER = b"hub"


@dataclass(slots=True)
class Head:
    """The first request's head, the h11 connection that parsed it and the raw bytes."""

    conn: h11.Connection
    request: h11.Request
    raw: bytes

    @property
    def trailing(self) -> bytes:
        """What the client sent after the head (a WebSocket's first frames, say)."""
        return bytes(self.conn.trailing_data[0])

    @property
    def websocket(self) -> bool:
        """Whether the request asks for a WebSocket upgrade (:mod:`hub.wire.handshake` judges
        the rest)."""
        return any(
            name == b"upgrade" and b"websocket" in value.lower()
            for name, value in self.request.headers
        )


async def read_head(stream: trio.abc.Stream, first: bytes = b"") -> Head | None:
    """The first request's head (``first``: its bytes already read); None when the peer
    left or sent bad HTTP (answered 400)."""
    conn = h11.Connection(h11.SERVER)
    raw = first
    if first:
        conn.receive_data(first)
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            await _fail(stream, conn, exc)
            return None
        if isinstance(event, h11.Request):
            return Head(conn, event, raw)
        if event is h11.NEED_DATA:
            data = bytes(await stream.receive_some(_READ_SIZE))
            raw += data
            conn.receive_data(data)
            continue
        return None  # ConnectionClosed before a request


async def serve(
    stream: trio.abc.Stream, remote: str, head: Head, answer: Answer, config: ServerConfig
) -> None:
    """Answer requests on one connection until either side closes it or it idles out."""
    conn = head.conn
    request: h11.Request | None = head.request
    try:
        while request is not None:
            body: bytes | None = None
            with trio.move_on_after(config.handshake_timeout):
                body = await _read_body(stream, conn, request, config.max_message_size)
            if body is None:
                return  # timed out, or answered 413 / 400
            response = await _answer(answer, request, body, remote)
            await _respond(stream, conn, request, response)
            if response.close or conn.our_state is not h11.DONE:
                return
            if conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
            request = None
            with trio.move_on_after(config.handshake_timeout):
                request = await _next_request(stream, conn)
    except h11.RemoteProtocolError as exc:
        await _fail(stream, conn, exc)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


async def _answer(answer: Answer, request: h11.Request, body: bytes, remote: str) -> HTTPResponse:
    http_request = HTTPRequest(
        method=request.method.decode("ascii", "replace"),
        target=request.target.decode("ascii", "replace"),
        headers=list(request.headers),
        body=body,
        remote=remote,
    )
    try:
        return await answer(http_request)
    except Exception:  # a bug must cost one response, never the hub
        log.exception("HTTP %s %s failed", http_request.method, http_request.target)
        return text(500, "Internal error.", close=True)


async def _read_body(
    stream: trio.abc.Stream, conn: h11.Connection, request: h11.Request, limit: int
) -> bytes | None:
    length = _content_length(request)
    if length is not None and length > limit:
        await _send_error(stream, conn, 413, f"Request body exceeds {limit} bytes.")
        return None
    if conn.they_are_waiting_for_100_continue:
        await stream.send_all(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
    parts: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(_READ_SIZE)))
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                await _send_error(stream, conn, 413, f"Request body exceeds {limit} bytes.")
                return None
            parts.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(parts)
        else:
            return None  # the client went away mid-body


async def _next_request(stream: trio.abc.Stream, conn: h11.Connection) -> h11.Request | None:
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Request):
            return event
        if event is not h11.NEED_DATA:
            return None
        data = bytes(await stream.receive_some(_READ_SIZE))
        conn.receive_data(data)


async def _respond(
    stream: trio.abc.Stream,
    conn: h11.Connection,
    request: h11.Request,
    response: HTTPResponse,
) -> None:
    headers = [
        (b"server", _SERVER),
        *response.headers,
        (b"content-length", str(len(response.body)).encode()),
    ]
    if response.close:
        headers.append((b"connection", b"close"))
    data = conn.send(
        h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status))
    )
    if request.method != b"HEAD" and response.body:
        data += conn.send(h11.Data(data=response.body))
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)


async def _send_error(stream: trio.abc.Stream, conn: h11.Connection, status: int, why: str) -> None:
    """A text error response that ends the connection, if a response can still be sent."""
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    response = text(status, why)
    headers = [
        (b"server", _SERVER),
        *response.headers,
        (b"content-length", str(len(response.body)).encode()),
        (b"connection", b"close"),
    ]
    try:
        data = conn.send(h11.Response(status_code=status, headers=headers, reason=_reason(status)))
        data += conn.send(h11.Data(data=response.body))
        data += conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError:
        return
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def _fail(
    stream: trio.abc.Stream, conn: h11.Connection, exc: h11.RemoteProtocolError
) -> None:
    log.debug("bad HTTP request: %s", exc)
    await _send_error(stream, conn, exc.error_status_hint, f"Bad request: {exc}")


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
