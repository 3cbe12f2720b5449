"""When Python's garbage collector may scan the connections' objects.

Each open connection holds a few hundred objects the cyclic collector tracks (its
task, nursery, session, outbox, reader...). CPython runs a full collection whenever
the objects that survived younger collections pass a quarter of the old ones, so a
hub that is gaining connections scans its whole heap again and again: with 10 000
subscribers each pass stops every stream for about half a second, and one landing
in a ledger close delays that ledger for everyone.

The hub's process therefore freezes what it holds (``gc.freeze()``, which only moves
a list head) once a second after new connections opened, so that long-lived
connections are not scanned on every growth step. Frozen cycles are not collected,
so what a closed connection leaves in cycles is reclaimed by a full collection
(unfreeze, collect, freeze again) once a quarter of the open connections (at least
:data:`CHURN_FLOOR`) have closed since the last one, or at the latest
:data:`MAX_AGE` seconds after it when anything was frozen meanwhile. Growth costs no
full collection; churn costs one per quarter turned over, as before.

:class:`GcPolicy` decides from counters and a clock (no ``gc`` calls, unit-tested);
:func:`run` applies its decisions. It is a process's policy, not a hub's: ``hub
serve`` and each worker process run it, an application embedding :class:`Hub` may
choose its own.
"""

from __future__ import annotations

import enum
import gc
import logging
import time
from collections.abc import Callable
from typing import Final

import trio

log = logging.getLogger(__name__)

INTERVAL: Final = 1.0
"""Seconds between decisions."""
CHURN_FLOOR: Final = 1000
"""Closed connections that always justify a full collection."""
MAX_AGE: Final = 600.0
"""Seconds after which frozen garbage is reclaimed even without churn."""


class Action(enum.Enum):
    NOTHING = "nothing"
    FREEZE = "freeze"
    COLLECT = "collect"


class GcPolicy:
    """Counts in, one :class:`Action` out per tick."""

    def __init__(self, now: float) -> None:
        self._accepted = 0
        self._closed_at_collect = 0
        self._collected_at = now
        self._frozen_since_collect = False

    def tick(self, now: float, accepted: int, open_now: int) -> Action:
        """``accepted``: connections accepted so far (a running total); ``open_now``:
        those still open."""
        closed = accepted - open_now - self._closed_at_collect
        aged = self._frozen_since_collect and now - self._collected_at >= MAX_AGE
        if closed >= max(CHURN_FLOOR, open_now // 4) or aged:
            self._closed_at_collect += closed
            self._collected_at = now
            self._accepted = accepted
            self._frozen_since_collect = False
            return Action.COLLECT
        if accepted > self._accepted:
            self._accepted = accepted
            self._frozen_since_collect = True
            return Action.FREEZE
        return Action.NOTHING


def apply(action: Action) -> None:
    if action is Action.FREEZE:
        gc.freeze()
    elif action is Action.COLLECT:
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        log.debug("full collection: %d objects in %.3f s", found, time.perf_counter() - started)


async def run(
    counts: Callable[[], tuple[int, int]], applied: Callable[[Action], object] | None = None
) -> None:
    """Apply the policy until cancelled; ``counts()`` gives (accepted so far, open).
    ``applied`` hears of each decision once it is carried out."""
    policy = GcPolicy(trio.current_time())
    while True:
        await trio.sleep(INTERVAL)
        action = policy.tick(trio.current_time(), *counts())
        apply(action)
        if applied is not None:
            applied(action)
