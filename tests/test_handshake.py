"""The opening handshake as plain functions, and the live hub answering bad ones."""

from __future__ import annotations

import h11
import trio

from hub import Hub
from hub.wire import handshake

from .conftest import websocket

GOOD = [
    (b"host", b"example"),
    (b"upgrade", b"WebSocket"),
    (b"connection", b"keep-alive, Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
    (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits, x-other"),
]


def request(headers: list[tuple[bytes, bytes]], method: bytes = b"GET") -> h11.Request:
    return h11.Request(method=method, target="/", headers=headers)


def without(name: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in GOOD if k != name]


def test_the_rfc_example_key() -> None:
    # RFC 6455 §1.3: this key is answered with this accept value.
    assert handshake.accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_good_upgrade_and_its_offers() -> None:
    upgrade = handshake.check(request(GOOD))
    assert isinstance(upgrade, handshake.Upgrade)
    assert upgrade.offers == ("permessage-deflate; client_max_window_bits", "x-other")
    response = handshake.accept(upgrade, "permessage-deflate; server_no_context_takeover")
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    assert b"sec-websocket-extensions: permessage-deflate; server_no_context_takeover" in response
    assert response.endswith(b"\r\n\r\n")
    assert b"extensions" not in handshake.accept(upgrade)


def test_bad_upgrades_say_why() -> None:
    cases = {
        "upgrade": without(b"upgrade"),
        "connection": without(b"connection"),
        "key": without(b"sec-websocket-key"),
        "short key": [*without(b"sec-websocket-key"), (b"sec-websocket-key", b"c2hvcnQ=")],
        "version": without(b"sec-websocket-version"),
    }
    statuses = {name: handshake.check(request(headers)) for name, headers in cases.items()}
    for name, refusal in statuses.items():
        assert isinstance(refusal, handshake.Refusal), name
    assert statuses["version"].status == 426  # type: ignore[union-attr]
    assert statuses["version"].headers == ((b"sec-websocket-version", b"13"),)  # type: ignore[union-attr]
    assert {name: r.status for name, r in statuses.items() if name != "version"} == dict.fromkeys(  # type: ignore[union-attr]
        ("upgrade", "connection", "key", "short key"), 400
    )
    post = handshake.check(request(GOOD, method=b"POST"))
    assert isinstance(post, handshake.Refusal)
    assert post.status == 400


def test_a_refusal_is_plain_http_that_closes() -> None:
    data = handshake.refuse(handshake.Refusal(426, "Only version 13.", ((b"x-a", b"1"),)))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 426 Upgrade Required"
    assert b"connection: close" in head
    assert b"x-a: 1" in head
    assert body == b"Only version 13.\n"
    assert b"content-length: %d" % len(body) in head


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
