"""A small HTTP/1.1 client (h11 over a trio TCP stream) for tests: keep-alive, any source IP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import h11
import msgspec
import trio


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class HTTPClient:
    def __init__(self, stream: trio.SocketStream, host: str) -> None:
        self.stream = stream
        self.host = host
        self.conn = h11.Connection(h11.CLIENT)

    async def request(
        self,
        method: str,
        target: str = "/",
        body: bytes | Any = b"",
        headers: Sequence[tuple[str, str]] = (),
        timeout: float = 5,  # noqa: ASYNC109
    ) -> Response:
        if not isinstance(body, bytes):  # a JSON client says so, as admin needs
            body = msgspec.json.encode(body)
            if not any(name.lower() == "content-type" for name, _ in headers):
                headers = [*headers, ("content-type", "application/json")]
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        all_headers = [("host", self.host), *headers]
        if body or method == "POST":
            all_headers.append(("content-length", str(len(body))))
        data = self.conn.send(h11.Request(method=method, target=target, headers=all_headers))
        if body:
            data += self.conn.send(h11.Data(data=body))
        data += self.conn.send(h11.EndOfMessage())
        with trio.fail_after(timeout):
            await self.stream.send_all(data)
            return await self._response()

    async def _response(self) -> Response:
        response: h11.Response | None = None
        parts: list[bytes] = []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(bytes(await self.stream.receive_some(65536)))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                headers = {k.decode(): v.decode() for k, v in response.headers}
                return Response(response.status_code, headers, b"".join(parts))
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("the server closed the connection")

    async def closed_by_server(self, timeout: float = 5) -> bool:  # noqa: ASYNC109
        """Whether the server closes the connection (EOF) within ``timeout``."""
        with trio.move_on_after(timeout):
            return await self.stream.receive_some(1) == b""
        return False


@asynccontextmanager
async def http_client(
    port: int, source_ip: str = "127.0.0.1", host: str = "127.0.0.1", host_header: str = ""
) -> AsyncIterator[HTTPClient]:
    stream = await trio.open_tcp_stream(host, port, local_address=source_ip)
    try:
        yield HTTPClient(stream, host_header or f"{host}:{port}")
    finally:
        await stream.aclose()


async def fetch(
    port: int,
    method: str,
    target: str = "/",
    body: bytes | Any = b"",
    headers: Sequence[tuple[str, str]] = (),
    source_ip: str = "127.0.0.1",
) -> Response:
    """One request on a connection of its own."""
    async with http_client(port, source_ip) as client:
        return await client.request(method, target, body, headers)


async def rpc(port: int, method: str, params: dict[str, Any] | None = None, **kw: Any) -> Response:
    """A JSON-RPC request: ``{"method": method, "params": [params]}``."""
    envelope: dict[str, Any] = {"method": method}
    if params is not None:
        envelope["params"] = [params]
    return await fetch(port, "POST", "/", envelope, **kw)


async def exchange(port: int, data: bytes, timeout: float = 5) -> bytes:  # noqa: ASYNC109
    """Send raw bytes and read everything until the server closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(data)
        received = b""
        with trio.fail_after(timeout):
            while chunk := await stream.receive_some(65536):
                received += chunk
        return received
    finally:
        await stream.aclose()
