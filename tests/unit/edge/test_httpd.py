"""The first request's head, read with h11 from a stream (trio's in-memory streams, no
socket): split across reads, followed by a WebSocket's first bytes, or bad and answered."""

from __future__ import annotations

import trio
import trio.testing

from hub.edge.httpd import read_head

UPGRADE = (
    b"GET /path HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_a_head_split_across_reads_is_read_whole_with_what_follows() -> None:
    left, right = trio.testing.memory_stream_pair()
    first, rest = UPGRADE[:10], UPGRADE[10:] + b"\x81\x85frame"
    async with trio.open_nursery() as nursery:

        async def send_slowly() -> None:
            for i in range(0, len(rest), 7):
                await left.send_all(rest[i : i + 7])
                await trio.testing.wait_all_tasks_blocked()

        nursery.start_soon(send_slowly)
        head = await read_head(right, first)
    assert head is not None
    assert head.request.target == b"/path"
    assert head.websocket
    assert head.raw.startswith(UPGRADE)
    assert head.trailing == head.raw[len(UPGRADE) :]
    assert (UPGRADE + head.trailing).startswith(head.raw)


async def test_a_plain_request_is_no_upgrade() -> None:
    _, right = trio.testing.memory_stream_pair()
    head = await read_head(right, b"GET /health HTTP/1.1\r\nHost: hub\r\n\r\n")
    assert head is not None
    assert not head.websocket
    assert head.trailing == b""


async def test_bad_http_is_answered_400_and_read_no_further() -> None:
    left, right = trio.testing.memory_stream_pair()
    assert await read_head(right, b"NOT HTTP AT ALL\r\n\r\n") is None
    answer = await left.receive_some(65536)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"connection: close\r\n" in answer.lower()


async def test_a_peer_that_leaves_before_a_request_is_none() -> None:
    left, right = trio.testing.memory_stream_pair()
    await left.send_all(b"GET / HT")
    await left.aclose()
    assert await read_head(right) is None
