"""Per-client load balances: charge each request, decay over time, warn, then drop.

Pure arithmetic with an injected clock, after rippled's resource manager: a client's
balance decays exponentially over ``decay_window`` seconds, each request adds its cost
divided by the window, so a steady balance equals the cost per second the client spends
(20 per plain request: 250 requests/s reach the warning at 5000). Over ``warning``
every reply says ``warning: "load"``; over ``drop`` the request that crossed it is
refused and the client is cut — but never before it was warned at least once.
"""

from __future__ import annotations

import enum
import heapq
import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Final

DEFAULT_COSTS: Final[Mapping[str, int]] = {
    "request": 20,
    "malformed": 100,
    "exception": 100,
    "kilobyte": 5,
    "stream": 1,
    "account": 5,
    "book": 10,
    "snapshot": 400,
    "replay": 1,
}
"""Costs by kind, in units of about two microseconds of the hub's work: a plain request
is 20; each KiB of a request's text past the first 5 (reading, decoding and, when it
fails, echoing it); in (un)subscribe, each stream 1, each account address checked 5
and each order book 10 (``both``: two books), charged as they are checked, so a
request that fails halfway pays for the half; each book snapshot 400. At these prices
a client that keeps the hub busy is warned after about a third of a second of its work
and cut after about a second and a half."""


class Verdict(enum.Enum):
    OK = "ok"
    WARN = "warn"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class LoadPolicy:
    warning: float = 5000
    drop: float = 25000
    decay_window: float = 32.0
    costs: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_COSTS))

    def cost(self, kind: str, units: int = 1) -> int:
        costs = self.costs
        return (costs[kind] if kind in costs else costs["request"]) * units


class _Entry:
    __slots__ = ("level", "refs", "stamp")

    def __init__(self, now: float) -> None:
        self.level = 0.0
        self.stamp = now
        self.refs = 0


SWEEP_EVERY: Final = 1.0
"""Seconds between sweeps of idle balances, done on a close."""


class LoadTracker:
    """Balances by key (an IP, or a connection), shared by every socket with that key."""

    def __init__(self, policy: LoadPolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self._entries: dict[Hashable, _Entry] = {}
        self._swept = -math.inf  # the clock may not run yet (a hub is built before trio starts)

    def attach(self, key: Hashable) -> None:
        """A connection with this key opened; its balance lives at least as long."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(self._clock())
        entry.refs += 1

    def detach(self, key: Hashable) -> None:
        """A connection closed; forget its balance if idle and decayed away, and every
        such balance at most once per :data:`SWEEP_EVERY` (a sweep per close made
        closing n connections cost n squared)."""
        entry = self._entries.get(key)
        now = self._clock()
        if entry is not None:
            entry.refs -= 1
            if self._idle(entry, now):
                del self._entries[key]
        if now - self._swept >= SWEEP_EVERY:
            self.sweep()

    def sweep(self) -> None:
        now = self._swept = self._clock()
        idle = [key for key, entry in self._entries.items() if self._idle(entry, now)]
        for key in idle:
            del self._entries[key]

    def balance(self, key: Hashable) -> float:
        entry = self._entries.get(key)
        return 0.0 if entry is None else self._decayed(entry, self._clock())

    def charge(
        self, key: Hashable, cost: float, *, warned: bool, now: float | None = None
    ) -> Verdict:
        """Add a cost; ``warned`` says whether this client was already sent a warning,
        ``now`` is the caller's reading of the clock if it has one."""
        if now is None:
            now = self._clock()
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(now)
        elif now < entry.stamp:  # a reading taken before another connection's charge
            now = entry.stamp
        entry.level = self._decayed(entry, now) + cost / self.policy.decay_window
        entry.stamp = now
        if entry.level >= self.policy.drop and warned:
            return Verdict.DROP
        if entry.level >= self.policy.warning:
            return Verdict.WARN
        return Verdict.OK

    def top(self, n: int = 5) -> list[tuple[Hashable, float]]:
        now = self._clock()
        balances = ((key, self._decayed(e, now)) for key, e in self._entries.items())
        return heapq.nlargest(n, balances, key=lambda kv: kv[1])

    def __len__(self) -> int:
        return len(self._entries)

    def _idle(self, entry: _Entry, now: float) -> bool:
        """No connection holds it and it has decayed below one unit: safe to forget."""
        return entry.refs <= 0 and self._decayed(entry, now) < 1.0

    def _decayed(self, entry: _Entry, now: float) -> float:
        elapsed = now - entry.stamp
        if elapsed <= 0:
            return entry.level
        return entry.level * math.exp(-elapsed / self.policy.decay_window)
