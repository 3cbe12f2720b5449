"""permessage-deflate end to end, with a hand-written client that reads every frame bit.

The client speaks the upgrade and the frames itself (no WebSocket library) so the test
sees exactly what the hub put on the wire: the negotiated extension header, RSV1 on
each frame, and payloads that inflate with a fresh raw-deflate context each time."""

from __future__ import annotations

import base64
import os
import struct
import zlib
from typing import Any

import msgspec
import trio

from hub import Hub
from tests.helpers.frames import client_frame, raw_deflate
from tests.helpers.hubs import make_config, start_hub
from tests.helpers.samples import ledger_closed, xrp_payment

OFFER = b"permessage-deflate; client_max_window_bits"


class DeflateClient:
    """A raw WebSocket client that offered permessage-deflate."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.response = b""

    @classmethod
    async def connect(cls, port: int, offer: bytes | None = OFFER) -> DeflateClient:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = cls(stream)
        key = base64.b64encode(os.urandom(16))
        lines = [
            b"GET / HTTP/1.1",
            b"Host: 127.0.0.1",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Key: " + key,
            b"Sec-WebSocket-Version: 13",
        ]
        if offer:
            lines.append(b"Sec-WebSocket-Extensions: " + offer)
        await stream.send_all(b"\r\n".join([*lines, b"", b""]))
        client.response = await client._until(b"\r\n\r\n")
        assert client.response.startswith(b"HTTP/1.1 101 "), client.response
        return client

    def extension(self) -> str | None:
        for line in self.response.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "sec-websocket-extensions":
                return value.strip()
        return None

    async def _fill(self) -> None:
        with trio.fail_after(5):
            data = await self.stream.receive_some(65536)
        assert data, "the hub closed the connection"
        self.buffer += data

    async def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            await self._fill()
        head, _, self.buffer = self.buffer.partition(marker)
        return head + marker

    async def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._fill()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    async def frame(self) -> tuple[int, bool, bytes]:
        """(opcode, RSV1, payload) of the next frame."""
        first, second = await self._exactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self._exactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self._exactly(8))
        return first & 0x0F, bool(first & 0x40), await self._exactly(size)

    async def message(self) -> tuple[bool, Any]:
        """(compressed, message) of the next text frame; each inflates on its own."""
        opcode, rsv1, payload = await self.frame()
        assert opcode == 1
        if rsv1:
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        return rsv1, msgspec.json.decode(payload)

    async def send(self, payload: bytes, *, compress: bool = False) -> None:
        data = raw_deflate(payload) if compress else payload
        await self.stream.send_all(client_frame(1, data, rsv1=compress))

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


async def subscribed(node: Hub, offer: bytes | None = OFFER) -> DeflateClient:
    client = await DeflateClient.connect(node.port or 0, offer)
    await client.send(b'{"command": "subscribe", "streams": ["ledger", "transactions"]}')
    _, reply = await client.message()
    assert reply["status"] == "success"
    return client


async def test_stream_messages_are_compressed_without_context_and_shared(
    nursery: trio.Nursery,
) -> None:
    node = await start_hub(nursery)
    first, second = await subscribed(node), await subscribed(node)
    try:
        extension = first.extension()
        assert extension is not None
        assert "permessage-deflate" in extension
        assert "server_no_context_takeover" in extension
        assert "client_no_context_takeover" in extension
        # A ledgerClosed without validated_ledgers (as rippled sends it below SYNCING)
        # stays under min_size, network_id included.
        small = {k: v for k, v in ledger_closed(7).items() if k != "validated_ledgers"}
        published = [small, *(xrp_payment(7, i) for i in range(3))]
        for message in published:
            await node.publish(message)
        frames = {}
        for client in (first, second):
            got = []
            for _ in published:
                _, rsv1, payload = await client.frame()
                got.append((rsv1, payload))
            frames[client] = got
        # Transactions (large) go compressed; every payload inflates alone (no context).
        assert [rsv1 for rsv1, _ in frames[first]] == [False, True, True, True]
        assert frames[first] == frames[second]  # the very same bytes for both
        inflated = [
            zlib.decompressobj(-15).decompress(p + b"\x00\x00\xff\xff") if rsv1 else p
            for rsv1, p in frames[first]
        ]
        kinds = [msgspec.json.decode(p)["type"] for p in inflated]
        assert kinds == ["ledgerClosed", "transaction", "transaction", "transaction"]
    finally:
        await first.aclose()
        await second.aclose()


async def test_compressed_requests_are_inflated(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    client = await DeflateClient.connect(node.port or 0)
    try:
        await client.send(b'{"command": "ping", "id": "zipped"}', compress=True)
        _, reply = await client.message()
        assert reply["id"] == "zipped"
        assert reply["status"] == "success"
    finally:
        await client.aclose()


async def test_a_message_inflating_past_the_limit_closes_1009(nursery: trio.Nursery) -> None:
    config = make_config(server={"max_message_size": 10_000}, admin={"ips": []})
    node = await start_hub(nursery, config)
    bomb = b'{"command": "ping", "pad": "' + b"x" * 1_000_000 + b'"}'
    victim, bystander = await DeflateClient.connect(node.port or 0), await subscribed(node)
    try:
        await victim.send(bomb, compress=True)
        opcode, _, payload = await victim.frame()
        assert opcode == 8
        assert struct.unpack("!H", payload[:2])[0] == 1009
        await node.publish(ledger_closed(9))
        _, message = await bystander.message()
        assert message["ledger_index"] == 9
        assert node.node.load.balance("127.0.0.1") > 0  # charged as malformed
    finally:
        await victim.aclose()
        await bystander.aclose()


async def test_compression_off_or_unoffered_means_plain_frames(nursery: trio.Nursery) -> None:
    off = await start_hub(nursery, make_config(server={"compression": False}))
    on = await start_hub(nursery)
    for node, offer in ((off, OFFER), (on, None)):
        client = await subscribed(node, offer)
        try:
            assert client.extension() is None
            await node.publish(ledger_closed(3))
            await node.publish(xrp_payment(3, 0))
            assert [(await client.frame())[1] for _ in range(2)] == [False, False]
        finally:
            await client.aclose()
