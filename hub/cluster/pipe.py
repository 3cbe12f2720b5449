"""Events over a local pipe: how ``hub serve --workers N`` feeds its worker processes.

A frame is a 4-byte big-endian length and that many bytes of JSON: a list of stream
messages, delivered back to back. :func:`frame` and :class:`FrameReader` are sans-IO;
:func:`run_pipe` reads frames from a trio stream into a publisher channel.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgspec
import trio

__all__ = ["MAX_FRAME", "FrameError", "FrameReader", "frame", "run_pipe"]

MAX_FRAME: Final = 256 * 1024 * 1024
_LENGTH = struct.Struct(">I")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Any).decode


class FrameError(ValueError):
    """Bytes on the pipe that are not a frame: the other end is not a hub."""


def frame(payload: Any) -> bytes:
    """One frame holding ``payload`` (anything msgspec encodes as JSON)."""
    body = _encode(payload)
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Bytes in, decoded frames out, whatever the bytes' chunking."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray) -> list[Any]:
        self._buffer += data
        out = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise FrameError(f"a frame of {length} bytes")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                break
            try:
                out.append(_decode(bytes(self._buffer[_LENGTH.size : end])))
            except msgspec.DecodeError as exc:
                raise FrameError(str(exc)) from None
            del self._buffer[:end]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame."""
        return len(self._buffer)


async def read_frames(stream: trio.abc.ReceiveStream, reader: FrameReader) -> list[Any]:
    """The next whole frames from ``stream``; an empty list at end of stream."""
    while True:
        data = await stream.receive_some(65536)
        if not data:
            if reader.pending:
                raise FrameError(f"the pipe closed inside a frame ({reader.pending} bytes)")
            return []
        frames = reader.feed(data)
        if frames:
            return frames


async def run_pipe(
    send: trio.MemorySendChannel[Any],
    stream: trio.abc.ReceiveStream,
    reader: FrameReader | None = None,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Publish each frame's messages as one batch, in order; returns at end of stream."""
    reader = reader or FrameReader()
    task_status.started()
    async with send:
        while frames := await read_frames(stream, reader):
            for messages in frames:
                await send.send(messages if isinstance(messages, list) else [messages])
