"""Server-to-client WebSocket frames built once and written to many sockets.

A server frame is never masked (RFC 6455 §5.1) and the hub negotiates no extension, so
a message's frame is the same bytes for every client: build it once, share it.
"""

from __future__ import annotations

import struct
from typing import Final

_TEXT_FIN: Final = 0x81
_LEN16: Final = struct.Struct("!BBH")
_LEN64: Final = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying ``payload`` (UTF-8 JSON)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + payload
    if n < 65536:
        return _LEN16.pack(_TEXT_FIN, 126, n) + payload
    return _LEN64.pack(_TEXT_FIN, 127, n) + payload


def frame_payload(frame: bytes) -> bytes:
    """The payload of a frame built by :func:`text_frame` (the inverse of it)."""
    size = frame[1] & 0x7F
    start = 2 if size < 126 else 4 if size == 126 else 10
    return frame[start:]
