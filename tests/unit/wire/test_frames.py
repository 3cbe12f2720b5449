"""Prebuilt server frames as a real client parses them."""

from __future__ import annotations

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from hub.wire.frames import text_frame


def _open_client() -> WSConnection:
    """A wsproto client whose handshake a wsproto server has accepted (no extensions)."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="hub", target="/")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(client.events()), AcceptConnection)
    return client


def _payload(size: int) -> bytes:
    return bytes(ord("a") + i % 26 for i in range(size))


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_parses_as_one_whole_message(size: int) -> None:
    payload = _payload(size)
    client = _open_client()
    client.receive_data(text_frame(payload))
    events = list(client.events())
    text = "".join(e.data for e in events if isinstance(e, TextMessage))
    assert all(isinstance(e, TextMessage) for e in events)
    assert events[-1].message_finished
    assert text.encode() == payload


@pytest.mark.parametrize(
    ("size", "header_len"),
    [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (70000, 10)],
)
def test_text_frame_header_uses_the_shortest_length_form(size: int, header_len: int) -> None:
    frame = text_frame(_payload(size))
    assert len(frame) == header_len + size
    assert frame[0] == 0x81  # FIN + text opcode
    assert frame[1] & 0x80 == 0  # server frames are never masked
    if header_len == 2:
        assert frame[1] == size
    elif header_len == 4:
        assert frame[1] == 126
        assert int.from_bytes(frame[2:4], "big") == size
    else:
        assert frame[1] == 127
        assert int.from_bytes(frame[2:10], "big") == size


def test_several_frames_in_one_buffer_parse_in_order() -> None:
    client = _open_client()
    payloads = [b'{"n":1}', _payload(300), _payload(70000), b"{}"]
    client.receive_data(b"".join(text_frame(p) for p in payloads))
    messages: list[str] = []
    current = ""
    for event in client.events():
        assert isinstance(event, TextMessage)
        current += event.data
        if event.message_finished:
            messages.append(current)
            current = ""
    assert [m.encode() for m in messages] == payloads


def test_text_frame_is_utf8_transparent() -> None:
    payload = '{"s":"äöü €"}'.encode()
    client = _open_client()
    client.receive_data(text_frame(payload))
    (event,) = client.events()
    assert isinstance(event, TextMessage)
    assert event.data == '{"s":"äöü €"}'
