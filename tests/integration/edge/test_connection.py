"""The writer (``hub.edge.connection``): many frames per sendmsg, partial writes resumed
mid-frame, order kept."""

from __future__ import annotations

import socket

import pytest
import trio

from hub.edge.connection import send_frames, write_now
from tests.helpers.sockets import through_a_small_buffer


async def test_frames_arrive_whole_and_in_order_through_a_small_buffer() -> None:
    frames = [bytes([i % 251]) * (1 + (i * 7919) % 5000) for i in range(3000)]
    assert await through_a_small_buffer(frames) == b"".join(frames)


async def test_a_gone_peer_raises() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    right.close()
    with pytest.raises((BrokenPipeError, ConnectionResetError)), trio.fail_after(5):
        await send_frames(left, [b"x" * 100_000] * 10)
    left.close()


async def test_one_big_buffer_through_a_small_buffer_resumes_where_it_stopped() -> None:
    data = bytes(range(256)) * 4000  # one joined batch, far over the send buffer
    assert await through_a_small_buffer([data]) == data


def test_write_now_returns_exactly_what_the_socket_did_not_take() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    frames = [b"a" * 3000, b"b" * 50_000, b"c" * 10]
    rest = write_now(left, frames)
    assert rest, "a 4 KiB send buffer cannot take 53 kB"
    right.setblocking(False)
    taken = b""
    while True:
        try:
            taken += right.recv(1 << 20)
        except BlockingIOError:
            break
    assert taken + b"".join(rest) == b"".join(frames)
    assert rest[-1] == b"c" * 10  # whole frames after the cut stay whole
    (single,) = write_now(left, [b"z" * 200_000]) or [b""]
    assert single == (b"z" * 200_000)[-len(single) :]
    left.close()
    right.close()
