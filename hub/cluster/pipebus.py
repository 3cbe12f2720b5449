"""A worker's bus in pipe mode (``hub serve --workers N`` without Redis): the parent
process is the sequencer, and each worker delivers only what comes down its pipe.

Events a worker publishes go up its stdout as frames (:mod:`hub.cluster.pipe`); the
parent puts them and its source's into one order and writes each batch down every
worker's stdin, so every worker delivers the same events in the same order, as the
nodes of a Redis cluster do (:mod:`hub.cluster.broker`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from hub.cluster.pipe import FrameReader, frame, read_frames
from hub.core.stats import Report
from hub.xrpl import events


@dataclass(slots=True)
class PipeStatus(Report):
    url: str = "pipe:parent"
    connected: bool = True
    sent: int = 0
    applied: int = 0
    rejected: int = 0
    fenced: int = 0
    """A pipe has no leadership terms: nothing is ever fenced."""


class PipeBus:
    """A worker's :class:`~hub.core.ports.Bus` in pipe mode: events published here go up
    to the parent; events the parent sends down, from every worker and the source, are
    the only ones delivered. The end of the pipe down (the parent is gone) calls
    ``on_close``."""

    def __init__(
        self,
        up: trio.abc.SendStream,
        down: trio.abc.ReceiveStream,
        reader: FrameReader,
        on_close: Callable[[], None],
    ) -> None:
        self._up = up
        self._down = down
        self._reader = reader
        self._on_close = on_close
        self.status = PipeStatus()

    async def submit(self, batch: list[events.Event]) -> None:
        if batch:
            await self._up.send_all(frame([event.body for event in batch]))
            self.status.sent += len(batch)

    async def run(
        self,
        apply: Callable[[events.Event], None],
        remember: Callable[[events.Event], None],
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Apply what the parent sends down; a worker has no history from before it."""
        task_status.started()
        try:
            while frames := await read_frames(self._down, self._reader):
                for messages in frames:
                    for event in events.parse_valid(messages, self._rejected):
                        self.status.applied += 1
                        apply(event)
        finally:
            self.status.connected = False
            self._on_close()

    def _rejected(self, error: events.EventError) -> None:
        self.status.rejected += 1
