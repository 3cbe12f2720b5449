"""Server-to-client WebSocket frames built once and written to many sockets.

A server frame is never masked (RFC 6455 §5.1), and with permessage-deflate the hub
keeps no compression context (:mod:`hub.wire.deflate`), so a message's frame depends only on
the message and the negotiated parameters: build it once, share it.
"""

from __future__ import annotations

import struct
from typing import Final

_TEXT_FIN: Final = 0x81
_RSV1: Final = 0x40
_LEN16: Final = struct.Struct("!BBH")
_LEN64: Final = struct.Struct("!BBQ")


def text_frame(payload: bytes, *, compressed: bool = False) -> bytes:
    """One final, unmasked text frame carrying ``payload`` (UTF-8 JSON).

    ``compressed`` sets RSV1: the payload is a permessage-deflate message (RFC 7692 §6).
    """
    first = _TEXT_FIN | _RSV1 if compressed else _TEXT_FIN
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return _LEN16.pack(first, 126, n) + payload
    return _LEN64.pack(first, 127, n) + payload


def frame_payload(frame: bytes) -> bytes:
    """The payload of a frame built by :func:`text_frame` (the inverse of it)."""
    size = frame[1] & 0x7F
    start = 2 if size < 126 else 4 if size == 126 else 10
    return frame[start:]


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A final, unmasked control frame (ping 0x9, pong 0xA); ``payload`` is at most 125
    bytes (a client's ping payload always is)."""
    return bytes((0x80 | opcode, len(payload))) + payload


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A close frame: ``code`` and ``reason`` cut to the 123 bytes a close body allows,
    or an empty body when there is no code (answering a client's empty close)."""
    if code is None:
        return b"\x88\x00"
    text = reason.encode()[:123].decode(errors="ignore").encode()
    body = code.to_bytes(2, "big") + text
    return bytes((0x88, len(body))) + body
