"""Keepalive without a task per connection: one deadline per connection in one heap.

:class:`Keepalive` is one connection's rule (ping after ``interval`` of silence, give up
``timeout`` after an unanswered ping); :class:`Deadlines` is the hub-wide heap one
task sleeps on. Both are plain objects on an injected clock: the trio task that pops
the heap lives at the edge (:mod:`hub.edge.server`). A connection's deadline is moved
lazily: traffic only records the time, and the connection is put back at its real
deadline when the old one comes due.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class Step(enum.Enum):
    WAIT = "wait"
    PING = "ping"
    TIMEOUT = "timeout"


class Keepalive:
    """When one connection is pinged, and when it has not answered in time."""

    __slots__ = ("_mark", "_ping_at", "heard", "interval", "last_heard", "timeout")

    def __init__(self, interval: float, timeout: float, now: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self.last_heard = now
        self.heard = 0
        """How many times the client was heard from; a ping is answered when it moves."""
        self._ping_at: float | None = None
        self._mark = 0

    def hear(self, now: float) -> None:
        self.last_heard = now
        self.heard += 1

    def step(self, now: float) -> tuple[Step, float]:
        """What to do at ``now`` and when to look again."""
        if self._ping_at is not None:
            if self.heard == self._mark:
                due = self._ping_at + self.timeout
                return (Step.TIMEOUT, due) if now >= due else (Step.WAIT, due)
            self._ping_at = None
        due = self.last_heard + self.interval
        if now < due:
            return Step.WAIT, due
        self._ping_at, self._mark = now, self.heard
        return Step.PING, now + self.timeout


class Deadlines(Generic[T]):
    """A heap of (time, item), each item in it at most once.

    :meth:`discard` only marks an item; the heap is rebuilt without the marked ones
    when they are half of it, so closed connections are let go of in bounded time.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._order = itertools.count()
        self._gone: set[T] = set()

    def add(self, due: float, item: T) -> bool:
        """Schedule ``item``; True when it is now the earliest (a sleeper should wake)."""
        earliest = not self._heap or due < self._heap[0][0]
        heapq.heappush(self._heap, (due, next(self._order), item))
        return earliest

    @property
    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[T]:
        """The items due at ``now``, removed, earliest first."""
        out = []
        heap, gone = self._heap, self._gone
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)[2]
            if item in gone:
                gone.discard(item)
            else:
                out.append(item)
        return out

    def discard(self, item: T) -> None:
        """Forget ``item`` (it must be in the heap)."""
        self._gone.add(item)
        if len(self._gone) * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if entry[2] not in self._gone]
            heapq.heapify(self._heap)
            self._gone.clear()

    def __len__(self) -> int:
        return len(self._heap) - len(self._gone)
