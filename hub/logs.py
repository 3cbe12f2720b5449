"""Log lines a client can cause, rate-limited per kind.

A hostile client can repeat what makes the hub log (a handshake left to time out, a
wrong admin token) as fast as it can connect; one line per occurrence would let it
fill the disk and bury everything else. :class:`Throttle` lets ``burst`` lines of a
kind through per ``interval``, drops the rest, and the next line of that kind let
through says how many it stands for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    start: float
    allowed: int = 0
    suppressed: int = 0


class Throttle:
    """At most ``burst`` lines of one kind per ``interval`` seconds (``clock`` tells
    the time; pass a fake one to test)."""

    def __init__(
        self,
        interval: float = 10.0,
        burst: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.burst = burst
        self._clock = clock
        self._windows: dict[Hashable, _Window] = {}

    def allow(self, kind: Hashable) -> int | None:
        """None to drop this line; else how many of its kind were dropped since the
        last one let through."""
        now = self._clock()
        window = self._windows.get(kind)
        if window is None:
            window = self._windows[kind] = _Window(now)
        elif now - window.start >= self.interval:
            window.start, window.allowed = now, 0
        if window.allowed >= self.burst:
            window.suppressed += 1
            return None
        window.allowed += 1
        suppressed, window.suppressed = window.suppressed, 0
        return suppressed


DEFAULT = Throttle()
"""The process's throttle for client-caused lines."""


def throttled(
    logger: logging.Logger,
    level: int,
    kind: Hashable,
    msg: str,
    *args: object,
    throttle: Throttle = DEFAULT,
    exc_info: BaseException | bool | None = None,
) -> None:
    """``logger.log(level, msg, *args)`` unless ``throttle`` drops it; a line let
    through after drops ends with ``(N similar suppressed)``. A level the logger does
    not emit spends nothing."""
    if not logger.isEnabledFor(level):
        return
    suppressed = throttle.allow(kind)
    if suppressed is None:
        return
    if suppressed:
        msg += " (%d similar suppressed)"
        args = (*args, suppressed)
    logger.log(level, msg, *args, exc_info=exc_info)
