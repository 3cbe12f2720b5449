"""Client frames to messages (RFC 6455 §5, RFC 7692 §6), sans-IO.

"The WebSocket Protocol", https://www.rfc-editor.org/rfc/rfc6455#section-5
"Compression Extensions for WebSocket", https://www.rfc-editor.org/rfc/rfc7692#section-6

The server's reading half of the protocol in one small object per connection: no
generator, buffer object or event queue of its own until bytes arrive. A frame's
payload is unmasked at C speed (an integer XOR, or ``translate`` for a large one:
nothing per byte in Python); a text message's UTF-8 is checked once, when it is
whole. Every rule the hub enforces ends the connection with a :class:`Failed` naming
the close code (:class:`~hub.wire.close.CloseCode`): ``PROTOCOL_ERROR`` (1002),
``INVALID_DATA`` (1007) for bad UTF-8 or bad compressed data, ``TOO_BIG`` (1009) for
a message over ``max_size`` (counted as it arrives, before it is buffered, and as it
inflates).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

from hub.wire.close import CloseCode
from hub.wire.deflate import Inflater, MessageTooBig

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA: Final = frozenset({TEXT, BINARY})
_CONTROL: Final = frozenset({CLOSE, PING, PONG})
_FINAL_TEXT: Final = 0x80 | TEXT
_NOT_UTF8: Final = "text message is not valid UTF-8"
_PROTOCOL: Final = CloseCode.PROTOCOL_ERROR
_INVALID: Final = CloseCode.INVALID_DATA
_TOO_BIG: Final = CloseCode.TOO_BIG
_CLIENT_CODES: Final = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})
"""Close codes a client may send (§7.4.1, IANA's registry); 3000-4999 are also valid."""


@dataclass(slots=True)
class Text:
    """Not frozen: made once per request, and a frozen dataclass's ``__init__`` costs
    twice as much."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Binary:
    data: bytes


@dataclass(frozen=True, slots=True)
class PingIn:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The client closed: its code (None when it sent none) and reason."""

    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The client broke a rule; the connection closes with ``code``. ``too_big`` marks
    a message over the size bound, which is charged to the client."""

    code: CloseCode
    reason: str
    too_big: bool = False


Inbound = Text | Binary | PingIn | Closed | Failed


_BY_TABLE: Final = 2048
"""From this size up, four strided ``translate`` calls (C loops over a quarter of the
bytes each) beat one integer XOR, which builds two big integers; below it the integer
is quicker."""


def unmask(data: bytes | bytearray, key: bytes | bytearray) -> bytes:
    """``data`` XORed with the repeating 4-byte ``key`` (§5.3)."""
    n = len(data)
    if not n:
        return b""
    if n >= _BY_TABLE:
        out = bytearray(data)
        for i in range(4):
            out[i::4] = out[i::4].translate(_XOR[key[i]])
        return bytes(out)
    stream = (bytes(key) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


_XOR: Final = [unmask(bytes(range(256)), bytes((k,)) * 4) for k in range(256)]
"""Per key byte, the table ``bytes.translate`` XORs every byte with (made by the
integer path, which is quicker than a loop over every byte)."""


class Parser:
    """One connection's incoming frames; :meth:`feed` returns what they completed."""

    __slots__ = ("_buf", "_inflater", "_opcode", "_parts", "_size", "deflate", "done",
                 "max_size")  # fmt: skip

    def __init__(self, max_size: int, *, deflate: bool = False) -> None:
        self.max_size = max_size
        self.deflate = deflate
        """Whether permessage-deflate was agreed (RSV1 allowed on a message's first frame)."""
        self.done = False
        """A close or a failure was returned; later bytes are ignored."""
        self._buf = bytearray()
        self._opcode: int | None = None
        self._parts: list[bytes] = []
        self._size = 0
        self._inflater: Inflater | None = None

    @property
    def inflating(self) -> bool:
        """A compressed message is arriving (the only time zlib state exists)."""
        return self._inflater is not None

    def feed(self, data: bytes | bytearray) -> list[Inbound]:
        """The messages, pings, close or failure that ``data`` completes, in order."""
        if self.done:
            return []
        buf: bytes | bytearray = data
        if self._buf:  # a frame arriving in pieces: grow one buffer, not copies of it
            self._buf += data
            buf = self._buf
        out: list[Inbound] = []
        pos = self._small_texts(buf, 0, out)
        while used := self._frame(buf, pos, out):
            pos = self._small_texts(buf, pos + used, out)
        self._keep(buf, data, pos)
        return out

    def _keep(self, buf: bytes | bytearray, data: bytes | bytearray, pos: int) -> None:
        """Keep the bytes of a frame not complete yet (none once the reader is done)."""
        if self.done:
            self._buf = bytearray()
        elif buf is data:
            self._buf = bytearray(data[pos:])
        else:
            del self._buf[:pos]

    def _frame(self, buf: bytes | bytearray, pos: int, out: list[Inbound]) -> int:
        """Parse one frame at ``pos``; the bytes it took, or 0 when it is not all here
        (or the reader is done)."""
        if self.done or len(buf) - pos < 2:
            return 0
        first, second = buf[pos], buf[pos + 1]
        opcode, fin, rsv1 = first & 0x0F, first & 0x80, first & 0x40
        length, head = second & 0x7F, 2
        if length >= 126:
            wide = 2 if length == 126 else 8
            if len(buf) - pos < 2 + wide:
                return 0
            length = int.from_bytes(buf[pos + 2 : pos + 2 + wide], "big")
            head += wide
            if length < (126 if wide == 2 else 65536) or length >> 63:
                return self._fail(out, _PROTOCOL, "frame length not minimally encoded")
        problem = self._check_header(first, second, opcode, fin, rsv1, length)
        if problem is not None:
            out.append(problem)
            self.done = True
            return 0
        end = pos + head + 4 + length
        if len(buf) < end:
            return 0
        payload = unmask(buf[pos + head + 4 : end], buf[pos + head : pos + head + 4])
        self._take(opcode, bool(fin), bool(rsv1), payload, out)
        return end - pos

    def _small_texts(self, buf: bytes | bytearray, pos: int, out: list[Inbound]) -> int:
        """The whole masked text messages of under 126 bytes (requests, usually) that
        follow one another from ``pos``, in one loop with no call per frame; returns
        where they end. A frame that is anything else (not all here, unmasked, over
        ``max_size``, not UTF-8) is left to :meth:`_frame`, whose rules these all pass."""
        if self.done or self._opcode is not None:
            return pos
        size, limit = len(buf), min(self.max_size, 125)
        while pos + 1 < size and buf[pos] == _FINAL_TEXT:
            length = buf[pos + 1] ^ 0x80  # over 125 when unmasked or 126/127 (wider)
            end = pos + 6 + length
            if length > limit or end > size:
                break
            key = buf[pos + 2 : pos + 6] * (length // 4 + 1)
            masked = int.from_bytes(buf[pos + 6 : end], "little")
            message = (masked ^ int.from_bytes(key[:length], "little")).to_bytes(length, "little")
            if not message.isascii() and not _utf8(message):
                break
            out.append(Text(message))
            pos = end
        return pos

    def _check_header(
        self, first: int, second: int, opcode: int, fin: int, rsv1: int, length: int
    ) -> Failed | None:
        if first & 0x30 or (rsv1 and not self.deflate):
            return Failed(_PROTOCOL, "reserved bits set")
        if not second & 0x80:
            return Failed(_PROTOCOL, "client frames must be masked")
        if opcode in _CONTROL:
            if not fin or length > 125:
                return Failed(_PROTOCOL, "control frames must be final and at most 125 bytes")
            return Failed(_PROTOCOL, "compressed control frame") if rsv1 else None
        if opcode not in _DATA and opcode != CONTINUATION:
            return Failed(_PROTOCOL, f"reserved opcode {opcode:#x}")
        if (opcode == CONTINUATION) != (self._opcode is not None):
            return Failed(_PROTOCOL, "unexpected continuation" if opcode == CONTINUATION
                               else "new message before the last one ended")  # fmt: skip
        if rsv1 and opcode == CONTINUATION:
            return Failed(_PROTOCOL, "RSV1 on a continuation frame")
        if self._size + length > self.max_size:
            return Failed(_TOO_BIG, f"message exceeds {self.max_size} bytes", too_big=True)
        return None

    def _take(self, opcode: int, fin: bool, rsv1: bool, payload: bytes, out: list[Inbound]) -> None:
        if opcode == PING:
            out.append(PingIn(payload))
        elif opcode == CLOSE:
            out.append(_closing(payload))
            self.done = True
        elif opcode != PONG:
            if opcode != CONTINUATION:
                self._opcode = opcode
                self._inflater = Inflater(self.max_size) if rsv1 else None
            self._data(payload, fin, out)

    def _data(self, payload: bytes, fin: bool, out: list[Inbound]) -> None:
        inflater = self._inflater
        try:
            if inflater is not None:
                payload = inflater.feed(payload)
                if fin:
                    payload += inflater.finish()
        except MessageTooBig:
            self._too_big(out)
            return
        except zlib.error:
            self._fail(out, _INVALID, "invalid compressed data")
            return
        self._size += len(payload)
        if self._size > self.max_size:
            self._too_big(out)
            return
        if not fin:
            self._parts.append(payload)
            return
        message = b"".join((*self._parts, payload)) if self._parts else payload
        opcode, self._opcode, self._inflater = self._opcode, None, None
        self._parts, self._size = [], 0
        if opcode == BINARY:
            out.append(Binary(message))
        elif _utf8(message):
            out.append(Text(message))
        else:
            self._fail(out, _INVALID, _NOT_UTF8)

    def _too_big(self, out: list[Inbound]) -> int:
        return self._fail(out, _TOO_BIG, f"message exceeds {self.max_size} bytes", too_big=True)

    def _fail(
        self, out: list[Inbound], code: CloseCode, reason: str, *, too_big: bool = False
    ) -> int:
        out.append(Failed(code, reason, too_big))
        self.done = True
        self._parts, self._inflater = [], None
        return 0


def _closing(payload: bytes) -> Closed | Failed:
    """A client's close frame (§5.5.1): no body, or a valid code and a UTF-8 reason."""
    if not payload:
        return Closed(None, "")
    if len(payload) < 2:
        return Failed(_PROTOCOL, "close frame with a one-byte body")
    code = int.from_bytes(payload[:2], "big")
    if code not in _CLIENT_CODES and not 3000 <= code <= 4999:
        return Failed(_PROTOCOL, f"invalid close code {code}")
    if not _utf8(payload[2:]):
        return Failed(_INVALID, "close reason is not valid UTF-8")
    return Closed(code, payload[2:].decode())


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
