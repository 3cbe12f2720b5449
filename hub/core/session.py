"""What the hub knows about one client, independent of the transport that carries it."""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final, Protocol

from hub.core.feed import Feed
from hub.wire.deflate import DeflateParams

_ids = itertools.count(1)


class Sink(Protocol):
    """Where a session's stream messages go: a WebSocket connection, or nowhere.

    :meth:`send` never waits: a client that cannot keep up is the sink's to cut. What
    fan-out queues is written when it calls :meth:`flush`, once per batch.
    """

    @property
    def streams(self) -> bool:
        """Whether this transport carries stream messages at all."""
        ...

    @property
    def queued_messages(self) -> int: ...

    @property
    def queued_bytes(self) -> int: ...

    @property
    def in_flight(self) -> int:
        """Requests being answered right now."""
        ...

    def send(self, frame: bytes, stamp: float | None) -> None:
        """Queue a frame; ``stamp`` is the fan-out time of a stream message."""
        ...

    @property
    def cursor(self) -> int:
        """Its position in the feed it reads (:mod:`hub.core.feed`)."""
        ...

    def follow(self, feed: Feed | None) -> None:
        """Read ``feed`` from its head on (None: no feed), keeping what is owed."""
        ...

    def flush(self) -> float | None:
        """Write what is due now, without waiting; fan-out calls it once per batch. The
        fan-out stamp of the oldest stream message in what went out whole now (None:
        none did), for the flush loop to observe."""
        ...


class _NoStream:
    """The sink of a transport that carries no stream messages (a JSON-RPC request)."""

    streams: Final = False
    queued_messages: Final = 0
    queued_bytes: Final = 0
    in_flight: Final = 0

    cursor: Final = 0

    def send(self, frame: bytes, stamp: float | None) -> None:
        raise RuntimeError("this session carries no stream messages")

    def follow(self, feed: Feed | None) -> None:
        if feed is not None:
            raise RuntimeError("this session carries no stream messages")

    def flush(self) -> None:
        return None


NO_STREAM: Final[Sink] = _NoStream()


@dataclass(eq=False, slots=True)
class Session:
    """One client: its address, role, stream rendering and load key, and its sink."""

    remote: str
    admin: bool
    sink: Sink
    id: int = field(default_factory=lambda: next(_ids))
    stream_version: int = 1
    load_key: Hashable = None
    warned: bool = False
    deflate: DeflateParams | None = None
    """permessage-deflate parameters of its connection: which shared frames it gets."""

    @property
    def streams(self) -> bool:
        return self.sink.streams

    def send(self, frame: bytes, stamp: float | None = None) -> None:
        self.sink.send(frame, stamp)
