"""Logging that a client cannot turn into a weapon: throttled per kind, bounded in size.

Anything a client can cause (a bad request, a failed handshake, a handler crash) may
be caused thousands of times a second. :class:`Throttle` lets at most ``burst`` lines of
one kind through per ``interval`` and counts the rest, so the next line that passes
says how many were held back; :func:`brief` renders a client's value for a log line
truncated and with secrets masked, and never raises (a value nested a thousand deep
would make ``repr`` raise ``RecursionError``, which ``logging`` re-raises).
"""

from __future__ import annotations

import logging
import reprlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final

from hub.wire.envelope import masked

MAX_KINDS: Final = 1024
"""Kinds remembered at once; the oldest is forgotten first (kinds come from a bounded
set in practice, this only bounds a mistake)."""


class Throttle:
    """At most ``burst`` lines per ``interval`` seconds for each kind of line."""

    def __init__(
        self,
        interval: float = 10.0,
        burst: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.burst = burst
        self._clock = clock
        self._kinds: OrderedDict[Hashable, list[float | int]] = OrderedDict()
        """kind -> [window start, lines let through in it, lines held back since the
        last one let through]."""

    def allow(self, kind: Hashable) -> int | None:
        """None when this line is to be held back; else how many lines of its kind were
        held back since the last one let through."""
        now = self._clock()
        entry = self._kinds.get(kind)
        if entry is None:
            entry = self._kinds[kind] = [now, 0, 0]
            if len(self._kinds) > MAX_KINDS:
                self._kinds.popitem(last=False)
        elif now - entry[0] >= self.interval:
            entry[0], entry[1] = now, 0
        if entry[1] >= self.burst:
            entry[2] += 1
            return None
        entry[1] += 1
        held, entry[2] = int(entry[2]), 0
        return held


THROTTLE: Final = Throttle()
"""The process's throttle for client-caused lines."""


def throttled(
    logger: logging.Logger,
    level: int,
    kind: Hashable,
    msg: str,
    *args: Any,
    throttle: Throttle = THROTTLE,
    exc_info: BaseException | None = None,
) -> None:
    """Log ``msg % args`` unless ``throttle`` holds lines of ``kind`` back right now."""
    if not logger.isEnabledFor(level):
        return
    held = throttle.allow(kind)
    if held is None:
        return
    if held:
        msg = f"{msg} ({held} similar suppressed)"
    logger.log(level, msg, *args, exc_info=exc_info)


_REPR: Final = reprlib.Repr()
_REPR.maxlevel = 4
_REPR.maxdict = 12
_REPR.maxlist = 12
_REPR.maxstring = 120
_REPR.maxother = 60
MAX_BRIEF: Final = 1024


def brief(value: Any) -> str:
    """``value`` for a log line: secrets masked, nesting and length cut to about 1 kB."""
    try:
        text = _REPR.repr(masked(value) if isinstance(value, dict) else value)
    except Exception as exc:  # a log line must never fail
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= MAX_BRIEF else text[: MAX_BRIEF - 3] + "..."
