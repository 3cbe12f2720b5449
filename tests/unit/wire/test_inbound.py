"""The hub's reader of client frames, without sockets: every rule and its close code."""

from __future__ import annotations

import os
import struct

from hypothesis import given
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol

from hub.wire.inbound import Binary, Closed, Failed, Parser, PingIn, Text, unmask


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0,
          masked: bool = True, key: bytes = b"\x11\x22\x33\x44") -> bytes:  # fmt: skip
    """A client frame built by hand, masked with ``key``."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((first, bit | n))
    elif n < 65536:
        head = struct.pack("!BBH", first, bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, bit | 127, n)
    if not masked:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def codes(data: bytes, max_size: int = 1000) -> list[object]:
    return Parser(max_size).feed(data)


def test_unmask_matches_the_byte_by_byte_rule() -> None:
    for n in (0, 1, 3, 4, 5, 125, 4096, 70_001):
        data, key = os.urandom(n), os.urandom(4)
        assert unmask(data, key) == bytes(b ^ key[i % 4] for i, b in enumerate(data))


def test_messages_pings_and_fragments_in_order() -> None:
    data = (
        frame(0x1, b'{"a":', fin=False)
        + frame(0x9, b"p")
        + frame(0x0, b"1}")
        + frame(0xA, b"ignored pong")
        + frame(0x2, b"\x00\x01")
        + frame(0x1, "é".encode())
    )
    assert codes(data) == [PingIn(b"p"), Text(b'{"a":1}'), Binary(b"\x00\x01"),
                           Text("é".encode())]  # fmt: skip


def test_every_length_encoding_and_any_split_of_the_bytes() -> None:
    messages = [b"x" * 125, b"y" * 126, b"z" * 70_000]
    data = b"".join(frame(0x1, m) for m in messages)
    for step in (1, 7, 4096, len(data)):
        reader = Parser(100_000)
        out = []
        for i in range(0, len(data), step):
            out += reader.feed(data[i : i + step])
        assert out == [Text(m) for m in messages]


def test_rules_and_their_codes() -> None:
    cases = {
        "unmasked": (frame(0x1, b"{}", masked=False), 1002),
        "reserved opcode": (frame(0x3, b""), 1002),
        "reserved control opcode": (frame(0xB, b""), 1002),
        "rsv2": (frame(0x1, b"{}", rsv=0x20), 1002),
        "rsv1 without deflate": (frame(0x1, b"{}", rsv=0x40), 1002),
        "long ping": (frame(0x9, b"x" * 126), 1002),
        "fragmented ping": (frame(0x9, b"x", fin=False), 1002),
        "lone continuation": (frame(0x0, b"x"), 1002),
        "message inside a message": (frame(0x1, b"a", fin=False) + frame(0x1, b"b"), 1002),
        "bad utf-8": (frame(0x1, b"\xff\xfe{}"), 1007),
        "utf-8 cut across fragments is fine only when whole": (
            frame(0x1, b"\xc3", fin=False) + frame(0x0, b"x"),
            1007,
        ),
        "non-minimal length": (bytes((0x81, 0x80 | 126)) + struct.pack("!H", 5) + b"\0" * 9, 1002),
        "one-byte close": (frame(0x8, b"\x03"), 1002),
        "close code 1005": (frame(0x8, struct.pack("!H", 1005)), 1002),
        "close code 999": (frame(0x8, struct.pack("!H", 999)), 1002),
        "close code 5000": (frame(0x8, struct.pack("!H", 5000)), 1002),
        "close reason not utf-8": (frame(0x8, struct.pack("!H", 1000) + b"\xff"), 1007),
    }
    for name, (data, code) in cases.items():
        out = codes(data)
        assert len(out) == 1, name
        assert isinstance(out[0], Failed), (name, out)
        assert out[0].code == code, (name, out)
        assert not out[0].too_big, name


def test_an_oversized_frame_is_refused_at_its_header() -> None:
    reader = Parser(1000)
    head = frame(0x1, b"x" * 1001)[:8]  # header and key only: the payload never comes
    assert reader.feed(head) == [Failed(1009, "message exceeds 1000 bytes", too_big=True)]


def test_small_whole_text_frames_keep_every_rule() -> None:
    """Requests under 126 bytes take a short path; it bounds, checks and splits alike."""
    assert codes(frame(0x1, b"x" * 11), max_size=10) == [
        Failed(1009, "message exceeds 10 bytes", too_big=True)
    ]
    assert codes(frame(0x1, b"x" * 10), max_size=10) == [Text(b"x" * 10)]
    assert codes(frame(0x1, b"")) == [Text(b"")]
    reader = Parser(1000)
    data = frame(0x1, b'{"command":"ping"}') * 2
    assert reader.feed(data[:7]) == []
    assert reader.feed(data[7:]) == [Text(b'{"command":"ping"}')] * 2
    assert codes(frame(0x1, b"a", fin=False) + frame(0x1, b"b")) == [
        Failed(1002, "new message before the last one ended")
    ]
    accented = "café ✓".encode()
    run = frame(0x1, b"{}") + frame(0x1, accented, key=b"\x01\x02\x03\x04")
    assert codes(run + frame(0x1, b"\xff") + frame(0x1, b"{}")) == [
        Text(b"{}"),
        Text(accented),
        Failed(1007, "text message is not valid UTF-8"),
    ]
    assert codes(run + frame(0x9, b"p") + frame(0x1, b"[]")) == [
        Text(b"{}"), Text(accented), PingIn(b"p"), Text(b"[]")
    ]  # fmt: skip
    closing = frame(0x8, struct.pack("!H", 1000))
    after = codes(run + closing + frame(0x1, b"{}"))
    assert after == [Text(b"{}"), Text(accented), Closed(1000, "")]


def test_fragments_adding_up_past_the_bound() -> None:
    data = frame(0x1, b"x" * 600, fin=False) + frame(0x0, b"x" * 600)
    (failed,) = codes(data)
    assert isinstance(failed, Failed)
    assert (failed.code, failed.too_big) == (1009, True)
    assert codes(frame(0x1, b"x" * 1000)) == [Text(b"x" * 1000)]


def test_close_frames_and_nothing_after_them() -> None:
    assert codes(frame(0x8, b"")) == [Closed(None, "")]
    reader = Parser(1000)
    data = frame(0x8, struct.pack("!H", 4001) + b"bye") + frame(0x1, b"{}")
    assert reader.feed(data) == [Closed(4001, "bye")]
    assert reader.done
    assert reader.feed(frame(0x1, b"{}")) == []
    assert codes(frame(0x8, struct.pack("!H", 1001))) == [Closed(1001, "")]


@given(
    st.lists(st.text(max_size=300), min_size=1, max_size=8),
    st.integers(1, 50),
    st.integers(1, 97),
)
def test_whatever_wsproto_sends_is_read_back(messages: list[str], cut: int, step: int) -> None:
    client = FrameProtocol(client=True, extensions=[])
    data = b""
    for text in messages:
        for i in range(0, max(len(text), 1), cut):
            last = i + cut >= len(text)
            data += client.send_data(text[i : i + cut], fin=last)
    reader = Parser(1 << 20)
    out = []
    for i in range(0, len(data), step):
        out += reader.feed(data[i : i + step])
    assert out == [Text(text.encode()) for text in messages]
