"""A stream whose first bytes were already read, handed back before anything new
(over trio's in-memory streams, no socket)."""

from __future__ import annotations

import trio
import trio.testing

from hub.edge.prefixed import Prefixed


async def test_the_prefix_comes_first_in_pieces_then_the_stream() -> None:
    left, right = trio.testing.memory_stream_pair()
    stream = Prefixed(right, b"GET / HTTP/1.1\r\n")
    await left.send_all(b"after")
    assert await stream.receive_some(4) == b"GET "
    assert await stream.receive_some(None) == b"/ HTTP/1.1\r\n"
    assert await stream.receive_some(100) == b"after"


async def test_sending_and_closing_reach_the_stream_underneath() -> None:
    left, right = trio.testing.memory_stream_pair()
    stream = Prefixed(right, b"")
    await stream.wait_send_all_might_not_block()
    await stream.send_all(b"reply")
    assert await left.receive_some(100) == b"reply"
    await stream.aclose()
    assert await left.receive_some(100) == b""
