"""The writer: many frames per sendmsg, partial writes resumed mid-frame, order kept."""

from __future__ import annotations

import socket

import pytest
import trio

from hub.connection import send_frames


async def read_exactly(sock: trio.socket.SocketType, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = await sock.recv(65536)
        assert chunk, "peer closed early"
        out += chunk
    return bytes(out)


async def test_frames_arrive_whole_and_in_order_through_a_small_buffer() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    frames = [bytes([i % 251]) * (1 + (i * 7919) % 5000) for i in range(3000)]
    expected = b"".join(frames)
    reader = trio.socket.from_stdlib_socket(right)
    got: list[bytes] = []

    async def drain() -> None:
        got.append(await read_exactly(reader, len(expected)))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await send_frames(left, frames)
    assert got == [expected]
    left.close()
    reader.close()


async def test_a_gone_peer_raises() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    right.close()
    with pytest.raises((BrokenPipeError, ConnectionResetError)), trio.fail_after(5):
        await send_frames(left, [b"x" * 100_000] * 10)
    left.close()
