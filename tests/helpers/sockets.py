"""Socket-level helpers: what arrives through a small send buffer, and a subscriber that
never reads."""

from __future__ import annotations

import socket

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from hub.edge.writer import send_frames
from tests.helpers.wsraw import RawClient


async def read_exactly(sock: trio.socket.SocketType, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = await sock.recv(65536)
        assert chunk, "peer closed early"
        out += chunk
    return bytes(out)


async def through_a_small_buffer(frames: list[bytes]) -> bytes:
    """What arrives when ``frames`` go through a 4 KiB send buffer, read as they come."""
    left, right = socket.socketpair()
    left.setblocking(False)
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    reader = trio.socket.from_stdlib_socket(right)
    got: list[bytes] = []

    async def drain() -> None:
        got.append(await read_exactly(reader, sum(map(len, frames))))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await send_frames(left, frames)
    left.close()
    reader.close()
    return got[0]


async def silent_subscriber(
    port: int, streams: tuple[str, ...] = ("transactions",)
) -> trio.SocketStream:
    """A client of ``127.0.0.1:port`` that subscribes to ``streams`` and then never reads.

    Its receive buffer is set to 4 KiB before it connects, so that the TCP window it
    offers stays small and the hub's writes back up soon. The caller reads the stream
    (the subscribe's reply first) or closes it.
    """
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    client = RawClient(stream, WSConnection(ConnectionType.CLIENT))
    await client.send(Request(host=f"127.0.0.1:{port}", target="/"))
    event = await client.next_event()
    assert isinstance(event, AcceptConnection), f"handshake refused: {event!r}"
    await client.send_json({"command": "subscribe", "streams": list(streams)})
    return stream
