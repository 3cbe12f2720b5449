"""What the hub knows about one client, independent of the transport that carries it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from .outbox import Outbox

_ids = itertools.count(1)


def _nothing() -> None:
    pass


@dataclass(eq=False, slots=True)
class Session:
    """One client: its address, role, stream version, subscriptions and outbound queue.

    ``wake`` and ``overflow`` are set by the transport: the first tells its writer that
    the outbox has frames, the second that the client fell too far behind. ``streams``
    is False for a transport that cannot carry stream messages (a JSON-RPC request).
    """

    remote: str
    admin: bool
    outbox: Outbox
    id: int = field(default_factory=lambda: next(_ids))
    stream_version: int = 1
    load_key: Hashable = None
    warned: bool = False
    wake: Callable[[], None] = _nothing
    overflow: Callable[[], None] = _nothing
    closed: bool = False
    streams: bool = True

    def send(self, frame: bytes, stamp: float | None = None) -> None:
        """Queue a frame without waiting; a client that cannot keep up is cut.

        ``stamp`` is the fan-out time of a stream message (for the latency metric).
        """
        if self.outbox.push(frame, stamp):
            self.wake()
        elif not self.closed:
            self.overflow()
