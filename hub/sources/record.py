"""``hub record URL FILE``: write every stream message of a hub, rippled or Clio to a file.

One JSON line per message, ``{"t": <unix seconds received>, "message": {...}}``, the
format ``--source replay:FILE`` reads. Subscribes with API v2, the hub's native form.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import trio

from hub.config import UPSTREAM_STREAMS
from hub.links.connect import connect

log = logging.getLogger(__name__)
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class RecordError(Exception):
    """The recording cannot go on: the subscribe was refused, or the file cannot be
    written. (The connection's own failures are trio's and trio-websocket's.)"""


async def record(
    url: str,
    path: str | Path,
    *,
    streams: Sequence[str] = UPSTREAM_STREAMS,
    count: int | None = None,
    duration: float | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """Record until ``count`` messages, ``duration`` seconds, or cancellation; returns count.
    ``ssl_context`` verifies a ``wss://`` server (the system's CAs by default)."""
    written = 0
    with trio.move_on_after(duration if duration is not None else float("inf")):
        async with connect(url, message_queue_size=10_000, ssl_context=ssl_context) as ws:
            request = {"command": "subscribe", "streams": list(streams), "api_version": 2}
            await ws.send_message(_encode({**request, "id": "hub-record"}).decode())
            try:
                async with await trio.open_file(path, "wb") as out:
                    while count is None or written < count:
                        message: dict[str, Any] = _decode(await ws.get_message())
                        if message.get("type") == "response":
                            if message.get("status") != "success":
                                why = message.get("error_message") or message.get("error")
                                raise RecordError(f"{url} refused the subscribe: {why}")
                            continue
                        await out.write(_encode({"t": time.time(), "message": message}) + b"\n")
                        await out.flush()
                        written += 1
            except OSError as exc:
                raise RecordError(f"cannot write {path}: {exc.strerror or exc}") from None
    log.info("recorded %d messages to %s", written, path)
    return written
