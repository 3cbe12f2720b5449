"""Reconnect delays shared by every outgoing link (relay, forwarding pool, broker, ``hub tail``).

Exponential with "equal jitter": half of each delay is fixed, half random, so a fleet
that lost the same server at once does not come back in one wave, yet no client waits
less than half its share.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays doubling from ``initial`` up to ``maximum``; :meth:`reset` after a success."""

    def __init__(
        self, initial: float = 0.25, maximum: float = 30.0, rng: random.Random | None = None
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self._rng = rng or random.Random()
        self._attempt = 0

    def next(self) -> float:
        ceiling = min(self.maximum, self.initial * 2**self._attempt)
        self._attempt += 1
        return float(ceiling / 2 + self._rng.uniform(0, ceiling / 2))

    def reset(self) -> None:
        self._attempt = 0
