"""A connection's close (``hub.edge.connection``), end to end: the lifecycle's states as a
real client sees them."""

from __future__ import annotations

import trio
import trio.testing

from hub import Hub
from hub.edge.connection import Connection
from hub.wire.close import CloseCode
from hub.wire.lifecycle import State
from tests.helpers.frames import client_frame
from tests.helpers.hubs import eventually, make_config, start_hub
from tests.helpers.wsraw import RawClient

PING, CLOSE = 0x9, 0x8


async def connected(nursery: trio.Nursery) -> tuple[Hub, RawClient, Connection]:
    hub = await start_hub(nursery, make_config(server={"close_timeout": 5}))
    assert hub.port is not None
    client = await RawClient.connect("127.0.0.1", hub.port)
    await eventually(lambda: len(hub.connections) == 1)
    (conn,) = hub.connections
    assert conn.state is State.OPEN
    return hub, client, conn


async def until_eof(client: RawClient) -> bytes:
    """The raw bytes the hub sends until it closes the TCP stream."""
    out = b""
    with trio.fail_after(10):
        while data := await client.stream.receive_some(65536):
            out += data
    return out


async def test_nothing_follows_the_close_frame_and_the_first_close_wins(
    nursery: trio.Nursery,
) -> None:
    _, client, conn = await connected(nursery)
    conn.close(CloseCode.GOING_AWAY, "bye")
    close = await client.next_close()
    assert (close.code, close.reason) == (1001, "bye")
    assert conn.state is State.CLOSE_SENT
    conn.close(CloseCode.POLICY, "again")  # a second close: no second frame
    await client.stream.send_all(client_frame(PING, b"late"))
    await trio.testing.wait_all_tasks_blocked()  # the hub has read it and done its part
    await client.stream.send_all(client_frame(CLOSE, (1000).to_bytes(2, "big")))
    assert await until_eof(client) == b""  # no pong, no second close frame
    await eventually(lambda: conn.state is State.ENDED)
    assert conn.close_code == CloseCode.GOING_AWAY
    await client.aclose()


async def test_a_client_close_is_answered_with_its_code_then_the_connection_ends(
    nursery: trio.Nursery,
) -> None:
    _, client, conn = await connected(nursery)
    await client.stream.send_all(client_frame(CLOSE, (4001).to_bytes(2, "big") + b"done"))
    rest = await until_eof(client)
    assert rest == b"\x88\x06" + (4001).to_bytes(2, "big") + b"done"
    await eventually(lambda: conn.state is State.ENDED)
    assert conn.close_code == 4001
    await client.aclose()
