"""Clients as a hub behind a proxy sees them: from other loopback addresses (127.0.0.2,
127.0.0.3, ...), with the admin's view of who is connected."""

from __future__ import annotations

from typing import Any

import trio

from hub import Hub
from tests.helpers.wsraw import RawClient

TOKEN = "edge-test-token"
AUTH = [(b"authorization", f"Bearer {TOKEN}".encode())]
"""The admin token the edge tests configure, and the header that presents it."""


async def raw(port: int, source: str, **kwargs: Any) -> RawClient:
    return await RawClient.connect("127.0.0.1", port, local_address=source, **kwargs)


async def ask(client: RawClient, request: dict[str, Any]) -> Any:
    await client.send_json(request)
    return await client.next_message()


async def remotes(node: Hub) -> dict[str, bool]:
    """``connections`` as an admin sees it: each client's address and admin role."""
    admin = await RawClient.connect("127.0.0.1", node.port or 0, extra_headers=AUTH)
    try:
        reply = await ask(admin, {"command": "connections"})
    finally:
        await admin.aclose()
    return {
        entry["remote"]: entry["admin"]
        for entry in reply["result"]["connections"]
        if entry["id"] != max(e["id"] for e in reply["result"]["connections"])
    }


async def refused_status(port: int, source: str, preamble: bytes = b"") -> int:
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    try:
        await stream.send_all(
            preamble
            + b"GET / HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        with trio.fail_after(5):
            head = await stream.receive_some(4096)
    finally:
        await stream.aclose()
    return int(head.split(b" ", 2)[1])


async def closed_at_once(port: int, data: bytes, source: str = "127.0.0.1") -> bool:
    """Whether the hub drops a connection that sends ``data``, answering nothing."""
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    try:
        await stream.send_all(data)
        with trio.fail_after(5):
            return await stream.receive_some(4096) == b""
    except trio.BrokenResourceError:
        return True
    finally:
        await stream.aclose()
