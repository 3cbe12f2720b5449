"""The load generator's WebSocket client, sans-IO: handshake bytes, masked frames, a parser.

The subscriber connections of :mod:`benchmarks.loadgen` speak RFC 6455 themselves
("The WebSocket Protocol", https://www.rfc-editor.org/rfc/rfc6455) over plain asyncio
transports, so that most of them never look at a frame: everything here is pure
functions and small classes that turn bytes into bytes or into frames, tested without
sockets.

* :func:`handshake_request` / :func:`handshake_problem`: the HTTP/1.1 upgrade (section
  4.1) and the check of the server's answer, ``Sec-WebSocket-Accept`` included.
* :func:`client_frame`: one masked client frame (section 5.3); :class:`PingRing`
  pre-builds thousands of masked ``ping`` requests so that sending the next ``k`` is a
  slice of one bytes object.
* :class:`FrameParser`: the server's (unmasked) frames from a byte stream fed in
  arbitrary pieces, each with the stream offset where it ends.
* :func:`count_marker`: occurrences of a marker in a stream fed in pieces, a marker
  split over two pieces counted once.

With ``deflate`` the handshake offers permessage-deflate (RFC 7692) with
``client_no_context_takeover``, requires the server to answer it with
``server_no_context_takeover`` (so every message inflates on its own), and the parser
inflates RSV1 frames; frame ends stay wire offsets.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import zlib
from typing import Final

TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD_END: Final = b"\r\n\r\n"
DEFLATE_OFFER: Final = b"permessage-deflate; client_no_context_takeover"
_DEFLATE_TAIL: Final = b"\x00\x00\xff\xff"


def new_key() -> bytes:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16))


def accept_for(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` a server must answer ``key`` with (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def handshake_request(host: str, port: int, path: str, key: bytes, deflate: bool = False) -> bytes:
    extension = b"Sec-WebSocket-Extensions: %s\r\n" % DEFLATE_OFFER if deflate else b""
    return (
        b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
        % (path.encode(), host.encode(), port, key, extension)
    )


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """(response head, bytes after it), or None while the head is incomplete."""
    end = data.find(_HEAD_END)
    if end < 0:
        return None
    return data[: end + len(_HEAD_END)], data[end + len(_HEAD_END) :]


def handshake_problem(head: bytes, key: bytes, deflate: bool = False) -> str | None:
    """What is wrong with the server's upgrade response, or None when it accepted ``key``.

    With ``deflate``, also when it did not agree to permessage-deflate without server
    context takeover (the parser inflates each message alone).
    """
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "101":
        return f"upgrade refused: {lines[0]!r}"
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if headers.get("sec-websocket-accept", "").encode() != accept_for(key):
        return "wrong Sec-WebSocket-Accept"
    agreed = headers.get("sec-websocket-extensions", "")
    if deflate and not (
        agreed.startswith("permessage-deflate") and "server_no_context_takeover" in agreed
    ):
        return f"permessage-deflate not agreed without server context: {agreed!r}"
    return None


def _mask(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return b""
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def client_frame(payload: bytes, mask: bytes | None = None, opcode: int = TEXT) -> bytes:
    """One final, masked client frame (a fresh random mask unless ``mask`` is given)."""
    mask = os.urandom(4) if mask is None else mask
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + _mask(payload, mask)


class PingRing:
    """``size`` masked ``{"id":N,"command":"ping"}`` frames of one length, back to back.

    Ids are ``base + i`` with the same number of digits, so every frame has the same
    length and :meth:`take` is one or two slices; ids repeat only every ``size`` pings,
    far more than a connection keeps in flight.
    """

    def __init__(self, size: int = 4096, base: int = 1_000_000, mask: bytes | None = None) -> None:
        frames = [
            client_frame(b'{"id":%d,"command":"ping"}' % (base + i), mask) for i in range(size)
        ]
        self.frame_len = len(frames[0])
        if any(len(f) != self.frame_len for f in frames):
            raise ValueError("ids must all have the same number of digits")
        self.size = size
        self._ring = b"".join(frames) * 2
        self._next = 0

    def take(self, count: int) -> bytes:
        """The next ``count`` pings (at most ``size``) as one bytes object."""
        start = self._next * self.frame_len
        self._next = (self._next + count) % self.size
        return self._ring[start : start + count * self.frame_len]


class FrameError(ValueError):
    pass


class FrameParser:
    """Server frames from a byte stream: feed pieces, get ``(opcode, payload, end)``.

    ``end`` is the stream offset just past the frame, counting from the first byte fed.
    Frames are expected final and unmasked, as a server sends them (RFC 6455 5.1);
    anything else raises :class:`FrameError`. With ``inflate`` a frame with RSV1 set is
    a whole compressed message (permessage-deflate without server context takeover)
    and its payload is returned inflated.
    """

    def __init__(self, inflate: bool = False) -> None:
        self._buf = bytearray()
        self._base = 0
        self._rsv = 0x30 if inflate else 0x70

    @property
    def pending(self) -> int:
        """Bytes fed that do not yet make a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes | memoryview) -> list[tuple[int, bytes, int]]:
        buf = self._buf
        buf += data
        frames = []
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b1 & 0x80:
                raise FrameError("masked frame from the server")
            if b0 & self._rsv or not b0 & 0x80:
                raise FrameError(f"unsupported frame header {b0:#04x}")
            n, head = b1 & 0x7F, 2
            if n >= 126:
                head = 4 if n == 126 else 10
                if size - pos < head:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + head], "big")
            end = pos + head + n
            if end > size:
                break
            payload = bytes(buf[pos + head : end])
            if b0 & 0x40:
                payload = _inflate(payload)
            frames.append((b0 & 0x0F, payload, self._base + end))
            pos = end
        del buf[:pos]
        self._base += pos
        return frames


def _inflate(payload: bytes) -> bytes:
    try:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(payload + _DEFLATE_TAIL)
    except zlib.error as exc:
        raise FrameError(f"bad compressed frame: {exc}") from exc


def count_marker(tail: bytes, data: bytes, marker: bytes) -> tuple[int, bytes]:
    """Markers in ``tail + data`` (``tail``: the previous call's), and the new tail.

    The tail is the last ``len(marker) - 1`` bytes, too short to hold a whole marker, so
    a marker that does not overlap itself is counted once even when a read splits it.
    """
    joined = tail + data
    keep = len(marker) - 1
    return joined.count(marker), joined[-keep:] if keep else b""
