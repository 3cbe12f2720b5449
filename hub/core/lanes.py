"""One lane per client for work that takes long: a client's heavy requests wait in line.

A request that checks thousands of addresses is done a chunk at a time, with every
other task let run between chunks (:func:`hub.core.methods._paced`). Without a lane, one
client pipelining many such requests over many connections would have them all run
chunk after chunk in every turn of the scheduler, and the turn would grow with them;
in its lane only one of them runs at a time, so whatever one client sends, the hub
does at most a chunk of its heavy work between two turns of everyone else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

import trio


class Lanes:
    """A lock per key (a client's load key), kept only while someone holds or waits."""

    def __init__(self) -> None:
        self._lanes: dict[Hashable, tuple[trio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._lanes)

    @asynccontextmanager
    async def lane(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._lanes.setdefault(key, (trio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._lanes[key]
