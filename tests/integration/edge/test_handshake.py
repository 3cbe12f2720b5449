"""The live hub answering bad opening handshakes, and frames sent right behind a good one."""

from __future__ import annotations

import trio

from hub import Hub
from tests.helpers.hubs import websocket


async def test_the_hub_answers_a_wrong_version_426_and_keeps_serving(hub: Hub) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", hub.port or 0)
    async with stream:
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        )
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(4096):
                data += chunk
    assert data.startswith(b"HTTP/1.1 426 ")
    assert b"sec-websocket-version: 13" in data
    async with websocket(hub.url) as ws:
        await ws.send_message('{"command": "ping", "id": 1}')
        with trio.fail_after(5):
            assert '"status":"success"' in await ws.get_message()


async def test_frames_sent_right_behind_the_upgrade_are_read(hub: Hub) -> None:
    from wsproto.frame_protocol import FrameProtocol, Opcode

    client = FrameProtocol(client=True, extensions=[])
    frame = client.send_data('{"command": "ping", "id": 7}', fin=True)
    stream = await trio.open_tcp_stream("127.0.0.1", hub.port or 0)
    async with stream:
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            + frame
        )
        data = b""
        with trio.fail_after(5):
            while b'"id":7' not in data:
                data += await stream.receive_some(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    client.receive_bytes(rest)
    (reply,) = list(client.received_frames())
    assert reply.opcode is Opcode.TEXT
    assert '"id":7' in reply.payload
