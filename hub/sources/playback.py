"""Playback a recording made by ``hub record``: one JSON line per stream message.

Each line is ``{"t": <unix seconds received>, "message": {...}}``. Messages are
published at the recorded pace divided by ``speed`` (0: as fast as the hub takes
them), and the whole file again from the top with ``loop``. A recording replays its
ledger indexes as they were; looped, the same indexes come round again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import trio


class Record(msgspec.Struct, frozen=True):
    t: float
    message: dict[str, Any]


class RecordingError(ValueError):
    """A recording line that is not a record; names the file and line."""


def read_recording(path: str | Path) -> list[Record]:
    decoder = msgspec.json.Decoder(Record)
    records = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                records.append(decoder.decode(line))
            except msgspec.DecodeError as exc:
                raise RecordingError(f"{path}:{number}: {exc}") from None
    if not records:
        raise RecordingError(f"{path}: no records")
    return records


@dataclass(frozen=True, slots=True)
class Playback:
    path: str
    speed: float = 1.0
    loop: bool = False


async def run_playback(
    send: trio.MemorySendChannel[Any],
    replay: Playback,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Publish a recording into ``send``; returns at its end unless looping."""
    records = read_recording(replay.path)
    task_status.started()
    while True:
        start, first = trio.current_time(), records[0].t
        for record in records:
            if replay.speed > 0:
                await trio.sleep_until(start + (record.t - first) / replay.speed)
            await send.send(record.message)
        if not replay.loop:
            return
