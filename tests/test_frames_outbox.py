"""Prebuilt server frames as a real client parses them, and the bounded per-client outbox."""

from __future__ import annotations

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from hub.core.outbox import Outbox
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


# --- Outbox ---------------------------------------------------------------------------


def test_outbox_starts_empty() -> None:
    box = Outbox(max_bytes=100, max_messages=10)
    assert len(box) == 0
    assert not box
    assert box.nbytes == 0
    assert b"".join(box.take_frames()) == b""
    assert not box.overflowed


def test_take_returns_everything_in_order_and_empties() -> None:
    box = Outbox(max_bytes=100, max_messages=10)
    assert box.push(b"one")
    assert box.push(b"two")
    assert box.push(b"three")
    assert len(box) == 3
    assert box.nbytes == 11
    assert b"".join(box.take_frames()) == b"onetwothree"
    assert len(box) == 0
    assert box.nbytes == 0
    assert b"".join(box.take_frames()) == b""


def test_take_single_frame() -> None:
    box = Outbox(max_bytes=100, max_messages=10)
    box.push(b"only")
    assert b"".join(box.take_frames()) == b"only"


def test_take_frees_room() -> None:
    box = Outbox(max_bytes=10, max_messages=2)
    assert box.push(b"12345")
    assert box.push(b"12345")
    b"".join(box.take_frames())
    assert box.push(b"12345")
    assert box.push(b"12345")
    assert not box.overflowed


def test_byte_bound_is_inclusive() -> None:
    box = Outbox(max_bytes=10, max_messages=100)
    assert box.push(b"x" * 10)
    assert box.nbytes == 10
    assert not box.overflowed


def test_passing_the_byte_bound_overflows_and_frees_the_queue() -> None:
    box = Outbox(max_bytes=10, max_messages=100)
    assert box.push(b"x" * 6)
    assert not box.push(b"y" * 5)
    assert box.overflowed
    assert len(box) == 0
    assert box.nbytes == 0
    assert b"".join(box.take_frames()) == b""


def test_message_bound() -> None:
    box = Outbox(max_bytes=1000, max_messages=3)
    assert all(box.push(b"m") for _ in range(3))
    assert not box.push(b"m")
    assert box.overflowed
    assert len(box) == 0


def test_overflow_is_final() -> None:
    box = Outbox(max_bytes=10, max_messages=100)
    box.push(b"x" * 11)
    assert box.overflowed
    assert not box.push(b"a")
    assert len(box) == 0


def test_control_frames_are_never_refused_and_keep_order() -> None:
    box = Outbox(max_bytes=4, max_messages=1)
    assert box.push(b"data")
    box.push_control(b"PONG")
    box.push_control(b"CLOSE")
    assert not box.overflowed
    assert len(box) == 3
    assert box.nbytes == 13
    assert b"".join(box.take_frames()) == b"dataPONGCLOSE"


def test_control_frame_after_overflow_is_still_queued() -> None:
    """A slow client is cut with a close frame, which must get through the full queue."""
    box = Outbox(max_bytes=4, max_messages=10)
    box.push(b"12345")
    assert box.overflowed
    box.push_control(b"CLOSE")
    assert b"".join(box.take_frames()) == b"CLOSE"
